"""A child's stdin: what sendProcessStdin and fg send, queued and written by the loop, never blocking."""

from __future__ import annotations

import asyncio
import errno
import logging
import os

from procward.errors import ProcwardError

log = logging.getLogger(__name__)


class NoStdin(ProcwardError):
    """The process's stdin is closed."""


class Stdin:
    """The parent's end of one child's stdin pipe (non-blocking) and what is queued for it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, owner: str) -> None:
        self._loop = loop
        self._fd: int | None = fd
        self._owner = owner  # namespec, for the log line when queued input is dropped
        self._buffer = bytearray()

    @property
    def fd(self) -> int | None:
        """The pipe's descriptor (None once closed): a reexec hands it to the next daemon."""
        return self._fd

    def write(self, data: bytes) -> None:
        """Queue ``data``; what the pipe does not take now is written when it can. NoStdin once closed."""
        if self._fd is None:
            raise NoStdin(self._owner)
        self._buffer += data
        self._flush()

    def close(self) -> None:
        """Drop what is queued and close the pipe (the child exited)."""
        self._buffer.clear()
        if self._fd is not None:
            self._loop.remove_writer(self._fd)
            os.close(self._fd)
            self._fd = None

    def _flush(self) -> None:
        assert self._fd is not None
        try:
            written = os.write(self._fd, self._buffer)
        except BlockingIOError:
            written = 0
        except OSError as exc:
            if exc.errno in (errno.EPIPE, errno.EBADF):
                self.close()
                raise NoStdin(self._owner) from None
            raise
        del self._buffer[:written]
        if self._buffer:
            self._loop.add_writer(self._fd, self._flush_later)
        else:
            self._loop.remove_writer(self._fd)

    def _flush_later(self) -> None:
        try:
            self._flush()
        except NoStdin:
            log.warning("stdin of %s closed; queued input dropped", self._owner)
