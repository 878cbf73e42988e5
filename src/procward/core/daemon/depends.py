"""``depends_on``: a start waits until every process it depends on is ready (RUNNING, and healthy when it
has a health check), starting the stopped ones first. While it waits the process is HELD: its description
says what it waits for, and a stop calls the start off. Shutdown stops dependents before what they depend
on (``depth``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from procward.config.beyond import dependency_targets
from procward.config.model import GroupConfig
from procward.core.process.lifecycle import Process
from procward.core.states import RUNNING_STATES, ProcessState
from procward.core.tasks import TaskSet

Lookup = Callable[[str], "Process | None"]


def why_not_ready(process: Process) -> str:
    """What a held start tells about one dependency: ``db (STARTING)``, ``db (unhealthy)``."""
    if process.state == ProcessState.RUNNING and process.health:
        return f"{process.namespec} ({process.health})"
    return f"{process.namespec} ({process.state.name})"


class StartGate:
    """The starts that wait for their dependencies, one task each, owned here."""

    def __init__(self, loop: asyncio.AbstractEventLoop, groups: Callable[[], Iterable[GroupConfig]],
                 lookup: Lookup) -> None:
        self._groups = groups  # the active groups' configurations
        self._lookup = lookup  # namespec -> the active process, or None
        self._held: dict[Process, asyncio.Task[None]] = {}
        self._tasks = TaskSet(loop, "depends_on")

    def __contains__(self, process: object) -> bool:
        """Whether ``process``'s start is waiting for its dependencies."""
        return process in self._held

    def held(self) -> list[Process]:
        """The processes whose start is waiting."""
        return list(self._held)

    def dependencies(self, process: Process) -> list[Process]:
        """The processes ``process`` depends on, among the active groups."""
        configs = list(self._groups())
        found: list[Process] = []
        for name in process.config.depends_on:
            for spec in dependency_targets(name, configs):
                dep = self._lookup(spec)
                if dep is not None and dep is not process and dep not in found:
                    found.append(dep)
        return found

    def depth(self, process: Process, seen: frozenset[Process] = frozenset()) -> int:
        """0 without dependencies, else one more than the deepest dependency (configs have no cycles)."""
        deps = [d for d in self.dependencies(process) if d not in seen]
        return 1 + max((self.depth(d, seen | {process}) for d in deps), default=-1)

    def start(self, process: Process) -> None:
        """Start ``process`` now, or once its dependencies are ready."""
        if not process.config.depends_on:
            process.start()
            return
        task = self._tasks.start(self._start_when_ready(process), process.namespec)
        self._held[process] = task
        task.add_done_callback(lambda _: self._held.pop(process, None))

    async def wait(self, process: Process) -> None:
        """Until ``process``'s held start has gone ahead or was called off (at once if none)."""
        held = self._held.get(process)
        if held is not None:
            await asyncio.shield(held)

    def cancel(self, process: Process) -> bool:
        """Call off a start that waits for dependencies; True if there was one."""
        task = self._held.pop(process, None)
        if task is None:
            return False
        task.cancel()
        return True

    async def aclose(self) -> None:
        """Call off every held start and wait for their tasks."""
        await self._tasks.aclose()

    async def _start_when_ready(self, process: Process) -> None:
        deps = self.dependencies(process)
        for dep in deps:
            if dep.state in (ProcessState.STOPPED, ProcessState.EXITED) and dep not in self._held \
                    and not dep.restart_pending:
                self.start(dep)
        try:
            while not all(dep.ready for dep in deps):
                blocked = [dep for dep in deps if not dep.ready]
                process.hold("waiting for " + ", ".join(why_not_ready(dep) for dep in blocked))
                waits = [dep.changes.wait() for dep in blocked]
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waits:
                    waiter.cancel()
        finally:
            process.release()
        if process.state not in RUNNING_STATES and process.state != ProcessState.STOPPING:
            process.start()
