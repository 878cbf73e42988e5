"""systemd's sd_notify protocol: a datagram socket per ``notify = true`` process, named by NOTIFY_SOCKET.

Programs written for ``Type=notify`` send ``READY=1`` when they can serve, ``STATUS=...`` to describe
themselves, ``WATCHDOG=1`` as a keep-alive, and ``MAINPID=n`` when the main process is another one.
The socket lives in the abstract namespace (no file to clean up); only the daemon reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, str]], None]


def parse(datagram: bytes) -> dict[str, str]:
    """``KEY=VALUE`` lines of one message (malformed lines are ignored, as systemd does)."""
    fields = {}
    for line in datagram.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key:
            fields[key] = value
    return fields


class NotifySocket:
    """One process's NOTIFY_SOCKET."""

    def __init__(self, loop: asyncio.AbstractEventLoop, token: str, on_message: Handler) -> None:
        self._loop = loop
        self._on_message = on_message
        self.name = f"procward/{os.getpid()}/{token}"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        self._sock.bind("\0" + self.name)
        loop.add_reader(self._sock.fileno(), self._read)

    @property
    def env(self) -> dict[str, str]:
        """What the child needs to find the socket ('@' means the abstract namespace to sd_notify)."""
        return {"NOTIFY_SOCKET": "@" + self.name}

    def _read(self) -> None:
        while True:
            try:
                data = self._sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("notify socket %s: %s", self.name, exc)
                return
            fields = parse(data)
            if fields:
                self._on_message(fields)

    def close(self) -> None:
        """Stop listening and release the name."""
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()


class Watchdog:
    """``watchdog_sec``: ``on_timeout`` runs when no ``WATCHDOG=1`` came for that long while armed."""

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float, on_timeout: Callable[[], None]) -> None:
        self._loop = loop
        self.seconds = seconds
        self._on_timeout = on_timeout
        self._timer: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        """Start (or restart) the countdown: RUNNING was entered, or a keep-alive came."""
        self.cancel()
        self._timer = self._loop.call_later(self.seconds, self._expired)

    def cancel(self) -> None:
        """Stop counting (the process left RUNNING)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        self._on_timeout()


class Readiness:
    """A ``notify = true`` process's side of sd_notify: its socket (made anew for each spawn, named after the
    spawn's token), its watchdog, and what the messages ask of the process, through the owner's callbacks:
    ``ready`` (READY=1), ``main_pid`` (MAINPID=n), ``status`` (STATUS=...), ``timed_out`` (no WATCHDOG=1 in
    time, or WATCHDOG=trigger)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, watchdog_sec: float, *, ready: Callable[[], None],
                 main_pid: Callable[[int], None], status: Callable[[str], None],
                 timed_out: Callable[[], None]) -> None:
        self._loop = loop
        self._callbacks = (ready, main_pid, status)
        self._timed_out = timed_out
        self._socket: NotifySocket | None = None
        self._watchdog = Watchdog(loop, watchdog_sec, timed_out) if watchdog_sec else None
        self._running = False

    def open(self, token: str) -> dict[str, str]:
        """A new socket for the spawn with ``token``; the variables the child needs to find it."""
        self.close()
        self._socket = NotifySocket(self._loop, token, self._on_message)
        env = self._socket.env
        if self._watchdog is not None:
            env["WATCHDOG_USEC"] = str(int(self._watchdog.seconds * 1_000_000))
        return env

    def running(self, now: bool) -> None:
        """The process entered (True) or left (False) RUNNING: the watchdog counts only meanwhile."""
        self._running = now
        if self._watchdog is not None:
            self._watchdog.arm() if now else self._watchdog.cancel()

    def close(self) -> None:
        """Release the socket (the run ended); the watchdog stops with ``running(False)``."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _on_message(self, fields: dict[str, str]) -> None:
        ready, main_pid, status = self._callbacks
        if "STATUS" in fields:
            status(fields["STATUS"])
        if fields.get("MAINPID", "").isdigit():
            main_pid(int(fields["MAINPID"]))
        if fields.get("READY") == "1":
            ready()
        if fields.get("WATCHDOG") == "1" and self._running and self._watchdog is not None:
            self._watchdog.arm()
        elif fields.get("WATCHDOG") == "trigger":
            self._timed_out()
