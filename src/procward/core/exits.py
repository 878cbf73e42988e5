"""Exit watching: SIGCHLD for the daemon's own children, a pidfd for a pid it follows, and the
child-subreaper duties (reap every orphan).

SIGCHLD tells the loop (through its wakeup fd) that some child exited, with no polling and no timer;
one pass then collects every exited child: a watched one goes to its owner, any other is an orphan of a
program's tree (procward is a child subreaper, so double-forked daemons end up here) and is reaped, so
no zombie is ever left. A child's pid cannot be reused before it is reaped, so a watched child needs no
descriptor: 5000 programs hold 15000 descriptors, not 20000. A pid followed from a pidfile or MAINPID=
may not be a child (yet), so it is watched through a pidfd, which becomes readable when it exits.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
from collections.abc import Callable, KeysView, Sequence
from dataclasses import dataclass

from procward.core import tree

log = logging.getLogger(__name__)

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """How a process ended: an exit code, or the signal that killed it."""

    code: int | None
    signal: int | None = None
    core: bool = False

    @property
    def exitstatus(self) -> int:
        """Supervisor's number: the exit code, or -1 when killed by a signal."""
        return self.code if self.code is not None else -1

    def describe(self) -> str:
        """'exit status 1' or 'terminated by SIGKILL (core dumped)', as supervisord logs it."""
        if self.code is not None:
            return f"exit status {self.code}"
        try:
            name = signal.Signals(self.signal or 0).name
        except ValueError:
            name = f"signal {self.signal}"
        return f"terminated by {name}" + (" (core dumped)" if self.core else "")


def _status_from_waitid(result: os.waitid_result) -> ExitStatus:
    if result.si_code == os.CLD_EXITED:
        return ExitStatus(code=result.si_status)
    return ExitStatus(code=None, signal=result.si_status, core=result.si_code == os.CLD_DUMPED)


def _prctl(option: int, arg: object) -> bool:
    """prctl(option, arg) through libc; False when it fails or libc has none."""
    try:
        return bool(ctypes.CDLL(None, use_errno=True).prctl(option, arg, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def become_subreaper() -> bool:
    """Mark this process a child subreaper so orphaned descendants are re-parented to it."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def is_subreaper() -> bool:
    """Whether orphaned descendants come back to this process (a child subreaper, or pid 1)."""
    value = ctypes.c_int(0)
    return os.getpid() == 1 or (_prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(value)) and bool(value.value))


OnExit = Callable[[ExitStatus], None]
OnOrphan = Callable[[int, ExitStatus], None]


class ExitWatcher:
    """Tells each owner when its child exits; reaps orphans it does not own."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_orphan: OnOrphan | None = None) -> None:
        self._loop = loop
        self._watched: dict[int, tuple[int | None, OnExit]] = {}  # pid -> (pidfd or None for a child, callback)
        self._on_orphan = on_orphan
        # Called before each pass: what must be watched before the pass may find it (a mass start's
        # helpers' results: core/massspawn.py).
        self.before_reap: Callable[[], None] | None = None
        self._arrived = False  # a SIGCHLD came since the last pass (catch_up)

    def install(self) -> None:
        """Start collecting exits on SIGCHLD, and look once at once: a child adopted across a reexec may
        have exited while no handler was there (its SIGCHLD was discarded); the look runs after the
        synchronous adoption that follows this call."""
        self._loop.add_signal_handler(signal.SIGCHLD, self._on_sigchld)
        # Every exit is a SIGCHLD, and every signal one byte in the loop's wakeup socket: when hundreds of
        # programs exit while the loop is busy (a mass stop), the socket fills and Python printed a
        # traceback on stderr for each further signal. A dropped SIGCHLD byte loses nothing (one pass
        # collects every exit): the warning is turned off, on the descriptor asyncio installed.
        signal.set_wakeup_fd(signal.set_wakeup_fd(-1), warn_on_full_buffer=False)
        # asyncio installs a Python handler that does nothing, only so that the signal's number reaches
        # its wakeup socket (the C handler writes it, whatever the Python one is); this one also notes
        # the signal at once, where catch_up can see it.
        signal.signal(signal.SIGCHLD, self._note)
        self._loop.call_soon(self.reap)

    def _note(self, _signum: int, _frame: object) -> None:
        self._arrived = True

    def catch_up(self) -> None:
        """Collect now the exits a SIGCHLD has announced, if one came since the last pass. The loop runs
        the signal's pass a turn after it reads the signal's byte, so an answer given in between told of
        a process that was gone (``kill -9`` then ``status`` showed it RUNNING, with its dead pid); the
        API calls this before it answers."""
        if self._arrived:
            self.reap()

    def _on_sigchld(self) -> None:
        # supervisord's debug line, word for word: tools (Supervisor's own end-to-end tests) wait for it.
        log.debug("received SIGCHLD indicating a child quit")
        self.reap()

    def close(self) -> None:
        """Stop watching; pidfds are closed."""
        self._loop.remove_signal_handler(signal.SIGCHLD)
        for pid in list(self._watched):
            self._forget(pid)

    def watch(self, pid: int, on_exit: OnExit, *, child: bool = True) -> None:
        """Call ``on_exit`` once, from the loop, when ``pid`` exits; it is then reaped.

        ``child``: this daemon's own child (spawned by it, or by the daemon before a reexec), watched
        through SIGCHLD. Otherwise a pid followed from elsewhere, watched through a pidfd. Called in the
        same callback as the spawn: the SIGCHLD of a child that is already gone is handled after it.
        """
        if child:
            self._watched[pid] = (None, on_exit)
            return
        pidfd = os.pidfd_open(pid)
        self._watched[pid] = (pidfd, on_exit)
        self._loop.add_reader(pidfd, self._collect, pid)

    @property
    def watched(self) -> KeysView[int]:
        """Pids whose exit someone awaits (the programs' main processes); a live view, not a copy."""
        return self._watched.keys()

    def is_watched(self, pid: int) -> bool:
        """True while ``pid`` is a child whose exit someone awaits."""
        return pid in self._watched

    def forget(self, pid: int) -> None:
        """Stop watching ``pid`` (it is handed to the next daemon at a reexec)."""
        self._forget(pid)

    def _forget(self, pid: int) -> tuple[int | None, OnExit] | None:
        entry = self._watched.pop(pid, None)
        if entry is not None and entry[0] is not None:
            self._loop.remove_reader(entry[0])
            os.close(entry[0])
        return entry

    def _collect(self, pid: int) -> None:
        """A followed pid's pidfd is readable: it exited."""
        taken = self._take(pid)
        if taken is not None:
            self._dispatch([taken])

    def _take(self, pid: int) -> tuple[OnExit, ExitStatus] | None:
        """Collect the watched ``pid`` if it has exited: its owner's callback and its status."""
        pidfd, _ = self._watched[pid]
        try:
            if pidfd is None:
                result = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG)
            else:
                result = os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)
        except ChildProcessError:
            result = None  # already reaped elsewhere: report an unknown status rather than hang
            status = ExitStatus(code=None, signal=0)
        else:
            if result is None:
                return None  # spurious wake-up; the pidfd stays registered
            status = _status_from_waitid(result)
        entry = self._forget(pid)
        return None if entry is None else (entry[1], status)

    def reap(self) -> None:
        """Reap every exited child; watched ones are handed to their owner, others are orphans.

        Every exit of the pass is collected before any owner hears of one: an owner looks for what its
        process left behind among the daemon's children, and a process that exits later in the pass has
        its children re-parented to the daemon only when it exits. Listing the daemon's children after
        the whole pass (the listing is made anew for each pass) finds every one of them.
        """
        self._arrived = False  # first: a SIGCHLD during the pass is noted again
        if self.before_reap is not None:
            self.before_reap()
        exits: list[tuple[OnExit, ExitStatus]] = []
        orphans: list[tuple[int, ExitStatus]] = []
        while True:
            try:
                peek = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                break
            if peek is None:
                break
            if peek.si_pid in self._watched:
                taken = self._take(peek.si_pid)
                if taken is not None:
                    exits.append(taken)
                    continue
                break  # not collectable after all (a race with another waiter): the next SIGCHLD tells
            try:
                os.waitpid(peek.si_pid, os.WNOHANG)
            except ChildProcessError:
                continue
            status = _status_from_waitid(peek)
            log.debug("reaped unknown pid %s (%s)", peek.si_pid, status.describe())
            orphans.append((peek.si_pid, status))
        if exits or orphans:
            self._dispatch(exits, orphans)

    def _dispatch(self, exits: list[tuple[OnExit, ExitStatus]],
                  orphans: Sequence[tuple[int, ExitStatus]] = ()) -> None:
        tree.children_changed()
        for on_exit, status in exits:
            try:
                on_exit(status)
            except Exception:  # one owner's bug must not lose the other exits of the pass
                log.exception("handling an exit (%s) failed", status.describe())
        if self._on_orphan is not None:
            for pid, status in orphans:
                self._on_orphan(pid, status)
