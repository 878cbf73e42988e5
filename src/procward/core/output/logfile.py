"""A child's log file: appended, rotated by size or time (``*_logfile_maxbytes``, ``*_logfile_backups``,
procward's time rotation), reopened when it is moved away, and never a symlink someone else planted."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import time
from typing import Protocol

from procward.config.model import LogRotation
from procward.core.output.logrotation import Rotator, next_boundary

log = logging.getLogger(__name__)

_ERROR_INTERVAL = 60.0  # seconds between repeated write-error log lines for one file


class LogSink(Protocol):
    """Where a channel's bytes go: a RotatingFile, or a LineWriter in front of one."""

    def write(self, data: bytes) -> None: ...


class RotatingFile:
    """A log file written at its end and rotated by size into ``.1`` (newest) .. ``.N``, like Supervisor's.

    One O_APPEND descriptor (programs sharing a log file never overwrite each other); one fstat per
    block gives the size for rotation and notices a file deleted under us. Targets that are not regular
    files (/dev/stdout, fifos, ttys) are written plainly and never rotated.
    """

    def __init__(self, path: str, maxbytes: int, backups: int, rotation: LogRotation | None = None) -> None:
        self.path = path
        self.maxbytes = maxbytes
        self.backups = backups
        self.rotation = rotation or LogRotation()
        self.rotator = None if self.rotation.plain else Rotator(path, backups, self.rotation)
        self._deadline = 0.0  # when the open file rotates by time (0: never)
        self._fd: int | None = None
        self._seekable = True
        self._last_error = -_ERROR_INTERVAL
        self._failing = False  # an error was logged and writing has not worked since
        self.error = ""  # why the file cannot be opened now ('' when it is open)
        self.open()

    def open(self) -> None:
        """(Re)open the file, recreating its directory if it was removed; failures are logged, and
        writes retry the open."""
        try:
            _refuse_foreign_symlink(self.path)
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except FileNotFoundError:
                directory = os.path.dirname(self.path)
                os.makedirs(directory, mode=0o755, exist_ok=True)
                log.warning("log directory %s was missing: created it again for %s", directory, self.path)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            self.error = f"{exc.strerror or exc}"
            self._report(exc)
            return
        self.error = ""
        st = os.fstat(fd)
        # /dev/stdout, fifos and ttys cannot be rotated; Supervisor logs "Illegal seek" per write there.
        self._seekable = stat.S_ISREG(st.st_mode)
        self._fd = fd
        if self.rotation.every and self._seekable:
            self._deadline = next_boundary(self.rotation.every, time.time())

    def problem(self) -> str:
        """Why the file cannot be written now ('' when it can); tries to (re)open it first."""
        return "" if self._current() is not None else self.error or "cannot be opened"

    @property
    def seekable(self) -> bool:
        """A regular file (rotation applies); False for /dev/stdout, fifos, ttys."""
        return self._seekable

    def _current(self) -> int | None:
        """The file's size before this write (None when it cannot be written now; 0 for a non-file
        target); reopens a file deleted under us."""
        if self._fd is None:
            self.open()
            if self._fd is None:
                return None
        if not self._seekable:
            return 0
        st = os.fstat(self._fd)
        if st.st_nlink == 0:
            self.reopen()  # deleted under us (rm -rf of the log directory): write where operators look
            return self._current() if self._fd is not None else None
        return st.st_size

    def write(self, data: bytes | memoryview) -> None:
        """Append ``data``, rotating so that the file never exceeds maxbytes.

        A block that would cross the limit is split at its last newline before the limit, and the rest
        goes to a new file. When that part of the block has no newline (a line that does not fit), the
        file is rotated first and the block starts the new one; only a line longer than maxbytes itself
        is cut, at the limit.
        """
        if self._deadline and time.time() >= self._deadline:
            self.rotate()
        start, end = 0, len(data)
        while start < end:
            size = self._current()
            if size is None or self._fd is None:
                return
            stop, full = end, False
            if self.maxbytes and self._seekable:
                room = self.maxbytes - size
                if room <= 0 and size and self._rotated_away():
                    continue  # a file already at its limit (an earlier, larger maxbytes) rotates first
                if 0 < room < end - start:
                    newline = _rfind_newline(data, start, start + room)
                    if newline < 0 and size and self._rotated_away():
                        continue  # the line starts the next file whole
                    stop, full = (newline + 1 if newline >= 0 else start + room), True
            if not self._write_all(data, start, stop):
                return
            written, start = stop - start, stop
            self._recovered()
            if full or (self.maxbytes and self._seekable and size + written >= self.maxbytes):
                self.rotate()

    def _rotated_away(self) -> bool:
        """Rotate now; False when that did not leave an emptier file (rotation failing: write on)."""
        self.rotate()
        size = self._current()
        return size is not None and size < self.maxbytes

    def _write_all(self, data: bytes | memoryview, start: int, stop: int) -> bool:
        assert self._fd is not None
        view = memoryview(data)[start:stop]
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except BlockingIOError:
            return False  # a non-blocking terminal/pipe target is full: drop rather than stall every program
        except OSError as exc:
            self._report(exc)
            return False
        return True

    def rotate(self) -> None:
        """Shift backups up by one and start a new empty file."""
        self.close()
        if self.rotator is not None:
            # By time, by date, gzipped or capped: the file is set aside at once and the rest is a job.
            aside = self.rotator.set_aside()
            try:
                os.replace(self.path, aside)
            except OSError as exc:
                self._report(exc)
            else:
                self.rotator.finish(aside, time.time())
            self.open()
            return
        try:
            if self.backups > 0:
                for n in range(self.backups - 1, 0, -1):
                    src = f"{self.path}.{n}"
                    if os.path.exists(src):
                        os.replace(src, f"{self.path}.{n + 1}")
                os.replace(self.path, f"{self.path}.1")
            else:
                os.truncate(self.path, 0)
        except OSError as exc:
            self._report(exc)
        self.open()

    def reopen(self) -> None:
        """Close and open again (SIGUSR2: an external rotator moved the file)."""
        self.close()
        self.open()

    def clear(self) -> None:
        """Remove the current file and start afresh (clearProcessLogs)."""
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self.open()

    def close(self) -> None:
        """Close the descriptors."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            log.info("log file %s is written again", self.path)

    def _report(self, exc: OSError) -> None:
        now = time.monotonic()
        if now - self._last_error >= _ERROR_INTERVAL:
            self._last_error = now
            self._failing = True
            log.error("cannot write log file %s: %s (output is dropped until this works again)",
                      self.path, exc.strerror or exc)


def _refuse_foreign_symlink(path: str) -> None:
    """A log path that is a symlink owned by another user could point a root daemon anywhere."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode) and st.st_uid not in (0, os.geteuid()):
        raise OSError(errno.EPERM, f"refusing to follow symlink owned by uid {st.st_uid} "
                                   f"(to {os.readlink(path)!r})")


def _rfind_newline(data: bytes | memoryview, start: int, stop: int) -> int:
    if isinstance(data, memoryview):  # a line writer's view (logs.linelog): a copy, once per rotation
        found = bytes(data[start:stop]).rfind(b"\n")
        return found if found < 0 else start + found
    return data.rfind(b"\n", start, stop)
