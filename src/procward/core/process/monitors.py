"""Monitors that run while a process is RUNNING: memory_limit and file watching.

Each is a coroutine the Process starts when it enters RUNNING and cancels when it leaves, so programs
without these options cost nothing and an idle daemon stays idle.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import signal
from collections.abc import Coroutine, Iterator
from typing import TYPE_CHECKING, Any

from procward.core import tree
from procward.core.events import Event
from procward.core.process.counters import RestartReason
from procward.core.spawn import SpawnError, resolve

if TYPE_CHECKING:
    from procward.core.process.lifecycle import Process

log = logging.getLogger(__name__)

MEMORY_INTERVAL = 5.0  # seconds between RSS samples of a program with memory_limit
CHANGE_COMMAND_TIMEOUT = 60  # seconds a restart_cmd_when_*_changed command may run


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


def _targets(process: Process) -> tuple[list[str], Any, set[str]]:
    """Directories to watch, a filter for the changes that matter, and the executable's real path."""
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

    return directories, wanted, files


async def watch_files(process: Process) -> None:
    import watchfiles  # imported on first use: most configurations never need it

    directories, wanted, binary = _targets(process)
    watch = process.config.watch
    assert watch is not None
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
        if any(os.path.realpath(path) in binary for path in paths):
            sig, command = watch.binary_signal, watch.binary_cmd
        else:
            sig, command = watch.file_signal, watch.file_cmd
        if sig is not None:
            _signal_for_change(process, sig, detail)
        elif command is not None:
            await _run_change_command(process, command, detail)
        else:
            process.restart(detail, RestartReason.FILE_CHANGE)
            return


def _signal_for_change(process: Process, sig: int, detail: str) -> None:
    """restart_signal_when_*_changed: the signal instead of the restart (a program that reloads on HUP)."""
    from procward.core.process.lifecycle import NotRunning

    try:
        process.signal(sig)
    except NotRunning:
        log.info("%s %s; not running, so not signalled", process.namespec, detail)
        return
    log.info("%s %s; sent %s", process.namespec, detail, signal.Signals(sig).name)


async def _run_change_command(process: Process, command: str, detail: str) -> None:
    """restart_cmd_when_*_changed: the command instead of the restart, through the shell, in the program's
    directory; its output goes to the daemon's log. The watcher waits for it (bounded), so two changes
    never run two copies at once."""
    log.info("%s %s; running %r", process.namespec, detail, command)
    child = await asyncio.create_subprocess_shell(command, stdin=asyncio.subprocess.DEVNULL,
                                                  stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                                                  cwd=process.config.directory, start_new_session=True)
    try:
        output, _ = await asyncio.wait_for(child.communicate(), CHANGE_COMMAND_TIMEOUT)
    except TimeoutError:
        child.kill()  # its own session: only the command's process, never the daemon's group
        await child.wait()
        log.warning("%s: %r still running after %d s: killed", process.namespec, command, CHANGE_COMMAND_TIMEOUT)
        return
    text = output.decode("utf-8", "replace").strip()[-2000:]
    level = logging.INFO if child.returncode == 0 else logging.WARNING
    log.log(level, "%s: %r exited %s%s", process.namespec, command, child.returncode, f": {text}" if text else "")
