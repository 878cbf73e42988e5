"""Listening sockets of the daemon's HTTP servers, opened before the daemon says it has started.

supervisord binds its sockets before it daemonizes and writes "supervisord started with pid N", and
tools wait for that line and connect at once: procward binds here, synchronously, at the same point.
Binding first also means a second daemon started on the same socket fails before it touches the pidfile
or anything the first daemon owns. The sockets stay open across a restart (SIGHUP) while their section
is unchanged, so clients are not refused during a reload.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from collections.abc import Callable

from procward.config.model import HttpServerConfig
from procward.errors import ProcwardError

BACKLOG = 1024


class BindError(ProcwardError):
    """A configured socket cannot be opened; the message names the section, the address and why."""


def _where(server: HttpServerConfig) -> str:
    option = "file" if server.is_unix else "port"
    prefix = f"{server.where}: " if server.where else ""
    return f"{prefix}[{server.section}] {option}: "


def _address(server: HttpServerConfig) -> str:
    return server.file if server.file is not None else f"{server.host or '*'}:{server.port}"


def bind(server: HttpServerConfig) -> socket.socket:
    """A listening socket for one server section; BindError with a one-line reason."""
    try:
        return _bind_unix(server) if server.file is not None else _bind_tcp(server)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.ENOENT and server.file is not None:
            reason += f" (the directory {os.path.dirname(server.file)} does not exist)"
        raise BindError(f"{_where(server)}cannot listen on {_address(server)}: {reason}") from None


def _bind_unix(server: HttpServerConfig) -> socket.socket:
    path = server.file
    assert path is not None
    if os.path.exists(path) or os.path.islink(path):
        _remove_stale(server, path)
    def setup(sock: socket.socket) -> None:
        sock.bind(path)
        os.chmod(path, server.chmod)
        if server.chown is not None:
            os.chown(path, *server.chown)

    return _listening(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM), setup)


def _listening(sock: socket.socket, setup: Callable[[socket.socket], None]) -> socket.socket:
    """``sock`` set up and listening, non-blocking; closed again when any step fails."""
    try:
        setup(sock)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _remove_stale(server: HttpServerConfig, path: str) -> None:
    """A socket file nobody answers on is a leftover (supervisord removes it too); one that answers is not."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)
    else:
        raise BindError(f"{_where(server)}another daemon is already listening on {path}; shut it down "
                        "first, or give this one another socket file")
    finally:
        probe.close()


def _bind_tcp(server: HttpServerConfig) -> socket.socket:
    host = server.host or None
    infos = socket.getaddrinfo(host, server.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]

    def setup(sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)

    return _listening(socket.socket(family, kind, proto), setup)


class Listeners:
    """The open listening sockets, one per server section, reconciled with each configuration."""

    def __init__(self) -> None:
        self._open: dict[HttpServerConfig, socket.socket] = {}
        self._inherited: dict[str, int] = {}  # key -> fd, from the daemon before a reexec

    def handover(self) -> dict[str, int]:
        """The listening sockets' fds by server, made inheritable (a reexec): clients that connect
        during the exec wait in the backlog and are answered by the next daemon."""
        fds = {}
        for server, sock in self._open.items():
            sock.set_inheritable(True)
            fds[_key(server)] = sock.fileno()
        return fds

    def adopt(self, fds: dict[str, int]) -> None:
        """Sockets the previous daemon listened on: bind_all takes them instead of binding again."""
        self._inherited = dict(fds)

    def bind_all(self, servers: tuple[HttpServerConfig, ...]) -> list[str]:
        """Open what ``servers`` adds, close what it drops, keep what is unchanged.

        At the first start any failure is raised (nothing is left open). Later (a restart), a server
        that cannot be opened is skipped and its error returned, so the daemon keeps serving the rest.
        """
        first = not self._open
        wanted = set(servers)
        for server in [s for s in self._open if s not in wanted]:
            self._close(server)
        errors = []
        for server in servers:
            if server in self._open:
                continue
            fd = self._inherited.pop(_key(server), None)
            if fd is not None:
                self._open[server] = socket.socket(fileno=fd)
                self._open[server].set_inheritable(False)
                continue
            try:
                self._open[server] = bind(server)
            except BindError as exc:
                if first:
                    self.close_all()
                    raise
                errors.append(str(exc))
        return errors

    def sockets(self) -> list[tuple[HttpServerConfig, socket.socket]]:
        """Each open server section with its socket."""
        return list(self._open.items())

    def _close(self, server: HttpServerConfig) -> None:
        self._open.pop(server).close()
        if server.file is not None:
            with contextlib.suppress(OSError):
                os.unlink(server.file)

    def close_all(self) -> None:
        """Close every socket and remove the unix socket files (shutdown)."""
        for server in list(self._open):
            self._close(server)


def _key(server: HttpServerConfig) -> str:
    """What a socket is handed over under: the section and its address."""
    return f"{server.section} {server.file or f'{server.host}:{server.port}'}"
