"""The one table of allowed process state transitions (the states and their numbers are Supervisor's,
shared with clients through procward.protocol)."""

from __future__ import annotations

from collections.abc import Mapping

from procward.protocol import (
    RUNNING_STATES,
    SIGNALLABLE_STATES,
    STOPPED_STATES,
    ProcessState,
    SupervisorState,
)

__all__ = ["ALLOWED", "RUNNING_STATES", "SIGNALLABLE_STATES", "STOPPED_STATES", "InvalidTransition",
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


class InvalidTransition(RuntimeError):
    """A bug: code tried an edge the table does not have."""

    def __init__(self, name: str, old: ProcessState, new: ProcessState) -> None:
        super().__init__(f"{name}: invalid transition {old.name} -> {new.name}")
