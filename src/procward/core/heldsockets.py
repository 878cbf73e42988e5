"""Listening sockets procward holds for programs (``sockets =``): the socket outlives the process.

Bound once, by address, before the program first starts (at the daemon's start that is before it drops
privileges, so a program running as a user can be given port 80), and kept while the program restarts,
crashes, backs off or is stopped: connections that arrive meanwhile wait in the backlog for the next
process instead of being refused. A socket is closed only when no configured program asks for it any more
(``update``, ``remove``) or the daemon exits; a reexec hands it to the next daemon like its own sockets.
Keyed by the address as written, so an ``update`` that changes a program's command keeps its socket.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import stat
from collections.abc import Iterable

from procward.config.model import HeldSocketConfig, ProcessConfig, SocketKind
from procward.core.spawn import SpawnError

log = logging.getLogger(__name__)


class HeldSockets:
    """The held sockets by address, with why an address could not be bound."""

    def __init__(self) -> None:
        self._held: dict[str, socket.socket] = {}
        self._errors: dict[str, str] = {}

    def bind(self, wanted: Iterable[HeldSocketConfig]) -> list[str]:
        """Bind every wanted socket not held yet; one line per socket that could not be bound (it is tried
        again at its program's next start). A held one takes a changed backlog or mode."""
        problems = []
        for config in wanted:
            sock = self._held.get(config.url)
            try:
                if sock is not None:
                    _apply(sock, config)
                    continue
                self._held[config.url] = open_listening(config)
                self._errors.pop(config.url, None)
                log.info("sockets: holding %s=%s", config.name, config.url)
            except OSError as exc:
                self._errors[config.url] = _reason(exc)
                problems.append(f"sockets: cannot bind {config.name}={config.url}: {self._errors[config.url]}")
        return problems

    def fds(self, config: ProcessConfig) -> list[int]:
        """The descriptors of ``config``'s sockets in its order, bound now if they were not; SpawnError
        names the first that cannot be (the process does not start, its spawnerr says why)."""
        for problem in self.bind(config.sockets):
            raise SpawnError(problem)
        return [self._held[sock.url].fileno() for sock in config.sockets]

    def listening(self, sock: HeldSocketConfig) -> bool:
        """Whether procward holds ``sock`` now."""
        return sock.url in self._held

    def error(self, sock: HeldSocketConfig) -> str:
        """Why ``sock`` could not be bound the last time it was tried ('' when it is held)."""
        return "" if sock.url in self._held else self._errors.get(sock.url, "")

    def release_except(self, keep: Iterable[HeldSocketConfig]) -> None:
        """Close every socket no longer asked for (its program left the configuration)."""
        urls = {sock.url for sock in keep}
        for url in [u for u in self._held if u not in urls]:
            log.info("sockets: closing %s (no program asks for it any more)", url)
            close_listening(self._held.pop(url))
        for url in [u for u in self._errors if u not in urls]:
            del self._errors[url]

    def close(self) -> None:
        """Close them all (the daemon exits); unix socket files are removed."""
        self.release_except(())

    def handover(self) -> dict[str, int]:
        """The descriptors by address, inheritable, for the next daemon (a reexec)."""
        for sock in self._held.values():
            os.set_inheritable(sock.fileno(), True)
        return {url: sock.fileno() for url, sock in self._held.items()}

    def adopt(self, fds: dict[str, int]) -> None:
        """Take over the previous daemon's sockets (``handover``'s descriptors)."""
        for url, fd in fds.items():
            os.set_inheritable(fd, False)
            self._held[url] = socket.socket(fileno=fd)


def open_listening(config: HeldSocketConfig) -> socket.socket:
    """A socket bound to ``config``'s address and listening (UDP: bound), made non-inheritable; OSError
    when it cannot be. Also the [fcgi-program] socket's maker (core/process/fcgi.py)."""
    if config.kind == SocketKind.UNIX:
        return _open_unix(config)
    kind = socket.SOCK_DGRAM if config.kind == SocketKind.UDP else socket.SOCK_STREAM
    host = config.host or "0.0.0.0"  # noqa: S104 - tcp://:port means every address, as for fcgi-program
    family, _, _, _, address = socket.getaddrinfo(host, config.port, type=kind, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        _apply(sock, config)
    except OSError:
        sock.close()
        raise
    return sock


def _open_unix(config: HeldSocketConfig) -> socket.socket:
    _remove_stale(config.path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(config.path)
        if config.owner is not None:
            os.chown(config.path, *config.owner)
        _apply(sock, config)
    except OSError:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(config.path)
        raise
    return sock


def _remove_stale(path: str) -> None:
    """Remove a socket file nobody listens on (an earlier run's); one something answers on is in use."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise OSError(errno.EEXIST, f"{path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)
            return
        except OSError:
            return  # bind will say what is wrong
    raise OSError(errno.EADDRINUSE, f"another process listens on {path}")


def _apply(sock: socket.socket, config: HeldSocketConfig) -> None:
    """listen() with the configured backlog (again, when it changed) and the unix file's mode."""
    if config.kind != SocketKind.UDP:
        sock.listen(config.backlog or socket.SOMAXCONN)
    if config.kind == SocketKind.UNIX and config.mode is not None:
        os.chmod(config.path, config.mode)


def close_listening(sock: socket.socket) -> None:
    """Close a socket ``open_listening`` made; a unix socket's file is removed too."""
    path = sock.getsockname() if sock.family == socket.AF_UNIX else None
    sock.close()
    if isinstance(path, str) and path:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _reason(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host ({exc.strerror})"
    if exc.errno == errno.EADDRINUSE and exc.strerror and "listens" not in exc.strerror:
        return "address already in use (another process holds it)"
    if exc.errno == errno.EACCES:
        return f"permission denied ({exc.strerror}; a port below 1024 needs root or CAP_NET_BIND_SERVICE)"
    return exc.strerror or str(exc)

