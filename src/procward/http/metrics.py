"""/metrics: the daemon's state in the Prometheus text format (OpenMetrics when the scraper asks), made by
the official prometheus_client from a custom collector that reads live state at scrape time.

Nothing runs between scrapes: no thread, no timer. Process trees' CPU and memory come from the core's
usage sampler (a worker-thread scan, reused for MAX_AGE), so a scrape never waits on /proc except the
very first one. Labels are ``name`` and ``group`` only, never a pid: a restart must not make new series.
Go supervisord's four ``node_supervisord_*`` families are emitted too, so its dashboards keep working.
prometheus_client is imported at the first scrape: a daemon nobody scrapes does not load it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from procward import __version__
from procward.core import sslgate
from procward.core.process import Process
from procward.core.supervisor import Supervisor
from procward.core.usage import Usage
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

    @classmethod
    def of(cls, p: Process, usage: Usage | None) -> _Figures:
        c = p.counters
        return cls(p.name, p.group, p.state, p.laststart, tuple((r.value, n) for r, n in sorted(c.restarts.items())),
                   (c.exits_expected, c.exits_unexpected), p.exitstatus, c.last_signal, c.core_dumps,
                   None if p.health_monitor is None else float(p.health == "healthy"), p.ready, bool(p.pid), usage,
                   (p.output.logged["stdout"], p.output.logged["stderr"]))


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


class Metrics:
    """Serves /metrics for one daemon; the HTTP app counts RPC calls into ``rpc_calls``."""

    def __init__(self, supervisor: Supervisor, rpc_calls: Counter[tuple[str, str]]) -> None:
        self._sup = supervisor
        self.rpc_calls = rpc_calls  # (method, result) -> calls, owned by the HTTP service

    async def handle(self, request: Request) -> Response:
        """One scrape."""
        sslgate.let_in()  # prometheus_client's exposition module imports ssl unconditionally
        from prometheus_client.exposition import choose_encoder
        from prometheus_client.registry import CollectorRegistry

        usage = await self._sup.usage.current()
        sup = self._sup
        snapshot = _Snapshot(
            sup.started_at, int(sup.state), [_Figures.of(p, usage.get(p.namespec)) for p in sup.all_processes()],
            [(name, len(pool.buffer), pool.dropped) for name, pool in sup.hub.pools.items()],
            sorted(self.rpc_calls.items()), sup.reloads, sup.last_reload_ok)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(snapshot))
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        # prometheus_client formats ~5 us per sample (25 samples a process): off the loop, so a scrape
        # of 1000 programs does not hold up every other request for the time it takes.
        body = await asyncio.get_running_loop().run_in_executor(None, encoder, registry)
        return Response(200, body, content_type=content_type)


class _Collector:
    """The families of one scrape, from its snapshot."""

    def __init__(self, snapshot: _Snapshot) -> None:
        self._s = snapshot

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            InfoMetricFamily,
        )

        snap = self._s
        yield InfoMetricFamily("procward_build", "procward's version", value={"version": __version__})
        yield GaugeMetricFamily("procward_start_time_seconds", "When the daemon started (Unix time)",
                                value=snap.started)
        daemon_state = GaugeMetricFamily("procward_daemon_state", "The daemon's state (1 for the current one)",
                                         labels=["state"])
        for code, name in SUPERVISOR_STATE.items():
            daemon_state.add_metric([name], 1.0 if snap.daemon_state == code else 0.0)
        yield daemon_state
        per_state = Counter(p.state for p in snap.processes)
        by_state = GaugeMetricFamily("procward_processes", "Processes in each state", labels=["state"])
        for state in ProcessState:
            by_state.add_metric([state.name], per_state.get(state, 0))
        yield by_state
        yield from self._processes(snap.processes, GaugeMetricFamily, CounterMetricFamily)
        yield from self._go_families(snap.processes, GaugeMetricFamily)
        queue = GaugeMetricFamily("procward_listener_queue_length", "Events waiting in an event listener pool",
                                  labels=["pool"])
        dropped = CounterMetricFamily("procward_listener_events_dropped", "Events a full pool buffer discarded",
                                      labels=["pool"])
        for name, queued, lost in snap.pools:
            queue.add_metric([name], queued)
            dropped.add_metric([name], lost)
        yield queue
        yield dropped
        rpc = CounterMetricFamily("procward_rpc_requests", "XML-RPC calls by method and result",
                                  labels=["method", "result"])
        for (method, result), count in snap.rpc:
            rpc.add_metric([method, result], count)
        yield rpc
        yield CounterMetricFamily("procward_config_reloads", "Configuration reads (reloadConfig, SIGHUP)",
                                  value=snap.reloads)
        yield GaugeMetricFamily("procward_config_last_reload_success", "1 when the last read loaded",
                                value=1.0 if snap.last_reload_ok else 0.0)

    def _processes(self, processes: list[_Figures], gauge: Any, counter: Any) -> Iterator[Any]:
        labels = ["name", "group"]
        families = {
            "up": gauge("procward_process_up", "1 while the process is RUNNING", labels=labels),
            "state": gauge("procward_process_state", "1 for the process's current state", labels=[*labels, "state"]),
            "start": gauge("procward_process_start_time_seconds", "When the current run started (Unix time)",
                           labels=labels),
            "restarts": counter("procward_process_restarts", "Starts after the first, by reason",
                                labels=[*labels, "reason"]),
            "exits": counter("procward_process_exits", "Runs that ended by themselves",
                             labels=[*labels, "expected"]),
            "exit_code": gauge("procward_process_last_exit_code", "Exit code of the last run (-1: a signal)",
                               labels=labels),
            "exit_signal": gauge("procward_process_last_exit_signal", "Signal that ended the last run (0: none)",
                                 labels=labels),
            "cores": counter("procward_process_core_dumps", "Runs that dumped core", labels=labels),
            "healthy": gauge("procward_process_healthy", "1 healthy, 0 unhealthy or starting (with a check)",
                             labels=labels),
            "ready": gauge("procward_process_ready", "1 when RUNNING and, with a health check, healthy",
                           labels=labels),
            "cpu": counter("procward_process_cpu_seconds", "CPU of the process tree, every run counted",
                           labels=labels),
            "rss": gauge("procward_process_resident_memory_bytes", "Resident memory of the process tree",
                         labels=labels),
            "fds": gauge("procward_process_open_fds", "Open descriptors of the process tree", labels=labels),
            "tree": gauge("procward_process_tree_processes", "Processes in the tree", labels=labels),
            "logged": counter("procward_process_log_bytes", "Bytes the process wrote, by stream",
                              labels=[*labels, "stream"]),
        }
        for p in processes:
            key = [p.name, p.group]
            families["up"].add_metric(key, 1.0 if p.state == ProcessState.RUNNING else 0.0)
            for state in ProcessState:
                families["state"].add_metric([*key, state.name], 1.0 if p.state == state else 0.0)
            families["start"].add_metric(key, p.start)
            for reason, count in p.restarts:
                families["restarts"].add_metric([*key, reason], count)
            families["exits"].add_metric([*key, "true"], p.exits[0])
            families["exits"].add_metric([*key, "false"], p.exits[1])
            families["exit_code"].add_metric(key, p.exit_code)
            families["exit_signal"].add_metric(key, p.exit_signal)
            families["cores"].add_metric(key, p.core_dumps)
            if p.healthy is not None:
                families["healthy"].add_metric(key, p.healthy)
            families["ready"].add_metric(key, 1.0 if p.ready else 0.0)
            if p.usage is not None:
                families["cpu"].add_metric(key, p.usage.cpu_seconds_total)
                families["rss"].add_metric(key, p.usage.rss_bytes if p.running else 0)
                families["fds"].add_metric(key, p.usage.open_fds if p.running else 0)
                families["tree"].add_metric(key, p.usage.processes if p.running else 0)
            families["logged"].add_metric([*key, "stdout"], p.logged[0])
            families["logged"].add_metric([*key, "stderr"], p.logged[1])
        yield from families.values()

    def _go_families(self, processes: list[_Figures], gauge: Any) -> Iterator[Any]:
        """Go supervisord's names and meanings, for its dashboards and alerts."""
        labels = ["name", "group"]
        up = gauge("node_supervisord_up", "Process Up", labels=labels)
        state = gauge("node_supervisord_state", "Process State", labels=labels)
        exit_status = gauge("node_supervisord_exit_status", "Process Exit Status", labels=labels)
        start = gauge("node_supervisord_start_time_seconds", "Process start time", labels=labels)
        for p in processes:
            key = [p.name, p.group]
            up.add_metric(key, 1.0 if p.state == ProcessState.RUNNING else 0.0)
            state.add_metric(key, int(p.state))
            exit_status.add_metric(key, p.exit_code)
            start.add_metric(key, p.start)
        yield from (up, state, exit_status, start)
