"""Nothing left behind: when a program's main process exits, what it left running (processes carrying
its PROCWARD_TREE token, and their children) gets its stopsignal, then SIGKILL after stopwaitsecs."""

from __future__ import annotations

import asyncio
import logging
import signal

from procward.config.model import ProcessConfig
from procward.core import tree
from procward.core.exits import ExitWatcher
from procward.core.tasks import TaskSet

log = logging.getLogger(__name__)
LATE_SWEEP = 0.2  # seconds after an exit when what the process left behind is looked for once more


class Leftovers:
    """The sweeps of one program's leftovers. Their tasks are their own: tearing the program down
    (reload, update, remove, shutdown) waits for them instead of cancelling them, so nothing it left
    escapes because its group went away."""

    def __init__(self, config: ProcessConfig, loop: asyncio.AbstractEventLoop, exits: ExitWatcher,
                 owner: str) -> None:
        self.config = config
        self._exits = exits
        self._tasks = TaskSet(loop, owner)
        # Being stopped already: a later sweep leaves them be. A dict as a set: 64 bytes empty, not 216.
        self._terminating: dict[int, None] = {}
        self._late: asyncio.Task[None] | None = None
        self._late_token = ""  # the spawn the pending late sweep looks for

    @property
    def busy(self) -> bool:
        """True while what a sweep found is being stopped (a reexec waits for that; a pending late sweep
        it does not wait for)."""
        return bool(self._terminating)

    def sweep(self, token: str) -> bool:
        """Stop what the spawn with ``token`` left behind; True if anything was found now."""
        # Look again shortly: a descendant caught in the middle of an exec has no readable environment
        # (so no token) for that instant, and one may still be forking.
        if self._late is not None:
            self._late.cancel()
        self._late_token = token
        self._late = self._tasks.start(self._sweep_late(), "late leftover sweep")
        return self._stop(token)

    async def _sweep_late(self) -> None:
        await asyncio.sleep(LATE_SWEEP)
        self._sweep_late_now()

    def _sweep_late_now(self) -> None:
        self._late = None
        self._stop(self._late_token)

    def _stop(self, token: str) -> bool:
        left = [p for p in tree.left_behind(token, self._exits.watched) if p not in self._terminating]
        if not left:
            return False
        log.info("%s left %d process(es) behind (pids %s); sending them signal %s", self.config.name, len(left),
                 ", ".join(map(str, left)), signal.Signals(self.config.stopsignal).name)
        self._terminating.update(dict.fromkeys(left))
        self._tasks.start(self._terminate(left), "stop leftovers")
        return True

    async def _terminate(self, pids: list[int]) -> None:
        try:
            killed = await tree.terminate(pids, self.config.stopsignal, self.config.stopwaitsecs)
        finally:
            for pid in pids:
                self._terminating.pop(pid, None)
        if killed:
            log.warning("killed leftover descendants of %s with SIGKILL: %s", self.config.name,
                        ", ".join(map(str, killed)))

    async def wait(self) -> None:
        """Sweep once more now (the pending late sweep, without waiting for its time: the daemon is tearing
        down or shutting down, and the children listing is fresh), then wait for what the sweeps found to
        be gone (at most stopwaitsecs, then SIGKILL)."""
        if self._late is not None:
            self._late.cancel()
            self._sweep_late_now()
        await self._tasks.wait()

    async def aclose(self) -> None:
        """The program is being torn down: finish sweeping (not cancelled), then release."""
        await self.wait()
