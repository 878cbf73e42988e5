"""When the programs decide that the daemon exits, as a container's PID 1 wants: ``exit_on_fatal`` (a listed
program gave up: stop everything, exit 1) and ``exit_when_all_stopped`` (a batch is done: every program has
stopped or exited and none will be started again; exit with the worst status among them)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from procward.config.model import GroupKind
from procward.core.events import Event
from procward.core.states import ProcessState, SupervisorState

if TYPE_CHECKING:
    from procward.core.daemon.supervisor import Supervisor
    from procward.core.process.lifecycle import Process

log = logging.getLogger(__name__)
S = ProcessState
_DONE = (S.STOPPED, S.EXITED, S.FATAL)


def run_status(process: Process) -> int:
    """How a process's last run ended, as a shell would say it: 0 for a stop asked for, an expected exit
    or no run; the exit code of an unexpected exit; 128 + the signal that killed it; at least 1 for a
    program that gave up (FATAL)."""
    counters = process.counters
    if not process.laststart or process.state == S.STOPPED:
        return 0
    code = 128 + counters.last_signal if counters.last_signal else counters.last_code
    if process.state == S.FATAL:
        return code or 1
    return 0 if not counters.last_signal and code in process.config.exitcodes else code


class ExitRules:
    """Follows the processes' state changes for one Supervisor and asks it to shut down when a rule says so."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._sup = supervisor
        self._check: asyncio.Handle | None = None  # one look at every process per loop pass, not per event
        supervisor.bus.subscribe(self._on_event, lambda name: name.startswith("PROCESS_STATE_"))

    def _on_event(self, event: Event) -> None:
        if not event.name.startswith("PROCESS_STATE_"):  # the bus hands every subscriber every event
            return
        settings = self._sup.config.supervisord
        if event.name == "PROCESS_STATE_FATAL" and settings.exit_on_fatal:
            self._fatal(event.namespec, settings.exit_on_fatal)
        if settings.exit_when_all_stopped and self._check is None:
            self._check = self._sup.loop.call_soon(self._all_stopped)

    def _fatal(self, spec: str, chosen: tuple[str, ...]) -> None:
        sup = self._sup
        process = sup.process_of(spec)
        if process is None or sup.state != SupervisorState.RUNNING:
            return
        if "*" in chosen or {process.config.program, process.group, process.namespec} & set(chosen):
            log.critical("%s entered FATAL and is listed in exit_on_fatal: stopping everything, exit status 1",
                         process.namespec)
            sup.exit_status = 1
            sup.request_shutdown()

    def _all_stopped(self) -> None:
        self._check = None
        sup = self._sup
        if sup.state != SupervisorState.RUNNING:
            return
        # Event listeners serve the programs; they do not keep a finished batch alive.
        processes = [p for group in sup.groups.values() if group.config.kind != GroupKind.EVENTLISTENER
                     for p in group.processes.values()]
        if not processes or any(_may_run_again(p) for p in processes):
            return
        status = max(run_status(p) for p in processes)
        log.warning("every program has stopped and none will be started again (exit_when_all_stopped): "
                    "exiting with status %d", status)
        sup.exit_status = status
        sup.request_shutdown()


def _may_run_again(process: Process) -> bool:
    """Running, starting, backing off, or with a start ahead (a timed restart, a held or pending autostart,
    a cron schedule)."""
    return (process.state not in _DONE or process.restart_pending or bool(process.waiting)
            or process.wants_autostart or bool(process.config.cron))
