"""Reading log files as Supervisor's API does (readLog and tailProcessLog windows, quirks included), and
removing AUTO logs an earlier run left."""

from __future__ import annotations

import logging
import os
import re

log = logging.getLogger(__name__)


def _window(size: int, offset: int, length: int) -> tuple[int, int]:
    """Supervisor's readLog window over a file of ``size`` bytes: (start, end)."""
    if (offset < 0 and length != 0) or length < 0:
        raise ValueError("bad offset/length")
    if offset < 0:
        return max(0, size + offset), size
    return min(offset, size), (size if length == 0 else min(size, offset + length))


def _tail_window(size: int, offset: int, length: int) -> tuple[int, int, bool]:
    """Supervisor's tailProcessLog arithmetic, quirks included: (start, length, overflow).

    When ``offset + length`` overshoots the file, the last ``length`` bytes are returned; supervisorctl's
    ``tail -f`` depends on exactly this.
    """
    overflow = False
    if size > offset + length:
        overflow = True
        offset = size - 1
    if offset + length > size:
        if offset > size - 1:
            length = 0
        offset = size - length
    return max(offset, 0), max(length, 0), overflow


def read_range(path: str, offset: int, length: int) -> bytes:
    """Supervisor's readLog window: offset<0 & length 0 = last |offset| bytes; length 0 = to EOF.

    Raises ValueError for a bad window and OSError when the file cannot be read.
    """
    with open(path, "rb") as handle:
        start, end = _window(os.fstat(handle.fileno()).st_size, offset, length)
        handle.seek(start)
        return handle.read(max(0, end - start))


def tail(path: str, offset: int, length: int) -> tuple[bytes, int, bool]:
    """tailProcessLog over a file: (bytes, new offset = file size, overflow)."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            start, length, overflow = _tail_window(size, offset, length)
            handle.seek(start)
            return (handle.read(length) if length else b""), size, overflow
    except OSError:
        return b"", offset, False


def remove_old_autologs(directory: str, identifier: str) -> int:
    """Delete AUTO child logs left by an earlier run (``nocleanup=false``); Supervisor's own pattern."""
    pattern = re.compile(rf".+?---{re.escape(identifier)}-\S+\.log\.?\d{{0,4}}$")
    removed = 0
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    for name in names:
        if pattern.match(name):
            try:
                os.unlink(os.path.join(directory, name))
                removed += 1
            except OSError:
                log.warning("could not remove old AUTO log %s", os.path.join(directory, name))
    return removed
