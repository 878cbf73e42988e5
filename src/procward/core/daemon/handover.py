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
import dataclasses
import logging
import os
import signal
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from procward.core import tree
from procward.core.process.counters import ProcessCounters, RestartReason
from procward.core.process.health import Health
from procward.core.process.lifecycle import Process
from procward.core.process.notifysocket import NotifySocket
from procward.core.process.stdin import Stdin
from procward.core.spawn import Spawned
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


def release(process: Process) -> dict[str, Any]:
    """``process``'s state, its fds made inheritable; it stops being watched (the exec follows)."""
    # Friend code of process.py (the handover is part of the state machine), hence the private fields.
    loop = process.rt.loop
    timer = process._timer
    output = process.output.handover()
    stdin_fd = process._stdin._fd if process._stdin is not None else None
    fds = [fd for fd in (*output["fds"], stdin_fd) if isinstance(fd, int)]  # type: ignore[misc]
    for fd in fds:
        os.set_inheritable(fd, True)
    if process.pid:
        process.rt.exits.forget(process.pid)
    counters = dataclasses.asdict(process.counters)
    counters["restarts"] = {str(k): v for k, v in process.counters.restarts.items()}
    restarts = process.restarts
    return {
        "state": process.state.name, "pid": process.pid, "laststart": process.laststart,
        "laststop": process.laststop, "exitstatus": process.exitstatus, "spawnerr": process.spawnerr,
        "backoff": process.backoff, "starts": process.starts, "token": process.token,
        "status_text": process.status_text, "following": process._following, "once": process.once,
        "health": process.health.value, "stdin": stdin_fd, "output": output, "counters": counters,
        "restart_times": list(restarts._times), "crash_streak": restarts._crash_streak,
        "cores": list(restarts._cores),
        "timer": None if timer is None else max(0.0, timer.when() - loop.time()),
        "released_at": time.time(),
    }


def close_fds(record: dict[str, Any]) -> None:
    """Close what was handed over for a process that is not taken over."""
    for fd in (*record["output"]["fds"], record["stdin"]):
        if isinstance(fd, int):
            with contextlib.suppress(OSError):
                os.close(fd)


def adopt(process: Process, record: dict[str, Any]) -> None:
    """Take over ``process`` as the previous daemon left it (no state event: nothing changed). OSError,
    with ``process`` untouched, when its pid no longer exists."""
    if record["pid"]:
        os.kill(record["pid"], 0)  # before anything changes: a zombie passes, a pid gone for good raises
    process.state = ProcessState[record["state"]]
    process.laststart, process.laststop = record["laststart"], record["laststop"]
    process.exitstatus, process.spawnerr = record["exitstatus"], record["spawnerr"]
    process.backoff, process.starts, process.token = record["backoff"], record["starts"], record["token"]
    process.status_text = record["status_text"]
    process._following = record["following"]
    process.once = record.get("once", False)  # absent in a record from a daemon before this field
    counters = dict(record["counters"])
    counters["restarts"] = Counter({RestartReason(k): v for k, v in counters["restarts"].items()})
    process.counters = ProcessCounters(**counters)
    process.restarts._times.extend(record["restart_times"])
    process.restarts._crash_streak = record["crash_streak"]
    process.restarts._cores.extend(record["cores"])
    output = process.output
    output.paths.update(record["output"]["paths"])
    pid = record["pid"]
    if pid:
        fds = record["output"]["fds"]
        spawned = Spawned(pid=pid, popen=None, stdin=record["stdin"], stdout=fds[0],
                          stderr=fds[1] if len(fds) > 1 else None)
        for fd in (*fds, record["stdin"]):
            if isinstance(fd, int):
                os.set_inheritable(fd, False)
        process.pid = pid
        process._spawned = spawned
        if spawned.stdin is not None:
            process._stdin = Stdin(process.rt.loop, spawned.stdin, process.namespec)
        output.adopt(spawned, record["output"]["partials"])
        # A followed pid (pidfile, MAINPID=) may not be the daemon's child: then it is watched by pidfd.
        child = tree.start_time(pid, parent=os.getpid()) is not None
        process.rt.exits.watch(pid, process._on_exit, child=child)
        if process.config.notify:  # named after the daemon's pid, which the exec kept: the same address
            process._notify = NotifySocket(process.rt.loop, process.token, process._on_notify)
        if process.rt.record is not None:
            process.rt.record.add(process.namespec, process.token, pid)
        if process.state == S.RUNNING:
            process._entered_running()
            if process.health_monitor is not None and record["health"]:
                process.health_monitor.health = Health(record["health"])
    if record["timer"] is not None:
        if process.state == S.BACKOFF:
            process._schedule(record["timer"], process._retry)
        elif process.state in (S.EXITED, S.STOPPED):
            process._schedule(record["timer"], process._spawn_if, process.state)


def release_all(sup: Supervisor) -> dict[str, Any]:
    """The whole daemon's state for the next one: every process, the listener pools, silenced alarms."""
    log.warning("reexec: handing %d processes to the next daemon", len(list(sup.all_processes())))
    return {"processes": {p.namespec: release(p) for p in sup.all_processes()},
            "listeners": sup.hub.handover(), "silenced": sorted(sup.silenced), "started_at": sup.started_at}


def adopt_all(sup: Supervisor, state: dict[str, Any]) -> None:
    """Take over what ``release_all`` handed over; a process no longer configured is stopped."""
    records: dict[str, Any] = state["processes"]
    for process in sup.all_processes():
        record = records.get(process.namespec)
        if record is None:
            continue
        try:
            adopt(process, record)
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
