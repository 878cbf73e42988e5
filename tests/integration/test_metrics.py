"""/metrics scraped like Prometheus does, parsed with prometheus_client's own parsers."""

from __future__ import annotations

import base64
import os
import signal
import xmlrpc.client
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families
from support import UnixHTTPConnection, wait_until

PROGRAMS = """
    [program:web]
    command=sh -c 'echo hello; exec sleep 300'
    startsecs=0
    autorestart=true
    [program:idle]
    command=sleep 300
    autostart=false
    """


def scrape(d: Any, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    conn = UnixHTTPConnection(d.sock, timeout=10)
    try:
        conn.request("GET", "/metrics", headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    finally:
        conn.close()


def samples(d: Any, headers: dict[str, str] | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, _, text = scrape(d, headers)
    assert status == 200, text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(found: dict[Any, float], metric: str, **labels: str) -> float:
    return found[metric, tuple(sorted(labels.items()))]


def test_scrape_parses_and_moves_with_the_world(daemon) -> None:
    """A SIGKILLed program's exit-restart counter goes up by one; stopping it makes up 0."""
    d = daemon(PROGRAMS)
    pid = d.wait_state("web", "RUNNING")["pid"]
    before = samples(d)
    assert value(before, "procward_process_up", name="web", group="web") == 1
    assert value(before, "procward_process_state", name="idle", group="idle", state="STOPPED") == 1
    assert value(before, "procward_processes", state="RUNNING") == 1
    assert value(before, "node_supervisord_up", name="web", group="web") == 1  # Go supervisord's family
    assert value(before, "node_supervisord_state", name="web", group="web") == 20
    restarts = before.get(("procward_process_restarts_total", (("group", "web"), ("name", "web"),
                                                                ("reason", "exit"))), 0)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: d.rpc().supervisor.getProcessInfo("web")["pid"] not in (0, pid), what="restart")
    after = samples(d)
    assert value(after, "procward_process_restarts_total", name="web", group="web", reason="exit") == restarts + 1
    assert value(after, "procward_process_exits_total", name="web", group="web", expected="false") == 1
    assert value(after, "procward_process_last_exit_signal", name="web", group="web") == signal.SIGKILL
    # Both runs' "hello\n": the second is counted once the daemon has read the new run's pipe, which may
    # come after the restart is seen (the scrape can be answered first): polled, not assumed.
    wait_until(lambda: value(samples(d), "procward_process_log_bytes_total", name="web", group="web",
                             stream="stdout") >= 12, what="the second run's output counted")
    d.rpc().supervisor.stopProcess("web")
    stopped = samples(d)
    assert value(stopped, "procward_process_up", name="web", group="web") == 0
    assert value(stopped, "procward_process_restarts_total", name="web", group="web", reason="exit") == restarts + 1


def test_resource_use_of_the_tree(daemon) -> None:
    """CPU seconds, resident memory, descriptors and processes of a running program's tree."""
    d = daemon("""
        [program:tree]
        command=sh -c 'sleep 300 & exec sleep 301'
        startsecs=0
        """)
    d.wait_state("tree", "RUNNING")
    wait_until(lambda: value(samples(d), "procward_process_tree_processes", name="tree", group="tree") == 2,
               what="both processes of the tree counted")
    found = samples(d)
    assert value(found, "procward_process_resident_memory_bytes", name="tree", group="tree") > 100_000
    assert value(found, "procward_process_open_fds", name="tree", group="tree") >= 3
    assert value(found, "procward_process_cpu_seconds_total", name="tree", group="tree") >= 0
    info = d.rpc().supervisor.getProcessInfo("tree")
    assert info["tree_processes"] == 2
    assert info["rss_kb"] > 100
    assert isinstance(info["cpu_percent"], float)


def test_rpc_calls_are_counted_by_method_and_result(daemon) -> None:
    """Calls count by method and result; a name that is no method counts as 'unknown'."""
    d = daemon(PROGRAMS)
    d.rpc().supervisor.getState()
    with pytest.raises(xmlrpc.client.Fault):
        d.rpc().supervisor.noSuchMethod()
    with pytest.raises(xmlrpc.client.Fault):
        d.rpc().supervisor.stopProcess("idle")  # NOT_RUNNING
    found = samples(d)
    assert value(found, "procward_rpc_requests_total", method="supervisor.getState", result="ok") >= 1
    assert value(found, "procward_rpc_requests_total", method="unknown", result="UNKNOWN_METHOD") == 1
    assert value(found, "procward_rpc_requests_total", method="supervisor.stopProcess", result="NOT_RUNNING") == 1
    assert value(found, "procward_config_last_reload_success") == 1


def test_openmetrics_when_asked(daemon) -> None:
    """A scraper that asks for OpenMetrics gets it, and it parses as OpenMetrics."""
    d = daemon(PROGRAMS)
    status, content_type, text = scrape(d, {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert status == 200
    assert content_type.startswith("application/openmetrics-text")
    names = {family.name for family in parse_openmetrics(text)}
    assert {"procward_process_up", "procward_build", "procward_process_restarts"} <= names


def test_metrics_need_the_credentials_unless_opened(daemon, tmp_path) -> None:
    """Behind the same credentials as /RPC2 (401 without); metrics_auth = false opens /metrics alone."""
    d = daemon(PROGRAMS, auth=("admin", "s3cret"))
    assert scrape(d)[0] == 401
    assert scrape(d, {"Authorization": "Basic " + base64.b64encode(b"admin:wrong").decode()})[0] == 401
    assert scrape(d, {"Authorization": "Basic " + base64.b64encode(b"admin:s3cret").decode()})[0] == 200
    d.stop()
    d.write(PROGRAMS, server_extra="username=admin\npassword=s3cret\nmetrics_auth = false")
    d.start()
    assert scrape(d)[0] == 200
    conn = UnixHTTPConnection(d.sock, timeout=10)
    try:
        conn.request("GET", "/")
        assert conn.getresponse().status == 401  # only /metrics is open
    finally:
        conn.close()
    d.wait_log("serves /metrics without credentials (metrics_auth = false)")


@pytest.fixture
def prometheus_of(tmp_path):
    """A real Prometheus scraping a daemon's [inet_http_server] every second; stopped at teardown."""
    from engines import Prometheus

    started: list[Prometheus] = []

    def make(port: int, auth: tuple[str, str] | None = None) -> Prometheus:
        server = Prometheus(tmp_path / "prometheus", [f"127.0.0.1:{port}"], auth=auth)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def test_a_real_prometheus_sees_the_first_restart_and_the_real_exit_code(daemon, prometheus_of) -> None:
    """Every restart reason has a series from the start, so increase() over the first restart is not 0;
    the exit code gauge is the exit procward saw (3), not getProcessInfo's exitstatus (0 for a failed start)."""
    from support import free_port

    port = free_port()
    d = daemon("""
        [program:web]
        command=sleep 300
        startsecs=0
        autorestart=true
        [program:broken]
        command=sh -c 'exit 3'
        startsecs=5
        startretries=0
        """, supervisord_extra=f"[inet_http_server]\nport=127.0.0.1:{port}\nusername=prom\npassword=scrape")
    prometheus = prometheus_of(port, auth=("prom", "scrape"))
    restarts = 'procward_process_restarts_total{name="web",reason="exit"}'
    wait_until(lambda: prometheus.value(restarts) == 0, what="a scraped 0 before any restart", timeout=30)
    pid = d.wait_state("web", "RUNNING")["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: prometheus.value(restarts) == 1, what="the first restart scraped", timeout=30)
    assert (prometheus.value(f"increase({restarts}[1m])") or 0) > 0

    assert d.wait_state("broken", "FATAL")["exitstatus"] == 0  # supervisord's RPC value, kept
    wait_until(lambda: prometheus.value('procward_process_last_exit_code{name="broken"}') == 3,
               what="the real exit code in Prometheus", timeout=30)
    assert prometheus.value('node_supervisord_exit_status{name="broken"}') == 3
    assert prometheus.value('up{job="procward"}') == 1


def test_prometheus_own_accept_header_gets_the_text_format(daemon) -> None:
    """Prometheus 2.x asks for OpenMetrics first and takes text/plain at q=0.5: it gets the text format,
    written by procward's own fast writer (OpenMetrics goes through prometheus_client, ~40x slower)."""
    d = daemon(PROGRAMS)
    accept = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
              "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
    status, content_type, text = scrape(d, {"Accept": accept})
    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    assert "# EOF" not in text
    assert "procward_process_up{" in text
