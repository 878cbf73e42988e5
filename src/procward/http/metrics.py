"""/metrics: the daemon's state in the Prometheus text format (OpenMetrics when the scraper asks), from a
collector of light families built from a snapshot of live state at scrape time. OpenMetrics is written
by the official prometheus_client; the text format by TextWriter, byte for byte the same as the library's
(tests/unit/test_metrics_text.py), with each process's lines kept between scrapes until its figures change.

Nothing runs between scrapes: no thread, no timer. Process trees' CPU and memory come from the core's
usage sampler (a worker-thread scan, reused for MAX_AGE), so a scrape never waits on /proc except the
very first one. Labels are ``name`` and ``group`` only, never a pid: a restart must not make new series.
Go supervisord's four ``node_supervisord_*`` families are emitted too, so its dashboards keep working.
prometheus_client is imported at the first scrape: a daemon nobody scrapes does not load it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from procward import __version__
from procward.core.daemon.supervisor import Supervisor
from procward.core.daemon.usage import Usage
from procward.core.process.counters import RestartReason
from procward.core.process.lifecycle import Process
from procward.http.server import Request, Response
from procward.protocol import ProcessState

SUPERVISOR_STATE = {1: "RUNNING", 0: "RESTARTING", -1: "SHUTDOWN", 2: "FATAL"}


@dataclass(frozen=True, slots=True)
class _Figures:
    """One process's figures, copied on the loop so the formatting can run in a worker thread."""

    name: str
    group: str
    state: ProcessState
    start: float
    restarts: tuple[tuple[str, int], ...]
    exits: tuple[int, int]  # expected, unexpected
    exit_code: int
    exit_signal: int
    core_dumps: int
    healthy: float | None  # None without a health check
    ready: bool
    running: bool
    usage: Usage | None
    logged: tuple[int, int]  # stdout, stderr
    memory_limit: int = 0  # memory_limit (0: none)

    @classmethod
    def of(cls, p: Process, usage: Usage | None) -> _Figures:
        c = p.counters
        return cls(p.name, p.group, p.state, p.laststart, tuple((r.value, c.restarts[r]) for r in RestartReason),
                   (c.exits_expected, c.exits_unexpected), c.last_code, c.last_signal, c.core_dumps,
                   None if p.health_monitor is None else float(p.health == "healthy"), p.ready, bool(p.pid), usage,
                   (p.output.logged["stdout"], p.output.logged["stderr"]), p.config.memory_limit)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """Everything one scrape reports, taken at once."""

    started: float
    daemon_state: int
    processes: list[_Figures]
    pools: list[tuple[str, int, int]]  # name, queued, dropped
    rpc: list[tuple[tuple[str, str], int]]
    reloads: int
    last_reload_ok: bool
    alarms: list[tuple[tuple[str, str, str], int]]  # (channel, event, result) -> alarms
    sockets: list[tuple[str, str, str, bool]] = field(default_factory=list)  # program, name, address, held


@dataclass(slots=True)
class Family:
    """One metric family as the collector builds it: prometheus_client's families are made from it for
    OpenMetrics, and ``text`` writes the Prometheus text format from it directly (the common scrape)."""

    name: str
    kind: str  # gauge, counter or info
    help: str
    labels: tuple[str, ...] = ()
    rows: list[tuple[tuple[str, ...], float]] = field(default_factory=list)

    def add(self, values: tuple[str, ...], value: float) -> None:
        """One sample."""
        self.rows.append((values, value))

    def library(self) -> Any:
        """The same family as a prometheus_client MetricFamily."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

        if self.kind == "info":  # one row: the info's labels
            return InfoMetricFamily(self.name, self.help, value=dict(zip(self.labels, self.rows[0][0], strict=True)))
        kind = CounterMetricFamily if self.kind == "counter" else GaugeMetricFamily
        if not self.labels:
            return kind(self.name, self.help, value=self.rows[0][1])
        family = kind(self.name, self.help, labels=self.labels)
        for values, value in self.rows:
            family.add_metric(list(values), value)
        return family


class TextWriter:
    """The Prometheus text format (0.0.4), byte for byte what prometheus_client's generate_latest writes
    for the same families (tests/unit/test_metrics_text.py holds it to that), at a fraction of its cost:
    each label string built once per distinct set of values, each number formatted once per distinct value
    (with the library's own ``floatToGoString``), no Sample objects."""

    def __init__(self) -> None:
        from prometheus_client import utils

        self._go_float = cast(Callable[[float], str], utils.floatToGoString)
        self._escaped: dict[str, str] = {}
        self._numbers: dict[float, str] = {}  # most values repeat (0, 1, the same start times)
        self._labelled: dict[tuple[str, ...], dict[tuple[str, ...], str]] = {}  # sorted names -> values -> {..}

    @staticmethod
    def _name(family: Family) -> str:
        return family.name + ("_total" if family.kind == "counter" else "_info" if family.kind == "info" else "")

    def header(self, family: Family) -> str:
        """The HELP and TYPE lines."""
        name = self._name(family)
        doc = family.help.replace("\\", "\\\\").replace("\n", "\\n")
        return f"# HELP {name} {doc}\n# TYPE {name} {'gauge' if family.kind == 'info' else family.kind}\n"

    def rows(self, family: Family) -> str:
        """The sample lines."""
        name = self._name(family)
        order = sorted(range(len(family.labels)), key=lambda i: family.labels[i])
        keys = tuple(family.labels[i] for i in order)
        cache = self._labelled.setdefault(keys, {})
        out = []
        for values, value in family.rows:
            number = "1.0" if family.kind == "info" else self._numbers.get(value)
            if number is None:
                number = self._numbers[value] = self._go_float(value)
            if not keys:
                out.append(f"{name} {number}\n")
                continue
            labels = cache.get(values)
            if labels is None:
                inner = ",".join(f'{k}="{self._esc(values[i])}"' for k, i in zip(keys, order, strict=True))
                labels = cache[values] = f"{{{inner}}}"
            out.append(f"{name}{labels} {number}\n")
        return "".join(out)

    def _esc(self, value: str) -> str:
        found = self._escaped.get(value)
        if found is None:
            found = self._escaped[value] = value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        return found


def text(families: list[Family]) -> bytes:
    """The Prometheus text format of ``families`` (see TextWriter)."""
    writer = TextWriter()
    return "".join(writer.header(f) + writer.rows(f) for f in families).encode()


def render_text(snapshot: _Snapshot, cache: dict[_Figures, list[str]]) -> tuple[bytes, dict[_Figures, list[str]]]:
    """A whole scrape in the text format, and the per-process lines to reuse at the next one: a process
    whose figures did not change since (most of them, between scrapes) is not rendered again."""
    writer = TextWriter()
    collector = _Collector(snapshot)
    out = [writer.header(f) + writer.rows(f) for f in collector.head()]
    kept: dict[_Figures, list[str]] = {}
    per_process = []
    for figures in snapshot.processes:
        chunks = cache.get(figures)
        if chunks is None:
            chunks = [writer.rows(f) for f in collector.per_process([figures])]
        kept[figures] = chunks
        per_process.append(chunks)
    for index, family in enumerate(collector.per_process([])):
        out.append(writer.header(family))
        out.extend(chunks[index] for chunks in per_process)
    out.extend(writer.header(f) + writer.rows(f) for f in collector.tail())
    return "".join(out).encode(), kept


class Metrics:
    """Serves /metrics for one daemon; the HTTP app counts RPC calls into ``rpc_calls``."""

    def __init__(self, supervisor: Supervisor, rpc_calls: Counter[tuple[str, str]]) -> None:
        self._sup = supervisor
        self.rpc_calls = rpc_calls  # (method, result) -> calls, owned by the HTTP service
        self._lines: dict[_Figures, list[str]] = {}  # per-process lines of the last text scrape, by figures

    async def handle(self, request: Request) -> Response:
        """One scrape."""
        from prometheus_client.exposition import choose_encoder
        from prometheus_client.registry import CollectorRegistry

        usage = await self._sup.usage.current()
        sup = self._sup
        snapshot = _Snapshot(
            sup.started_at, int(sup.state), [_Figures.of(p, usage.get(p.namespec)) for p in sup.all_processes()],
            [(name, len(pool.buffer), pool.dropped) for name, pool in sup.hub.pools.items()],
            sorted(self.rpc_calls.items()), sup.reloads, sup.last_reload_ok, sorted(sup.alarm_counts.items()),
            sorted({(p.config.program, s.name, s.url, sup.sockets.listening(s))
                    for p in sup.all_processes() for s in p.config.sockets}))
        accept = request.headers.get("accept", "")
        # The text format whenever the scraper takes it: Prometheus asks for OpenMetrics first and takes
        # text/plain at q=0.5, and the text format is written here at a fraction of prometheus_client's
        # OpenMetrics cost (at N=1000, 12 ms against 500 ms a scrape). OpenMetrics for a scraper that takes
        # nothing else.
        if "text/plain" in accept or "*/*" in accept or "application/openmetrics-text" not in accept:
            accept = ""
        encoder, content_type = choose_encoder(accept)

        def render() -> bytes:
            if content_type.startswith("text/plain"):
                body, self._lines = render_text(snapshot, self._lines)
                return body
            registry = CollectorRegistry(auto_describe=False)  # OpenMetrics: prometheus_client's own
            registry.register(_LibraryCollector(list(_Collector(snapshot).families())))
            return bytes(encoder(registry))

        # From the snapshot, off the loop: a scrape of 1000 programs (25,000 samples) does not hold up
        # every other request for the time it takes.
        body = await asyncio.get_running_loop().run_in_executor(None, render)
        return Response(200, body, content_type=content_type)


class _LibraryCollector:
    """prometheus_client's view of the families (for OpenMetrics, and as the text format's reference)."""

    def __init__(self, families: list[Family]) -> None:
        self._families = families

    def collect(self) -> Iterator[Any]:
        """prometheus_client's collector protocol."""
        return (family.library() for family in self._families)


class _Collector:
    """The families of one scrape, from its snapshot."""

    def __init__(self, snapshot: _Snapshot) -> None:
        self._s = snapshot

    def families(self) -> Iterator[Family]:
        """Every family, in exposition order."""
        yield from self.head()
        yield from self.per_process(self._s.processes)
        yield from self.tail()

    def per_process(self, processes: list[_Figures]) -> Iterator[Family]:
        """The families with one series (or a few) per process, for ``processes``."""
        yield from self._processes(processes)
        yield from self._go_families(processes)

    def head(self) -> Iterator[Family]:
        """The daemon's families before the per-process ones."""
        snap = self._s
        yield Family("procward_build", "info", "procward's version", ("version",), [((__version__,), 1.0)])
        yield Family("procward_start_time_seconds", "gauge", "When the daemon started (Unix time)",
                     rows=[((), snap.started)])
        daemon_state = Family("procward_daemon_state", "gauge", "The daemon's state (1 for the current one)",
                              ("state",))
        for code, name in SUPERVISOR_STATE.items():
            daemon_state.add((name,), 1.0 if snap.daemon_state == code else 0.0)
        yield daemon_state
        per_state = Counter(p.state for p in snap.processes)
        by_state = Family("procward_processes", "gauge", "Processes in each state", ("state",))
        for state in ProcessState:
            by_state.add((state.name,), per_state.get(state, 0))
        yield by_state

    def tail(self) -> Iterator[Family]:
        """The daemon's families after the per-process ones."""
        snap = self._s
        queue = Family("procward_listener_queue_length", "gauge", "Events waiting in an event listener pool",
                       ("pool",))
        dropped = Family("procward_listener_events_dropped", "counter", "Events a full pool buffer discarded",
                         ("pool",))
        for name, queued, lost in snap.pools:
            queue.add((name,), queued)
            dropped.add((name,), lost)
        yield queue
        yield dropped
        rpc = Family("procward_rpc_requests", "counter", "XML-RPC calls by method and result", ("method", "result"))
        for (method, result), count in snap.rpc:
            rpc.add((method, result), count)
        yield rpc
        alarms = Family("procward_alarms", "counter", "Alarms by channel, event and result (delivered, failed, "
                        "dropped from a full queue)", ("channel", "event", "result"))
        for (channel, event, result), count in snap.alarms:
            alarms.add((channel, event, result), count)
        yield alarms
        held = Family("procward_held_socket", "gauge", "1 for a listening socket procward holds for a program "
                      "(sockets =), 0 when it could not be bound", ("program", "socket", "address"))
        for program, name, address, listening in snap.sockets:
            held.add((program, name, address), 1.0 if listening else 0.0)
        yield held
        yield Family("procward_config_reloads", "counter", "Configuration reads (reloadConfig, SIGHUP)",
                     rows=[((), snap.reloads)])
        yield Family("procward_config_last_reload_success", "gauge", "1 when the last read loaded",
                     rows=[((), 1.0 if snap.last_reload_ok else 0.0)])

    def _processes(self, processes: list[_Figures]) -> Iterator[Family]:
        labels = ("name", "group")
        gauge, counter = "gauge", "counter"
        families = {
            "up": Family("procward_process_up", gauge, "1 while the process is RUNNING", labels),
            "state": Family("procward_process_state", gauge, "1 for the process's current state", (*labels, "state")),
            "start": Family("procward_process_start_time_seconds", gauge, "When the current run started (Unix time)",
                            labels),
            "restarts": Family("procward_process_restarts", counter, "Starts after the first, by reason",
                               (*labels, "reason")),
            "exits": Family("procward_process_exits", counter, "Runs that ended by themselves", (*labels, "expected")),
            "exit_code": Family("procward_process_last_exit_code", gauge, "Exit code of the last run (-1: a signal)",
                                labels),
            "exit_signal": Family("procward_process_last_exit_signal", gauge,
                                  "Signal that ended the last run (0: none)", labels),
            "cores": Family("procward_process_core_dumps", counter, "Runs that dumped core", labels),
            "healthy": Family("procward_process_healthy", gauge, "1 healthy, 0 unhealthy or starting (with a check)",
                              labels),
            "ready": Family("procward_process_ready", gauge, "1 when RUNNING and, with a health check, healthy",
                            labels),
            "cpu": Family("procward_process_cpu_seconds", counter, "CPU of the process tree, every run counted",
                          labels),
            "rss": Family("procward_process_resident_memory_bytes", gauge, "Resident memory of the process tree",
                          labels),
            "fds": Family("procward_process_open_fds", gauge, "Open descriptors of the process tree", labels),
            "tree": Family("procward_process_tree_processes", gauge, "Processes in the tree", labels),
            "limit": Family("procward_process_memory_limit_bytes", gauge,
                            "memory_limit: the resident memory that restarts the process (only where set)", labels),
            "logged": Family("procward_process_log_bytes", counter, "Bytes the process wrote, by stream",
                             (*labels, "stream")),
        }
        for p in processes:
            key = (p.name, p.group)
            families["up"].add(key, 1.0 if p.state == ProcessState.RUNNING else 0.0)
            for state in ProcessState:
                families["state"].add((*key, state.name), 1.0 if p.state == state else 0.0)
            families["start"].add(key, p.start)
            for reason, count in p.restarts:
                families["restarts"].add((*key, reason), count)
            families["exits"].add((*key, "true"), p.exits[0])
            families["exits"].add((*key, "false"), p.exits[1])
            families["exit_code"].add(key, p.exit_code)
            families["exit_signal"].add(key, p.exit_signal)
            families["cores"].add(key, p.core_dumps)
            if p.healthy is not None:
                families["healthy"].add(key, p.healthy)
            families["ready"].add(key, 1.0 if p.ready else 0.0)
            if p.usage is not None:
                families["cpu"].add(key, p.usage.cpu_seconds_total)
                families["rss"].add(key, p.usage.rss_bytes if p.running else 0)
                families["fds"].add(key, p.usage.open_fds if p.running else 0)
                families["tree"].add(key, p.usage.processes if p.running else 0)
            if p.memory_limit:
                families["limit"].add(key, p.memory_limit)
            families["logged"].add((*key, "stdout"), p.logged[0])
            families["logged"].add((*key, "stderr"), p.logged[1])
        yield from families.values()

    def _go_families(self, processes: list[_Figures]) -> Iterator[Family]:
        """Go supervisord's names and meanings, for its dashboards and alerts."""
        labels = ("name", "group")
        up = Family("node_supervisord_up", "gauge", "Process Up", labels)
        state = Family("node_supervisord_state", "gauge", "Process State", labels)
        exit_status = Family("node_supervisord_exit_status", "gauge", "Process Exit Status", labels)
        start = Family("node_supervisord_start_time_seconds", "gauge", "Process start time", labels)
        for p in processes:
            key = (p.name, p.group)
            up.add(key, 1.0 if p.state == ProcessState.RUNNING else 0.0)
            state.add(key, int(p.state))
            exit_status.add(key, p.exit_code)
            start.add(key, p.start)
        yield from (up, state, exit_status, start)
