"""Test support: a real procward daemon on a unix socket, an XML-RPC client for it, bounded waits."""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path
from typing import Any


def wait_until(check: Callable[[], Any], *, what: str, timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``check`` until it returns a truthy value; fail saying what was awaited and last seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except (OSError, xmlrpc.client.Fault, http.client.HTTPException) as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout}s (last seen: {last!r})")
        time.sleep(interval)


def free_port() -> int:
    """A loopback TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: str, auth: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.path = path
        self.auth = auth

    def send_headers(self, connection: http.client.HTTPConnection, headers: Any) -> None:
        super().send_headers(connection, headers)
        if self.auth:
            token = base64.b64encode(":".join(self.auth).encode()).decode()
            connection.putheader("Authorization", f"Basic {token}")

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        connection = UnixHTTPConnection(self.path)
        self._connection = host, connection  # so close() closes it
        return connection

    def single_request(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().single_request(*args, **kwargs)
        finally:
            self.close()  # one connection per call: nothing left open between test steps


def rpc_client(sock: str, auth: tuple[str, str] | None = None) -> Any:
    """An xmlrpc.client proxy talking to the daemon's unix socket (with Basic credentials if given)."""
    return xmlrpc.client.ServerProxy("http://localhost", transport=UnixTransport(sock, auth))


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def open_fds(pid: int) -> dict[int, str]:
    """Each open descriptor of ``pid`` and what it points to (``socket:[N]``, ``pipe:[N]``, a path); one
    closed between the listing and its readlink (a client connection) is left out."""
    found = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):
            found[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
    return found


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Daemon:
    """``python -m procward -n -c CONF`` in a temp dir, with an RPC proxy on its socket."""

    HEADER = """\
        [supervisord]
        logfile=%(here)s/main.log
        pidfile=%(here)s/procward.pid
        childlogdir=%(here)s
        nodaemon=true
        {supervisord_extra}

        [unix_http_server]
        file=%(here)s/procward.sock
        {server_extra}

        [supervisorctl]
        serverurl=unix://%(here)s/procward.sock
        {ctl_extra}

        [rpcinterface:supervisor]
        supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
        """

    def __init__(self, tmp: Path, programs: str, *, supervisord_extra: str = "", server_extra: str = "",
                 ctl_extra: str = "", auth: tuple[str, str] | None = None) -> None:
        """``auth`` adds username/password to [unix_http_server] and makes ``rpc()`` send them."""
        self.auth = auth
        if auth:
            server_extra += f"\nusername={auth[0]}\npassword={auth[1]}"
        self.dir = tmp
        self.conf = tmp / "supervisord.conf"
        self.sock = str(tmp / "procward.sock")
        self.mainlog = tmp / "main.log"
        self.write(programs, supervisord_extra=supervisord_extra, server_extra=server_extra,
                   ctl_extra=ctl_extra)
        self.proc: subprocess.Popen[bytes] | None = None

    def write(self, programs: str, **extra: str) -> None:
        header = textwrap.dedent(self.HEADER).format(
            supervisord_extra=extra.get("supervisord_extra", ""), server_extra=extra.get("server_extra", ""),
            ctl_extra=extra.get("ctl_extra", ""))
        self.conf.write_text(header + "\n" + textwrap.dedent(programs))

    def start(self) -> Daemon:
        with open(self.dir / "stderr.txt", "wb") as err:
            # Its own session: a daemon that signalled its own process group by mistake must not reach pytest.
            self.proc = subprocess.Popen([sys.executable, "-m", "procward", "-n", "-c", str(self.conf)],
                                         stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        wait_until(lambda: self.rpc().supervisor.getState()["statename"] == "RUNNING",
                   what="daemon answering on its socket", timeout=15)
        return self

    def rpc(self) -> Any:
        return rpc_client(self.sock, self.auth)

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``procward ctl -c CONF ARGS``, run to completion, its output as text."""
        return subprocess.run([sys.executable, "-m", "procward", "ctl", "-c", str(self.conf), *args],
                              capture_output=True, text=True, timeout=120, check=False)

    def supervisorctl_argv(self, *args: str) -> list[str]:
        """The command line of the real ``supervisorctl -c CONF ARGS`` (Supervisor 4.3's, from PyPI)."""
        return [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.conf), *args]

    def supervisorctl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The real ``supervisorctl -c CONF ARGS``, run to its end, its output as text."""
        return subprocess.run(self.supervisorctl_argv(*args), capture_output=True, text=True, timeout=timeout,
                              check=False)

    def log_text(self) -> str:
        return self.mainlog.read_text(errors="replace") if self.mainlog.exists() else ""

    def wait_log(self, text: str, timeout: float = 10.0) -> None:
        wait_until(lambda: text in self.log_text(), what=f"log line {text!r}", timeout=timeout)

    def state(self, name: str) -> str:
        return str(self.rpc().supervisor.getProcessInfo(name)["statename"])

    def wait_state(self, name: str, state: str, timeout: float = 10.0) -> dict[str, Any]:
        return wait_until(lambda: (i := self.rpc().supervisor.getProcessInfo(name))["statename"] == state and i,
                          what=f"{name} in {state}", timeout=timeout)

    def stop(self) -> int:
        """SIGTERM, bounded wait, and check that no child of the daemon is left."""
        if self.proc is None:
            return 0
        pid = self.proc.pid
        kids = children_of(pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("daemon did not exit within 30s of SIGTERM") from None
        finally:
            self.proc = None
        left = [k for k in kids if pid_alive(k)]
        for k in left:
            os.kill(k, signal.SIGKILL)
        assert not left, f"processes left behind after shutdown: {left}"
        return code
