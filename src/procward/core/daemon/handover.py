"""reexec: the daemon hands its state to its next self, across ``execv``, and every program keeps running.

Before the exec, each process's state (pid, times, counters, restart windows, health, a pending restart
timer) and the fds the daemon holds for it (its pipes, left open and inheritable) are written to a JSON
file; what the pipes hold stays in them, so the next daemon reads on where this one stopped: no line lost,
none read twice. The pid of the daemon does not change, so the programs stay its children (their exits
come as its SIGCHLDs), sd_notify sockets (named after the daemon's pid) and spawn record still apply. The
listening sockets and the locked pidfile are handed over the same way by the daemon (core/daemon/run.py,
http/listen.py).

The event listener pools go over as they are: queued events stay queued, a listener holding an event
still holds it (its answer waits in its pipe for the next daemon), with the serials. Only processes in a
settled state are handed over: one STARTING, STOPPING, held by depends_on or waiting for its pidfile
makes reexec wait (the caller is told which one).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from typing import TYPE_CHECKING, Any

from procward.core.process.lifecycle import Process
from procward.core.states import ProcessState

if TYPE_CHECKING:
    from procward.core.daemon.supervisor import Supervisor

log = logging.getLogger(__name__)
S = ProcessState
SETTLED = (S.RUNNING, S.STOPPED, S.EXITED, S.FATAL, S.BACKOFF)


def unsettled(process: Process) -> str:
    """Why ``process`` cannot be handed over now ('' when it can)."""
    if process.state not in SETTLED:
        return f"{process.namespec} is {process.state.name}"
    if process.waiting:
        return f"{process.namespec} waits for its dependencies"
    if process.state == S.RUNNING and not process.pid:
        return f"{process.namespec} waits for its pidfile"
    if process.leftovers.busy:
        return f"what {process.namespec} left behind is being stopped"
    return ""


def close_fds(record: dict[str, Any]) -> None:
    """Close what was handed over for a process that is not taken over."""
    for fd in (*record["output"]["fds"], record["stdin"]):
        if isinstance(fd, int):
            with contextlib.suppress(OSError):
                os.close(fd)


def release_all(sup: Supervisor) -> dict[str, Any]:
    """The whole daemon's state for the next one: every process, the listener pools, silenced alarms."""
    log.warning("reexec: handing %d processes to the next daemon", len(list(sup.all_processes())))
    return {"processes": {p.namespec: p.hand_over() for p in sup.all_processes()},
            "listeners": sup.hub.handover(), "silenced": sorted(sup.silenced), "started_at": sup.started_at}


def adopt_all(sup: Supervisor, state: dict[str, Any]) -> None:
    """Take over what ``release_all`` handed over; a process no longer configured is stopped."""
    records: dict[str, Any] = state["processes"]
    for process in sup.all_processes():
        record = records.get(process.namespec)
        if record is None:
            continue
        try:
            process.take_over(record)
        except OSError as exc:  # its pid is gone: it stays a fresh STOPPED process (autostart applies)
            log.error("reexec: cannot take over %s (pid %s): %s", process.namespec,  # noqa: TRY400 - no bug
                      record["pid"], exc.strerror)
            close_fds(record)
    sup.hub.adopt(state["listeners"])
    sup.silenced.update(state["silenced"])
    sup.started_at = state["started_at"]
    gone = sorted(set(records) - {p.namespec for p in sup.all_processes()})
    if gone:
        log.warning("reexec: %s no longer configured: stopping them", ", ".join(gone))
        for spec in gone:
            close_fds(records[spec])
            if pid := records[spec]["pid"]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)  # an orphan now: the reaper collects its exit
    log.warning("reexec: took over %d processes", len(records) - len(gone))
