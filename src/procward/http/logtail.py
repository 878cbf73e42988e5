"""/logtail/<name>[/stdout|/stderr] and /mainlogtail: the last KiB, then everything written after."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from procward.core.logs import Notifier
from procward.core.supervisor import BadName, Supervisor
from procward.http.server import HttpError, Request, Response

_START_BACK = 1024
_REFRESH = 1.0  # also re-check the file this often: rotation and writes by others have no notification
_CHUNK = 1 << 16


def process_tail(supervisor: Supervisor, request: Request, name: str, channel: str) -> Response:
    """Follow one process's stdout (default) or stderr log."""
    if channel not in ("stdout", "stderr"):
        raise HttpError(404, "no such channel")
    try:
        _, process = supervisor.lookup(name)
    except BadName:
        raise HttpError(404, "no such process") from None
    if process is None:
        raise HttpError(404, "no such process")
    path = process.output.paths[channel]
    if path is None or not os.path.exists(path):
        raise HttpError(404, "no log file")
    return Response(200, stream=_follow(request, path, process.output.written),
                    headers=[("X-Accel-Buffering", "no")])


def main_tail(supervisor: Supervisor, request: Request) -> Response:
    """Follow the daemon's own log."""
    path = supervisor.config.supervisord.logfile
    if not os.path.isfile(path):
        raise HttpError(404, "no log file")
    return Response(200, stream=_follow(request, path, None), headers=[("X-Accel-Buffering", "no")])


async def _follow(request: Request, path: str, notifier: Notifier | None) -> AsyncIterator[bytes]:
    offset = max(0, os.path.getsize(path) - _START_BACK)
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
