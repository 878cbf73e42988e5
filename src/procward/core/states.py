"""The one table of allowed process state transitions (the states and their numbers are Supervisor's,
shared with clients through procward.protocol)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

from procward.protocol import (
    RUNNING_STATES,
    SIGNALLABLE_STATES,
    STOPPED_STATES,
    ProcessState,
    SupervisorState,
)

__all__ = ["ALLOWED", "RUNNING_STATES", "SIGNALLABLE_STATES", "STOPPED_STATES", "Detail", "InvalidTransition",
           "ProcessState", "SupervisorState"]


S = ProcessState

# Every edge of the machine. Supervisor marks them in Subprocess.transition(); here they are one table.
ALLOWED: Mapping[ProcessState, frozenset[ProcessState]] = {
    S.STOPPED: frozenset({S.STARTING}),                       # start request / autostart
    S.STARTING: frozenset({
        S.RUNNING,     # up for startsecs (or startsecs=0)
        S.BACKOFF,     # spawn error, or exited before startsecs
        S.STOPPING,    # stop request
    }),
    S.RUNNING: frozenset({S.EXITED, S.STOPPING}),             # exited by itself / stop request
    S.BACKOFF: frozenset({
        S.STARTING,    # backoff delay elapsed
        S.FATAL,       # retries exhausted
        S.STOPPED,     # stop request (immediate)
    }),
    S.STOPPING: frozenset({S.STOPPED}),                       # reaped after the stop signal
    S.EXITED: frozenset({
        S.STARTING,    # autorestart / start request
        S.FATAL,       # procward only: a restart policy gave up, or the program daemonized itself
    }),
    S.FATAL: frozenset({S.STARTING}),                         # start request
    S.UNKNOWN: frozenset({S.STARTING}),
}


class Detail(Enum):
    """Sub-states beside the table: what a state means right now, derived from a Process's fields
    (``Process.detail``). They change no edge of the table; they decide which edge an event takes.
    """

    NONE = "none"
    # STOPPING after a stop request: the next exit is STOPPING -> STOPPED; SIGKILL after stopwaitsecs.
    STOP_SIGNALLED = "stop signalled"
    # The same, to start again (unhealthy, watchdog, memory limit, files changed): STOPPED -> STARTING
    # follows the exit, after restartpause.
    RESTART_SIGNALLED = "restart signalled"
    # STARTING or RUNNING with no pid: a pidfile= command exited with an expected code and its daemon's
    # pid is not in the pidfile yet (PIDFILE_WAIT seconds at most). A stop ends the wait (-> STOPPED).
    PIDFILE_WAIT = "pidfile wait"
    # STARTING with no pid while the pre_start_hook runs: it passing spawns the command, it failing is
    # STARTING -> BACKOFF; a stop calls it off (-> STOPPED).
    HOOK = "pre_start_hook"
    # STARTING with no pid while a mass start's helper spawns it (core/massspawn.py): the pid follows in
    # milliseconds, or a failed spawn (-> BACKOFF); a stop calls it off (-> STOPPED; the process, if it
    # was spawned meanwhile, is killed as its pid arrives).
    SPAWNING = "spawning"
    # STARTING or RUNNING whose pid is a daemon named by the pidfile or MAINPID=, not the spawned command:
    # its exit is the program's exit, whatever its code.
    FOLLOWING = "following"
    # EXITED or STOPPED with a timer that will spawn it (restartpause, exponential backoff); a stop
    # calls the timer off.
    RESTART_PENDING = "restart pending"
    # A start request held until depends_on is ready; ``Process.waiting`` says for what.
    HELD = "held for depends_on"


class InvalidTransition(RuntimeError):
    """A bug: code tried an edge the table does not have."""

    def __init__(self, name: str, old: ProcessState, new: ProcessState) -> None:
        super().__init__(f"{name}: invalid transition {old.name} -> {new.name}")
