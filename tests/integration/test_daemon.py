"""Daemon-level behaviour: detaching, pidfile, identifier, AUTO log clean-up, logging to /dev/stdout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from support import Daemon, pid_alive, rpc_client, wait_until


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
    assert not stale.exists() and other.exists()
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
