"""The process state machine against real children, read through the real XML-RPC socket."""

from __future__ import annotations

import itertools
import os
import re
import signal
import sys
import time
import xmlrpc.client
from pathlib import Path

import pytest
from support import children_of, pid_alive, wait_until

PY = sys.executable


def test_startsecs_zero_is_running_then_exited(daemon) -> None:
    """startsecs=0 enters RUNNING at once; a later exit is EXITED, never a stale RUNNING."""
    d = daemon(f"""
        [program:once]
        command={PY} -c "import sys; sys.stdin.readline()"
        startsecs=0
        autorestart=false
        """)
    info = d.wait_state("once", "RUNNING")
    d.rpc().supervisor.sendProcessStdin("once", "go\n")
    info = d.wait_state("once", "EXITED")
    assert info["exitstatus"] == 0
    assert info["pid"] == 0
    d.wait_log("exited: once (exit status 0; expected)")


def test_backoff_then_fatal_with_growing_delay(daemon) -> None:
    """A program that dies before startsecs goes BACKOFF, retries after 1 s, then 2 s, then FATAL."""
    d = daemon("""
        [program:crash]
        command=sh -c "exit 3"
        startsecs=5
        startretries=2
        """)
    info = d.wait_state("crash", "FATAL", timeout=15)
    assert info["spawnerr"] == "Exited too quickly (process log may have details)"
    log = d.log_text()
    assert log.count("spawned: 'crash'") == 3
    assert "gave up: crash entered FATAL state, too many start retries too quickly" in log
    stamps = [line[:23] for line in log.splitlines() if "spawned: 'crash'" in line]
    import datetime as dt
    times = [dt.datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f") for s in stamps]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert 0.9 <= gaps[0] < 1.9, gaps
    assert 1.9 <= gaps[1] < 2.9, gaps


def test_spawn_errors_are_recorded(daemon, tmp_path: Path) -> None:
    """Missing command, non-executable file and bad directory end FATAL with the reason in spawnerr."""
    script = tmp_path / "noexec.sh"
    script.write_text("#!/bin/sh\n")
    d = daemon(f"""
        [program:missing]
        command=/nonexistent/prog
        startretries=0
        [program:noexec]
        command={script}
        startretries=0
        [program:baddir]
        command=sleep 10
        directory=/nonexistent/dir
        startretries=0
        """)
    assert d.wait_state("missing", "FATAL")["spawnerr"] == "can't find command '/nonexistent/prog'"
    assert d.wait_state("noexec", "FATAL")["spawnerr"] == f"command at '{script}' is not executable"
    assert "couldn't chdir to /nonexistent/dir" in d.wait_state("baddir", "FATAL")["spawnerr"]
    with pytest.raises(xmlrpc.client.Fault) as info:
        d.rpc().supervisor.startProcess("missing")
    assert info.value.faultCode == 20  # NO_FILE
    with pytest.raises(xmlrpc.client.Fault) as info:
        d.rpc().supervisor.startProcess("noexec")
    assert info.value.faultCode == 21  # NOT_EXECUTABLE
    assert d.rpc().supervisor.getState()["statename"] == "RUNNING"


def test_autorestart_and_exitcodes(daemon, tmp_path: Path) -> None:
    """autorestart=unexpected restarts a bad exit code but not an expected one."""
    flag = tmp_path / "flag"
    d = daemon(f"""
        [program:w]
        command={PY} -c "import os,sys,time; time.sleep(0.3); sys.exit(2 if os.path.exists('{flag}') else 5)"
        startsecs=0
        exitcodes=2
        """)
    first = d.wait_state("w", "RUNNING")["pid"]
    wait_until(lambda: d.rpc().supervisor.getProcessInfo("w")["pid"] not in (0, first), what="restart")
    flag.write_text("x")
    info = d.wait_state("w", "EXITED")
    assert info["exitstatus"] == 2
    d.wait_log("exited: w (exit status 2; expected)")
    assert "exited: w (exit status 5; not expected)" in d.log_text()


def test_stop_escalates_to_sigkill(daemon) -> None:
    """A program that ignores the stop signal is SIGKILLed after stopwaitsecs."""
    d = daemon(f"""
        [program:stubborn]
        command={PY} -c "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
        startsecs=0
        stopwaitsecs=1
        """)
    d.wait_state("stubborn", "RUNNING")
    wait_until(lambda: "ready" in d.rpc().supervisor.readProcessStdoutLog("stubborn", 0, 0), what="ready")
    started = time.monotonic()
    assert d.rpc().supervisor.stopProcess("stubborn") is True
    assert 0.9 < time.monotonic() - started < 5
    d.wait_log("killing 'stubborn'")
    assert "stopped: stubborn (terminated by SIGKILL)" in d.log_text()


def test_stopasgroup_kills_the_process_group(daemon, tmp_path: Path) -> None:
    """stopasgroup signals the whole process group, so a shell's children die too."""
    pidfile = tmp_path / "child.pid"
    d = daemon(f"""
        [program:tree]
        command=sh -c "sleep 300 & echo $! > {pidfile}; wait"
        startsecs=0
        stopasgroup=true
        """)
    d.wait_state("tree", "RUNNING")
    child = int(wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), what="child pid"))
    d.rpc().supervisor.stopProcess("tree")
    wait_until(lambda: not pid_alive(child), what="grandchild gone")


def test_child_environment(daemon) -> None:
    """Children see SUPERVISOR_* variables, [supervisord] environment, and their own (which wins)."""
    d = daemon(f"""
        [program:env]
        command={PY} -c "import os; print(*[k+'='+os.environ.get(k,'') for k in ('SUPERVISOR_ENABLED','SUPERVISOR_PROCESS_NAME','SUPERVISOR_GROUP_NAME','SUPERVISOR_SERVER_URL','A','B')])"
        environment=B="own, value"
        startsecs=0
        autorestart=false
        """, supervisord_extra='environment=A="global",B="global"')
    d.wait_state("env", "EXITED")
    out = d.rpc().supervisor.readProcessStdoutLog("env", 0, 0)
    assert "SUPERVISOR_ENABLED=1 SUPERVISOR_PROCESS_NAME=env SUPERVISOR_GROUP_NAME=env" in out
    assert f"SUPERVISOR_SERVER_URL=unix://{d.sock}" in out
    assert "A=global B=own, value" in out


def test_priority_order_start_and_reverse_stop(daemon) -> None:
    """Lower priority starts first; shutdown stops in reverse."""
    d = daemon("""
        [program:late]
        command=sleep 100
        priority=900
        startsecs=0
        [program:early]
        command=sleep 100
        priority=100
        startsecs=0
        """)
    d.wait_state("late", "RUNNING")
    log = d.log_text()
    assert log.index("spawned: 'early'") < log.index("spawned: 'late'")
    assert d.stop() == 0
    log = d.log_text()
    assert log.index("stopped: late") < log.index("stopped: early")


def test_log_rotation_loses_no_line(daemon, tmp_path: Path) -> None:
    """Rotating at maxbytes keeps every line across the current file and its backups, none over maxbytes."""
    out = tmp_path / "spew.log"
    d = daemon(f"""
        [program:spew]
        command={PY} -c "import sys; [sys.stdout.write('line %%06d\\n' %% i) for i in range(20000)]"
        stdout_logfile={out}
        stdout_logfile_maxbytes=64KB
        stdout_logfile_backups=10
        startsecs=0
        autorestart=false
        """)
    d.wait_state("spew", "EXITED")
    files = [out] + [Path(f"{out}.{n}") for n in range(1, 11)]
    text = "".join(f.read_text() for f in reversed(files) if f.exists())
    lines = text.splitlines()
    assert lines == [f"line {i:06d}" for i in range(20000)]
    assert Path(f"{out}.1").exists()
    # No file exceeds maxbytes: a block crossing the limit is split at its last newline before it.
    for f in files:
        if f.exists():
            assert f.stat().st_size <= 64 * 1024, (f.name, f.stat().st_size)
            assert f.read_bytes().endswith(b"\n"), f.name


WRITER = ("import os\n"
          "for i in range(4000):\n"
          "    block = bytes([i % 251]) * (1 + i * 37 % 9000)\n"
          "    while block: block = block[os.write(1, block):]\n")


def _written_by_writer() -> bytes:
    return b"".join(bytes([i % 251]) * (1 + i * 37 % 9000) for i in range(4000))


def test_logs_are_byte_exact_across_rotation_with_and_without_events(daemon, tmp_path: Path) -> None:
    """A writer fast enough to grow its pipe, 18 MB in blocks of 1..9000 bytes: the log and its 1 MB
    backups hold exactly what it wrote, with and without PROCESS_LOG events taking the bytes too."""
    (tmp_path / "writer.py").write_text(WRITER)
    common = f"""
        command={PY} %(here)s/writer.py
        stdout_logfile_maxbytes=1MB
        stdout_logfile_backups=40
        startsecs=0
        autorestart=false
        """
    d = daemon(f"""
        [program:plain]
        stdout_logfile=%(here)s/plain.log
        {common}
        [program:events]
        stdout_logfile=%(here)s/events.log
        stdout_events_enabled=true
        {common}
        """)
    d.wait_state("plain", "EXITED")
    d.wait_state("events", "EXITED")
    expected = _written_by_writer()
    for name in ("plain", "events"):
        out = tmp_path / f"{name}.log"
        files = [out] + [Path(f"{out}.{n}") for n in range(1, 41)]
        assert b"".join(f.read_bytes() for f in reversed(files) if f.exists()) == expected, name
        assert Path(f"{out}.1").exists()
        assert all(f.stat().st_size <= 1024 * 1024 for f in files if f.exists()), name


def test_sigterm_stops_everything_and_exits_zero(daemon) -> None:
    """SIGTERM stops all programs and the daemon exits 0 with no child left (checked by stop())."""
    d = daemon("""
        [program:a]
        command=sleep 100
        startsecs=0
        numprocs=3
        process_name=a%(process_num)s
        """)
    d.wait_state("a:a2", "RUNNING")
    assert d.stop() == 0
    assert "received SIGTERM indicating exit request" in d.log_text()


def test_orphans_are_reaped(daemon, tmp_path: Path) -> None:
    """A double-forked grandchild that exits is reaped by procward (child subreaper): no zombie."""
    pidfile = tmp_path / "orphan.pid"
    d = daemon(f"""
        [program:forker]
        command={PY} -c "import os,time; pid=os.fork(); (os.setsid(), os.fork() or (open('{pidfile}','w').write(str(os.getpid())), time.sleep(0.5), os._exit(0)), os._exit(0)) if pid==0 else (os.waitpid(pid,0), time.sleep(60))"
        startsecs=0
        """)
    d.wait_state("forker", "RUNNING")
    orphan = int(wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), what="orphan pid"))
    wait_until(lambda: not os.path.exists(f"/proc/{orphan}"), what="orphan reaped (no zombie)")


def test_sighup_reloads_configuration(daemon) -> None:
    """SIGHUP re-reads the file: a new program runs, a removed one is gone."""
    d = daemon("""
        [program:old]
        command=sleep 100
        startsecs=0
        """)
    d.wait_state("old", "RUNNING")
    d.write("""
        [program:new]
        command=sleep 100
        startsecs=0
        """)
    d.proc.send_signal(signal.SIGHUP)
    d.wait_state("new", "RUNNING")
    names = [i["name"] for i in d.rpc().supervisor.getAllProcessInfo()]
    assert names == ["new"]


def test_sighup_with_broken_config_keeps_running(daemon) -> None:
    """A reload with a config error is refused and logged; the programs keep running."""
    d = daemon("""
        [program:keep]
        command=sleep 100
        startsecs=0
        """)
    pid = d.wait_state("keep", "RUNNING")["pid"]
    d.conf.write_text(d.conf.read_text() + "\n[program:broken]\nstartsecs=x\n")
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log("restart refused")
    assert d.rpc().supervisor.getProcessInfo("keep")["pid"] == pid


def test_sigusr2_reopens_logs(daemon, tmp_path: Path) -> None:
    """After an external rotator moves the file, SIGUSR2 makes procward write a new one."""
    out = tmp_path / "talk.log"
    d = daemon(f"""
        [program:talk]
        command={PY} -u -c "import sys,time; [print(i, flush=True) or time.sleep(0.05) for i in range(100000)]"
        stdout_logfile={out}
        startsecs=0
        """)
    wait_until(lambda: out.exists() and out.stat().st_size > 0, what="first output")
    os.rename(out, f"{out}.moved")
    d.proc.send_signal(signal.SIGUSR2)
    wait_until(lambda: out.exists() and out.stat().st_size > 0, what="new log file after SIGUSR2")


def test_reload_config_diff(daemon) -> None:
    """reloadConfig reports added/changed/removed groups; update-style add/remove applies them."""
    d = daemon("""
        [program:same]
        command=sleep 100
        [program:edit]
        command=sleep 100
        [program:gone]
        command=sleep 100
        """)
    d.write("""
        [program:same]
        command=sleep 100
        [program:edit]
        command=sleep 200
        [program:fresh]
        command=sleep 100
        startsecs=0
        """)
    rpc = d.rpc().supervisor
    assert rpc.reloadConfig() == [[["fresh"], ["edit"], ["gone"]]]
    assert rpc.addProcessGroup("fresh") is True
    d.wait_state("fresh", "RUNNING")
    with pytest.raises(xmlrpc.client.Fault) as info:
        rpc.removeProcessGroup("gone")
    assert info.value.faultCode == 91  # STILL_RUNNING
    rpc.stopProcessGroup("gone")
    assert rpc.removeProcessGroup("gone") is True


def test_no_child_left_after_daemon_exit(daemon) -> None:
    """The teardown check itself: the daemon's children are gone after it exits."""
    d = daemon("""
        [program:s]
        command=sleep 100
        startsecs=0
        """)
    d.wait_state("s", "RUNNING")
    kids = children_of(d.proc.pid)
    assert kids
    d.stop()
    assert not [k for k in kids if pid_alive(k)]


def test_rotation_never_cuts_a_line_that_fits(daemon, tmp_path: Path) -> None:
    """One line per write and a small maxbytes: a line that would cross the limit starts the next file
    whole; no backup ends mid-line and none exceeds maxbytes."""
    d = daemon("""
        [program:lines]
        command=sh -c 'i=0; while true; do i=$((i+1)); echo "line $i"; sleep 0.01; done'
        startsecs=0
        stdout_logfile=%(here)s/lines.log
        stdout_logfile_maxbytes=100
        stdout_logfile_backups=3
        """)
    d.wait_state("lines", "RUNNING")
    wait_until(lambda: (tmp_path / "lines.log.3").exists(), what="three rotations", timeout=30)
    for n in (1, 2, 3):
        backup = (tmp_path / f"lines.log.{n}").read_bytes()
        assert len(backup) <= 100
        assert all(re.fullmatch(rb"line \d+", line) for line in backup.splitlines()), backup
        assert backup.endswith(b"\n")
