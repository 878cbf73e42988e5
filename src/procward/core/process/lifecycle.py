"""One supervised OS process and its state machine.

Everything that changes a Process's state is a method of that Process, run on the event loop: requests
(start, stop, signal), the exit callback (SIGCHLD), and the single pending timer (startsecs in
STARTING, the backoff delay in BACKOFF, stopwaitsecs in STOPPING). ``_enter`` is the only writer of
``state``; it checks the transition table, publishes the event and wakes waiters (``take_over`` restores the
state a reexec handed over, which is no transition). The fields and the queries are ProcessBase's (base.py).
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import signal
import time
from typing import TYPE_CHECKING, Any

from procward.config.model import ProcessConfig, Script
from procward.config.values import Autorestart
from procward.core import tree
from procward.core.events import process_state_event
from procward.core.exits import ExitStatus
from procward.core.process import monitors, reactions, signals
from procward.core.process.base import ProcessBase
from procward.core.process.counters import ProcessCounters, RestartReason
from procward.core.process.fcgi import FcgiSocket
from procward.core.process.following import PIDFILE_WAIT, adoptable, read_pid
from procward.core.process.health import Health, HealthMonitor
from procward.core.process.notifysocket import Readiness
from procward.core.process.restarts import GiveUp
from procward.core.process.stdin import NoStdin, Stdin
from procward.core.runtime import Runtime
from procward.core.spawn import Spawned, SpawnError, child_environment
from procward.core.states import ALLOWED, SIGNALLABLE_STATES, Detail, InvalidTransition, ProcessState
from procward.errors import ProcwardError

if TYPE_CHECKING:
    from procward.core.massspawn import MassSpawner

log = logging.getLogger(__name__)
S = ProcessState
DAEMONIZED = "daemonized itself: run it in the foreground or set pidfile="


class NotRunning(ProcwardError):
    """The request needs a running process."""


class AlreadyStarted(ProcwardError):
    """start was asked of a process that is starting, running or backing off."""


class Process(ProcessBase):
    """A supervised process: what ProcessBase is, and the transitions that move it."""

    __slots__ = ()

    def __init__(self, config: ProcessConfig, group: str, rt: Runtime, *,
                 stdin_socket: FcgiSocket | None = None) -> None:
        super().__init__(config, group, rt, stdin_socket=stdin_socket)
        on_health = functools.partial(reactions.on_health, self)
        self.health_monitor = (HealthMonitor(config.healthcheck, rt.exits, self._while_running, on_health)
                               if config.healthcheck else None)
        self._readiness = Readiness(rt.loop, config.watchdog_sec, ready=self._on_ready,
                                    main_pid=self._follow_mainpid, status=self._on_status,
                                    timed_out=self._on_watchdog_timeout) if config.notify else None

    def start(self, spawner: MassSpawner | None = None) -> None:
        """Spawn now (the caller has checked the state). With ``spawner`` (a mass start; the process is
        ``batchable``) a helper of it makes the spawn: STARTING with no pid (sub-state SPAWNING) until then."""
        if self.state in (S.STARTING, S.RUNNING, S.BACKOFF, S.STOPPING):
            raise AlreadyStarted(self.namespec)
        self.backoff = 0
        if self.starts:
            self.counters.restarts[RestartReason.MANUAL] += 1
        self._spawn(spawner)

    @property
    def batchable(self) -> bool:
        """Whether a mass start's helper can spawn it: it needs no step of the daemon's before the exec (a
        hook), no descriptor but its pipes, and nothing from it before its pid is known (sd_notify's
        READY=1 may come first: it would be dropped)."""
        config = self.config
        return (config.pre_start_hook is None and not config.sockets and self.stdin_socket is None
                and not config.notify)

    def stop(self) -> None:
        """Send the stop signal; SIGKILL after stopwaitsecs. A process in BACKOFF stops at once."""
        self.once = False
        if self.state == S.BACKOFF:
            self._enter(S.STOPPED, pid=0)
            return
        if self.restart_pending:
            self._cancel_timer()  # a restart was pending (restartpause, backoff): it is called off
            return
        if self.state not in (S.STARTING, S.RUNNING):
            raise NotRunning(self.namespec)
        self._kill(self.config.stopsignal)

    def restart(self, reason: str, why: RestartReason) -> None:
        """Stop and start again (unhealthy, watchdog, memory limit, files changed)."""
        if self.state not in (S.STARTING, S.RUNNING) or self._killing:
            return
        log.warning("restarting %s: %s", self.namespec, reason)
        self.counters.restarts[why] += 1
        self._restart_requested = reason
        self._kill(self.config.stopsignal)

    def stop_for_shutdown(self) -> None:
        """Like stop, but a process in BACKOFF gives up (FATAL), as supervisord does at shutdown."""
        if self.state == S.BACKOFF:
            self._enter(S.FATAL)
        elif self.state in (S.STARTING, S.RUNNING):
            self._kill(self.config.stopsignal)

    def signal(self, sig: int) -> None:
        """Deliver ``sig`` to the process."""
        if self.state not in SIGNALLABLE_STATES or not self.pid:
            raise NotRunning(self.namespec)
        signals.deliver(self.pid, sig, self.rt.kill, self.namespec)

    def write_stdin(self, data: bytes) -> None:
        """Queue ``data`` for the process's stdin; the loop writes it without ever blocking."""
        if not self.pid or self._killing:
            raise NotRunning(self.namespec)
        if self._stdin is None:
            raise NoStdin(self.namespec)
        self._stdin.write(data)

    async def aclose(self) -> None:
        """Cancel and await every task, release timers and log files (the process is being removed: its
        group's removal, a reload, or an update that replaces or drops it)."""
        # What the boot made was frozen out of the cyclic collector (Supervisor._booted): this process
        # is about to become garbage, and its cycles must be collectable again.
        gc.unfreeze()
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self._cancel_timer()
        if self._readiness is not None:
            self._readiness.close()
            self._readiness.running(False)
        await self._while_running.aclose()
        await self.tasks.aclose()
        await self.leftovers.aclose()  # after the tasks: a pre_stop hook's or health action's own leftovers
        await self.output.aclose()

    # ---- the state machine ----

    def _enter(self, new: ProcessState, *, pid: int | None = None, expected: bool = False) -> None:
        old = self.state
        if new not in ALLOWED[old]:
            raise InvalidTransition(self.namespec, old, new)
        self._cancel_timer()
        self.state = new
        self.history.entered(time.time(), new.name)
        self.rt.bus.publish(process_state_event(
            new.name, process=self.name, group=self.group, from_state=old.name, tries=self.backoff,
            expected=expected, pid=self.pid if pid is None else pid))
        if old == S.RUNNING:
            self._left_running()
        if new == S.RUNNING:
            self._entered_running()
        for observer in list(self.observers):
            observer(self, old, new)
        self.changes.notify()
        waiters, self._waiters = self._waiters, []
        for wanted, future in waiters:
            if new in wanted and not future.done():
                future.set_result(new)
            elif not future.done():
                self._waiters.append((wanted, future))

    def _spawn(self, spawner: MassSpawner | None = None) -> None:
        self.laststart = time.time()
        self.starts += 1
        self.spawnerr = ""
        self.status_text = ""
        self._killing = False
        self._following = False
        self._enter(S.STARTING)
        if self.config.pre_start_hook is None:
            self._exec(spawner)
            return
        # STARTING with no pid (sub-state HOOK) until the hook passes; a failing hook is a failed start.
        self._hook = self.tasks.start(self._pre_start(self.config.pre_start_hook), "pre_start_hook")

    async def _pre_start(self, hook: Script) -> None:
        reason = await reactions.run_script(self, hook, "pre_start_hook")
        self._hook = None
        if self.state != S.STARTING or self.pid:
            return
        if reason is None:
            self.laststart = time.time()  # startsecs counts from the spawn, not from the hook
            self._exec()
            return
        self.spawnerr = f"pre_start_hook failed: {reason}"
        self._enter_backoff()

    def _exec(self, spawner: MassSpawner | None = None) -> None:
        self.token = tree.new_token()
        extra = {tree.ENV_VAR: self.token}
        if self._readiness is not None:
            extra.update(self._readiness.open(self.token))
        try:
            if problem := self.output.problem():
                raise SpawnError(problem)  # noqa: TRY301 - the same path as a failed exec
            make_env = functools.partial(child_environment, self.config, self.group, self.rt.serverurl, extra)
            if spawner is not None:
                self._pending = spawner.add(self.config, make_env, self.token, self._spawn_done)
                if self.rt.record is not None:
                    # The token before the pid: a daemon killed meanwhile leaves no spawn unrecorded.
                    self.rt.record.add(self.namespec, self.token, 0)
                return
            stdin_fd = self.stdin_socket.fd_for_child() if self.stdin_socket is not None else None
            sockets = self.rt.sockets.fds(self.config) if self.config.sockets else ()
            spawned = self.rt.spawn(self.config, make_env(), stdin_fd=stdin_fd, sockets=sockets)
        except SpawnError as exc:
            self._spawn_done(exc)
            return
        self._spawn_done(spawned)

    def _spawn_done(self, outcome: Spawned | SpawnError) -> None:
        """The spawn is made (or failed): from _exec, or from a mass start's helper later."""
        self._pending = None
        if isinstance(outcome, SpawnError):
            self.spawnerr = str(outcome)
            log.info("spawnerr: %s", outcome)
            self._enter_backoff()
            return
        spawned = outcome
        self._spawned = spawned
        self._stdin = Stdin(self.rt.loop, spawned.stdin, self.namespec) if spawned.stdin is not None else None
        self.pid = spawned.pid
        self.output.attach(spawned)
        self.rt.exits.watch(spawned.pid, self._on_exit)
        if self.rt.record is not None:
            self.rt.record.add(self.namespec, self.token, spawned.pid)
        log.info("spawned: '%s' with pid %s", self.name, spawned.pid)
        if self.config.notify:
            self._schedule(self.config.ready_timeout, self._on_ready_timeout)
        elif self.config.startsecs == 0:
            self._enter_running()
        else:
            self._schedule(self.config.startsecs, self._on_startsecs)

    def _on_startsecs(self) -> None:
        if self.state == S.STARTING:
            self._enter_running()

    def _enter_running(self) -> None:
        self.backoff = 0
        self._enter(S.RUNNING)
        if self.config.notify:
            log.info("success: %s entered RUNNING state, process sent READY=1", self.name)
        else:
            log.info("success: %s entered RUNNING state, process has stayed up for > than %s seconds "
                     "(startsecs)", self.name, self.config.startsecs)

    def _entered_running(self) -> None:
        if self.health_monitor is not None:
            self.health_monitor.start()
        else:
            reactions.publish(self, "PROCWARD_PROCESS_READY")
        if self._readiness is not None:
            self._readiness.running(True)
        for job, coroutine in monitors.while_running(self):
            self._while_running.start(coroutine, job)

    def _left_running(self) -> None:
        if self.health_monitor is not None:
            self.health_monitor.stop()
        if self._readiness is not None:
            self._readiness.running(False)
        self._while_running.cancel()

    def _enter_backoff(self) -> None:
        self.backoff += 1
        self._enter(S.BACKOFF, pid=0)
        if self.backoff > self.config.startretries and not self.config.policy.forever:
            self._enter(S.FATAL)
            log.info("gave up: %s entered FATAL state, too many start retries too quickly", self.name)
        else:
            self._schedule(self.restarts.backoff_delay(self.backoff), self._retry)

    def _retry(self) -> None:
        if self.state == S.BACKOFF:
            self.counters.restarts[RestartReason.START_FAILURE] += 1
            self._spawn()

    def _on_exit(self, status: ExitStatus) -> None:
        now = time.time()
        pid = self.pid
        expected = status.code is not None and status.code in self.config.exitcodes
        if self.config.pidfile and expected and not self._killing and not self._following \
                and self.state in (S.STARTING, S.RUNNING):
            # No edge (sub-state PIDFILE_WAIT): the command forked its daemon and exited. Keep the output
            # pipes (the daemon may hold them) and follow the pid it writes to the pidfile.
            self._release_child(status, keep_output=True)
            self._follow_pidfile(self.rt.loop.time() + PIDFILE_WAIT)
            return
        self._release_child(status)
        self.laststop = now
        self.counters.ended(status)
        self.history.ended(now, status.exitstatus, status.signal or 0, now - self.laststart if self.laststart else 0.0)
        left_behind = self._sweep_descendants()
        too_quickly = self.state == S.STARTING and (self.config.notify or now - self.laststart < self.config.startsecs)
        if not self._killing:
            self.counters.exited(status, expected=expected)
        if self._killing:
            # STOPPING -> STOPPED: the exit a stop signal asked for (then STARTING again for a restart).
            self._killing = False
            self.exitstatus = status.exitstatus
            self._enter(S.STOPPED, pid=pid)
            level = logging.INFO if expected or status.signal == self.config.stopsignal else logging.WARNING
            log.log(level, "stopped: %s (%s)", self.name, status.describe())
            if self._restart_requested:
                self._restart_requested = ""
                self._start_after(self.config.policy.restartpause, S.STOPPED)
        elif left_behind and expected:
            # STARTING -> BACKOFF -> FATAL, or RUNNING -> EXITED -> FATAL: it daemonized itself.
            self._daemonized(status)
        elif too_quickly:
            # STARTING -> BACKOFF (-> FATAL when retries are exhausted): died before startsecs.
            if not self.spawnerr:
                self.spawnerr = "Exited too quickly (process log may have details)"
            log.warning("exited: %s (%s; not expected)", self.name, status.describe())
            self._enter_backoff()
        else:
            # RUNNING -> EXITED (STARTING -> RUNNING first when startsecs passed but its timer had not
            # run yet), then EXITED -> STARTING now or after a delay, or EXITED -> FATAL, per autorestart
            # and the restart policy.
            if self.state == S.STARTING:
                self._enter_running()
            self.exitstatus = status.exitstatus
            if expected:
                log.info("exited: %s (%s; expected)", self.name, status.describe())
            else:
                self.spawnerr = f"Bad exit code {status.exitstatus}"
                log.warning("exited: %s (%s; not expected)", self.name, status.describe())
            self._enter(S.EXITED, pid=pid, expected=expected)
            restart = self.config.autorestart
            if self.once:
                log.info("%s is not started again: it was started once (supervise's o)", self.name)
            elif restart == Autorestart.TRUE or (restart == Autorestart.UNEXPECTED and not expected):
                self._restart_after_exit(expected, now - self.laststart, core=status.core)

    def _daemonized(self, status: ExitStatus) -> None:
        """The command exited with a success code but left its processes running: it forked away."""
        self.exitstatus = status.exitstatus
        self.spawnerr = DAEMONIZED
        log.warning("exited: %s (%s) leaving its processes running: %s; they are stopped", self.name,
                    status.describe(), DAEMONIZED)
        if self.state == S.STARTING:
            self._enter(S.BACKOFF, pid=0)
        else:
            self._enter(S.EXITED, pid=0, expected=True)
        self._enter(S.FATAL)
        log.info("gave up: %s entered FATAL state, %s", self.name, DAEMONIZED)

    def _restart_after_exit(self, expected: bool, uptime: float, *, core: bool) -> None:
        decision = self.restarts.after_exit(expected=expected, uptime=uptime, now=self.rt.loop.time(), core=core)
        if isinstance(decision, GiveUp):
            self.spawnerr = decision.reason
            self._enter(S.FATAL)  # EXITED -> FATAL: a restart policy gave up
            log.info("gave up: %s entered FATAL state, %s", self.name, self.spawnerr)
            return
        self.counters.restarts[RestartReason.EXIT] += 1
        self._start_after(decision, S.EXITED)

    def _start_after(self, delay: float, state: ProcessState) -> None:
        """Spawn now, or after ``delay`` if the process is still in ``state`` then."""
        if not delay:
            self._spawn()
            return
        log.info("%s will be started again in %gs", self.name, delay)
        self._schedule(delay, self._spawn_if, state)

    def _spawn_if(self, state: ProcessState) -> None:
        self._timer = None
        if self.state == state:
            self._spawn()

    def _sweep_descendants(self) -> bool:
        """Stop what the exited process left behind (unless killdescendants=false); True if anything."""
        if not self.config.killdescendants or not self.token:
            return False
        return self.leftovers.sweep(self.token)

    def _follow_pidfile(self, deadline: float) -> None:
        path = self.config.pidfile or ""
        pid = read_pid(path)
        if adoptable(pid, self.token):
            self._following = True  # its own exit is the program's exit, whatever the code
            self.pid = pid
            self.rt.exits.watch(pid, self._on_exit, child=False)
            log.info("%s: following pid %s from pidfile %s", self.name, pid, path)
            if self.state == S.STARTING:
                remaining = self.config.startsecs - (time.time() - self.laststart)
                if remaining > 0:
                    self._schedule(remaining, self._on_startsecs)
                else:
                    self._enter_running()
            return
        if self.rt.loop.time() < deadline:
            # The daemon writes its pidfile a moment after its parent exits; look again shortly.
            self._schedule(0.05, self._follow_pidfile, deadline)
            return
        self._close_output()
        self.spawnerr = f"pidfile {path} names no process of this program"
        log.warning("%s: %s", self.name, self.spawnerr)
        self._on_exit(ExitStatus(code=None, signal=0))

    # ---- sd_notify, health, watchdog ----

    def _on_ready(self) -> None:
        if self.state == S.STARTING and self.pid:
            self._enter_running()

    def _on_status(self, text: str) -> None:
        self.status_text = text

    def _follow_mainpid(self, pid: int) -> None:
        if pid == self.pid or not adoptable(pid, self.token):
            return
        log.info("%s: main pid is now %s (MAINPID=)", self.name, pid)
        self.pid = pid
        self.rt.exits.watch(pid, self._on_exit, child=False)

    def _on_ready_timeout(self) -> None:
        if self.state == S.STARTING and self.pid:
            self.spawnerr = f"no READY=1 within {self.config.ready_timeout}s (notify=true)"
            log.warning("%s: %s; killing it", self.name, self.spawnerr)
            signals.deliver(self.pid, signal.SIGKILL, self.rt.kill, self.namespec)

    def _on_watchdog_timeout(self) -> None:
        self.restart(f"watchdog timeout: no WATCHDOG=1 for {self.config.watchdog_sec}s", RestartReason.WATCHDOG)

    def _kill(self, sig: int) -> None:
        as_group = self.config.killasgroup if sig == signal.SIGKILL else self.config.stopasgroup
        if self.detail in (Detail.PIDFILE_WAIT, Detail.HOOK, Detail.SPAWNING):
            self._stop_without_pid()
            return
        self._killing = True
        if self.state != S.STOPPING:
            self._later_signals = list(self.config.later_stopsignals)
            self._enter(S.STOPPING)
            if self.config.pre_stop_hook is not None:
                self.tasks.start(self._pre_stop(self.config.pre_stop_hook, sig), "pre_stop_hook")
                return
        if log.isEnabledFor(logging.DEBUG):
            log.debug("killing %s (pid %s) %swith signal %s", self.name, self.pid,
                      "process group " if as_group else "", signal.Signals(sig).name)
        signals.deliver(self.pid, sig, self.rt.kill, self.namespec, as_group=as_group)
        if sig != signal.SIGKILL:
            self._schedule(self.config.stopwaitsecs, self._on_stop_timeout)

    async def _pre_stop(self, hook: Script, sig: int) -> None:
        """The stop signal follows the hook, whatever it answers (Go runs it and stops anyway)."""
        await reactions.run_script(self, hook, "pre_stop_hook")
        if self.state == S.STOPPING and self.pid:
            self._kill(sig)

    def _stop_without_pid(self) -> None:
        """A stop while no process is known (a pre-start hook running, or the pidfile wait after the
        command exited) calls the hook or the wait off."""
        what = "the wait for its pidfile"
        if self._hook is not None:
            what = "its pre_start_hook"
            self._hook.cancel()
            self._hook = None
        if self._pending is not None:
            what = "its spawn"
            self._pending.cancel()
            self._pending = None
        self._cancel_timer()
        self._close_output()
        self._sweep_descendants()  # a daemon it forked may still write the pidfile: it is stopped too
        self._killing = False
        if self.state != S.STOPPING:
            self._enter(S.STOPPING)
        self.laststop = time.time()
        self._enter(S.STOPPED)
        log.info("stopped: %s (no process yet: %s is called off)", self.name, what)
        if self._restart_requested:
            self._restart_requested = ""
            self._start_after(self.config.policy.restartpause, S.STOPPED)

    def _on_stop_timeout(self) -> None:
        if self.state == S.STOPPING and self.pid:
            sig = self._later_signals.pop(0) if self._later_signals else signal.SIGKILL
            log.warning("killing '%s' (%s) with %s", self.name, self.pid, signal.Signals(sig).name)
            self._kill(sig)

    # ---- reexec: the process as data for the next daemon, and back (core/daemon/handover.py) ----

    def hand_over(self) -> dict[str, Any]:
        """The process as plain data, its descriptors made inheritable; it stops being watched (the exec of
        the next daemon follows). Every field the next daemon needs is here: a new one goes here too."""
        output = self.output.handover()
        stdin_fd = self._stdin.fd if self._stdin is not None else None
        for fd in (*output["fds"], stdin_fd):
            if isinstance(fd, int):
                os.set_inheritable(fd, True)
        if self.pid:
            self.rt.exits.forget(self.pid)
        timer = None if self._timer is None else max(0.0, self._timer.when() - self.rt.loop.time())
        return {"state": self.state.name, "pid": self.pid, "laststart": self.laststart, "laststop": self.laststop,
                "exitstatus": self.exitstatus, "spawnerr": self.spawnerr, "backoff": self.backoff,
                "starts": self.starts, "token": self.token, "status_text": self.status_text,
                "following": self._following, "once": self.once, "health": self.health.value, "stdin": stdin_fd,
                "output": output, "counters": self.counters.snapshot(), **self.restarts.snapshot(),
                "timer": timer, "released_at": time.time()}

    def take_over(self, record: dict[str, Any]) -> None:
        """Go on where ``hand_over`` left the process (no state event: nothing changed). OSError, with the
        process untouched, when its pid no longer exists."""
        pid = record["pid"]
        if pid:
            os.kill(pid, 0)  # before anything changes: a zombie passes, a pid gone for good raises
        self.state = ProcessState[record["state"]]  # the state it was in: not a transition
        self.laststart, self.laststop = record["laststart"], record["laststop"]
        self.exitstatus, self.spawnerr = record["exitstatus"], record["spawnerr"]
        self.backoff, self.starts, self.token = record["backoff"], record["starts"], record["token"]
        self.status_text, self._following = record["status_text"], record["following"]
        self.once = record.get("once", False)  # absent in a record from a daemon before this field
        self.counters = ProcessCounters.restored(record["counters"])
        self.restarts.restore(record)
        self.output.paths.update(record["output"]["paths"])
        if pid:
            self._reattach(pid, record)
        if record["timer"] is not None:
            if self.state == S.BACKOFF:
                self._schedule(record["timer"], self._retry)
            elif self.state in (S.EXITED, S.STOPPED):
                self._schedule(record["timer"], self._spawn_if, self.state)

    def _reattach(self, pid: int, record: dict[str, Any]) -> None:
        fds = record["output"]["fds"]
        self._spawned = Spawned(pid=pid, popen=None, stdin=record["stdin"], stdout=fds[0],
                                stderr=fds[1] if len(fds) > 1 else None)
        for fd in (*fds, record["stdin"]):
            if isinstance(fd, int):
                os.set_inheritable(fd, False)
        self.pid = pid
        if record["stdin"] is not None:
            self._stdin = Stdin(self.rt.loop, record["stdin"], self.namespec)
        self.output.adopt(self._spawned, record["output"]["partials"])
        # A followed pid (pidfile, MAINPID=) may not be the daemon's child: then it is watched by pidfd.
        self.rt.exits.watch(pid, self._on_exit, child=tree.start_time(pid, parent=os.getpid()) is not None)
        if self._readiness is not None:  # named after the daemon's pid, which the exec kept: the same address
            self._readiness.open(self.token)
        if self.rt.record is not None:
            self.rt.record.add(self.namespec, self.token, pid)
        if self.state == S.RUNNING:
            self._entered_running()
            if self.health_monitor is not None and record["health"]:
                self.health_monitor.health = Health(record["health"])

    # ---- pipes ----

    def _release_child(self, status: ExitStatus, *, keep_output: bool = False) -> None:
        """Drain and close the pipes of the child that just exited, and mark it reaped."""
        spawned, self._spawned = self._spawned, None
        self.pid = 0
        if not keep_output:
            self._close_output()
        if self._stdin is not None:
            self._stdin.close()
            self._stdin = None
        if spawned is not None and spawned.popen is not None:
            # subprocess would otherwise try to reap this pid itself when the Popen is collected
            spawned.popen.returncode = status.exitstatus

    def _close_output(self) -> None:
        self.output.detach()
        if self._readiness is not None:
            self._readiness.close()
