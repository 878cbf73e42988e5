"""The real supervisorctl 4.3 (from PyPI) drives procward: same output, same exit codes."""

from __future__ import annotations

import importlib.resources
import os
import re
import selectors
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from support import wait_until

PROGRAMS = """
    [program:web]
    command=sleep 300
    startsecs=0
    [program:crash]
    command=sh -c "echo boom >&2; exit 1"
    startsecs=1
    startretries=0
    [program:idle]
    command=sleep 300
    autostart=false
    [group:workers]
    programs=w
    [program:w]
    command=sleep 300
    numprocs=2
    process_name=w%(process_num)d
    startsecs=0
    """


def ctl(d, *args: str) -> subprocess.CompletedProcess[str]:
    return d.supervisorctl(*args, timeout=60)


def ready(daemon):
    d = daemon(PROGRAMS)
    d.wait_state("crash", "FATAL")
    d.wait_state("workers:w1", "RUNNING")
    return d


def test_status_layout_and_exit_code(daemon) -> None:
    """status prints Supervisor's columns; exit 3 when something is stopped, 0 when all run."""
    d = ready(daemon)
    result = ctl(d, "status")
    lines = result.stdout.splitlines()
    assert result.returncode == 3
    assert [line.split()[0] for line in lines] == ["crash", "idle", "web", "workers:w0", "workers:w1"]
    assert re.match(r"^crash {28}FATAL {5}Exited too quickly \(process log may have details\)$", lines[0])
    assert re.match(r"^idle {29}STOPPED {3}Not started$", lines[1])
    assert re.match(r"^web {30}RUNNING {3}pid \d+, uptime 0:00:\d\d$", lines[2])
    assert ctl(d, "status", "web", "workers:*").returncode == 0
    unknown = ctl(d, "status", "nope")
    assert unknown.returncode == 4
    assert unknown.stdout.strip() == "nope: ERROR (no such process)"


def test_start_stop_restart(daemon) -> None:
    """start/stop/restart print Supervisor's words and exit codes."""
    d = ready(daemon)
    started = ctl(d, "start", "idle")
    assert (started.returncode, started.stdout.strip()) == (0, "idle: started")
    again = ctl(d, "start", "idle")
    assert again.stdout.strip() == "idle: ERROR (already started)"
    assert again.returncode == 0
    stopped = ctl(d, "stop", "workers:*")
    assert stopped.returncode == 0
    assert sorted(stopped.stdout.split("\n")[:2]) == ["workers:w0: stopped", "workers:w1: stopped"]
    restarted = ctl(d, "restart", "web")
    assert restarted.stdout.splitlines() == ["web: stopped", "web: started"]
    bad = ctl(d, "start", "crash")
    assert (bad.returncode, bad.stdout.strip()) == (7, "crash: ERROR (spawn error)")
    none = ctl(d, "start", "nosuch")
    assert (none.returncode, none.stdout.strip()) == (1, "nosuch: ERROR (no such process)")
    missing_arg = ctl(d, "start")
    assert missing_arg.returncode == 2
    assert "Error: start requires a process name" in missing_arg.stdout


def test_tail_pid_signal_avail(daemon) -> None:
    """tail reads the stderr log, pid prints pids, signal and avail work."""
    d = ready(daemon)
    tail = ctl(d, "tail", "crash", "stderr")
    assert tail.returncode == 0
    assert "boom" in tail.stdout
    pid = ctl(d, "pid", "web")
    info = d.rpc().supervisor.getProcessInfo("web")
    assert pid.stdout.strip() == str(info["pid"])
    assert ctl(d, "pid").stdout.strip() == str(d.proc.pid)
    sig = ctl(d, "signal", "HUP", "web")
    assert sig.stdout.strip() == "web: signalled"
    badsig = ctl(d, "signal", "NOPE", "web")
    assert badsig.stdout.strip() == "web: ERROR (bad signal name)"
    avail = ctl(d, "avail").stdout.splitlines()
    assert any(re.match(r"^web +in use +auto +999:999$", line) for line in avail), avail


def test_tail_of_a_large_log_in_one_answer(daemon) -> None:
    """tail -N past 64 KiB: the answer's body goes out after its head, not copied behind it (the server's
    large-body path), and the real client gets every byte of the log."""
    d = daemon("[program:big]\ncommand=sh -c 'seq 1 30000; exec sleep 300'\nstartsecs=0\n")
    expected = "".join(f"{i}\n" for i in range(1, 30001))  # ~169 KB
    path = Path(d.wait_state("big", "RUNNING")["stdout_logfile"])
    wait_until(lambda: path.exists() and path.stat().st_size == len(expected), what="the whole log written")
    tail = ctl(d, "tail", "-200000", "big")
    assert tail.returncode == 0, tail.stderr
    assert tail.stdout == expected + "\n"  # supervisorctl prints what it read, then a newline


def test_a_slow_stop_is_reported_in_the_main_log(daemon) -> None:
    """supervisorctl stop of a program slow to stop, alone and in `stop all`: "waiting for X to stop" in
    the main log while the call waits, as supervisord writes it; a stop that is over at once writes none."""
    d = daemon("""
        [program:slow]
        command=sh -c "trap '' TERM; exec sleep 300"
        startsecs=0
        stopwaitsecs=60
        [program:quick]
        command=sleep 300
        startsecs=0
        """)
    d.wait_state("quick", "RUNNING")
    for args in (("stop", "slow"), ("stop", "all")):
        if args[1] == "all":
            assert ctl(d, "start", "all").returncode == 0
        pid = d.wait_state("slow", "RUNNING")["pid"]
        before = d.log_text().count("waiting for slow to stop")  # the last stop's lines ended with its call
        stop = subprocess.Popen(d.supervisorctl_argv(*args), stdout=subprocess.PIPE, text=True)
        try:
            wait_until(lambda n=before: d.log_text().count("waiting for slow to stop") > n,
                       what="the report", timeout=20)
            assert d.state("slow") == "STOPPING"
            os.kill(pid, signal.SIGKILL)  # the stop's end: the program ignores SIGTERM
            out, _ = stop.communicate(timeout=30)
        finally:
            if stop.poll() is None:
                stop.kill()
                stop.wait()
        assert "slow: stopped" in out.splitlines()
    assert "quick: stopped" in out.splitlines()  # stopped by `stop all`, at once
    assert "waiting for quick to stop" not in d.log_text()


def test_reread_update(daemon) -> None:
    """reread and update touch only changed groups, in supervisorctl's words."""
    d = ready(daemon)
    programs = textwrap.dedent(PROGRAMS).replace("[program:idle]\ncommand=sleep 300", "[program:idle]\ncommand=sleep 301")
    d.write(programs + "\n[program:extra]\ncommand=sleep 300\nstartsecs=0\n")
    reread = ctl(d, "reread")
    assert reread.stdout.splitlines() == ["extra: available", "idle: changed"]
    update = ctl(d, "update")
    assert "extra: added process group" in update.stdout
    assert "idle: updated process group" in update.stdout
    d.wait_state("extra", "RUNNING")
    assert ctl(d, "reread").stdout.strip() == "No config updates to processes"


def test_maintail_version_and_shutdown(daemon) -> None:
    """maintail shows the daemon log; version is Supervisor's; shutdown stops the daemon."""
    d = ready(daemon)
    assert "spawned: 'web'" in ctl(d, "maintail").stdout
    assert ctl(d, "version").stdout.strip() == "4.3.0"
    shut = ctl(d, "shutdown")
    assert shut.stdout.strip() == "Shut down"
    wait_until(lambda: d.proc.poll() is not None, what="daemon exit", timeout=30)
    assert d.proc.returncode == 0
    down = ctl(d, "status")
    assert down.returncode == 4
    assert "no such file" in down.stdout


def test_supervisors_own_issue_638_fixture(tmp_path: Path) -> None:
    """Supervisor's end-to-end test_issue_638, its fixture run by procward: non-UTF-8 output shows as
    ``Undecodable: b'\\x88\\n'`` and, at loglevel=debug, each child exit as supervisord's line
    ``received SIGCHLD indicating a child quit`` (tools wait for it), on the daemon's stdout."""
    fixture = importlib.resources.files("supervisor.tests") / "fixtures" / "issue-638.conf"
    conf = tmp_path / "issue-638.conf"
    conf.write_text(fixture.read_text().replace("/tmp/issue-638", str(tmp_path / "issue-638")))
    proc = subprocess.Popen([sys.executable, "-m", "procward", "-c", str(conf)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    assert proc.stdout is not None
    seen = b""
    with proc.stdout, selectors.DefaultSelector() as selector:
        try:
            wanted = [re.escape(rb"Undecodable: b'\x88\n'"), rb"received SIGCH?LD indicating a child quit"]
            selector.register(proc.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + 30
            while wanted and time.monotonic() < deadline:
                if selector.select(timeout=0.5):
                    seen += os.read(proc.stdout.fileno(), 65536)
                while wanted and (found := re.search(wanted[0], seen)):
                    seen = seen[found.end():]
                    wanted.pop(0)
            assert not wanted, (wanted, seen[-2000:])
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
