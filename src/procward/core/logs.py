"""Child output: pipe -> rotating log file, read in large blocks from the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import re
import stat
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from procward.config.model import LogRotation
from procward.core.capture import Capture
from procward.core.rotation import Rotator, next_boundary

log = logging.getLogger(__name__)

GROWN_PIPE = 1 << 18  # a busy writer's pipe; one read takes all of it (docs/performance.md: why not more)
COALESCE = 0.05  # seconds a pipe rests after a small read (output reaches the log <= 50 ms later)
MIN_PAUSE = 0.001  # shorter rests are not worth a timer
_ANSI = re.compile(rb"\x1b\[[0-9;]*[a-zA-Z]")
_ERROR_INTERVAL = 60.0  # seconds between repeated write-error log lines for one file


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


DataListener = Callable[[bytes], None]


@dataclass(frozen=True, slots=True)
class CaptureSpec:
    """Capture mode for a channel (``*_capture_maxbytes`` > 0): where captured messages go."""

    maxbytes: int
    on_message: DataListener
    on_capturing: DataListener | None = None


class Notifier:
    """Wakes whoever waits for "something was written" (log followers); costs nothing without waiters."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiters: list[asyncio.Future[None]] = []

    def wait(self) -> asyncio.Future[None]:
        """A future completed at the next notify()."""
        future: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append(future)
        return future

    def notify(self, _data: bytes = b"") -> None:
        """Wake every waiter."""
        waiters, self._waiters = self._waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)


class LogSink(Protocol):
    """Where a channel's bytes go: a RotatingFile, or a LineWriter in front of one."""

    def write(self, data: bytes) -> None: ...


class Rests:
    """Pipes resting until the same moment are read in one wake-up of the loop.

    A rest ends on a grid: COALESCE seconds for a full rest, halves of it for shorter ones (the grids
    nest), never later than the channel asked. Busy pipes so fall into step and share wake-ups: 50
    writers at 2 MB/s woke the daemon 111 times a second, 69 now (docs/performance.md, S7). When a rest
    ends the pipe is read at once, without the event loop's poller (no epoll_ctl pair per rest); only a
    pipe found empty goes back to it, so an idle daemon has no timer.
    """

    UNIT = COALESCE / 32  # the finest grid

    def __init__(self) -> None:
        # No reference to the loop: the loop is the key of the weak mapping below.
        self._slots: dict[int, list[OutputChannel]] = {}  # due time in UNITs -> channels to read then

    def add(self, loop: asyncio.AbstractEventLoop, channel: OutputChannel, pause: float) -> int | None:
        """Rest ``channel`` for at most ``pause`` seconds; its slot, or None when too short to be worth it."""
        grid = 32
        while grid > 1 and grid * self.UNIT > pause:
            grid //= 2
        if grid * self.UNIT > pause:
            return None
        now = loop.time()
        slot = int((now + pause) / self.UNIT) // grid * grid
        members = self._slots.get(slot)
        if members is None:
            members = self._slots[slot] = []
            loop.call_at(max(slot * self.UNIT, now), self._end, slot)
        members.append(channel)
        return slot

    def _end(self, slot: int) -> None:
        for channel in self._slots.pop(slot, ()):
            channel.rested(slot)


# One per loop: all the daemon's pipes share it (weak: the loops of tests come and go).
_rests: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Rests] = weakref.WeakKeyDictionary()


def _rests_of(loop: asyncio.AbstractEventLoop) -> Rests:
    rests = _rests.get(loop)
    if rests is None:
        rests = _rests[loop] = Rests()
    return rests


class OutputChannel:
    """One child pipe (stdout or stderr) copied to its log file and to any listeners.

    Each read takes the whole pipe. After a read the pipe rests (Rests) so a writer's next writes
    gather in it, unless it came in full. A pipe that comes in full (or would, during a rest) is grown to
    GROWN_PIPE once, so a busy writer wakes the daemon 4 times less often; pipes of quiet programs keep
    the default size (the kernel's per-user budget for pipe buffers is shared by every program).
    Measured and rejected (docs/performance.md): splice(2) pipe -> file, which on ext4 copies too and
    cost 2-3 times the kernel time of read + write; pipes of 1 MiB, which no longer fit the CPU cache.
    """

    __slots__ = ("_capture", "_coalesce", "_last", "_last_read", "_listeners", "_listening", "_logfile", "_loop",
                 "_pipe_size", "_rests", "_slot", "_strip_ansi", "_wakers", "fd")

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, logfile: LogSink | None, *,
                 strip_ansi: bool = False, listeners: tuple[DataListener, ...] = (),
                 wakers: tuple[Callable[[], None], ...] = (), capture: CaptureSpec | None = None,
                 coalesce: float = COALESCE) -> None:
        self._loop = loop
        self._rests = _rests_of(loop)
        self._coalesce = coalesce
        self._slot: int | None = None  # the rest it is in
        self.fd: int | None = fd
        self._logfile = logfile
        self._strip_ansi = strip_ansi
        self._listeners = listeners  # need the bytes
        self._wakers = wakers  # only need to know that something was written (log followers)
        self._capture = None if capture is None else Capture(
            capture.maxbytes, self._write, capture.on_message, capture.on_capturing)
        self._pipe_size = _pipe_size(fd)
        self._last = 0  # bytes of the last read
        self._last_read = loop.time()
        loop.add_reader(fd, self._on_readable)
        self._listening = True  # registered with the loop's poller

    def _on_readable(self) -> None:
        if self.fd is None:
            return
        step = self._step()
        if step is False:
            self.close()
        elif step:
            self._after_read(self.fd)

    def rested(self, slot: int) -> None:
        """The rest is over: read what gathered (a pipe found empty goes back to the poller)."""
        if slot != self._slot or self.fd is None:
            return  # closed or handed over meanwhile
        self._slot = None
        step = self._step()
        if step is False:
            self.close()
        elif step:
            self._after_read(self.fd)
        else:
            self._listen()

    def _after_read(self, fd: int) -> None:
        pause = self._pause(fd)
        slot = self._rests.add(self._loop, self, pause) if pause >= MIN_PAUSE else None
        if slot is None:
            self._listen()
            return
        self._slot = slot
        if self._listening:
            self._loop.remove_reader(fd)
            self._listening = False

    def _pause(self, fd: int) -> float:
        """How long the pipe may rest before the next read: the writer's next writes gather in it
        instead of waking the daemon once per write, but never long enough to fill it (at the rate
        just seen, only half of it), so no writer is ever slowed. A pipe that came in full, or would
        need more than half of itself for a whole rest, is grown once."""
        now = self._loop.time()
        elapsed, self._last_read = now - self._last_read, now
        full = self._last >= self._pipe_size
        rate = self._last / max(elapsed, 1e-4)
        if (full or rate * self._coalesce > self._pipe_size / 2) and self._pipe_size < GROWN_PIPE:
            self._pipe_size = _grow_pipe(fd)
        if full or not self._coalesce:
            return 0.0  # read again at once: the writer is ahead of us
        return min(self._coalesce, self._pipe_size / 2 / rate)

    def _listen(self) -> None:
        if self.fd is not None and not self._listening:
            self._loop.add_reader(self.fd, self._on_readable)
            self._listening = True

    def _step(self) -> bool | None:
        """Move one block. True: moved some; None: nothing there now; False: end of output."""
        assert self.fd is not None
        try:
            data = os.read(self.fd, self._pipe_size)
        except BlockingIOError:
            return None
        except OSError:
            data = b""
        if not data:
            return False
        self._deliver(data)
        self._moved(len(data))
        return True

    def _moved(self, count: int) -> None:
        self._last = count
        for waker in self._wakers:
            waker()

    def _deliver(self, data: bytes) -> None:
        if self._strip_ansi:
            data = _ANSI.sub(b"", data)
        if self._capture is not None:
            self._capture.feed(data)
        else:
            self._write(data)

    def _write(self, data: bytes) -> None:
        if self._logfile is not None:
            self._logfile.write(data)
        for listener in self._listeners:
            listener(data)

    def drain(self) -> None:
        """Copy whatever the pipe holds right now (the process has exited; nothing may be lost)."""
        while self.fd is not None:
            step = self._step()
            if step is False:
                self.close()
            if not step:
                return

    def release(self) -> int | None:
        """Stop reading and hand the pipe over, open (a reexec): what it holds stays in it for the next
        daemon, so nothing is lost and nothing read twice."""
        if self._capture is not None:
            self._capture.flush()
        self._slot = None
        fd, self.fd = self.fd, None
        if fd is not None and self._listening:
            self._loop.remove_reader(fd)
        self._listening = False
        return fd

    def close(self) -> None:
        """Stop reading and close the pipe."""
        fd = self.release()
        if fd is not None:
            os.close(fd)


def _rfind_newline(data: bytes | memoryview, start: int, stop: int) -> int:
    if isinstance(data, memoryview):  # a line writer's view (logs.linelog): a copy, once per rotation
        found = bytes(data[start:stop]).rfind(b"\n")
        return found if found < 0 else start + found
    return data.rfind(b"\n", start, stop)


def _pipe_size(fd: int) -> int:
    try:
        return fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ)
    except OSError:
        return 1 << 16


def _grow_pipe(fd: int) -> int:
    try:
        return fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, GROWN_PIPE)
    except OSError:
        return GROWN_PIPE  # not allowed (per-user pipe budget): do not try again


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


class SyslogForwarder:
    """``*_syslog=true``: each line of output also goes to syslog, prefixed by the process name."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._partial = b""

    def __call__(self, data: bytes) -> None:
        import syslog

        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            syslog.syslog(syslog.LOG_INFO, f"{self._name} {line.decode('utf-8', 'replace')}")
