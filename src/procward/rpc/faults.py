"""Supervisor's fault codes, and the one map from core errors to faults."""

from __future__ import annotations

from enum import IntEnum

from procward.core.process import AlreadyStarted, NoStdin, NotRunning
from procward.core.spawn import SpawnError, SpawnFailure
from procward.core.supervisor import AlreadyAdded, BadName, CantReread, Failed, StillRunning


class Faults(IntEnum):
    """Fault codes as Supervisor 4.3 sends them."""

    UNKNOWN_METHOD = 1
    INCORRECT_PARAMETERS = 2
    BAD_ARGUMENTS = 3
    SIGNATURE_UNSUPPORTED = 4
    SHUTDOWN_STATE = 6
    BAD_NAME = 10
    BAD_SIGNAL = 11
    NO_FILE = 20
    NOT_EXECUTABLE = 21
    FAILED = 30
    ABNORMAL_TERMINATION = 40
    SPAWN_ERROR = 50
    ALREADY_STARTED = 60
    NOT_RUNNING = 70
    SUCCESS = 80
    ALREADY_ADDED = 90
    STILL_RUNNING = 91
    CANT_REREAD = 92


class RPCError(Exception):
    """A fault to send back: ``text`` is ``NAME`` or ``NAME: extra``, as Supervisor formats it."""

    def __init__(self, code: Faults, extra: str | None = None) -> None:
        self.code = code
        self.text = f"{code.name}: {extra}" if extra is not None else code.name
        super().__init__(self.text)


_SPAWN = {SpawnFailure.NO_FILE: Faults.NO_FILE, SpawnFailure.NOT_EXECUTABLE: Faults.NOT_EXECUTABLE,
          SpawnFailure.FAILED: Faults.FAILED}


def to_fault(exc: Exception, name: str) -> RPCError:
    """The fault Supervisor would send for this core error about ``name``."""
    match exc:
        case RPCError():
            return exc
        case BadName():
            return RPCError(Faults.BAD_NAME, name)
        case AlreadyStarted():
            return RPCError(Faults.ALREADY_STARTED, name)
        case NotRunning():
            return RPCError(Faults.NOT_RUNNING, name)
        case NoStdin():
            return RPCError(Faults.NO_FILE, "Process has no stdin channel")
        case SpawnError():
            return RPCError(_SPAWN[exc.kind], str(exc))
        case AlreadyAdded():
            return RPCError(Faults.ALREADY_ADDED, name)
        case StillRunning():
            return RPCError(Faults.STILL_RUNNING, name)
        case CantReread():
            return RPCError(Faults.CANT_REREAD, str(exc))
        case Failed():
            return RPCError(Faults.FAILED, str(exc))
    raise exc
