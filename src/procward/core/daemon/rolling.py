"""Rolling restarts: the processes of a program (numprocs > 1) or a group, one at a time, the next only
once the restarted one is ready (its health check passes, or READY=1 for notify programs, else RUNNING),
stopping at the first that is not, with the ones not yet restarted still serving."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from procward.core.process.lifecycle import Process
from procward.core.states import RUNNING_STATES, STOPPED_STATES, ProcessState
from procward.errors import ProcwardError

log = logging.getLogger(__name__)
_GAVE_UP = (ProcessState.BACKOFF, ProcessState.FATAL, ProcessState.EXITED, ProcessState.STOPPED)


class RollStopped(ProcwardError):
    """A restarted process did not become ready: the roll stopped there."""


def ready_limit(process: Process) -> float:
    """How long a process may take to become ready: startsecs (or ready_timeout for notify) plus what its
    health check needs to pass (initial delay, start period, one interval per success, the probe's bound)."""
    config = process.config
    limit = float(config.ready_timeout if config.notify else config.startsecs)
    check = config.healthcheck
    if check is not None:
        limit += check.initial_delay + check.start_period + check.successes * (check.interval + check.timeout)
    return limit + 5.0


async def wait_ready(process: Process, limit: float) -> bool:
    """True once ``process`` is ready; False when it gives up first (BACKOFF, FATAL, EXITED, STOPPED)
    or after ``limit`` seconds."""
    async def until() -> bool:
        while not process.ready:
            if process.state in _GAVE_UP:
                return False
            await process.changes.wait()
        return True

    try:
        return await asyncio.wait_for(until(), limit)
    except TimeoutError:
        return False


async def roll(processes: Sequence[Process], start: Callable[[Process], None], limit: float | None = None
               ) -> list[str]:
    """Restart ``processes`` in order, each ready before the next; the namespecs restarted. RollStopped
    names the one that did not become ready and those left running untouched."""
    done: list[str] = []
    for index, process in enumerate(processes):
        log.info("rolling restart: %s (%d of %d)", process.namespec, index + 1, len(processes))
        if process.state in RUNNING_STATES:
            process.stop()
            await process.wait_state(STOPPED_STATES)
        start(process)
        within = ready_limit(process) if limit is None else limit
        if not await wait_ready(process, within):
            left = [p.namespec for p in processes[index + 1:]]
            why = process.spawnerr or f"state {process.state.name}, health {process.health or 'none'}"
            message = (f"{process.namespec} did not become ready within {within:g}s ({why}): rolling restart "
                       f"stopped" + (f"; not restarted, still running: {', '.join(left)}" if left else ""))
            log.error("%s", message)
            raise RollStopped(message)
        done.append(process.namespec)
    log.info("rolling restart done: %s", ", ".join(done))
    return done
