"""[fcgi-program:x]: one listening socket made by the daemon, shared by every process as its fd 0."""

from __future__ import annotations

import socket
import stat
import sys
import xmlrpc.client
from pathlib import Path

import pytest
from support import wait_until

SERVER = (f"{sys.executable} -c \"import os, socket; s = socket.socket(fileno=0); "
          "[(c := s.accept()[0]).sendall(str(os.getpid()).encode()) or c.close() for _ in iter(int, 1)]\"")


def ask(connect) -> int:
    with connect() as s:
        s.settimeout(5)
        return int(s.recv(64))


def test_tcp_socket_is_shared_by_the_processes(daemon) -> None:
    """numprocs=2 accept on the same TCP port; the socket outlives a restart of one of them."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    d = daemon(f"""
        [fcgi-program:web]
        socket=tcp://127.0.0.1:{port}
        command={SERVER}
        process_name=%(program_name)s_%(process_num)s
        numprocs=2
        startsecs=0
        """)
    pids = {d.wait_state(f"web:web_{n}", "RUNNING")["pid"] for n in (0, 1)}

    def connect() -> socket.socket:
        return socket.create_connection(("127.0.0.1", port), timeout=5)

    assert ask(connect) in pids
    d.rpc().supervisor.stopProcess("web:web_0")
    assert ask(connect) in pids  # still listening: the other process serves
    # stdin of an fcgi process is its socket, not a pipe: NO_FILE, as Supervisor answers
    with pytest.raises(xmlrpc.client.Fault) as fault:
        d.rpc().supervisor.sendProcessStdin("web:web_1", "x")
    assert fault.value.faultCode == 20


def test_unix_socket_mode_and_clean_up(daemon, tmp_path: Path) -> None:
    """unix:// sockets get socket_mode and disappear with the group."""
    path = tmp_path / "web.sock"
    d = daemon(f"""
        [fcgi-program:web]
        socket=unix://{path}
        socket_mode=0660
        command={SERVER}
        startsecs=0
        """)
    pid = d.wait_state("web", "RUNNING")["pid"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o660

    def connect() -> socket.socket:
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(path))
        return s

    assert ask(connect) == pid
    d.rpc().supervisor.stopProcess("web")
    d.rpc().supervisor.removeProcessGroup("web")
    wait_until(lambda: not path.exists(), what="socket file removed with the group")
