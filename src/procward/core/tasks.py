"""TaskSet: the tasks one owner starts. Each is named after its owner and its job, a failure is logged
with that name, and closing the set cancels what is left and awaits it (trio's rule: every task has a
parent that waits for it). No task of the daemon is started any other way."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class TaskSet:
    """Tasks started for one owner (a process, the supervisor's depends_on holds, a health monitor)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, owner: str) -> None:
        self._loop = loop
        self.owner = owner
        # A dict as an ordered set: an empty one costs 64 bytes, a set 216 (three TaskSets a process).
        self._tasks: dict[asyncio.Task[Any], None] = {}

    def start(self, coroutine: Coroutine[Any, Any, Any], job: str) -> asyncio.Task[Any]:
        """Run ``coroutine`` as a task named ``owner: job``, kept until it ends."""
        task = self._loop.create_task(coroutine, name=f"{self.owner}: {job}")
        self._tasks[task] = None
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.pop(task, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("task %s failed: %s: %s", task.get_name(), type(exc).__name__, exc,
                      exc_info=(type(exc), exc, exc.__traceback__))

    def __len__(self) -> int:
        return len(self._tasks)

    async def wait(self) -> None:
        """Wait until every task has ended by itself."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def cancel(self) -> None:
        """Ask every task to end; ``aclose`` waits for them."""
        for task in list(self._tasks):
            task.cancel()

    async def aclose(self) -> None:
        """Cancel every task and wait until each has ended."""
        self.cancel()
        await self.wait()
