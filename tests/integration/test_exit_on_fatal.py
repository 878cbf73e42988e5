"""``exit_on_fatal`` and ``exit_when_all_stopped``: the container's policy. A listed program going FATAL
stops everything and the daemon exits 1; an unlisted one does not; a normal shutdown exits 0; a finished
batch ends the daemon with the worst status of its runs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support import pid_alive, wait_until


def test_listed_fatal_program_stops_the_daemon_with_status_1(daemon, tmp_path: Path) -> None:
    d = daemon("""
        [program:web]
        command=sleep 300
        startsecs=0

        [program:flaky]
        command=sh -c 'exit 1'
        startsecs=5
        startretries=0
        autostart=false

        [program:key]
        command=sh -c 'exit 1'
        startsecs=5
        startretries=0
        autostart=false
        """, supervisord_extra="exit_on_fatal=key")
    web = d.wait_state("web", "RUNNING")["pid"]
    d.rpc().supervisor.startProcess("flaky", False)
    d.wait_state("flaky", "FATAL")  # not listed: the daemon stays
    assert d.rpc().supervisor.getState()["statename"] == "RUNNING"
    d.rpc().supervisor.startProcess("key", False)
    assert d.proc.wait(timeout=30) == 1
    assert not pid_alive(web)
    d.wait_log("key entered FATAL and is listed in exit_on_fatal")


def test_normal_shutdown_exits_0(daemon) -> None:
    d = daemon("""
        [program:web]
        command=sleep 300
        startsecs=0
        """, supervisord_extra="exit_on_fatal=*")
    d.wait_state("web", "RUNNING")
    d.rpc().supervisor.shutdown()
    wait_until(lambda: d.proc.poll() is not None, what="daemon gone", timeout=30)
    assert d.proc.returncode == 0


BATCH = """
    [program:fast]
    command=sh -c 'exit 0'
    startsecs=0
    autorestart=false

    [program:slow]
    command=sh -c 'while [ ! -e %(here)s/go ]; do sleep 0.05; done; exit {code}'
    startsecs=0
    autorestart=false
    exitcodes=0

    [program:never]
    command=sleep 300
    autostart=false

    [eventlistener:watch]
    command={python} {listener} %(here)s/events.jsonl
    events=PROCESS_STATE_EXITED
    """
LISTENER = Path(__file__).resolve().parents[1] / "programs" / "listener.py"


@pytest.mark.parametrize(("code", "expected"), [(0, 0), (4, 4)])
def test_exit_when_all_stopped_ends_a_finished_batch(daemon, tmp_path: Path, code: int, expected: int) -> None:
    """Every program done (one still running holds the daemon up; one never started does not; the event
    listener does not): the daemon exits with the worst status of the runs (4, an unexpected exit)."""
    d = daemon(BATCH.format(code=code, python=sys.executable, listener=LISTENER),
               supervisord_extra="exit_when_all_stopped=true")
    d.wait_state("fast", "EXITED")
    d.wait_state("slow", "RUNNING")
    d.wait_state("watch", "RUNNING")  # a listener keeps running, and does not hold the daemon up
    assert d.proc is not None
    assert d.proc.poll() is None  # slow is still running
    (tmp_path / "go").touch()
    assert d.proc.wait(timeout=30) == expected
    d.wait_log("every program has stopped and none will be started again (exit_when_all_stopped)")


def test_exit_when_all_stopped_waits_for_restarts_and_counts_a_signal(daemon, tmp_path: Path) -> None:
    """A program autorestarted after its exits keeps the daemon up until it gives up (FATAL); a killed
    one counts as 128 + the signal: the worst, 137, is the exit status."""
    d = daemon("""
        [program:retry]
        command=sh -c 'sleep 0.2; exit 1'
        startsecs=1
        startretries=2
        [program:victim]
        command=sleep 300
        startsecs=0
        autorestart=false
        """, supervisord_extra="exit_when_all_stopped=true")
    pid = d.wait_state("victim", "RUNNING")["pid"]
    os.kill(pid, signal.SIGKILL)
    d.wait_state("victim", "EXITED")
    assert d.proc is not None
    assert d.proc.wait(timeout=30) == 137
    assert "retry entered FATAL" in d.log_text()  # it was waited for


def test_exit_when_all_stopped_as_pid_1(tmp_path: Path) -> None:
    """In a PID namespace, as a container's PID 1: the batch ends, the daemon exits with its status."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "--pid", "--fork", "true"], check=False,
                                                         capture_output=True).returncode != 0:
        pytest.skip("needs unshare --pid (root, util-linux)")
    conf = tmp_path / "supervisord.conf"
    conf.write_text(f"[supervisord]\nlogfile={tmp_path}/main.log\npidfile={tmp_path}/pw.pid\nnodaemon=true\n"
                    "exit_when_all_stopped=true\n[program:job]\ncommand=sh -c 'echo $$ > "
                    f"{tmp_path}/job.pid; exit 3'\nstartsecs=0\nautorestart=false\n")
    run = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-m", "procward", "-n", "-c",
                          str(conf)], capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 3, run.stderr
    assert "supervisord started with pid 1" in (tmp_path / "main.log").read_text()
