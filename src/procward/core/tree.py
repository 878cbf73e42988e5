"""Whose is this process? Finding and stopping what a program left behind.

procward is a child subreaper, so when a program's main process exits, every descendant it leaves
(double-forked, ``setsid``, anything) is re-parented to the daemon. Each spawn carries a random token
in its environment (``PROCWARD_TREE``), inherited by everything it starts; an adopted process is
attributed to a program by that token. Descendants of an adopted process are found through
``/proc/<pid>/task/<tid>/children``. Nothing here scans all of /proc: only the daemon's own children
and their subtrees are read, and only when a program's main process has exited.

Signals go through pidfds opened before membership is checked, so a pid recycled in the meantime is
never hit; the same pidfds tell when each process is gone (no polling).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Container, Iterable

log = logging.getLogger(__name__)

ENV_VAR = "PROCWARD_TREE"
_ENV_PREFIX = ENV_VAR.encode() + b"="


_token_pool: list[str] = []


def new_token() -> str:
    """A token for one spawn: 8 bytes of the kernel's randomness, drawn 256 tokens at a time (a getrandom
    call at each spawn showed in a mass start's profile). Not secrets.token_hex: the secrets module loads
    libcrypto (~1 MB)."""
    if not _token_pool:
        pool = os.urandom(8 * 256).hex()
        _token_pool.extend(pool[i:i + 16] for i in range(0, len(pool), 16))
    return _token_pool.pop()


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's list)."""
    found: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            found.extend(int(p) for p in read_small(f"/proc/{pid}/task/{tid}/children").split())
        except OSError:
            continue
    return found


def read_small(path: str) -> bytes:
    """A /proc file in four syscalls (open() with its buffering costs eight: fstat, ioctl, lseeks); the
    leftover sweep reads some at every exit, the resource sampler one per process of the programs'
    trees."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def stat_fields(pid: int) -> list[bytes]:
    """The fields of /proc/<pid>/stat after the command name, so index 0 is field 3 (the state) and
    index n is field n + 3: the name may hold spaces and parentheses, so they are counted from its
    closing parenthesis. OSError when the process is gone."""
    return read_small(f"/proc/{pid}/stat").rsplit(b")", 1)[1].split()


def subtree(root: int) -> list[int]:
    """``root`` and all its descendants, parents before children."""
    order, queue = [], [root]
    while queue:
        pid = queue.pop(0)
        order.append(pid)
        queue.extend(children(pid))
    return order


def token_of(pid: int) -> str | None:
    """The PROCWARD_TREE token in ``pid``'s environment (None if absent or unreadable)."""
    try:
        environ = read_small(f"/proc/{pid}/environ")
    except OSError:
        return None
    for entry in environ.split(b"\0"):
        if entry.startswith(_ENV_PREFIX):
            return entry[len(_ENV_PREFIX):].decode("ascii", "replace")
    return None


_unwatched_children: set[int] | None = None


def _unwatched_this_iteration(exclude: Container[int]) -> set[int]:
    """The daemon's direct children not in ``exclude`` (its programs' main pids), read once per event-loop
    iteration and once per pass of collected exits (callers drop the dead).

    A mass stop handles hundreds of exits in one pass, each asking what it left behind; one read and one
    pass over the children serve them all (a pass per exit made stopping 5000 programs quadratic). It is
    complete for them: the kernel re-parents a dying process's children before its exit can be
    collected, and the exit watcher collects a whole pass before it tells any owner
    (``children_changed``), so the listing is made after every exit it is asked about.
    """
    global _unwatched_children
    if _unwatched_children is None:
        found = {pid for pid in children(os.getpid()) if pid not in exclude}
        try:
            asyncio.get_running_loop().call_soon(children_changed)
        except RuntimeError:  # no loop (tools, tests): nothing would invalidate a cached copy
            return found
        _unwatched_children = found
    return _unwatched_children


def children_changed() -> None:
    """Processes may have been re-parented to the daemon since its children were last listed."""
    global _unwatched_children
    _unwatched_children = None


def adopted(exclude: Container[int]) -> dict[int, str | None]:
    """Processes re-parented to the daemon (not in ``exclude``, its programs' main pids): pid -> token."""
    own = _unwatched_this_iteration(exclude)
    found = {}
    for pid in list(own):
        if pid in exclude:
            continue
        if not _alive(pid):
            own.discard(pid)  # reaped earlier in this iteration: look at it only once
            continue
        found[pid] = token_of(pid)
    return found


def left_behind(token: str, exclude: Container[int]) -> list[int]:
    """Every live process of the tree with ``token`` that the daemon adopted, and their descendants."""
    pids: list[int] = []
    for root, owner in adopted(exclude).items():
        if owner == token:
            pids.extend(p for p in subtree(root) if _alive(p))
    return pids


def _alive(pid: int) -> bool:
    try:
        return stat_fields(pid)[0] != b"Z"
    except (OSError, IndexError):
        return False


async def terminate(pids: Iterable[int], sig: int, grace: float) -> list[int]:
    """Send ``sig`` to each process, SIGKILL those still alive after ``grace`` seconds.

    Returns the pids that needed SIGKILL. Waiting uses the pidfds' readability (exit), not polling.
    """
    loop = asyncio.get_running_loop()
    fds: dict[int, int] = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            fds[pid] = os.pidfd_open(pid)
    try:
        waits = {}
        for pid, fd in fds.items():
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(fd, sig)
            future = loop.create_future()
            loop.add_reader(fd, _done, future)
            waits[pid] = future
        if not waits:
            return []
        _, pending = await asyncio.wait(waits.values(), timeout=grace)
        killed = [pid for pid, fut in waits.items() if fut in pending]
        for pid in killed:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(fds[pid], signal.SIGKILL)
        return killed
    finally:
        for fd in fds.values():
            loop.remove_reader(fd)
            os.close(fd)


def _done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def start_time(pid: int, parent: int | None = None) -> int | None:
    """The process's start time (clock ticks since boot): with the pid, it names one process ever.

    With ``parent``, None unless the process is still that parent's child.
    """
    try:
        fields = stat_fields(pid)
        if parent is not None and int(fields[1]) != parent:
            return None
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


class SpawnRecord:
    """An append-only file of (token, pid, start time) per spawn, kept while the daemon runs.

    If the daemon is SIGKILLed, its programs survive it (re-parented to init). The next daemon reads
    this file and stops every process still carrying a recorded token, or still running under a
    recorded pid with the recorded start time (a recycled pid has another start time), before it
    starts programs again. A clean shutdown removes the file. A program's older spawns are dropped
    when the file is rewritten, which happens once it holds COMPACT_AFTER more lines than programs (a
    program crash-looping for months must not grow it without bound).

    A spawn is written at once with its token and pid; its start time follows in a second line
    START_TIME_DELAY later. Read right after the spawn, /proc/<pid>/stat waits for the child's exec
    to finish (about 0.1 ms a spawn at boot, 10% of starting 1000 programs); read later, for every
    recent spawn at once, it costs a tenth of that. A daemon killed in between still has the token.
    """

    COMPACT_AFTER = 1000
    START_TIME_DELAY = 0.5  # seconds

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None  # the file, open for appends
        self._latest: dict[str, str] = {}  # program -> its latest spawn's line
        self._lines = 0
        self._pending: list[tuple[str, str, int]] = []  # spawns whose start time is not written yet
        self._completion: asyncio.TimerHandle | None = None

    def leftovers(self) -> list[int]:
        """Live processes a previous instance recorded (empty when it shut down cleanly)."""
        try:
            with open(self.path) as handle:
                lines = handle.read().split("\n")
        except OSError:
            return []
        tokens, pids = set(), set()
        for line in lines:
            fields = line.split()
            if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
                tokens.add(fields[0])
                if fields[2] != "0" and start_time(int(fields[1])) == int(fields[2]):
                    pids.add(int(fields[1]))
        me = os.getpid()
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != me and token_of(int(entry)) in tokens:
                pids.add(int(entry))
        return sorted(p for p in pids if _alive(p))

    def open(self) -> None:
        """Start a new record (after leftovers were dealt with)."""
        try:
            self._fd = _append(self.path, truncate=True)
        except OSError as exc:
            log.warning("cannot keep the spawn record %s (%s): processes left by a killed daemon will not "
                        "be found at the next start", self.path, exc.strerror)

    def add(self, program: str, token: str, pid: int) -> None:
        """Record a spawn of ``program`` (pid 0: its token, before a mass start's helper gives the pid)."""
        if self._fd is None:
            return
        self._write(program, f"{token} {pid} 0\n")
        if not pid:
            return  # no start time to look up
        self._pending.append((program, token, pid))
        if self._completion is None:
            self._completion = asyncio.get_running_loop().call_later(self.START_TIME_DELAY, self._add_start_times)

    def _add_start_times(self) -> None:
        self._completion = None
        pending, self._pending = self._pending, []
        for program, token, pid in pending:
            # A spawn that exited since may have had its pid reused by a stranger: only a pid that is
            # still the daemon's child is the spawn itself.
            started = start_time(pid, parent=os.getpid())
            if started is not None and self._fd is not None:
                self._write(program, f"{token} {pid} {started}\n")

    def _write(self, program: str, line: str) -> None:
        assert self._fd is not None
        self._latest[program] = line
        os.write(self._fd, line.encode())  # one system call, no text layer: one a spawn at a mass start
        self._lines += 1
        if self._lines > len(self._latest) + self.COMPACT_AFTER:
            self._compact()

    def _compact(self) -> None:
        tmp = self.path + ".new"
        try:
            with open(tmp, "w") as handle:
                handle.writelines(self._latest.values())
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot compact the spawn record %s (%s)", self.path, exc.strerror)
            return
        assert self._fd is not None
        os.close(self._fd)
        self._fd = _append(self.path)
        self._lines = len(self._latest)

    def close(self, *, remove: bool) -> None:
        if self._completion is not None:
            self._completion.cancel()
            self._completion = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if remove:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


def _append(path: str, *, truncate: bool = False) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | (os.O_TRUNC if truncate else 0),
                   0o666)
