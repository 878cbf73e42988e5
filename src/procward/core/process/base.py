"""What one supervised process is, and what can be asked of it without moving it: its configuration and
live fields, the queries (sub-state, readiness, health), a start held for depends_on, waiting for a
state, and its one pending timer. The transitions that move it, and the only writer of its state, are
Process's (lifecycle.py); the fields are the two classes' alone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from procward.config.model import ProcessConfig
from procward.core.events import Notifier
from procward.core.output.channels import ProcessOutput
from procward.core.process.counters import ProcessCounters
from procward.core.process.fcgi import FcgiSocket
from procward.core.process.health import Health, HealthMonitor
from procward.core.process.history import History
from procward.core.process.leftovers import Leftovers
from procward.core.process.notifysocket import Readiness
from procward.core.process.restarts import Restarts
from procward.core.process.stdin import Stdin
from procward.core.runtime import Runtime
from procward.core.spawn import Spawned
from procward.core.states import Detail, ProcessState
from procward.core.tasks import TaskSet
from procward.protocol import namespec

if TYPE_CHECKING:
    from procward.core.massspawn import Request
    from procward.core.process.lifecycle import Process

S = ProcessState


class ProcessBase:
    """One supervised process's configuration, live fields and queries; Process adds the transitions."""

    # Slots: a daemon holds thousands of these (a __dict__ costs ~1.5 KB more each).
    __slots__ = ("_following", "_hook", "_killing", "_later_signals", "_pending", "_readiness", "_restart_requested",
                 "_spawned", "_stdin", "_timer", "_waiters", "_while_running", "backoff", "changes", "config",
                 "counters", "exitstatus", "group", "health_monitor", "history", "laststart", "laststop", "leftovers",
                 "observers", "once", "output", "pid", "restarts", "rt", "spawnerr", "starts", "state",
                 "status_text", "stdin_socket", "tasks", "token", "waiting")

    def __init__(self, config: ProcessConfig, group: str, rt: Runtime, *,
                 stdin_socket: FcgiSocket | None = None) -> None:
        self.config = config
        self.stdin_socket = stdin_socket  # an fcgi-program's listening socket, given as fd 0
        self.group = group
        self.rt = rt
        self.state = S.STOPPED
        self.pid = 0
        self.laststart = 0.0
        self.laststop = 0.0
        self.exitstatus = 0
        self.spawnerr = ""
        self.backoff = 0
        self.starts = 0  # spawns over the process's life (the web UI shows starts - 1 as restarts)
        self.history = History()  # the last state changes and exits (the process page)
        self._killing = False
        self._later_signals: list[int] = []  # the rest of a stopsignal list, during a stop
        self._timer: asyncio.TimerHandle | None = None
        self._spawned: Spawned | None = None
        self._pending: Request | None = None  # the spawn a mass start's helper is making (sub-state SPAWNING)
        self._stdin: Stdin | None = None
        self._waiters: list[tuple[frozenset[ProcessState], asyncio.Future[ProcessState]]] = []
        self.output = ProcessOutput(config, group, rt.loop, rt.bus, identifier=rt.identifier,
                                    childlogdir=rt.childlogdir, strip_ansi=rt.strip_ansi, echo=rt.echo_output)
        # Event listener pools follow state changes through these.
        self.observers: list[Callable[[Process, ProcessState, ProcessState], None]] = []
        self.changes = Notifier(rt.loop)  # state or health changed (depends_on waits on this)
        self.token = ""  # PROCWARD_TREE of the current spawn: how its descendants are recognised
        self.status_text = ""  # sd_notify STATUS=
        self.waiting = ""  # why a requested start is held back (depends_on); written by hold()/release()
        # "Up once" (supervise's o): an exit after RUNNING is not restarted, whatever autorestart says,
        # until a stop or the mode is called off (supervise's u or d).
        self.once = False
        self.tasks = TaskSet(rt.loop, self.namespec)  # every task of this process, awaited by aclose()
        # Monitors that live while RUNNING (memory, files, health): cancelled when it leaves RUNNING.
        self._while_running = TaskSet(rt.loop, self.namespec)
        self.health_monitor: HealthMonitor | None = None  # Process makes it (its reactions need the Process)
        self.leftovers = Leftovers(config, rt.loop, rt.exits, self.namespec)
        self._readiness: Readiness | None = None  # Process makes it (notify=true): its callbacks are transitions
        self._restart_requested = ""  # why the process is being stopped to start again
        self.restarts = Restarts(config.policy)
        self.counters = ProcessCounters()
        self._following = False  # the pid is a daemon named by the pidfile, not the spawned command
        self._hook: asyncio.Task[None] | None = None  # the pre_start_hook of the start under way

    @property
    def name(self) -> str:
        """The process name (``process_name`` expanded)."""
        return self.config.name

    @property
    def namespec(self) -> str:
        """``group:name``, or ``name`` when the group is the program itself."""
        return namespec(self.group, self.name)

    @property
    def health(self) -> Health:
        """Health.NONE without a health check or while not RUNNING, else the check's verdict."""
        return self.health_monitor.health if self.health_monitor else Health.NONE

    @property
    def ready(self) -> bool:
        """RUNNING (after READY=1 for notify programs) and, with a health check, healthy."""
        return self.state == S.RUNNING and (self.health_monitor is None or self.health == Health.HEALTHY)

    @property
    def restart_pending(self) -> bool:
        """Stopped or exited with a timed restart ahead (restartpause, exponential backoff)."""
        return self.state in (S.EXITED, S.STOPPED) and self._timer is not None

    @property
    def detail(self) -> Detail:
        """The sub-state (see core/states.py): which edge the next event takes."""
        if self.waiting:
            return Detail.HELD
        if self.state == S.STOPPING:
            return Detail.RESTART_SIGNALLED if self._restart_requested else Detail.STOP_SIGNALLED
        if self.state in (S.STARTING, S.RUNNING):
            if not self.pid:
                if self._pending is not None:
                    return Detail.SPAWNING
                return Detail.HOOK if self._hook is not None else Detail.PIDFILE_WAIT
            return Detail.FOLLOWING if self._following else Detail.NONE
        return Detail.RESTART_PENDING if self.restart_pending else Detail.NONE

    @property
    def wants_autostart(self) -> bool:
        """True for an autostart process that was never started (boot, or its group just added)."""
        return self.config.autostart and self.state == S.STOPPED and not self.laststart

    # ---- requests: called by the Supervisor on behalf of RPC, signals and boot ----

    def hold(self, reason: str) -> None:
        """A start request waits for depends_on (sub-state HELD); ``reason`` becomes the description."""
        self.waiting = reason

    def release(self) -> None:
        """The held start goes ahead or is called off."""
        self.waiting = ""

    async def wait_state(self, states: Iterable[ProcessState]) -> ProcessState:
        """Return the state once the process is in one of ``states`` (now or later)."""
        wanted = frozenset(states)
        if self.state in wanted:
            return self.state
        future: asyncio.Future[ProcessState] = self.rt.loop.create_future()
        self._waiters.append((wanted, future))
        return await future

    async def settle(self) -> None:
        """Wait for background work to finish (stopping what the process left behind)."""
        await self.tasks.wait()
        await self.leftovers.wait()

    def _schedule(self, delay: float, callback: Callable[..., None], *args: Any) -> None:
        """The process's one pending timer (startsecs, backoff, stop timeout, ...) replaces any other:
        a stale one left running would act on the next spawn."""
        self._cancel_timer()
        self._timer = self.rt.loop.call_later(delay, callback, *args)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

