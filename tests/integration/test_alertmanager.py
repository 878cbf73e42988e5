"""alarm_alertmanager against a real Alertmanager (Debian's prometheus-alertmanager, started here): an alarm
becomes an active alert with labels to route on, is resent while it lasts, and is resolved when the
program recovers; a dead Alertmanager delays nothing else and gets the alert once it is back."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from engines import Alertmanager, binary
from support import free_port, wait_until
from test_metrics import scrape

PY = sys.executable
# Exits 2 at once until the flag file exists; then runs.
FLAKY = f"{PY} -c \"import os,sys,time; os.path.exists(sys.argv[1]) or sys.exit('no flag: giving up'); time.sleep(3600)\""


def test_an_alarm_is_an_alert_until_the_program_recovers(daemon, tmp_path: Path) -> None:
    am = Alertmanager(tmp_path / "am")
    try:
        flag = tmp_path / "flag"
        d = daemon(f"""
            [program:web]
            command={FLAKY} {flag}
            startretries=0
            startsecs=1
            """, supervisord_extra=f"alarm_alertmanager = {am.url}\nalarm_alertmanager_resend = 1")
        d.wait_state("web", "FATAL")
        alert = wait_until(lambda: am.alerts(alertname="ProcwardProgramFatal", program="web"),
                           what="the FATAL alert in Alertmanager")[0]
        assert alert["status"]["state"] == "active"
        labels = alert["labels"]
        assert labels["group"] == "web"
        assert labels["severity"] == "critical"
        assert labels["source"] == "procward"
        assert labels["host"]
        assert "Exited too quickly" in alert["annotations"]["description"]
        assert "no flag: giving up" in alert["annotations"]["last_stderr"]
        assert alert["annotations"]["exit"] == "exit status 1"
        first_update = alert["updatedAt"]
        # resent while it lasts (every second here): Alertmanager sees it updated, startsAt unchanged
        again = wait_until(lambda: [a for a in am.alerts(alertname="ProcwardProgramFatal")
                                    if a["updatedAt"] != first_update], what="the alert resent")[0]
        assert again["startsAt"] == alert["startsAt"]
        flag.touch()
        d.rpc().supervisor.startProcess("web")
        wait_until(lambda: not am.alerts(program="web"), what="the alert resolved", timeout=15)
        text = scrape(d)[2]
        assert 'procward_alarms_total{channel="alertmanager",event="ProcwardProgramFatal",result="delivered"}' in text
    finally:
        am.stop()


def test_a_dead_alertmanager_delays_nothing_and_gets_the_alert_when_back(daemon, tmp_path: Path) -> None:
    binary("prometheus-alertmanager")
    port = free_port()  # nobody listens yet
    got = tmp_path / "command.json"
    d = daemon(f"""
        [program:bad]
        command={PY} -c "import sys; sys.exit(3)"
        startretries=0
        startsecs=1
        """, supervisord_extra=f"alarm_alertmanager = http://127.0.0.1:{port}\nalarm_alertmanager_resend = 2\n"
                               f"alarm_command = cat > {got}.tmp && mv {got}.tmp {got}\nalarm_batch = 0.1")
    d.wait_state("bad", "FATAL")
    wait_until(got.exists, what="the command channel's alarm, with Alertmanager down")
    assert '"event": "fatal"' in got.read_text()
    started = time.monotonic()
    assert d.rpc().supervisor.getState()["statename"] == "RUNNING"
    assert time.monotonic() - started < 5  # answering, not waiting on the dead peer
    d.wait_log("alarms: alertmanager failed")
    wait_until(lambda: 'channel="alertmanager",event="ProcwardProgramFatal",result="failed"' in scrape(d)[2],
               what="the failure counted")
    am = Alertmanager(tmp_path / "am", port=port)  # it comes back: the retry delivers the active alert
    try:
        alert = wait_until(lambda: am.alerts(alertname="ProcwardProgramFatal", program="bad"),
                           what="the alert after Alertmanager came back", timeout=20)[0]
        assert alert["status"]["state"] == "active"
    finally:
        am.stop()


def test_alarm_test_reaches_alertmanager(daemon, tmp_path: Path) -> None:
    am = Alertmanager(tmp_path / "am")
    try:
        d = daemon("""
            [program:quiet]
            command=sleep 300
            """, supervisord_extra=f"alarm_alertmanager = {am.url}")
        run = d.ctl("alarm", "test")
        assert run.returncode == 0, run.stdout + run.stderr
        assert "alertmanager" in run.stdout
        alert = wait_until(lambda: am.alerts(alertname="ProcwardTest"), what="the test alert")[0]
        assert alert["labels"]["severity"] == "none"
    finally:
        am.stop()
