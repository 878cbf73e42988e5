"""/logtail/<name>[/stdout|/stderr] and /mainlogtail: the last KiB, then everything written after."""

from __future__ import annotations

import asyncio
import contextlib
import os

from aiohttp import web

from procward.core.logs import Notifier
from procward.core.supervisor import BadName
from procward.http.keys import SUPERVISOR

_START_BACK = 1024
_REFRESH = 1.0  # also re-check the file this often: rotation and writes by others have no notification
_CHUNK = 1 << 16


async def process_tail(request: web.Request) -> web.StreamResponse:
    """Follow one process's stdout (default) or stderr log."""
    channel = request.match_info.get("channel", "stdout")
    if channel not in ("stdout", "stderr"):
        raise web.HTTPNotFound(text="no such channel\n")
    try:
        _, process = request.app[SUPERVISOR].lookup(request.match_info["name"])
    except BadName:
        raise web.HTTPNotFound(text="no such process\n") from None
    if process is None:
        raise web.HTTPNotFound(text="no such process\n")
    path = process.stdout_path if channel == "stdout" else process.stderr_path
    if path is None or not os.path.exists(path):
        raise web.HTTPNotFound(text="no log file\n")
    return await _follow(request, path, process.output)


async def main_tail(request: web.Request) -> web.StreamResponse:
    """Follow the daemon's own log."""
    path = request.app[SUPERVISOR].config.supervisord.logfile
    if not os.path.isfile(path):
        raise web.HTTPNotFound(text="no log file\n")
    return await _follow(request, path, None)


async def _follow(request: web.Request, path: str, notifier: Notifier | None) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/plain;charset=utf-8",
                                           "X-Accel-Buffering": "no"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    offset = max(0, os.path.getsize(path) - _START_BACK)
    inode = os.stat(path).st_ino
    while True:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        if st is not None and (st.st_ino != inode or st.st_size < offset):
            if st.st_ino == inode:
                await response.write(b"==> File truncated <==\n")
            inode, offset = st.st_ino, 0
        if st is not None and st.st_size > offset:
            with open(path, "rb") as handle:
                handle.seek(offset)
                while data := handle.read(_CHUNK):
                    offset += len(data)
                    await response.write(data)
            continue
        waiter = notifier.wait() if notifier is not None else None
        try:
            await asyncio.wait_for(waiter if waiter is not None else asyncio.sleep(_REFRESH), _REFRESH)
        except TimeoutError:
            pass
        finally:
            if waiter is not None:
                waiter.cancel()
        if request.transport is None or request.transport.is_closing():
            with contextlib.suppress(ConnectionError):
                await response.write_eof()
            return response
