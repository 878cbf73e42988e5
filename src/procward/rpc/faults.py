"""Faults on the daemon's side: the error that becomes a fault, and the one map from core errors to faults
(the codes themselves are in procward.protocol, shared with the client)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from procward.core.daemon.supervisor import AlreadyAdded, BadName, CantReread, Failed, StillRunning
from procward.core.process.lifecycle import AlreadyStarted, NotRunning
from procward.core.process.stdin import NoStdin
from procward.core.spawn import SpawnError, SpawnFailure
from procward.errors import ProcwardError
from procward.protocol import Faults

__all__ = ["Faults", "RPCError", "faults_for", "to_fault"]


class RPCError(Exception):
    """A fault to send back: ``text`` is ``NAME`` or ``NAME: extra``, as Supervisor formats it."""

    def __init__(self, code: Faults, extra: str | None = None) -> None:
        self.code = code
        self.text = f"{code.name}: {extra}" if extra is not None else code.name
        super().__init__(self.text)


_SPAWN = {SpawnFailure.NO_FILE: Faults.NO_FILE, SpawnFailure.NOT_EXECUTABLE: Faults.NOT_EXECUTABLE,
          SpawnFailure.FAILED: Faults.FAILED}


@contextlib.contextmanager
def faults_for(name: str) -> Iterator[None]:
    """Run a core call about ``name``: the errors the core raises on purpose become Supervisor's faults."""
    try:
        yield
    except ProcwardError as exc:
        raise to_fault(exc, name) from None


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
