"""Resource use of each program's process tree: CPU seconds (counting on across restarts), CPU percent,
resident memory, open descriptors, processes in the tree.

One pass over the programs' process trees in /proc gives all of them at once; it runs in a worker
thread, so the event loop never waits on /proc. Nothing runs while nobody asks: a reader gets the last sample and, when
that is older than MAX_AGE, starts one fresh sample for the next reader (stale-while-revalidate), so a
scrape or a status call is answered at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from procward.core import tree
from procward.core.tasks import TaskSet

log = logging.getLogger(__name__)

# Seconds a sample serves before a reader asks for a fresh one. A scan costs ~20 us per process of the
# programs' trees in a worker thread: a client polling status many times a second must not make the
# daemon scan that often.
MAX_AGE = 5.0
# Samples kept per process for the web page's charts: 10 minutes at one sample every MAX_AGE. Compact
# arrays aligned on one shared list of times: ~1 KB a process.
HISTORY = 120


@dataclass(frozen=True, slots=True)
class Usage:
    """One program's tree at the last sample."""

    cpu_seconds_total: float  # every run of the program so far, the current tree's included
    cpu_percent: float  # of one CPU, since the sample before
    rss_bytes: int
    open_fds: int
    processes: int


@dataclass(slots=True)
class _Track:
    pid: int = 0
    tree_cpu: float = 0.0  # the current tree's CPU at the last sample
    banked: float = 0.0  # CPU of the program's earlier trees
    at: float = 0.0


_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> tuple[float, int] | None:
    """(CPU seconds, resident bytes) of one process from /proc/<pid>/stat; None when it is gone."""
    try:
        fields = tree.stat_fields(pid)
    except OSError:
        return None
    # utime, stime are fields 14, 15; rss (pages) is 24
    return (int(fields[11]) + int(fields[12])) / _TICKS, int(fields[21]) * _PAGE


def _fds(pid: int) -> int:
    try:
        # Since Linux 6.2 the size of /proc/<pid>/fd is the number of open descriptors: one stat()
        # instead of listing them.
        size = os.stat(f"/proc/{pid}/fd").st_size
        return size if size else len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def _scan(roots: dict[str, int]) -> dict[str, tuple[float, int, int, int]]:
    """(cpu seconds, rss, fds, processes) of the tree under each root pid; runs in a worker thread.

    Only the daemon's own trees are read (each process's stat, its descriptor count and its children
    lists in /proc), never the rest of the host: the cost follows the programs, not the machine. At
    5000 programs this is ~0.1 s of a worker thread where psutil's pass over every process took 0.4 s
    (most of it in Python objects while holding the interpreter lock the RPC loop needs).
    """
    result = {}
    for name, root in roots.items():
        cpu = 0.0
        rss = fds = count = 0
        stack = [root]
        while stack:
            pid = stack.pop()
            figures = _stat(pid)
            if figures is None:
                continue
            cpu += figures[0]
            rss += figures[1]
            fds += _fds(pid)
            count += 1
            stack.extend(tree.children(pid))
        result[name] = (cpu, rss, fds, count)
    return result


class UsageSampler:
    """The last sample of every program's tree, refreshed on demand."""

    def __init__(self, loop: asyncio.AbstractEventLoop, roots: Callable[[], Iterable[tuple[str, int]]]) -> None:
        self._roots = roots  # (namespec, pid) of every process; pid 0 when it is not running
        self._latest: dict[str, Usage] = {}
        self._tracks: dict[str, _Track] = {}
        self._taken = 0.0
        self._tasks = TaskSet(loop, "resource use")
        self._running: asyncio.Task[None] | None = None
        self.times: deque[float] = deque(maxlen=HISTORY)  # Unix time of each of the kept samples
        self._cpu: dict[str, array[float]] = {}  # per process, aligned on the end of ``times``
        self._rss: dict[str, array[int]] = {}  # KiB

    def history(self, name: str, last: int = HISTORY) -> list[tuple[float, float, int]]:
        """(Unix time, CPU %, resident KiB) of ``name``'s last ``last`` samples, oldest first."""
        cpu, rss = self._cpu.get(name), self._rss.get(name)
        if cpu is None or rss is None:
            return []
        count = min(last, len(cpu))
        times = list(self.times)[-count:] if count else []
        return list(zip(times, cpu[len(cpu) - count:], rss[len(rss) - count:], strict=True))

    async def refresh(self) -> None:
        """Take a sample now (the web page's charts, while one is open), or wait for the one under way."""
        if self._running is None:
            self._running = self._tasks.start(self._sample(), "sample")
        await asyncio.shield(self._running)

    def get(self, name: str) -> Usage | None:
        """The last sample of ``name`` (None before the first); asks for a fresh one when it is old."""
        self._refresh_if_old()
        return self._latest.get(name)

    def latest(self) -> dict[str, Usage]:
        """Every program's last sample (empty before the first); asks for a fresh one when it is old."""
        self._refresh_if_old()
        return self._latest

    async def current(self) -> dict[str, Usage]:
        """Every program's last sample; waits only for the very first one."""
        if not self._taken:
            await self._sample()
        else:
            self._refresh_if_old()
        return self._latest

    def _refresh_if_old(self) -> None:
        if self._running is None and time.monotonic() - self._taken > MAX_AGE:
            self._running = self._tasks.start(self._sample(), "sample")

    async def _sample(self) -> None:
        roots = {name: pid for name, pid in self._roots()}
        try:
            scanned = await asyncio.get_running_loop().run_in_executor(
                None, _scan, {name: pid for name, pid in roots.items() if pid})
        except Exception:  # a boundary: a failed sample leaves the last one in place
            log.exception("sampling process resource use failed")
            return
        finally:
            self._running = None
        now = time.monotonic()
        latest = {}
        for name, pid in roots.items():
            track = self._tracks.setdefault(name, _Track())
            cpu, rss, fds, count = scanned.get(name, (0.0, 0, 0, 0))
            if pid != track.pid:  # a new run (or none): the old tree's CPU is banked
                track.banked += track.tree_cpu
                track.pid, track.tree_cpu = pid, 0.0
            before = track.banked + track.tree_cpu
            track.tree_cpu = max(cpu, track.tree_cpu)  # a child that exits takes its CPU along
            total = track.banked + track.tree_cpu
            elapsed = now - track.at if track.at else 0.0
            percent = 100 * (total - before) / elapsed if elapsed > 0 else 0.0
            track.at = now
            latest[name] = Usage(total, round(percent, 1), rss, fds, count)
        self._latest = latest
        self._taken = now
        self._keep(latest)

    def _keep(self, latest: dict[str, Usage]) -> None:
        self.times.append(time.time())
        for name in [n for n in self._cpu if n not in latest]:  # removed processes
            del self._cpu[name], self._rss[name]
        for name, use in latest.items():
            cpu = self._cpu.setdefault(name, array("f"))
            rss = self._rss.setdefault(name, array("L"))
            cpu.append(use.cpu_percent)
            rss.append(use.rss_bytes // 1024)
            if len(cpu) > HISTORY:
                del cpu[0], rss[0]

    async def aclose(self) -> None:
        """Wait for a sample under way (shutdown)."""
        await self._tasks.aclose()
