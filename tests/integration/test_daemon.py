"""Daemon-level behaviour: detaching, pidfile, identifier, AUTO log clean-up, logging to /dev/stdout."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import xmlrpc.client
from pathlib import Path

import pytest
from support import Daemon, children_of, pid_alive, rpc_client, wait_until


def test_daemonizes_writes_pidfile_and_cleans_up(tmp_path: Path) -> None:
    """Without -n procward detaches like supervisord, writes its pidfile, removes it on SIGTERM."""
    d = Daemon(tmp_path, "[program:s]\ncommand=sleep 100\nstartsecs=0\n")
    d.conf.write_text(d.conf.read_text().replace("nodaemon=true", "nodaemon=false"))
    launcher = subprocess.run([sys.executable, "-m", "procward", "-c", str(d.conf)], timeout=30, check=False)
    assert launcher.returncode == 0  # the foreground process returns at once
    pidfile = tmp_path / "procward.pid"
    pid = int(wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), what="pidfile"))
    try:
        wait_until(lambda: rpc_client(d.sock).supervisor.getProcessInfo("s")["statename"] == "RUNNING",
                   what="program running under the detached daemon")
        assert rpc_client(d.sock).supervisor.getPID() == pid
        assert os.getsid(pid) != os.getsid(0)  # a new session: a closing terminal cannot signal it
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not pid_alive(pid), what="daemon exit")
    assert not pidfile.exists()


def test_identifier_and_autolog_cleanup(tmp_path: Path, daemon) -> None:
    """identifier names the daemon; old AUTO logs of that identifier are removed at start (nocleanup=false)."""
    stale = tmp_path / "web-stdout---pw1-abc123.log"
    stale.write_text("old run\n")
    other = tmp_path / "web-stdout---someoneelse-abc123.log"
    other.write_text("keep\n")
    d = daemon("[program:web]\ncommand=sleep 100\nstartsecs=0\n", supervisord_extra="identifier=pw1")
    assert d.rpc().supervisor.getIdentification() == "pw1"
    assert not stale.exists()
    assert other.exists()
    info = d.wait_state("web", "RUNNING")
    assert Path(info["stdout_logfile"]).name.startswith("web-stdout---pw1-")


def test_main_log_to_dev_stdout(tmp_path: Path) -> None:
    """logfile=/dev/stdout with maxbytes=0 works (Supervisor issue 1224): lines reach stdout."""
    d = Daemon(tmp_path, "[program:cat]\ncommand=cat\nstartsecs=0\n")
    d.conf.write_text(d.conf.read_text().replace(f"logfile={tmp_path}/main.log", "logfile=/dev/stdout\n"
                                                 "logfile_maxbytes=0").replace("logfile=%(here)s/main.log",
                                                                               "logfile=/dev/stdout\nlogfile_maxbytes=0"))
    out = tmp_path / "out.txt"
    with open(out, "wb") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "procward", "-n", "-c", str(d.conf)], stdout=handle,
                                stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "cat entered RUNNING state" in out.read_text(), what="RUNNING line on stdout")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert "Illegal seek" not in out.read_text()


def test_reading_a_log_that_does_not_exist_is_no_file(daemon) -> None:
    """stdout_logfile=NONE: readProcess*Log answers NO_FILE and tailProcess*Log ['', 0, False], as supervisord;
    supervisorctl tail then says 'no log file'."""
    d = daemon("""
        [program:quiet]
        command=sh -c 'echo line; echo err >&2; exec sleep 300'
        startsecs=0
        stdout_logfile=NONE
        stderr_logfile=NONE
        [program:merged]
        command=sh -c 'echo both; exec sleep 300'
        startsecs=0
        redirect_stderr=true
        """)
    sup = d.rpc().supervisor
    d.wait_state("quiet", "RUNNING")
    for read in (sup.readProcessStdoutLog, sup.readProcessStderrLog, sup.readProcessLog):
        with pytest.raises(xmlrpc.client.Fault) as fault:
            read("quiet", 0, 0)
        assert (fault.value.faultCode, fault.value.faultString) == (20, "NO_FILE")
    assert sup.tailProcessStdoutLog("quiet", 0, 100) == ["", 0, False]
    assert sup.tailProcessStderrLog("quiet", 0, 100) == ["", 0, False]
    assert sup.getProcessInfo("quiet")["stdout_logfile"] == ""
    wait_until(lambda: sup.readProcessStdoutLog("merged", 0, 0) == "both\n", what="merged log")
    with pytest.raises(xmlrpc.client.Fault) as fault:  # a redirected stderr has no log of its own
        sup.readProcessStderrLog("merged", 0, 0)
    assert fault.value.faultCode == 20
    tail = d.supervisorctl("tail", "quiet", timeout=60)
    assert tail.stdout.strip() == "quiet: ERROR (no log file)"


def test_user_option_drops_privileges_of_the_child(daemon) -> None:
    """user=nobody: the program runs with nobody's uid and gid (the daemon runs as root here)."""
    if os.geteuid() != 0:
        pytest.skip("switching users needs root")
    d = daemon("[program:low]\ncommand=sleep 300\nstartsecs=0\nuser=nobody\n")
    pid = d.wait_state("low", "RUNNING")["pid"]
    status = Path(f"/proc/{pid}/status").read_text()
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert set(uid_line.split()[1:]) == {str(pwd.getpwnam("nobody").pw_uid)}


def test_main_log_rotates_with_backups(daemon) -> None:
    """logfile_maxbytes/logfile_backups rotate the daemon's own log into .1 (newest) .. .N."""
    d = daemon("[program:flip]\ncommand=sleep 300\nstartsecs=0\nautostart=false\n",
               supervisord_extra="logfile_maxbytes=2KB\nlogfile_backups=2")
    sup = d.rpc().supervisor
    for _ in range(40):
        sup.startProcess("flip")
        sup.stopProcess("flip")
    backups = sorted(p.name for p in d.dir.glob("main.log.*"))
    assert backups == ["main.log.1", "main.log.2"]
    assert all((d.dir / name).stat().st_size <= 2048 + 200 for name in ["main.log", *backups])


def test_main_log_with_no_backups_is_truncated(daemon) -> None:
    """logfile_backups=0: the main log is emptied when it reaches logfile_maxbytes, as supervisord does (it
    grew without bound before, reopened at every record)."""
    d = daemon("[program:flip]\ncommand=sleep 300\nstartsecs=0\nautostart=false\n",
               supervisord_extra="logfile_maxbytes=2KB\nlogfile_backups=0")
    sup = d.rpc().supervisor
    for _ in range(40):  # ~80 lines of ~80 bytes: three times maxbytes
        sup.startProcess("flip")
        sup.stopProcess("flip")
    assert sorted(p.name for p in d.dir.glob("main.log*")) == ["main.log"]
    text = (d.dir / "main.log").read_text()
    assert len(text.encode()) <= 2048 + 200
    assert "stopped: flip" in text.splitlines()[-1]  # the newest lines are the ones kept


def test_as_pid_1_reaps_orphans_and_stops_programs_on_sigterm(tmp_path: Path) -> None:
    """In a new pid namespace procward is PID 1: orphans are reaped, SIGTERM stops programs gracefully."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for a pid namespace")
    d = Daemon(tmp_path, """
        [program:spawner]
        command=sh -c 'while true; do (sleep 0.05 &); sleep 0.1; done'
        startsecs=0
        [program:polite]
        command=sh -c 'trap "echo got-term; exit 0" TERM; while true; do sleep 0.1; done'
        startsecs=0
        stdout_logfile=%(here)s/polite.log
        """)
    outer = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-m", "procward",
                              "-n", "-c", str(d.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: d.rpc().supervisor.getProcessInfo("polite")["statename"] == "RUNNING",
                   what="programs running under PID 1", timeout=20)
        assert d.rpc().supervisor.getPID() == 1
        init = wait_until(lambda: children_of(outer.pid), what="the namespace's init")[0]
        programs = {d.rpc().supervisor.getProcessInfo(n)["pid"] for n in ("spawner", "polite")}
        seen: set[int] = set()

        def orphans_seen() -> bool:  # short-lived sleeps re-parented to PID 1 (not its programs)
            seen.update(p for p in children_of(init) if p not in programs)
            return len(seen) >= 20

        wait_until(orphans_seen, what="20 orphans re-parented to PID 1", timeout=20)
        # Unreaped, those 20 would all be zombies now; one or two may be caught between exit and reaping.
        assert len([p for p in children_of(init) if not pid_alive(p)]) <= 2
        os.kill(init, signal.SIGTERM)
        assert outer.wait(timeout=30) == 0
        assert "got-term" in (tmp_path / "polite.log").read_text()
    finally:
        if outer.poll() is None:
            outer.kill()
            outer.wait()


def test_debug_loglevel_echoes_output_in_supervisords_words(daemon) -> None:
    """loglevel=debug copies child output into the main log as supervisord does, undecodable bytes as repr."""
    program = "import os; os.write(1, b'hello\\n\\x88\\n'); os.write(2, 'caf\\xc3\\xa9\\n'.encode('latin-1'))"
    d = daemon(f"""
        [program:bytes]
        command={sys.executable} -c "{program}"
        startsecs=0
        autorestart=false
        """, supervisord_extra="loglevel=debug")
    d.wait_log("DEBG 'bytes' stdout output:\nUndecodable: b'hello\\n\\x88\\n'")
    d.wait_log("DEBG 'bytes' stderr output:\ncafé\n")


def test_a_status_asked_right_after_a_kill_tells_of_the_exit(daemon) -> None:
    """A program killed, then its state asked on an open connection: the answer tells of the exit. asyncio
    runs the SIGCHLD's pass a turn of the loop after it reads the signal's byte, and a request read in
    that turn was answered first: RUNNING, with the dead pid. Made certain here by stopping the daemon
    (SIGSTOP) while the program dies and the request arrives: it resumes with both waiting."""
    d = daemon("[program:victim]\ncommand=sleep 300\nstartsecs=0\nautorestart=false\n")
    assert d.proc is not None
    d.wait_state("victim", "RUNNING")
    call = xmlrpc.client.dumps(("victim",), "supervisor.getProcessInfo").encode()
    request = f"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: {len(call)}\r\n\r\n".encode() + call
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(30)
        conn.connect(d.sock)
        for _ in range(5):
            conn.sendall(request)
            pid = _rpc_answer(conn)["pid"]
            os.kill(d.proc.pid, signal.SIGSTOP)
            try:
                os.kill(pid, signal.SIGKILL)
                wait_until(lambda: _zombie_or_gone(pid), interval=0.001, what="the program's exit")  # noqa: B023
                conn.sendall(request)  # read by the daemon when it resumes, beside the SIGCHLD
            finally:
                os.kill(d.proc.pid, signal.SIGCONT)
            info = _rpc_answer(conn)
            assert (info["statename"], info["pid"]) != ("RUNNING", pid)
            d.rpc().supervisor.startProcess("victim")


def _rpc_answer(conn: socket.socket) -> dict[str, object]:
    """One HTTP response read off a keep-alive connection, its XML-RPC struct."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += conn.recv(65536)
    ((info,), _) = xmlrpc.client.loads(body)
    return dict(info)


def _zombie_or_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True
