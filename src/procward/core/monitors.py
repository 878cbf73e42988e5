"""Monitors that run while a process is RUNNING: memory_limit and file watching.

Each is a coroutine the Process starts when it enters RUNNING and cancels when it leaves, so programs
without these options cost nothing and an idle daemon stays idle.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import sys
from collections.abc import Coroutine, Iterator
from typing import TYPE_CHECKING, Any

from procward.core import tree
from procward.core.counters import RestartReason
from procward.core.events import Event
from procward.core.spawn import SpawnError, resolve

if TYPE_CHECKING:
    from procward.core.process import Process

log = logging.getLogger(__name__)

MEMORY_INTERVAL = 5.0  # seconds between RSS samples of a program with memory_limit


def while_running(process: Process) -> Iterator[tuple[str, Coroutine[Any, Any, None]]]:
    """The monitors this process's configuration asks for, each with its job's name."""
    if process.config.memory_limit:
        yield "memory_limit", watch_memory(process)
    if process.config.watch is not None:
        yield "file watch", watch_files(process)


def tree_rss(process: Process) -> int:
    """Resident memory of the process and every descendant (including ones it left to the daemon)."""
    import psutil  # imported on first use: most configurations never need it

    pids = set(tree.subtree(process.pid)) if process.pid else set()
    pids.update(tree.left_behind(process.token, process.rt.exits.watched))
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.Error:
            continue
    return total


async def watch_memory(process: Process) -> None:
    limit = process.config.memory_limit
    while True:
        await asyncio.sleep(MEMORY_INTERVAL)
        rss = tree_rss(process)
        if rss > limit:
            detail = f"rss {rss} > memory_limit {limit}"
            log.warning("%s uses %d bytes (memory_limit %d)", process.namespec, rss, limit)
            process.rt.bus.publish(Event("PROCWARD_MEMORY_LIMIT", f"processname:{process.name} "
                                         f"groupname:{process.group} pid:{process.pid}\n{detail}"))
            process.restart(detail, RestartReason.MEMORY_LIMIT)
            return


def _targets(process: Process) -> tuple[list[str], Any]:
    """Directories to watch and a filter for the changes that matter."""
    watch = process.config.watch
    assert watch is not None
    files: set[str] = set()
    directories: list[str] = []
    if watch.binary:
        try:
            filename, _ = resolve(process.config)
        except SpawnError:
            filename = ""
        if filename:
            files.add(os.path.realpath(filename))
            directories.append(os.path.dirname(os.path.realpath(filename)))
    if watch.directory:
        directories.append(watch.directory)

    def wanted(_change: Any, path: str) -> bool:
        if os.path.realpath(path) in files:
            return True
        if watch.directory and path.startswith(watch.directory.rstrip("/") + "/"):
            return fnmatch.fnmatch(os.path.basename(path), watch.pattern)
        return False

    return directories, wanted


async def watch_files(process: Process) -> None:
    # The daemon keeps OpenSSL out (see cli.run_daemon); anyio, under watchfiles, imports ssl
    # unconditionally, so it is let in once a program asks for file watching.
    if "ssl" in sys.modules and sys.modules["ssl"] is None:
        del sys.modules["ssl"]
    import watchfiles  # imported on first use: most configurations never need it

    directories, wanted = _targets(process)
    existing = [d for d in directories if os.path.isdir(d)]
    if not existing:
        log.warning("%s: nothing to watch (%s missing)", process.namespec, ", ".join(directories))
        return
    async for changes in watchfiles.awatch(*existing, watch_filter=wanted, debounce=200, step=50,
                                           recursive=True):
        paths = sorted({path for _, path in changes})
        detail = f"changed: {', '.join(paths[:5])}"
        process.rt.bus.publish(Event("PROCWARD_FILE_CHANGED", f"processname:{process.name} "
                                     f"groupname:{process.group} pid:{process.pid}\n{detail}"))
        process.restart(detail, RestartReason.FILE_CHANGE)
        return
