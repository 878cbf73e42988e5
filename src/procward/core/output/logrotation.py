"""What happens to a child log file when it rotates, beyond Supervisor's size rotation into .1 .. .N:
rotation by time, backups named by date, gzip of rotated files off the event loop, a cap on the total
size of the backups.

Compression runs in a worker thread, one job after another per file: the rotated file is first renamed
to a private name (so the program writes on into a new file at once), then the job shifts the older
backups, compresses it into place and applies the cap. Jobs of one file never overlap, so no backup is
renamed while it is being compressed.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os

from procward.config.model import LogRotation
from procward.core.tasks import TaskSet

log = logging.getLogger(__name__)



def next_boundary(every: int, now: float) -> float:
    """When the file opened at ``now`` rotates: hours, days and weeks at their local start (midnight,
    Monday's), other periods counted from ``now``."""
    if every not in (3600, 86400, 7 * 86400):  # hourly, daily, weekly
        return now + every
    local = datetime.datetime.fromtimestamp(now)
    start = local.replace(minute=0, second=0, microsecond=0)
    if every >= 86400:
        start = start.replace(hour=0)
    if every == 7 * 86400:
        start -= datetime.timedelta(days=start.weekday())
    return (start + datetime.timedelta(seconds=every)).timestamp()


def dated_name(path: str, every: int, when: float) -> str:
    """``app.log.2026-11-30`` (daily and longer), ``app.log.2026-11-30_14`` (hourly), a full time
    otherwise; a second file for the same period gets ``.1``, ``.2`` ..."""
    stamp = datetime.datetime.fromtimestamp(when)
    suffix = stamp.strftime("%Y-%m-%d" if every >= 86400 else "%Y-%m-%d_%H" if every == 3600 else
                            "%Y-%m-%d_%H%M%S")
    name, n = f"{path}.{suffix}", 0
    while os.path.exists(name) or os.path.exists(name + ".gz"):
        n += 1
        name = f"{path}.{suffix}.{n}"
    return name


def shift(path: str, backups: int) -> None:
    """Supervisor's shift of ``.1`` .. ``.N`` up by one (compressed ones too); the last falls off."""
    for n in range(backups - 1, 0, -1):
        for ext in ("", ".gz"):
            src = f"{path}.{n}{ext}"
            if os.path.exists(src):
                os.replace(src, f"{path}.{n + 1}{ext}")


def _backups(path: str) -> list[tuple[float, int, str]]:
    """(mtime, size, name) of every finished backup of ``path``."""
    import glob  # here: most daemons never rotate by date or cap backups (startup and memory, see mainlog)

    found = []
    for name in glob.glob(glob.escape(path) + ".*"):
        if ".rotating-" in name or name.endswith(".tmp"):
            continue
        try:
            st = os.stat(name)
        except OSError:
            continue
        found.append((st.st_mtime, st.st_size, name))
    return sorted(found)


def keep_newest(path: str, count: int) -> None:
    """Dated backups: only the newest ``count`` stay (``*_logfile_backups``)."""
    for _, _, name in _backups(path)[:-count]:
        os.unlink(name)


def cap_total(path: str, total: int) -> None:
    """Remove the oldest backups until they add up to at most ``total`` bytes."""
    backups = _backups(path)
    size = sum(entry[1] for entry in backups)
    for _, bytes_, name in backups:
        if size <= total:
            return
        os.unlink(name)
        size -= bytes_
        log.info("removed %s: the backups of %s are capped at %d bytes", name, path, total)


def compress_into(source: str, target: str) -> None:
    """gzip ``source`` into ``target`` (written under a temporary name, then renamed) and remove it."""
    import gzip  # here: only with compress=true (gzip, shutil, bz2 and lzma are ~0.7 MB of every daemon)
    import shutil

    partial = target + ".tmp"
    with open(source, "rb") as raw, gzip.open(partial, "wb", compresslevel=6) as packed:
        shutil.copyfileobj(raw, packed, 1 << 20)
    os.replace(partial, target)
    os.unlink(source)


class Rotator:
    """Finishes rotations of one file off the loop, one after another."""

    def __init__(self, path: str, backups: int, rotation: LogRotation) -> None:
        self.path = path
        self.backups = backups
        self.rotation = rotation
        self._last: asyncio.Task[None] | None = None
        self._tasks: TaskSet | None = None
        self._serial = 0

    def set_aside(self) -> str:
        """A private name to move the full file to at once (the job gives it its final name)."""
        self._serial += 1
        return f"{self.path}.rotating-{os.getpid()}-{self._serial}"

    def finish(self, aside: str, rotated_at: float) -> None:
        """Queue the job that names, compresses and caps ``aside``."""
        previous = self._last
        loop = asyncio.get_running_loop()
        if self._tasks is None:
            self._tasks = TaskSet(loop, f"rotation of {self.path}")

        async def job() -> None:
            if previous is not None:
                await asyncio.shield(previous)
            try:
                await loop.run_in_executor(None, self._finish, aside, rotated_at)
            except OSError as exc:
                log.error("could not finish rotating %s: %s", self.path, exc.strerror or exc)  # noqa: TRY400 - a disk problem, not a bug

        self._last = self._tasks.start(job(), "finish")

    def _finish(self, aside: str, rotated_at: float) -> None:
        rotation = self.rotation
        if self.backups == 0:  # Supervisor's backups=0: nothing is kept
            os.unlink(aside)
            return
        if rotation.by_date:
            target = dated_name(self.path, rotation.every or 86400, rotated_at)
        else:
            shift(self.path, self.backups)
            target = f"{self.path}.1"
        if rotation.compress:
            compress_into(aside, target + ".gz")
        else:
            os.replace(aside, target)
        if rotation.by_date:
            keep_newest(self.path, self.backups)
        if rotation.total_maxbytes:
            cap_total(self.path, rotation.total_maxbytes)

    async def wait(self) -> None:
        """Wait for the queued jobs (the file is being closed for good)."""
        if self._tasks is not None:
            await self._tasks.wait()

