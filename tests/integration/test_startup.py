"""Start-up as tools expect it: sockets answer once the start line is logged, clear refusals otherwise."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from support import Daemon, free_port, open_fds, rpc_client, wait_until

SLEEPER = "[program:s]\ncommand=sleep 300\nstartsecs=0\n"


def start_line_then_rpc(d: Daemon) -> tuple[str, float]:
    """Start the daemon, wait for its 'started with pid' line, then call at once (no retry)."""
    err = open(d.dir / "stderr.txt", "wb")  # noqa: SIM115 - closed with the process below
    d.proc = subprocess.Popen([sys.executable, "-m", "procward", "-n", "-c", str(d.conf)],
                              stdout=subprocess.DEVNULL, stderr=err)
    err.close()
    wait_until(lambda: "supervisord started with pid" in d.log_text(), what="start line", interval=0.001)
    began = time.monotonic()
    state = rpc_client(d.sock).supervisor.getState()["statename"]
    return state, time.monotonic() - began


def test_rpc_answers_as_soon_as_the_start_line_is_logged(tmp_path: Path) -> None:
    """Tools wait for 'supervisord started with pid N' and connect at once: the socket must accept then."""
    d = Daemon(tmp_path, SLEEPER)
    try:
        state, _ = start_line_then_rpc(d)
        assert state == "RUNNING"
    finally:
        d.stop()


def test_second_daemon_on_a_served_socket_is_refused_in_one_line(tmp_path: Path, daemon) -> None:
    """A second daemon on a socket another daemon serves exits 2 naming the socket; the first is untouched."""
    d = daemon(SLEEPER)
    pid = d.rpc().supervisor.getProcessInfo("s")["pid"]
    other = tmp_path / "other.conf"
    other.write_text(d.conf.read_text().replace("procward.pid", "other.pid"))
    second = subprocess.run([sys.executable, "-m", "procward", "-n", "-c", str(other)], capture_output=True,
                            text=True, timeout=30, check=False)
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert f"another daemon is already listening on {d.sock}" in lines[0]
    assert "[unix_http_server] file" in lines[0]
    assert "other.conf:" in lines[0]
    assert not (tmp_path / "other.pid").exists()
    assert d.rpc().supervisor.getProcessInfo("s")["pid"] == pid
    assert d.rpc().supervisor.getProcessInfo("s")["statename"] == "RUNNING"


def test_second_daemon_with_the_same_pidfile_stops_nothing(tmp_path: Path, daemon) -> None:
    """Without a socket to collide on, the pidfile lock refuses the second daemon before it reads the
    first one's spawn record (which it would take for a killed daemon's leftovers)."""
    d = daemon(SLEEPER)
    pid = d.rpc().supervisor.getProcessInfo("s")["pid"]
    other = tmp_path / "other.conf"
    other.write_text(d.conf.read_text().replace("procward.sock", "other.sock"))
    second = subprocess.run([sys.executable, "-m", "procward", "-n", "-c", str(other)], capture_output=True,
                            text=True, timeout=30, check=False)
    assert second.returncode == 2
    assert second.stderr.strip() == (f"Error: another procward (pid {d.proc.pid}) is running with pidfile "
                                     f"{tmp_path / 'procward.pid'}; stop it first, or give this one another "
                                     "pidfile")
    assert not (tmp_path / "other.sock").exists()
    assert (tmp_path / "procward.pid").read_text().strip() == str(d.proc.pid)
    assert d.rpc().supervisor.getProcessInfo("s")["pid"] == pid
    assert os.kill(pid, 0) is None


def test_stale_socket_file_is_replaced(tmp_path: Path, daemon) -> None:
    """A socket file with nobody listening (a killed daemon's) is replaced, as supervisord does."""
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "procward.sock"))
    stale.close()
    d = daemon(SLEEPER)
    assert d.rpc().supervisor.getState()["statename"] == "RUNNING"


def test_socket_in_a_missing_directory_is_named(tmp_path: Path) -> None:
    """A unix socket whose directory does not exist: exit 2 with one line naming the path and the reason."""
    d = Daemon(tmp_path, SLEEPER)
    d.conf.write_text(d.conf.read_text().replace("file=%(here)s/procward.sock", "file=%(here)s/nodir/p.sock"))
    result = subprocess.run([sys.executable, "-m", "procward", "-n", "-c", str(d.conf)], capture_output=True,
                            text=True, timeout=30, check=False)
    line = d.conf.read_text().splitlines().index("file=%(here)s/nodir/p.sock") + 1
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"Error: {d.conf}:{line}: [unix_http_server] file: cannot listen on {tmp_path}/nodir/p.sock: No such file "
        f"or directory (the directory {tmp_path}/nodir does not exist)")
    assert not (tmp_path / "procward.pid").exists()


def test_tcp_port_in_use_is_named(tmp_path: Path) -> None:
    """A TCP port another program holds: exit 2 with one line naming the address."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        d = Daemon(tmp_path, SLEEPER, supervisord_extra=f"\n[inet_http_server]\nport=127.0.0.1:{port}\n")
        result = subprocess.run([sys.executable, "-m", "procward", "-n", "-c", str(d.conf)], capture_output=True,
                                text=True, timeout=30, check=False)
    finally:
        holder.close()
    assert result.returncode == 2
    assert f"[inet_http_server] port: cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "procward.sock").exists()


def test_too_few_descriptors_for_every_program_is_said_at_start(tmp_path: Path) -> None:
    """A hard open-files limit below what every program needs is one warning at start, with the numbers."""
    import resource
    import subprocess
    import sys

    from support import wait_until

    programs = "".join(f"[program:p{i}]\ncommand=sleep 300\nautostart=false\n" for i in range(100))
    conf = tmp_path / "supervisord.conf"
    conf.write_text(f"[supervisord]\nlogfile={tmp_path}/main.log\npidfile={tmp_path}/pw.pid\nnodaemon=true\nminfds=100\n"
                    f"[unix_http_server]\nfile={tmp_path}/pw.sock\n{programs}")

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (300, 300))

    proc = subprocess.Popen([sys.executable, "-m", "procward", "-n", "-c", str(conf)], preexec_fn=low_limit,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        log = tmp_path / "main.log"
        wait_until(lambda: log.exists() and "open files at once" in log.read_text(), what="the warning")
        assert "100 processes need about 564 open files at once and the limit is 300" in log.read_text()
        assert "about 47 can run" in log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_running_program_holds_three_descriptors_and_its_exit_is_still_seen(daemon) -> None:
    """Its stdin, stdout and stderr pipes (and its log files, none here): the exit comes by SIGCHLD, no
    pidfd is held (5000 programs fit a hard limit of 20000). A kill is then seen and it is restarted."""
    programs = "".join(f"[program:p{i}]\ncommand=sleep 300\nautostart=false\nstartsecs=0\n"
                       "stdout_logfile=NONE\nstderr_logfile=NONE\n" for i in range(20))
    d = daemon(programs)
    rpc = d.rpc().supervisor

    def held() -> tuple[int, int]:  # (pipes, pidfds); client connections come and go, so not counted
        links = open_fds(d.proc.pid).values()
        return sum(link.startswith("pipe:") for link in links), sum("pidfd" in link for link in links)

    before = held()
    for i in range(20):
        rpc.startProcess(f"p{i}", True)
    after = (before[0] + 3 * 20, 0)
    wait_until(lambda: held() == after, what=f"{after} (pipes, pidfds): 3 pipes a program")
    pid = rpc.getProcessInfo("p7")["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: rpc.getProcessInfo("p7")["pid"] not in (0, pid)
               and rpc.getProcessInfo("p7")["statename"] == "RUNNING", what="p7 restarted")
    wait_until(lambda: held() == after, what="the same pipes and no pidfd after the restart")


def test_a_program_gets_only_its_three_descriptors_and_default_signals(daemon, tmp_path: Path) -> None:
    """With or without a directory and a umask, a program holds fds 0-2 and nothing of the daemon's:
    not its HTTP sockets, log files, event listener pipes or file watches; and it ignores no signal
    (SIGPIPE kills, as from a shell). glibc's posix_spawn, tried for its speed, failed this: the child
    kept glibc's internal signals 32 and 33 ignored."""
    (tmp_path / "watched").mkdir()
    probe = "command=sh -c 'grep SigIgn /proc/$$/status; exec ls /proc/self/fd'\nautorestart=false\nstartsecs=0\n"
    d = daemon(f"[program:plain]\n{probe}"
               f"[program:popen]\n{probe}directory={tmp_path}\numask=022\n"
               f"[program:watching]\ncommand=sleep 300\nstartsecs=0\nwatch={tmp_path / 'watched'}\n"
               "[program:limited]\ncommand=sleep 300\nstartsecs=0\nmemory_limit=500MB\n"
               f"[eventlistener:ears]\ncommand={sys.executable} {Path(__file__).parent / 'programs' / 'listener.py'}"
               f" {tmp_path / 'events'}\nevents=PROCESS_STATE\n"
               f"[inet_http_server]\nport=127.0.0.1:{free_port()}\n")
    rpc = d.rpc().supervisor
    for name in ("plain", "popen"):
        d.wait_state(name, "EXITED")
        rpc.startProcess(name, True)  # again, now that the watch, the limit and the listener are up
        d.wait_state(name, "EXITED")
        out = rpc.readProcessStdoutLog(name, 0, 10000).split()
        lines = [line for line in out if line != "SigIgn:"]
        # ls's own directory handle is fd 3
        assert lines[-4:] == ["0", "1", "2", "3"], (name, out)
        assert lines[-5] == "0000000000000000", (name, out)
