"""Exit watching: pidfd per supervised child, and the child-subreaper duties (reap every orphan).

A pidfd becomes readable the moment its process exits, so the event loop learns of a crash with no
polling and no timer. As child subreaper, procward also inherits every orphan of its programs'
trees (double-forked daemons); SIGCHLD tells us to reap those, so no zombie is ever left.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
from collections.abc import Callable, KeysView
from dataclasses import dataclass

log = logging.getLogger(__name__)

_PR_SET_CHILD_SUBREAPER = 36


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


def become_subreaper() -> bool:
    """Mark this process a child subreaper so orphaned descendants are re-parented to it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


OnExit = Callable[[ExitStatus], None]
OnOrphan = Callable[[int, ExitStatus], None]


class ExitWatcher:
    """Tells each owner when its child exits; reaps orphans it does not own."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_orphan: OnOrphan | None = None) -> None:
        self._loop = loop
        self._watched: dict[int, tuple[int, OnExit]] = {}  # pid -> (pidfd, callback)
        self._on_orphan = on_orphan

    def install(self) -> None:
        """Start reaping orphans on SIGCHLD."""
        self._loop.add_signal_handler(signal.SIGCHLD, self.reap_orphans)

    def close(self) -> None:
        """Stop watching; pidfds are closed."""
        self._loop.remove_signal_handler(signal.SIGCHLD)
        for pid in list(self._watched):
            self._forget(pid)

    def watch(self, pid: int, on_exit: OnExit) -> None:
        """Call ``on_exit`` once, from the loop, when ``pid`` (our child) exits; it is then reaped."""
        pidfd = os.pidfd_open(pid)
        self._watched[pid] = (pidfd, on_exit)
        self._loop.add_reader(pidfd, self._on_pidfd, pid)

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

    def _forget(self, pid: int) -> tuple[int, OnExit] | None:
        entry = self._watched.pop(pid, None)
        if entry is not None:
            self._loop.remove_reader(entry[0])
            os.close(entry[0])
        return entry

    def _on_pidfd(self, pid: int) -> None:
        pidfd, _ = self._watched[pid]
        try:
            result = os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)
        except ChildProcessError:
            result = None  # already reaped elsewhere: report an unknown status rather than hang
            status = ExitStatus(code=None, signal=0)
        else:
            if result is None:
                return  # spurious wake-up; the pidfd stays registered
            status = _status_from_waitid(result)
        entry = self._forget(pid)
        if entry is not None:
            entry[1](status)

    def reap_orphans(self) -> None:
        """Reap every exited child; watched ones are handed to their owner, others are orphans."""
        while True:
            try:
                peek = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if peek is None:
                return
            if peek.si_pid in self._watched:
                self._on_pidfd(peek.si_pid)
                continue
            try:
                os.waitpid(peek.si_pid, os.WNOHANG)
            except ChildProcessError:
                continue
            status = _status_from_waitid(peek)
            log.debug("reaped unknown pid %s (%s)", peek.si_pid, status.describe())
            if self._on_orphan is not None:
                self._on_orphan(peek.si_pid, status)
