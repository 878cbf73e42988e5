"""What a fleet's Prometheus gets from procward, checked by Prometheus's own promtool: the shipped alerting
rules load and behave as their unit tests say, and a real scrape passes `promtool check metrics` with no
lint, with programs running, crashed, health-checked and an event listener pool."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from engines import binary
from support import free_port, wait_until
from test_metrics import scrape

RULES = Path(__file__).resolve().parents[2] / "examples" / "prometheus"
PROGRAMS = f"""
    [program:web]
    command=sleep 300
    startsecs=0
    [program:crash]
    command=sh -c 'exit 3'
    startsecs=5
    startretries=0
    [program:probed]
    command=sleep 300
    startsecs=0
    healthcheck=tcp://127.0.0.1:{free_port()}
    healthcheck_interval=0.2
    healthcheck_retries=1
    healthcheck_action=report
    [eventlistener:watch]
    command={sys.executable} {Path(__file__).resolve().parents[1] / "programs" / "listener.py"} %(here)s/events.jsonl
    events=PROCESS_STATE
    """


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary("promtool"), *args], capture_output=True, text=True, timeout=60, check=False,
                          cwd=RULES)


def test_the_shipped_rules_load_and_pass_their_unit_tests() -> None:
    checked = promtool("check", "rules", "procward-rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout
    tested = promtool("test", "rules", "procward-rules.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_a_real_scrape_passes_promtool_and_has_every_metric_the_rules_use(daemon) -> None:
    d = daemon(PROGRAMS)
    d.wait_state("crash", "FATAL")
    wait_until(lambda: d.rpc().supervisor.getProcessInfo("probed")["health"] == "unhealthy", what="a failed check")
    d.wait_state("watch", "RUNNING")
    status, _, text = scrape(d)
    assert status == 200
    checked = subprocess.run([binary("promtool"), "check", "metrics"], input=text, capture_output=True, text=True,
                             timeout=60, check=False)
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", "")  # no lint at all
    exported = set(re.findall(r"^# TYPE (\w+) (\w+)", text, re.MULTILINE))
    names = {name for name, _ in exported} | {f"{name}_total" for name, kind in exported if kind == "counter"}
    used = set(re.findall(r"\b(procward_\w+)", (RULES / "procward-rules.yml").read_text()))
    assert used
    assert used <= names, used - names  # a renamed metric fails here


DASHBOARD = Path(__file__).resolve().parents[2] / "examples" / "grafana" / "procward-fleet.json"
CORE_PANELS = {"stat", "bargauge", "table", "timeseries", "gauge", "text", "barchart", "piechart", "state-timeline"}


def test_the_grafana_dashboard_asks_a_real_prometheus_for_metrics_procward_exports(daemon, tmp_path: Path) -> None:
    """Importable JSON with core panels only; every PromQL expression parses in a real Prometheus (its query
    API answers success, not bad_data) and names only metrics a real scrape has (a renamed one fails)."""
    import json

    from engines import Prometheus

    board = json.loads(DASHBOARD.read_text())
    assert {panel["type"] for panel in board["panels"]} <= CORE_PANELS
    exprs = [target["expr"] for panel in board["panels"] for target in panel["targets"]]
    assert len(exprs) >= 10
    d = daemon(PROGRAMS)
    d.wait_state("crash", "FATAL")
    status, _, text = scrape(d)
    assert status == 200
    exported = set(re.findall(r"^# TYPE (\w+) (\w+)", text, re.MULTILINE))
    names = {name for name, _ in exported} | {f"{name}_total" for name, kind in exported if kind == "counter"}
    used = {name for expr in exprs for name in re.findall(r"\b(procward_\w+)", expr)}
    assert used <= names, used - names
    prometheus = Prometheus(tmp_path / "prometheus", [f"127.0.0.1:{free_port()}"])  # nothing there: up == 0
    try:
        for expr in exprs:
            concrete = expr.replace("$__rate_interval", "5m").replace("$instance", ".*")
            assert isinstance(prometheus.query(concrete), list), expr  # query() asserts status success
    finally:
        prometheus.stop()


def test_a_real_prometheus_evaluates_the_rules_against_a_real_scrape(daemon, tmp_path: Path) -> None:
    """The shipped rules loaded in a real Prometheus scraping procward: a FATAL program makes ProgramFatal
    pending (its 'for' has not passed), a healthy one makes nothing, and the rule group evaluates cleanly."""
    from engines import Prometheus

    port = free_port()
    d = daemon(PROGRAMS, supervisord_extra=f"[inet_http_server]\nport=127.0.0.1:{port}\n")
    d.wait_state("crash", "FATAL")
    prometheus = Prometheus(tmp_path / "prometheus", [f"127.0.0.1:{port}"], rules=[RULES / "procward-rules.yml"])
    try:
        alert = wait_until(lambda: prometheus.query('ALERTS{alertname="ProgramFatal"}'),
                           what="ProgramFatal pending in a real Prometheus", timeout=40)
        assert [a["metric"]["name"] for a in alert] == ["crash"]
        assert alert[0]["metric"]["alertstate"] == "pending"
        assert alert[0]["metric"]["severity"] == "critical"
        assert prometheus.query('ALERTS{alertname="ProcwardDown"}') == []
        groups = prometheus.get("/api/v1/rules")["data"]["groups"]
        assert {rule["health"] for group in groups for rule in group["rules"]} == {"ok"}
    finally:
        prometheus.stop()
