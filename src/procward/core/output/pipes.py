"""A child's pipes (stdout, stderr) read from the event loop in large blocks and copied to their sinks."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from procward.core.output.capture import Capture
from procward.core.output.logfile import LogSink

log = logging.getLogger(__name__)

GROWN_PIPE = 1 << 18  # a busy writer's pipe; one read takes all of it (docs/performance.md: why not more)
COALESCE = 0.05  # seconds a pipe rests after a small read (output reaches the log <= 50 ms later)
MIN_PAUSE = 0.001  # shorter rests are not worth a timer
_ANSI = re.compile(rb"\x1b\[[0-9;]*[a-zA-Z]")

DataListener = Callable[[bytes], None]


@dataclass(frozen=True, slots=True)
class CaptureSpec:
    """Capture mode for a channel (``*_capture_maxbytes`` > 0): where captured messages go."""

    maxbytes: int
    on_message: DataListener
    on_capturing: DataListener | None = None


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
        self._pipe_size = 0  # asked of the kernel at the first read: most programs' pipes never see one
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
        if not self._pipe_size:
            self._pipe_size = _pipe_size(self.fd)
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
