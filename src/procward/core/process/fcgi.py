"""The listening socket of an [fcgi-program:x], shared by its processes as their fd 0 (Supervisor's model).

Created at the first spawn of any process of the group and kept until the group is removed, so a
restarting process never leaves the port unbound while others still serve.
"""

from __future__ import annotations

import contextlib
import os
import socket

from procward.config.model import FcgiSocketConfig, SocketKind
from procward.config.sockets import parse
from procward.core.heldsockets import close_listening, open_listening
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
        config = parse(self.config.url, "fcgi", backlog=self.config.backlog or 0, mode=self.config.mode,
                       owner=self.config.owner)
        if config.kind == SocketKind.UNIX:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(config.path)  # Supervisor's habit: whatever an earlier run left there is replaced
        return open_listening(config)

    def close(self) -> None:
        """Close the socket (the group is removed); a unix socket file is removed too."""
        if self._sock is None:
            return
        close_listening(self._sock)
        self._sock = None
