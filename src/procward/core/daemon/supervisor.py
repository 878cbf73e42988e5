"""The Supervisor: owns the process groups, boots them in priority order, stops them in reverse,
applies configuration changes, and runs the daemon until it is told to shut down.

Outer layers (the RPC namespace, the HTTP server) call the small set of methods here; this module
knows nothing of them. They are started through the ``Service`` protocol.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import shlex
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from procward.config.diff import ConfigDiff, diff
from procward.config.model import Config, GroupConfig, GroupKind, HealthKind, Script
from procward.core.daemon import handover
from procward.core.daemon.cron import CronStarts
from procward.core.daemon.depends import StartGate
from procward.core.daemon.exitrules import ExitRules
from procward.core.daemon.group import ProcessGroup
from procward.core.daemon.listeners import EventHub
from procward.core.daemon.systemd import SystemdNotifier
from procward.core.daemon.usage import UsageSampler
from procward.core.events import Event, EventBus
from procward.core.exits import ExitWatcher
from procward.core.heldsockets import HeldSockets
from procward.core.massspawn import MassSpawner
from procward.core.process import health
from procward.core.process.lifecycle import AlreadyStarted, Process
from procward.core.runtime import Runtime
from procward.core.spawn import resolve, spawn
from procward.core.states import RUNNING_STATES, STOPPED_STATES, ProcessState, SupervisorState
from procward.core.tasks import TaskSet
from procward.core.tree import SpawnRecord
from procward.errors import ConfigError, ProcwardError
from procward.protocol import split_namespec

if TYPE_CHECKING:
    from procward.core.alarms.rules import Alarms

log = logging.getLogger(__name__)

# The daemon's own signals (_on_signal); SIGCHLD is the ExitWatcher's.
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)

# Boot spawns for at most this long between yields to the loop. A request needs several loop
# iterations (accept, connection, read, answer), so this slice bounds how long the first RPC waits
# while 1000s of programs start; and a client polling getAllProcessInfo through the boot is answered
# once a slice at most, so a longer slice finishes the boot sooner. 500 programs polled every 10 ms
# (bench S1): 4 ms gave the first answer at 0.19 s and all RUNNING at 0.62-0.65 s, 8 ms 0.23 s and
# 0.58-0.61 s, 16 ms 0.29-0.31 s and 0.55-0.59 s.
_BOOT_SLICE = 0.008
_WAIT_REPORT = 3.0  # seconds between "waiting for ... to die" lines, as supervisord
SHUTDOWN_KILL_GRACE = 10.0  # seconds a process gets after its stopwaitsecs (and SIGKILL) before shutdown gives up


class BadName(ProcwardError):
    """No process or group of that name."""


class AlreadyAdded(ProcwardError):
    """The group is already active."""


class StillRunning(ProcwardError):
    """The group still has processes that are not stopped."""


class CantReread(ProcwardError):
    """The configuration could not be read again."""


class Failed(ProcwardError):
    """The operation failed for a reason given in the message."""


class Service(Protocol):
    """Something the daemon runs beside the groups (the HTTP server).

    ``bind`` opens what must be open before the daemon says it has started (listening sockets); it
    raises at the first start and returns its errors as lines to log at a restart. ``start`` runs after
    the groups exist, ``stop`` after they are stopped (at each restart too), ``close`` once at exit.
    """

    def bind(self, config: Config) -> list[str]: ...

    async def start(self, supervisor: Supervisor) -> None: ...

    async def stop(self) -> None: ...

    def close(self) -> None: ...

    def handover(self) -> dict[str, int]: ...

    def adopt(self, fds: dict[str, int]) -> None: ...


ConfigLoader = Callable[[], Config]


def _stop_bound(process: Process) -> float:
    """How long shutdown waits for a process: every stop signal's stopwaitsecs, then the SIGKILL's grace."""
    cfg = process.config
    grace = SHUTDOWN_KILL_GRACE if cfg.killwaitsecs is None else cfg.killwaitsecs
    return cfg.stopwaitsecs * (1 + len(cfg.later_stopsignals)) + grace


def serverurl_for(config: Config) -> str | None:
    """What SUPERVISOR_SERVER_URL tells children: the unix socket if any, else the TCP address."""
    for server in config.servers:
        if server.file:
            return f"unix://{server.file}"
    for server in config.servers:
        return f"http://{server.host or 'localhost'}:{server.port}"
    return None


async def wait_stopped(processes: Sequence[Process], *, limit: float | None = None) -> None:
    """Wait until every process is in a stopped state, logging who is still up every few seconds.

    With ``limit`` (shutdown), give up after that many seconds and name what is left: a process
    SIGKILL cannot end (uninterruptible sleep) must not keep the daemon from exiting.
    """
    loop = asyncio.get_running_loop()
    pending = [p for p in processes if p.state not in STOPPED_STATES]
    deadline = None if limit is None else loop.time() + limit
    while pending:
        timeout = _WAIT_REPORT if deadline is None else min(_WAIT_REPORT, deadline - loop.time())
        waits = [asyncio.ensure_future(p.wait_state(STOPPED_STATES)) for p in pending]
        _, not_done = await asyncio.wait(waits, timeout=max(timeout, 0))
        for task in not_done:
            task.cancel()
        await asyncio.gather(*not_done, return_exceptions=True)
        pending = [p for p in pending if p.state not in STOPPED_STATES]
        if pending and deadline is not None and loop.time() >= deadline:
            log.error("giving up on %s: still %s %gs after the stop began, SIGKILL included",
                      ", ".join(f"{p.namespec} (pid {p.pid or 'unknown'})" for p in pending),
                      "/".join(sorted({p.state.name for p in pending})), limit)
            return
        if pending:
            log.info("waiting for %s to die", ", ".join(p.name for p in pending))


class Supervisor:
    """The daemon's core object."""

    def __init__(self, config: Config, loop: asyncio.AbstractEventLoop, loader: ConfigLoader,
                 record: SpawnRecord | None = None, sockets: HeldSockets | None = None) -> None:
        self.config = config
        self.record = record
        self.sockets = sockets if sockets is not None else HeldSockets()  # ``sockets =``, bound by run.py
        self.parsed = config  # the last configuration read (reloadConfig), what addProcessGroup adds from
        self.loop = loop
        self._loader = loader
        self.state = SupervisorState.RUNNING
        self.bus = EventBus()
        self.exits = ExitWatcher(loop)
        self.spawner = MassSpawner(loop, self.exits)  # the boot's spawns, made by helpers
        self.rt = self._runtime(config)
        self.hub = EventHub(self.bus, loop, config.supervisord.identifier)
        self.groups: dict[str, ProcessGroup] = {}
        self.started_at = time.time()
        self._wake = asyncio.Event()
        self._pending: Config | None = None
        # depends_on: the starts that wait for their dependencies
        self.gate = StartGate(loop, lambda: [g.config for g in self.groups.values()], self.process_of)
        self._signalled = TaskSet(loop, "signal requests")  # a reexec asked by SIGUSR1
        self.on_reopen_logs: list[Callable[[], None]] = []
        self.reloads = 0  # configuration reads (reloadConfig, SIGHUP), for the metrics
        self.last_reload_ok = True
        self.cron = CronStarts(loop, self._start_on_schedule)
        self.usage = UsageSampler(loop, lambda: ((p.namespec, p.pid) for p in self.all_processes()))
        self.alarms: Alarms | None = None  # while a run has alarm channels configured
        self.silenced: set[str] = set()  # namespecs whose alarms are off (kept across reloads)
        # (channel, event, result) -> alarms, for /metrics; kept across reloads as counters must be
        self.alarm_counts: Counter[tuple[str, str, str]] = Counter()
        self.systemd = SystemdNotifier(loop)  # before any spawn: it takes NOTIFY_SOCKET out of the environment
        self.exit_status = 0  # the daemon's, when it exits (see core/daemon/exitrules.py)
        self.adopting: dict[str, Any] | None = None  # the previous daemon's state (a reexec), taken at the start
        self.handover: dict[str, Any] | None = None  # this daemon's state for the next one, once a reexec began
        self._reexec = False
        self._exit_after_reexec = False  # an exit asked for while a reexec was under way (request_shutdown)
        self.exit_rules = ExitRules(self)  # exit_on_fatal, exit_when_all_stopped

    def _runtime(self, config: Config) -> Runtime:
        sd = config.supervisord
        return Runtime(loop=self.loop, exits=self.exits, bus=self.bus, identifier=sd.identifier,
                       childlogdir=sd.childlogdir, serverurl=serverurl_for(config), strip_ansi=sd.strip_ansi,
                       echo_output=sd.loglevel <= logging.DEBUG, record=self.record, sockets=self.sockets)

    # ---- lookup ----

    def sorted_groups(self) -> list[ProcessGroup]:
        """Active groups in start order (priority, then name)."""
        return sorted(self.groups.values(), key=lambda g: (g.config.priority, g.name))

    def all_processes(self) -> Iterator[Process]:
        """Every process, in start order."""
        for group in self.sorted_groups():
            yield from group.in_start_order()

    def lookup(self, namespec: str) -> tuple[ProcessGroup, Process | None]:
        """Resolve a namespec; BadName when the group or process does not exist."""
        group_name, process_name = split_namespec(namespec)
        group = self.groups.get(group_name)
        if group is None:
            raise BadName(namespec)
        if process_name is None:
            return group, None
        process = group.processes.get(process_name)
        if process is None:
            raise BadName(namespec)
        return group, process

    # ---- process operations ----

    def start_process(self, process: Process) -> None:
        """Start one process (after its dependencies are ready); AlreadyStarted, SpawnError or Failed."""
        if process.state == ProcessState.UNKNOWN:
            raise Failed(f"{process.namespec} is in an unknown state")
        if process.state in RUNNING_STATES or process.state == ProcessState.STOPPING or process in self.gate:
            raise AlreadyStarted(process.namespec)
        resolve(process.config)  # NO_FILE / NOT_EXECUTABLE before any state change, as Supervisor
        self._start(process)

    def _start_on_schedule(self, process: Process) -> None:
        """cron=: start the process unless it is running, starting, stopping or the daemon is stopping."""
        if self.state != SupervisorState.RUNNING:
            return
        try:
            self.start_process(process)
        except AlreadyStarted:
            log.info("%s: still running, the scheduled start is skipped", process.namespec)
        except ProcwardError as exc:
            log.warning("%s: scheduled start failed: %s", process.namespec, exc)

    def _start(self, process: Process) -> None:
        self.gate.start(process)

    async def wait_started(self, process: Process) -> ProcessState:
        """Wait until the process has left STARTING (RUNNING, or a failure state)."""
        await self.gate.wait(process)
        return await process.wait_state(set(ProcessState) - {ProcessState.STARTING})

    def add_group(self, config: GroupConfig) -> ProcessGroup:
        """Activate a group and start its autostart processes."""
        if config.name in self.groups:
            raise AlreadyAdded(config.name)
        group = ProcessGroup(config, self.rt)
        self.groups[config.name] = group
        for problem in self.sockets.bind(s for p in config.processes for s in p.sockets):
            log.error("%s: %s (its processes cannot start until it can be bound)", config.name, problem)
        for process in group.in_start_order():
            self.cron.add(process)
        if config.kind == GroupKind.EVENTLISTENER:
            self.hub.add_pool(config, group.in_start_order())
        self.bus.publish(Event("PROCESS_GROUP_ADDED", f"groupname:{config.name}\n"))
        return group

    def add_group_by_name(self, name: str) -> ProcessGroup:
        """addProcessGroup: activate a group from the last configuration read, and autostart it."""
        config = self.parsed.group(name)
        if config is None:
            raise BadName(name)
        group = self.add_group(config)
        self._autostart(group)
        return group

    async def remove_group(self, name: str) -> None:
        """Deactivate a stopped group."""
        group = self.groups.get(name)
        if group is None:
            raise BadName(name)
        if group.unstopped():
            raise StillRunning(name)
        await self._drop_group(name)
        self.release_sockets()
        self.bus.publish(Event("PROCESS_GROUP_REMOVED", f"groupname:{name}\n"))

    def release_sockets(self) -> None:
        """Close the held sockets that neither an active group nor the last configuration read asks for.

        The configuration read counts too: supervisorctl's ``update`` removes a changed group and adds it
        again, and the socket must be there between the two."""
        configs = [g.config for g in self.groups.values()] + list(self.parsed.groups)
        self.sockets.release_except(s for g in configs for p in g.processes for s in p.sockets)

    def reload_config(self) -> ConfigDiff:
        """Read the configuration again (not applied): the groups added, changed and removed."""
        self.reloads += 1
        try:
            self.parsed = self._loader()
        except ConfigError as exc:
            self.last_reload_ok = False
            raise CantReread(str(exc)) from None
        self.last_reload_ok = True
        return diff({name: g.config for name, g in self.groups.items()}, self.parsed)

    def _autostart(self, group: ProcessGroup) -> int:
        started = 0
        for process in group.in_start_order():
            if process.wants_autostart:
                self._start(process)
                started += 1
        return started

    async def boot(self) -> None:
        """Start every autostart process in priority order, yielding so requests are served meanwhile."""
        # The boot makes what lives as long as the programs: collecting cycles meanwhile would walk it
        # again and again (at 500 programs ~80 young and one full collection, ~20 ms). Collection
        # resumes after it, and what it made is frozen (_booted).
        gc.disable()
        try:
            # Many programs: their spawns go to helper processes on the other CPUs (core/massspawn.py);
            # not with a spawn function of the tests' own. A start with depends_on waits at the gate.
            def by_helper(p: Process) -> bool:
                return p.batchable and not p.config.depends_on

            count = sum(p.wants_autostart and by_helper(p) for p in self.all_processes())
            batch = self.rt.spawn is spawn and self.spawner.worth_it(count)
            if batch:
                self.spawner.begin(count)
            until = time.monotonic() + _BOOT_SLICE
            try:
                for group in self.sorted_groups():
                    for process in group.in_start_order():
                        if self.state != SupervisorState.RUNNING:
                            return
                        if group.name in self.groups and process.wants_autostart and process not in self.gate:
                            if batch and by_helper(process):
                                process.start(self.spawner)
                            else:
                                self._start(process)
                            if time.monotonic() >= until:
                                await asyncio.sleep(0)
                                until = time.monotonic() + _BOOT_SLICE
            finally:
                self.spawner.launch()  # what was queued, even when the boot is cut short: none is left SPAWNING
            await self.spawner.wait()
        finally:
            gc.enable()

    async def stop_all(self, *, shutdown: bool = False) -> None:
        """Stop dependents before what they depend on, then by reverse priority; each level awaited.

        Groups of one priority stop together, as in supervisord; depends_on only adds levels.
        """
        for process in self.gate.held():
            self.gate.cancel(process)
        levels: dict[tuple[int, int], list[Process]] = {}
        any_dependencies = any(p.config.depends_on for p in self.all_processes())
        for group in self.sorted_groups():
            for process in group.in_start_order():
                depth = self.gate.depth(process) if any_dependencies else 0
                levels.setdefault((depth, group.config.priority), []).append(process)
        for key in sorted(levels, reverse=True):
            members = list(reversed(levels[key]))
            for process in members:
                if shutdown:
                    process.stop_for_shutdown()
                elif process.state in (ProcessState.STARTING, ProcessState.RUNNING, ProcessState.BACKOFF):
                    process.stop()
            limit = max(map(_stop_bound, members)) if shutdown else None
            await wait_stopped(members, limit=limit)

    # ---- daemon lifecycle ----

    def request_shutdown(self) -> None:
        """Stop everything and exit (SIGTERM, the shutdown RPC). During a reload it ends the reload: the
        programs it is stopping stay stopped and the daemon exits (an init script's ``stop`` right after
        ``reload``). A reexec under way goes on, and the new daemon stops as soon as it has taken over (it
        went on running: a SIGTERM in the reexec's last fraction of a second was lost)."""
        if self.state == SupervisorState.RUNNING or (self.state == SupervisorState.RESTARTING and not self._reexec):
            self.state = SupervisorState.SHUTDOWN
            self._pending = None
            self.systemd.stopping()
            self._wake.set()
        elif self._reexec:
            self._exit_after_reexec = True
            if self.handover is not None:
                self.handover["exit"] = True

    def request_restart(self) -> bool:
        """Stop everything, re-read the configuration, start again (SIGHUP, the restart RPC).

        Unlike supervisord, a configuration that no longer loads is reported and the daemon keeps
        running on the old one instead of exiting with everything stopped.
        """
        if self.state != SupervisorState.RUNNING:
            return False
        self.reloads += 1
        try:
            self._pending = self._loader()
            self.last_reload_ok = True
        except ConfigError as exc:
            self.last_reload_ok = False
            log.critical("restart refused, the configuration has an error (still running the old one): %s", exc)
            return False
        self.state = SupervisorState.RESTARTING
        self.systemd.reloading()
        self._wake.set()
        return True

    def reopen_logs(self) -> None:
        """Reopen the main log and every child log (SIGUSR2)."""
        for callback in self.on_reopen_logs:
            callback()
        for process in self.all_processes():
            process.output.reopen()

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            log.warning("received %s indicating exit request", name)
            self.request_shutdown()
        elif signum == signal.SIGHUP:
            if self.state != SupervisorState.RUNNING:
                log.warning("ignored %s indicating restart request (shutdown in progress)", name)
                return
            log.warning("received %s indicating restart request", name)
            self.request_restart()
        elif signum == signal.SIGUSR2:
            log.info("received %s indicating log reopen request", name)
            self.reopen_logs()
        elif signum == signal.SIGUSR1:
            log.warning("received %s indicating reexec request", name)
            self._signalled.start(self._reexec_on_signal(), "reexec")

    def _install_signals(self) -> None:
        for signum in SIGNALS:
            self.loop.add_signal_handler(signum, self._on_signal, signum)
        # After a reexec they come blocked, and one sent during the switch is pending: it is handled now.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        self.exits.install()

    async def serve(self, services: Sequence[Service]) -> None:
        """Run until shutdown: add groups, start services, boot, wait, stop, and restart on request.

        The services are bound already (the daemon binds them before it says it has started).
        """
        self._install_signals()
        try:
            while True:
                await self._run_once(services)
                if self.state == SupervisorState.SHUTDOWN or self._pending is None or self.handover is not None:
                    return
                self.config = self.parsed = self._pending
                self._pending = None
                self.rt = self._runtime(self.config)
                self.hub.identifier = self.config.supervisord.identifier
                # Cleared here, with the state, where no signal can come between: a SIGTERM while the
                # next run starts its services must find _wake set (it was cleared after them, and lost).
                self._wake.clear()
                self.state = SupervisorState.RUNNING
                for service in services:
                    for error in service.bind(self.config):
                        log.critical("%s", error)
        finally:
            self.systemd.close()
            await self.gate.aclose()
            await self._signalled.aclose()
            await self.usage.aclose()
            self.hub.close()
            if self.handover is None:  # at a reexec the children's exits are the next daemon's to collect
                self.exits.reap()
            self.exits.close()

    def process_of(self, spec: str) -> Process | None:
        """``lookup``'s process, None instead of BadName (for event subscribers)."""
        try:
            return self.lookup(spec)[1]
        except BadName:
            return None

    async def _run_once(self, services: Sequence[Service]) -> None:
        for group_config in self.config.groups:
            self.add_group(group_config)
        self.release_sockets()  # a reload's: what the new configuration no longer names
        self.hub.drop_parked()  # the pools of a reload found their successors above
        if self.adopting is not None:
            handover.adopt_all(self, self.adopting)
            exit_asked, self.adopting = bool(self.adopting.get("exit")), None
            if exit_asked:
                log.warning("an exit was asked for during the reexec: stopping")
                self.request_shutdown()
        if self.config.supervisord.alarms is not None:
            from procward.core.alarms.rules import Alarms  # only with alarm channels: mail and HTTP clients stay out

            self.alarms = Alarms(self.config.supervisord.alarms, self.process_of, self.exits, self.loop,
                                 self.silenced, self.alarm_counts, self.config.nodename or "")
            self.bus.subscribe(self.alarms.on_event, self.alarms.wants)
        started: list[Service] = []
        try:
            for service in services:
                await service.start(self)
                started.append(service)
            self.bus.publish(Event("SUPERVISOR_STATE_CHANGE_RUNNING", ""))
            boot = asyncio.create_task(self.boot(), name="boot")
            boot.add_done_callback(self._booted)
            try:
                await self._wake.wait()
            finally:
                boot.cancel()
                await asyncio.gather(boot, return_exceptions=True)
                # Every spawn the boot's helpers make has its pid before processes are stopped or
                # handed over (milliseconds: they are already under way).
                await self.spawner.wait()
            if self._reexec:
                # The switch is certain from here. The signals wait, blocked, until the next daemon has
                # its handlers (_install_signals): a blocked signal stays pending across the exec, where
                # the default action (the loop's handlers go when it closes, the new interpreter starts
                # without them) killed the daemon and left its programs running.
                signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
                await self._close_alarms()
                self.handover = handover.release_all(self)
                self.handover["exit"] = self._exit_after_reexec
                return
            self.bus.publish(Event("SUPERVISOR_STATE_CHANGE_STOPPING", ""))
            await self._close_alarms()  # what the shutdown itself does to the programs is no alarm
            await self.stop_all(shutdown=True)
            # Descendants the programs left behind get stopwaitsecs to exit: wait for that too.
            await asyncio.gather(*(process.settle() for process in self.all_processes()))
        finally:
            await self._close_alarms()
            for service in reversed(started):
                await service.stop()
            reloading = self._pending is not None and self.state == SupervisorState.RESTARTING
            for name in list(self.groups):
                await self._drop_group(name, park=reloading)

    # ---- reexec (core/daemon/handover.py) ----

    def reexec_problem(self) -> str:
        """Why a reexec must wait ('' when it can go ahead now)."""
        if self.state != SupervisorState.RUNNING:
            return f"the daemon is {self.state.name}"
        for process in self.all_processes():
            if why := handover.unsettled(process):
                return why
        return ""

    async def reexec(self) -> str:
        """Check, then hand everything to a new daemon process (procward.reexec, SIGUSR1); '' when the
        switch follows, else why not (the daemon carries on unchanged)."""
        if why := self.reexec_problem():
            return f"not now: {why}; try again in a moment"
        quoted = f"{shlex.quote(sys.executable)} -m procward check -c {shlex.quote(self.config.path)} >/dev/null"
        if reason := await health.run(Script(kind=HealthKind.EXEC, target=quoted), 120, self.exits):
            return f"the new code or the configuration does not load: {reason}"
        if why := self.reexec_problem():  # something changed during the check
            return f"not now: {why}; try again in a moment"
        self.request_reexec()
        return ""

    async def _reexec_on_signal(self) -> None:
        if why := await self.reexec():
            log.error("reexec (SIGUSR1) refused: %s", why)

    def request_reexec(self) -> None:
        """Hand everything to a new daemon process (after ``reexec``'s checks). The switch waits a
        moment so the request that asked for it is answered first."""
        self._reexec = True
        self.state = SupervisorState.RESTARTING
        self.systemd.reloading()
        self.loop.call_later(0.2, self._wake.set)

    def _booted(self, boot: asyncio.Task[None]) -> None:
        """Autostart programs are started (the sockets listened before): systemd may count on us."""
        if not boot.cancelled() and boot.exception() is None:
            self.systemd.ready()
            # What the boot made (every process, its channels, tasks and timers) lives as long as its
            # program: the cyclic collector need not walk it again at every full collection (at 500
            # programs a full collection took 10-14 ms of the loop; 5000 ten times that). Objects that
            # become garbage later are still freed by reference counting; a process that is removed
            # unfreezes (Process.aclose), so its cycles are collected.
            gc.freeze()

    async def _close_alarms(self) -> None:
        alarms, self.alarms = self.alarms, None
        if alarms is not None:
            self.bus.unsubscribe(alarms.on_event)
            await alarms.aclose()

    async def _drop_group(self, name: str, *, park: bool = False) -> None:
        group = self.groups.pop(name)  # gone for lookups at once; its tasks are awaited below
        for process in group.in_start_order():
            self.cron.remove(process)
        self.hub.remove_pool(name, park=park)
        await group.aclose()

