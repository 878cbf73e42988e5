"""/logtail/<name>[/stdout|/stderr] and /mainlogtail: the last KiB, then everything written after."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from procward.core.daemon.supervisor import BadName, Supervisor
from procward.core.events import Notifier
from procward.http.server import HttpError, Request, Response

_START_BACK = 1024
_REFRESH = 1.0  # also re-check the file this often: rotation and writes by others have no notification
_CHUNK = 1 << 16


# Without nosniff a browser holds back the first KiB of a text/plain stream before showing anything.
STREAM_HEADERS = [("X-Accel-Buffering", "no"), ("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store")]


def process_log(supervisor: Supervisor, name: str, channel: str) -> tuple[str | None, Notifier | None]:
    """The log file of one process's channel and the notifier its writes wake (404s for bad names)."""
    if channel not in ("stdout", "stderr"):
        raise HttpError(404, "no such channel")
    try:
        _, process = supervisor.lookup(name)
    except BadName:
        raise HttpError(404, "no such process") from None
    if process is None:
        raise HttpError(404, "no such process")
    return process.output.paths[channel], process.output.written


def process_tail(supervisor: Supervisor, request: Request, name: str, channel: str,
                 offset: int | None = None) -> Response:
    """Follow one process's stdout (default) or stderr log: the last KiB (or from ``offset``), then on."""
    path, written = process_log(supervisor, name, channel)
    if path is None or not os.path.exists(path):
        raise HttpError(404, "no log file")
    return Response(200, stream=_follow(request, path, written, offset), headers=list(STREAM_HEADERS))


def main_tail(supervisor: Supervisor, request: Request, offset: int | None = None) -> Response:
    """Follow the daemon's own log."""
    path = supervisor.config.supervisord.logfile
    if not os.path.isfile(path):
        raise HttpError(404, "no log file")
    return Response(200, stream=_follow(request, path, None, offset), headers=list(STREAM_HEADERS))


async def _follow(request: Request, path: str, notifier: Notifier | None,
                  start: int | None) -> AsyncIterator[bytes]:
    size = os.path.getsize(path)
    offset = max(0, size - _START_BACK) if start is None or start > size else max(0, start)
    inode = os.stat(path).st_ino
    while not request.disconnected.is_set():
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        if st is not None and (st.st_ino != inode or st.st_size < offset):
            if st.st_ino == inode:
                yield b"==> File truncated <==\n"
            inode, offset = st.st_ino, 0
        if st is not None and st.st_size > offset:
            with open(path, "rb") as handle:
                handle.seek(offset)
                while data := handle.read(_CHUNK):
                    offset += len(data)
                    yield data
            continue
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(request.disconnected.wait())]
        if notifier is not None:
            waits.append(notifier.wait())
        try:
            await asyncio.wait(waits, timeout=_REFRESH, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    if isinstance(waiter, asyncio.Task):
                        await waiter
