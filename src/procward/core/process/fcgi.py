"""The listening socket of an [fcgi-program:x], shared by its processes as their fd 0 (Supervisor's model).

Created at the first spawn of any process of the group and kept until the group is removed, so a
restarting process never leaves the port unbound while others still serve.
"""

from __future__ import annotations

import contextlib
import os
import socket

from procward.config.model import FcgiSocketConfig
from procward.core.spawn import SpawnError


class FcgiSocket:
    """One group's socket, made on first use."""

    def __init__(self, config: FcgiSocketConfig) -> None:
        self.config = config
        self._sock: socket.socket | None = None

    def fileno(self) -> int:
        """The listening descriptor (bound and listening); OSError when it cannot be made."""
        if self._sock is None:
            self._sock = self._make()
        return self._sock.fileno()

    def fd_for_child(self) -> int:
        """The descriptor a spawn gives the child as fd 0; SpawnError when the socket cannot be made."""
        try:
            return self.fileno()
        except OSError as exc:
            raise SpawnError(f"couldn't set up the fcgi socket {self.config.url}: {exc.strerror or exc}") from None

    def _make(self) -> socket.socket:
        url = self.config.url
        backlog = self.config.backlog or socket.SOMAXCONN
        if url.startswith("unix://"):
            path = url[len("unix://"):]
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # a stale socket of an earlier run
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(path)
                if self.config.mode is not None:
                    os.chmod(path, self.config.mode)
                if self.config.owner is not None:
                    os.chown(path, *self.config.owner)
                sock.listen(backlog)
            except OSError:
                sock.close()
                raise
            return sock
        host, _, port = url[len("tcp://"):].rpartition(":")
        sock = socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host.strip("[]") or "0.0.0.0", int(port)))  # noqa: S104 - tcp://:port means all, as in Supervisor
            sock.listen(backlog)
        except OSError:
            sock.close()
            raise
        return sock

    def close(self) -> None:
        """Close the socket (the group is removed); a unix socket file is removed too."""
        if self._sock is None:
            return
        self._sock.close()
        self._sock = None
        if self.config.url.startswith("unix://"):
            with contextlib.suppress(OSError):
                os.unlink(self.config.url[len("unix://"):])
