"""The daemon's own side of sd_notify, for a ``Type=notify`` unit (``procward service install``).

systemd names its socket in NOTIFY_SOCKET: procward says ``READY=1`` once its sockets accept connections
and its autostart programs are started, ``RELOADING=1`` on a reload (SIGHUP) and ``READY=1`` after it,
``STOPPING=1`` on shutdown, and ``WATCHDOG=1`` every half of WATCHDOG_USEC from the event loop (a stuck
loop misses it and systemd acts). The variables are taken out of the environment at once: the programs
must not talk to procward's systemd (a ``notify = true`` program gets its own socket from procward).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Messages to systemd; every method is a no-op when procward was not started by it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        address = os.environ.pop("NOTIFY_SOCKET", "")
        watchdog_usec = os.environ.pop("WATCHDOG_USEC", "")
        watchdog_pid = os.environ.pop("WATCHDOG_PID", "")
        self._address = ("\0" + address[1:]) if address.startswith("@") else address
        self._sock: socket.socket | None = None
        if self._address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._watchdog: asyncio.TimerHandle | None = None
        self._every = 0.0
        if watchdog_usec.isdigit() and int(watchdog_usec) > 0 and watchdog_pid in ("", str(os.getpid())):
            self._every = int(watchdog_usec) / 2e6

    def send(self, message: str) -> None:
        """One datagram (``KEY=VALUE`` lines); a failure is logged, never raised."""
        if self._sock is None:
            return
        try:
            self._sock.sendto(message.encode(), self._address)
        except OSError as exc:
            log.warning("sd_notify to %s failed: %s", self._address.lstrip("\0"), exc.strerror)

    def ready(self) -> None:
        """Serving: sockets listen, autostart programs started."""
        self.send(f"READY=1\nSTATUS=running\nMAINPID={os.getpid()}")
        if self._every and self._watchdog is None:
            self._beat()

    def reloading(self) -> None:
        """A reload (SIGHUP) began; ``ready`` follows."""
        self.send(f"RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC={time_monotonic_usec()}")

    def stopping(self) -> None:
        """Shutdown began."""
        self.send("STOPPING=1\nSTATUS=stopping")

    def _beat(self) -> None:
        self.send("WATCHDOG=1")
        self._watchdog = self._loop.call_later(self._every, self._beat)

    def close(self) -> None:
        """Stop the watchdog and close the socket."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None


def time_monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds (what RELOADING=1 carries for Type=notify-reload)."""
    return int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6)
