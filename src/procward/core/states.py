"""Process and supervisor states with Supervisor's numbers, and the one table of allowed transitions."""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum


class ProcessState(IntEnum):
    """A supervised process's state (numbers are Supervisor's, clients depend on them)."""

    STOPPED = 0
    STARTING = 10
    RUNNING = 20
    BACKOFF = 30
    STOPPING = 40
    EXITED = 100
    FATAL = 200
    UNKNOWN = 1000


class SupervisorState(IntEnum):
    """The daemon's own state ("mood")."""

    FATAL = 2
    RUNNING = 1
    RESTARTING = 0
    SHUTDOWN = -1


S = ProcessState
STOPPED_STATES = frozenset({S.STOPPED, S.EXITED, S.FATAL, S.UNKNOWN})
RUNNING_STATES = frozenset({S.RUNNING, S.BACKOFF, S.STARTING})
SIGNALLABLE_STATES = frozenset({S.RUNNING, S.STARTING, S.STOPPING})

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


class InvalidTransition(RuntimeError):
    """A bug: code tried an edge the table does not have."""

    def __init__(self, name: str, old: ProcessState, new: ProcessState) -> None:
        super().__init__(f"{name}: invalid transition {old.name} -> {new.name}")
