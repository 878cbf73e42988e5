"""A mass start's spawns, made by helper processes forked from the daemon, on the machine's other CPUs.

Starting a program is a fork and an exec the daemon waits for (~0.6 ms here, most of it in the kernel,
with the GIL held: a thread would not run meanwhile). At boot, with many programs to start, the daemon
instead forks helpers (at most one a CPU, HELPERS at a time), each a copy of it that spawns a chunk of
the programs and writes each pid back through a pipe, while the daemon does the bookkeeping of the ones
already started. A helper exits once its share is started; procward is a child subreaper, so the
programs are then its own children, exactly as if it had spawned them.

Why nothing is lost or mistaken:

- A pid is watched before the exit collector can find it among the daemon's children: a program
  becomes the daemon's child only when its helper exits, after its pid was written, and the collector
  reads what the helpers wrote (``drain``) before each of its passes.
- A helper never waits for a child, so no program's pid is reaped, and made reusable, behind the
  daemon's back: signals the daemon sends by pid reach the program.
- A request called off while its helper works (a stop during the boot) is killed as soon as its pid
  arrives. A helper that dies before it wrote every pid: the programs it did start are found among the
  daemon's children by their token (they carry it in their environment) and killed; their requests
  fail as a failed spawn does (BACKOFF, then a retry by the daemon itself).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import gc
import logging
import os
import signal
from collections.abc import Callable

from procward.config.model import ProcessConfig
from procward.core import spawn as spawning
from procward.core import tree
from procward.core.exits import ExitStatus, ExitWatcher, is_subreaper
from procward.core.spawn import Pipes, Spawned, SpawnError, SpawnFailure

log = logging.getLogger(__name__)

HELPERS = 2  # helpers at a time at most (and no more than the CPUs this daemon may run on)
MIN_BATCH = 16  # fewer spawns are made by the daemon itself: forking it costs about as much as two
# Programs one helper spawns at most (its pipes are made when it is forked). Each helper is a fork of the
# daemon, and the daemon's pages are copied again as it writes them after each fork: fewer, larger chunks
# start 5000 programs sooner (3 alternated runs: 256 4.75 s, 512 4.61 s, 512 in even chunks 4.55 s).
MAX_CHUNK = 512
HUNT_AGAIN = (0.01, 0.1, 1.0)  # seconds after a helper's death its unreported programs are looked for again
_CHUNK = 1024  # bytes of results handled in one callback (~80 spawns): requests are served in between

Done = Callable[[Spawned | SpawnError], None]
# Makes a program's environment; called in the helper, right before the spawn (see Request).
EnvMaker = Callable[[], dict[str, str]]


class Request:
    """One queued spawn; ``cancel`` calls it off (its process, if already started, is killed)."""

    __slots__ = ("cancelled", "config", "delivered", "done", "env", "pipes", "token")

    def __init__(self, config: ProcessConfig, env: EnvMaker, token: str, done: Done) -> None:
        # The environment is made by the helper, in its own copy of the daemon's memory: made by the
        # daemon, 1000 queued dicts of ~40 variables were ~3 MB its heap kept after the boot.
        self.config, self.env, self.token, self.done = config, env, token, done
        self.pipes: Pipes | None = None  # made when its helper is forked
        self.cancelled = False
        self.delivered = False

    def cancel(self) -> None:
        self.cancelled = True

    @property
    def made(self) -> Pipes:
        """Its pipes, once its helper is being forked."""
        assert self.pipes is not None
        return self.pipes


class _Helper:
    __slots__ = ("buffer", "fd", "pid", "share")

    def __init__(self, pid: int, fd: int, share: list[Request]) -> None:
        self.pid, self.fd, self.share = pid, fd, share
        self.buffer = b""


class MassSpawner:
    """The helpers of the daemon's mass starts, and the requests they carry out.

    Requests are taken in chunks, one helper a chunk, at most HELPERS helpers at a time; a chunk's pipes
    are made when its helper is forked, and the daemon closes the programs' ends right after: a mass
    start of 5000 programs never holds more descriptors than the programs' own 3 each, plus a chunk's.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, exits: ExitWatcher) -> None:
        self._loop = loop
        self._exits = exits
        self._queue: collections.deque[Request] = collections.deque()
        self._chunk = MAX_CHUNK
        self._flushing = False  # every queued request may go (``launch``): no chunk waits to fill
        self._helpers: dict[int, _Helper] = {}
        self._scheduled = False  # _next is due in the loop
        self._idle = asyncio.Event()
        self._idle.set()

    @staticmethod
    def worth_it(count: int) -> bool:
        """Whether ``count`` spawns at once go through helpers: there is another CPU to run them, and the
        daemon gets the helpers' children when they exit (it is a child subreaper; else they would go
        to init, and their exits would never be seen)."""
        return count >= MIN_BATCH and _cpus() > 1 and is_subreaper()

    def begin(self, count: int) -> None:
        """About ``count`` requests follow: chunks of MAX_CHUNK at most, of even size, as many as make whole
        rounds of helpers (5000 in chunks of 512 left a last round of one helper, its CPU's partner idle)."""
        helpers = min(HELPERS, _cpus())
        rounds = max(1, -(-count // (helpers * MAX_CHUNK)))
        self._chunk = max(MIN_BATCH // 2, -(-count // (helpers * rounds)))
        self._flushing = False

    def add(self, config: ProcessConfig, env: EnvMaker, token: str, done: Done) -> Request:
        """Queue a spawn; ``done`` gets the Spawned or the SpawnError from the loop, never from this call
        (the caller keeps the request first). A full chunk goes to a helper as soon as one is free."""
        request = Request(config, env, token, done)
        self._queue.append(request)
        self._idle.clear()
        self._schedule()
        return request

    def launch(self) -> None:
        """No more requests follow: the last chunk need not fill. The helpers are forked now, not in a later
        turn of the loop: a request read in between (a client polling through the boot) was answered
        first, and a getAllProcessInfo of 500 programs held every spawn back by ~7 ms."""
        self._flushing = True
        self._next()

    async def wait(self) -> None:
        """Until every request queued so far has its outcome (``launch`` was called)."""
        await self._idle.wait()

    def drain(self) -> None:
        """Take every result the helpers have written (the exit collector calls this before a pass)."""
        for helper in list(self._helpers.values()):
            self._read(helper, None)

    # -- the daemon's side ----------------------------------------------------------------------------

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._next)

    def _next(self) -> None:
        """Fork helpers for the queue while there are free ones and work for them."""
        self._scheduled = False
        while self._queue and len(self._helpers) < min(HELPERS, _cpus()) and (
                self._flushing or len(self._queue) >= self._chunk):
            share: list[Request] = []
            while self._queue and len(share) < self._chunk:
                request = self._queue.popleft()
                if request.cancelled:
                    continue
                try:
                    request.pipes = Pipes.make(request.config)
                except SpawnError as exc:
                    self._deliver(request, exc)
                    continue
                share.append(request)
            if share:
                self._fork(share)
        if not self._queue and not self._helpers:
            self._idle.set()

    def _fork(self, share: list[Request]) -> None:
        try:
            read_end, write_end = os.pipe2(os.O_CLOEXEC)
            pid = os.fork()
        except OSError as exc:
            log.warning("couldn't fork a helper to spawn %d programs (%s)", len(share), exc.strerror)
            for request in share:
                request.made.close_children()
                self._deliver(request, SpawnError(f"couldn't fork a helper to spawn it: {exc.strerror}"))
            return
        if pid == 0:
            _helper(share, write_end)  # never returns
        os.close(write_end)
        for request in share:  # the helper holds them now; ours would keep the programs' pipes open
            request.made.close_children()
        os.set_blocking(read_end, False)
        helper = self._helpers[pid] = _Helper(pid, read_end, share)
        log.info("spawning %d programs in a helper process (pid %s)", len(share), pid)
        self._exits.before_reap = self.drain
        self._exits.watch(pid, functools.partial(self._helper_exited, helper))
        self._loop.add_reader(read_end, self._read, helper, _CHUNK)

    def _read(self, helper: _Helper, limit: int | None) -> None:
        """Results as they come: ``limit`` bytes (a loop callback), or all there are (``drain``)."""
        while helper.fd >= 0:
            try:
                data = os.read(helper.fd, limit or 65536)
            except BlockingIOError:
                return
            if not data:
                self._loop.remove_reader(helper.fd)
                os.close(helper.fd)
                helper.fd = -1
                return
            lines = (helper.buffer + data).split(b"\n")
            helper.buffer = lines.pop()
            for line in lines:
                self._result(helper, line)
            if limit:
                return

    def _result(self, helper: _Helper, line: bytes) -> None:
        index, pid, *failure = line.decode("utf-8", "replace").split(" ", 3)
        request = helper.share[int(index)]
        if request.delivered:  # failed already (its helper's exit came first): the process is not wanted
            if pid != "-":
                self._kill(int(pid))
            return
        if pid == "-":
            kind, message = failure
            self._deliver(request, SpawnError(message, SpawnFailure(kind)))
        elif request.cancelled:
            request.delivered = True
            request.made.close_ours()
            self._kill(int(pid))
        else:
            self._deliver(request, request.made.spawned(int(pid), None))

    def _deliver(self, request: Request, outcome: Spawned | SpawnError) -> None:
        request.delivered = True
        if isinstance(outcome, SpawnError) and request.pipes is not None:
            request.pipes.close_ours()
        if request.cancelled:
            return
        try:
            request.done(outcome)
        except Exception:  # one owner's bug must not lose the other spawns of the batch
            log.exception("handling the spawn of %s failed", request.config.name)

    def _kill(self, pid: int) -> None:
        """A program started for a request called off: its group is killed, its exit collected."""
        self._exits.watch(pid, lambda _: None)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # its own group (process_group=0), not reaped yet: only its tree

    def _hunt(self, tokens: set[str]) -> None:
        for pid, token in tree.adopted(self._exits.watched).items():
            if token in tokens:
                self._kill(pid)

    def _helper_exited(self, helper: _Helper, status: ExitStatus) -> None:
        self._read(helper, None)  # what it wrote before it exited (its end is closed: this ends at EOF)
        left = [r for r in helper.share if not r.delivered]
        if left:
            log.warning("a spawning helper (pid %s) ended (%s) before it had started %d program(s)",
                        helper.pid, status.describe(), len(left))
            # The ones it started all the same are this daemon's children now, known by their token; one
            # it forked as it was killed shows its token once its exec is done: looked for again.
            tokens = {r.token for r in left}
            self._hunt(tokens)
            for delay in HUNT_AGAIN:
                self._loop.call_later(delay, self._hunt, tokens)
            for request in left:
                self._deliver(request, SpawnError("couldn't spawn: its helper ended first"))
        del self._helpers[helper.pid]
        if not self._helpers:
            self._exits.before_reap = None
        self._next()  # the next chunk, or idle


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


def _helper(share: list[Request], out: int) -> None:
    """In the forked helper: spawn ``share`` in order, write ``index pid`` (or ``index - kind message``)
    for each, exit. It waits for no child (see the module's docstring) and touches nothing of the
    daemon's but the requests: os._exit skips every finalizer and atexit hook."""
    try:
        gc.disable()
        # The daemon's signal handling is the loop's: its wakeup descriptor is closed below, and a failed
        # write to it would be reported on the daemon's stderr. A failed exec's child is reaped by Popen.
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        keep = sorted({out, *(fd for r in share for fd in r.made.child_ends())})
        low = 3
        for fd in keep:  # a small descriptor table: each fork of a program copies it
            os.closerange(low, fd)
            low = fd + 1
        os.closerange(low, os.sysconf("SC_OPEN_MAX"))
        started = []  # kept: a Popen collected unwaited would be reaped by the next one (subprocess._cleanup)
        for index, request in enumerate(share):
            try:
                started.append(spawning.launch(request.config, request.env(), request.made))
                line = f"{index} {started[-1].pid}\n"
            except SpawnError as exc:
                text = str(exc).replace("\n", " ")
                line = f"{index} - {exc.kind} {text}\n"
            data = line.encode()
            while data:
                data = data[os.write(out, data):]
    finally:
        os._exit(0)
