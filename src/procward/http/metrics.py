"""/metrics: the daemon's state in the Prometheus text format (OpenMetrics when the scraper asks), made by
the official prometheus_client from a custom collector that reads live state at scrape time.

Nothing runs between scrapes: no thread, no timer. Process trees' CPU and memory come from the core's
usage sampler (a worker-thread scan, reused for MAX_AGE), so a scrape never waits on /proc except the
very first one. Labels are ``name`` and ``group`` only, never a pid: a restart must not make new series.
Go supervisord's four ``node_supervisord_*`` families are emitted too, so its dashboards keep working.
prometheus_client is imported at the first scrape: a daemon nobody scrapes does not load it.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from procward import __version__
from procward.core.process import Process
from procward.core.supervisor import Supervisor
from procward.core.usage import Usage
from procward.http.server import Request, Response
from procward.protocol import ProcessState

SUPERVISOR_STATE = {1: "RUNNING", 0: "RESTARTING", -1: "SHUTDOWN", 2: "FATAL"}


class Metrics:
    """Serves /metrics for one daemon; the HTTP app counts RPC calls into ``rpc_calls``."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._sup = supervisor
        self.rpc_calls: Counter[tuple[str, str]] = Counter()  # (method, result) -> calls
        self.started = time.time()

    async def handle(self, request: Request) -> Response:
        """One scrape."""
        if "ssl" in sys.modules and sys.modules["ssl"] is None:
            # The daemon keeps OpenSSL out until something needs it (cli.py); prometheus_client's
            # exposition module imports ssl unconditionally, so the first scrape lets it in.
            del sys.modules["ssl"]
        from prometheus_client.exposition import choose_encoder
        from prometheus_client.registry import CollectorRegistry

        usage = await self._sup.usage.current()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self, usage))
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(200, encoder(registry), content_type=content_type)


class _Collector:
    """The families of one scrape, read from the daemon's live objects."""

    def __init__(self, metrics: Metrics, usage: dict[str, Usage]) -> None:
        self._m = metrics
        self._usage = usage

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            InfoMetricFamily,
        )

        sup = self._m._sup
        processes = list(sup.all_processes())
        yield InfoMetricFamily("procward_build", "procward's version", value={"version": __version__})
        yield GaugeMetricFamily("procward_start_time_seconds", "When the daemon started (Unix time)",
                                value=self._m.started)
        daemon_state = GaugeMetricFamily("procward_daemon_state", "The daemon's state (1 for the current one)",
                                         labels=["state"])
        for code, name in SUPERVISOR_STATE.items():
            daemon_state.add_metric([name], 1.0 if int(sup.state) == code else 0.0)
        yield daemon_state
        per_state = Counter(p.state.name for p in processes)
        by_state = GaugeMetricFamily("procward_processes", "Processes in each state", labels=["state"])
        for state in ProcessState:
            by_state.add_metric([state.name], per_state.get(state.name, 0))
        yield by_state
        yield from self._processes(processes, GaugeMetricFamily, CounterMetricFamily)
        yield from self._go_families(processes, GaugeMetricFamily)
        queue = GaugeMetricFamily("procward_listener_queue_length", "Events waiting in an event listener pool",
                                  labels=["pool"])
        dropped = CounterMetricFamily("procward_listener_events_dropped", "Events a full pool buffer discarded",
                                      labels=["pool"])
        for name, pool in sup.hub.pools.items():
            queue.add_metric([name], len(pool.buffer))
            dropped.add_metric([name], pool.dropped)
        yield queue
        yield dropped
        rpc = CounterMetricFamily("procward_rpc_requests", "XML-RPC calls by method and result",
                                  labels=["method", "result"])
        for (method, result), count in sorted(self._m.rpc_calls.items()):
            rpc.add_metric([method, result], count)
        yield rpc
        yield CounterMetricFamily("procward_config_reloads", "Configuration reads (reloadConfig, SIGHUP)",
                                  value=sup.reloads)
        yield GaugeMetricFamily("procward_config_last_reload_success", "1 when the last read loaded",
                                value=1.0 if sup.last_reload_ok else 0.0)

    def _processes(self, processes: list[Process], gauge: Any, counter: Any) -> Iterator[Any]:
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
            families["start"].add_metric(key, p.laststart)
            for reason, count in sorted(p.counters.restarts.items()):
                families["restarts"].add_metric([*key, reason.value], count)
            families["exits"].add_metric([*key, "true"], p.counters.exits_expected)
            families["exits"].add_metric([*key, "false"], p.counters.exits_unexpected)
            families["exit_code"].add_metric(key, p.exitstatus)
            families["exit_signal"].add_metric(key, p.counters.last_signal)
            families["cores"].add_metric(key, p.counters.core_dumps)
            if p.health_monitor is not None:
                families["healthy"].add_metric(key, 1.0 if p.health == "healthy" else 0.0)
            families["ready"].add_metric(key, 1.0 if p.ready else 0.0)
            usage = self._usage.get(p.namespec)
            if usage is not None:
                families["cpu"].add_metric(key, usage.cpu_seconds_total)
                running = bool(p.pid)
                families["rss"].add_metric(key, usage.rss_bytes if running else 0)
                families["fds"].add_metric(key, usage.open_fds if running else 0)
                families["tree"].add_metric(key, usage.processes if running else 0)
            for stream in ("stdout", "stderr"):
                families["logged"].add_metric([*key, stream], p.output.logged[stream])
        yield from families.values()

    def _go_families(self, processes: list[Process], gauge: Any) -> Iterator[Any]:
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
            exit_status.add_metric(key, p.exitstatus)
            start.add_metric(key, p.laststart)
        yield from (up, state, exit_status, start)
