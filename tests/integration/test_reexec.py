"""reexec: the daemon re-executes itself and every program keeps running: same pids and uptimes, no line
lost or duplicated under a writer as fast as it can, a READY event listener still served; what is not
settled, and code or configuration that does not load, refuse it with the daemon unchanged."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from support import pid_alive, wait_until

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



def reexec(d) -> None:
    before = d.log_text().count("reexec: took over")
    run = d.ctl("reexec")
    assert run.returncode == 0, run.stdout
    wait_until(lambda: d.log_text().count("reexec: took over") == before + 1, what="the new daemon took over",
               timeout=30)
    wait_until(lambda: d.rpc().supervisor.getState()["statename"] == "RUNNING", what="answering", timeout=30)


def until_the_exec(d) -> None:
    """``ctl reexec``, back as soon as /proc shows the daemon running its new code (before its handlers)."""
    accepted = d.ctl("reexec")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    cmdline = Path(f"/proc/{d.proc.pid}/cmdline")
    wait_until(lambda: b"--handover" in cmdline.read_bytes(), what="the exec", interval=0.001)


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
        command=sh -c 'trap "" TERM; touch %(here)s/trapped; exec sleep 300'
        startsecs=0
        stopwaitsecs=30
        """)
    pid = d.wait_state("slow", "RUNNING")["pid"]
    # Stopped only once it ignores SIGTERM: a stop before its trap killed it (a flaky refusal test).
    wait_until(lambda: (tmp_path / "trapped").exists(), what="the program's trap")
    d.rpc().supervisor.stopProcess("slow", False)
    busy = d.ctl("reexec")
    assert busy.returncode == 1
    assert "not now: slow is STOPPING" in busy.stdout
    d.rpc().supervisor.signalProcess("slow", "KILL")
    d.wait_state("slow", "STOPPED")
    d.rpc().supervisor.startProcess("slow")
    d.conf.write_text(d.conf.read_text() + "\n[program:broken]\ncommand=sleep 1\nstartsecs=ten\n")
    broken = d.ctl("reexec")
    assert broken.returncode == 1
    assert "the new code or the configuration does not load" in broken.stdout
    assert "startsecs" in broken.stdout
    assert d.rpc().supervisor.getState()["statename"] == "RUNNING"
    assert d.rpc().supervisor.getProcessInfo("slow")["pid"] not in (0, pid)
    d.rpc().supervisor.stopProcess("slow", False)  # it ignores SIGTERM: end it now, not at teardown
    d.rpc().supervisor.signalProcess("slow", "KILL")
    d.wait_state("slow", "STOPPED")


HOLDER = """import os, sys, time
go = sys.argv[1]
while True:
    sys.stdout.write("READY\\n"); sys.stdout.flush()
    header = dict(x.split(":") for x in sys.stdin.readline().split())
    payload = sys.stdin.read(int(header["len"]))
    with open(go + ".got", "a") as f:
        f.write(payload.split()[0] + "\\n")
    while not os.path.exists(go):  # holds the event until the test lets it go
        time.sleep(0.02)
    os.unlink(go)
    sys.stdout.write("RESULT 2\\nOK"); sys.stdout.flush()
"""


def test_sigusr1_reexec_with_an_event_held_and_one_queued(daemon, tmp_path: Path) -> None:
    """A listener holding an event and one more queued: both survive the reexec, the held one's answer
    (written after the switch) is read by the new daemon, and the queued one goes out then."""
    import os
    import signal

    go = tmp_path / "go"
    (tmp_path / "holder.py").write_text(HOLDER)
    d = daemon(f"""
        [program:a]
        command=sleep 300
        startsecs=0

        [program:b]
        command=sleep 300
        startsecs=0

        [eventlistener:holder]
        command={sys.executable} %(here)s/holder.py {go}
        events=PROCESS_STATE_STOPPED
        """)
    d.wait_state("b", "RUNNING")
    wait_until(lambda: d.rpc().supervisor.getProcessInfo("holder")["statename"] == "RUNNING", what="listener")
    d.rpc().supervisor.stopProcess("a")  # the holder takes this one and holds it
    wait_until(lambda: Path(f"{go}.got").exists(), what="the first event taken")
    d.rpc().supervisor.stopProcess("b")  # this one waits in the pool's queue
    os.kill(d.proc.pid, signal.SIGUSR1)
    wait_until(lambda: "reexec: took over 3 processes" in d.log_text(), what="the SIGUSR1 reexec", timeout=30)
    wait_until(lambda: d.rpc().supervisor.getState()["statename"] == "RUNNING", what="answering", timeout=30)
    assert Path(f"{go}.got").read_text() == "processname:a\n"
    go.write_text("")  # the held event is answered now, to the new daemon
    wait_until(lambda: Path(f"{go}.got").read_text() == "processname:a\nprocessname:b\n",
               what="the queued event sent after the answer", timeout=15)
    go.write_text("")
    wait_until(lambda: not go.exists(), what="the second answer")
    assert d.rpc().supervisor.getProcessInfo("b")["statename"] == "STOPPED"
    d.rpc().supervisor.stopProcess("holder")


def test_an_exit_asked_for_during_a_reexec_is_carried_out(daemon) -> None:
    """SIGTERM right after a reexec is accepted (while the switch is under way): the new daemon stops as
    soon as it has taken over. It went on running, the SIGTERM lost."""
    d = daemon("[program:sleeper]\ncommand=sleep 300\nstartsecs=0\n")
    assert d.proc is not None
    pid = d.wait_state("sleeper", "RUNNING")["pid"]
    accepted = d.ctl("reexec")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    d.proc.send_signal(signal.SIGTERM)  # within the switch's fifth of a second (or in the new daemon)
    assert d.proc.wait(timeout=30) == 0
    wait_until(lambda: not pid_alive(pid), what="the program stopped with the daemon")


def test_a_sigterm_while_the_new_daemon_starts_is_carried_out(daemon) -> None:
    """SIGTERM once the daemon has exec'd itself, before the new one has its handlers (its imports, its
    configuration, the takeover): the signal waits for them, and the new daemon stops with its programs.
    With the default action it killed the daemon outright and left the programs running."""
    d = daemon("[program:sleeper]\ncommand=sleep 300\nstartsecs=0\n")
    assert d.proc is not None
    pid = d.wait_state("sleeper", "RUNNING")["pid"]
    until_the_exec(d)
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=30) == 0
    wait_until(lambda: not pid_alive(pid), what="the program stopped with the daemon")
    assert "reexec: took over 1 process" in d.log_text()


def test_a_program_killed_while_the_new_daemon_starts_is_seen_and_restarted(daemon) -> None:
    """A program that dies during the switch, with no daemon code to catch its SIGCHLD: the new daemon
    collects its exit once it has taken over, and autorestart starts it again."""
    d = daemon("[program:sleeper]\ncommand=sleep 300\nstartsecs=0\nautorestart=true\n")
    assert d.proc is not None
    pid = d.wait_state("sleeper", "RUNNING")["pid"]
    until_the_exec(d)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: "reexec: took over 1 process" in d.log_text(), what="the takeover", timeout=30)
    wait_until(lambda: d.rpc().supervisor.getProcessInfo("sleeper")["pid"] not in (0, pid), what="restarted")
    assert not pid_alive(pid)
    assert d.rpc().supervisor.getProcessInfo("sleeper")["statename"] == "RUNNING"
    assert "exited: sleeper (terminated by SIGKILL; not expected)" in d.log_text()
