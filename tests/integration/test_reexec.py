"""reexec: the daemon re-executes itself and every program keeps running: same pids and uptimes, no line
lost or duplicated under a writer as fast as it can, a READY event listener still served; what is not
settled, and code or configuration that does not load, refuse it with the daemon unchanged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import wait_until

COUNTER = """import itertools, os
for i in itertools.count():
    os.write(1, b"%d\\n" % i)
"""

LISTENER = """import sys
while True:
    sys.stdout.write("READY\\n"); sys.stdout.flush()
    header = dict(x.split(":") for x in sys.stdin.readline().split())
    payload = sys.stdin.read(int(header["len"]))
    with open(sys.argv[1], "a") as f:
        f.write(header["eventname"] + " " + payload.split()[0] + "\\n")
    sys.stdout.write("RESULT 2\\nOK"); sys.stdout.flush()
"""


def ctl(d, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "procward", "ctl", "-c", str(d.conf), *args], capture_output=True,
                          text=True, timeout=120, check=False)


def reexec(d) -> None:
    before = d.log_text().count("reexec: took over")
    run = ctl(d, "reexec")
    assert run.returncode == 0, run.stdout
    wait_until(lambda: d.log_text().count("reexec: took over") == before + 1, what="the new daemon took over",
               timeout=30)
    wait_until(lambda: d.rpc().supervisor.getState()["statename"] == "RUNNING", what="answering", timeout=30)


def test_programs_keep_running_and_no_line_is_lost(daemon, tmp_path: Path) -> None:
    (tmp_path / "counter.py").write_text(COUNTER)
    (tmp_path / "listener.py").write_text(LISTENER)
    d = daemon(f"""
        [program:counter]
        command={sys.executable} %(here)s/counter.py
        stdout_logfile=%(here)s/counter.log
        stdout_logfile_maxbytes=0
        startsecs=0

        [program:sleeper]
        command=sleep 300
        startsecs=0

        [eventlistener:events]
        command={sys.executable} %(here)s/listener.py %(here)s/events.txt
        events=PROCESS_STATE_STOPPED
        """)
    d.wait_state("counter", "RUNNING")
    sleeper = d.wait_state("sleeper", "RUNNING")
    wait_until(lambda: d.rpc().supervisor.getProcessInfo("events")["statename"] == "RUNNING", what="listener")
    daemon_pid = d.proc.pid
    counter_pid = d.rpc().supervisor.getProcessInfo("counter")["pid"]
    listener_pid = d.rpc().supervisor.getProcessInfo("events")["pid"]
    for _ in range(3):
        reexec(d)
    assert d.proc.pid == daemon_pid
    assert d.proc.poll() is None
    after = d.rpc().supervisor.getProcessInfo("sleeper")
    assert after["pid"] == sleeper["pid"]
    assert after["start"] == sleeper["start"]  # the uptime goes on
    assert d.rpc().supervisor.getProcessInfo("counter")["pid"] == counter_pid
    assert d.rpc().supervisor.getProcessInfo("events")["pid"] == listener_pid

    d.rpc().supervisor.stopProcess("sleeper")  # the listener, READY before the reexecs, gets the event
    wait_until(lambda: (tmp_path / "events.txt").exists() and "PROCESS_STATE_STOPPED" in
               (tmp_path / "events.txt").read_text(), what="the event delivered after the reexecs")

    d.rpc().supervisor.stopProcess("counter")
    lines = (tmp_path / "counter.log").read_bytes().split(b"\n")
    numbers = [int(n) for n in lines[:-1]]
    assert len(numbers) > 1000
    assert numbers == list(range(len(numbers)))  # none lost, none twice, in order
    assert lines[-1] == b"" or lines[-1].isdigit()


def test_refused_while_stopping_or_with_a_broken_file(daemon, tmp_path: Path) -> None:
    d = daemon("""
        [program:slow]
        command=sh -c 'trap "" TERM; exec sleep 300'
        startsecs=0
        stopwaitsecs=30
        """)
    pid = d.wait_state("slow", "RUNNING")["pid"]
    d.rpc().supervisor.stopProcess("slow", False)
    busy = ctl(d, "reexec")
    assert busy.returncode == 1
    assert "not now: slow is STOPPING" in busy.stdout
    d.rpc().supervisor.signalProcess("slow", "KILL")
    d.wait_state("slow", "STOPPED")
    d.rpc().supervisor.startProcess("slow")
    d.conf.write_text(d.conf.read_text() + "\n[program:broken]\ncommand=sleep 1\nstartsecs=ten\n")
    broken = ctl(d, "reexec")
    assert broken.returncode == 1
    assert "the new code or the configuration does not load" in broken.stdout
    assert "startsecs" in broken.stdout
    assert d.rpc().supervisor.getState()["statename"] == "RUNNING"
    assert d.rpc().supervisor.getProcessInfo("slow")["pid"] not in (0, pid)
    d.rpc().supervisor.stopProcess("slow", False)  # it ignores SIGTERM: end it now, not at teardown
    d.rpc().supervisor.signalProcess("slow", "KILL")
    d.wait_state("slow", "STOPPED")


HOLDER = """import sys
sys.stdout.write("READY\\n"); sys.stdout.flush()
sys.stdin.readline()  # takes an event and never answers
sys.stdin.read()
"""


def test_sigusr1_reexecs_and_a_held_event_makes_it_wait(daemon, tmp_path: Path) -> None:
    import os
    import signal

    (tmp_path / "holder.py").write_text(HOLDER)
    d = daemon(f"""
        [program:sleeper]
        command=sleep 300
        startsecs=0

        [eventlistener:holder]
        command={sys.executable} %(here)s/holder.py
        events=PROCESS_STATE_STOPPED
        autostart=false
        """)
    pid = d.wait_state("sleeper", "RUNNING")["pid"]
    os.kill(d.proc.pid, signal.SIGUSR1)
    wait_until(lambda: "reexec: took over 2 processes" in d.log_text(), what="the SIGUSR1 reexec", timeout=30)
    wait_until(lambda: d.rpc().supervisor.getState()["statename"] == "RUNNING", what="answering", timeout=30)
    assert d.rpc().supervisor.getProcessInfo("sleeper")["pid"] == pid

    d.rpc().supervisor.startProcess("holder")
    d.rpc().supervisor.stopProcess("sleeper")  # the holder takes this event and never answers
    wait_until(lambda: "is handling an event" in ctl(d, "reexec").stdout, what="reexec refused", timeout=15)
    os.kill(d.proc.pid, signal.SIGUSR1)
    d.wait_log("reexec (SIGUSR1) refused: not now: event listener holder is handling an event")
    d.rpc().supervisor.stopProcess("holder")
