"""The vocabulary the daemon and its clients share: Supervisor's fault codes and state numbers, the
process info struct, and namespecs. Plain data, no imports of the project: the client (ctl) and the
daemon (core, rpc) both import it, and neither imports the other."""

from __future__ import annotations

import signal
from enum import IntEnum
from typing import TypedDict


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


_S = ProcessState
STOPPED_STATES = frozenset({_S.STOPPED, _S.EXITED, _S.FATAL, _S.UNKNOWN})
RUNNING_STATES = frozenset({_S.RUNNING, _S.BACKOFF, _S.STARTING})
SIGNALLABLE_STATES = frozenset({_S.RUNNING, _S.STARTING, _S.STOPPING})


class _ProcessInfoBase(TypedDict):
    name: str
    group: str
    description: str
    start: int
    stop: int
    now: int
    state: int
    statename: str
    spawnerr: str
    exitstatus: int
    logfile: str
    stdout_logfile: str
    stderr_logfile: str
    pid: int


class ProcessInfo(_ProcessInfoBase, total=False):
    """getProcessInfo's struct: Supervisor's keys, then procward's (supervisorctl ignores keys it does
    not know)."""

    health: str
    ready: bool
    cpu_percent: float  # of one CPU, the process tree, since the previous sample
    rss_kb: int  # resident memory of the process tree
    tree_processes: int
    last_exit_code: int  # the exit procward saw (exitstatus is 0 after a failed start, as in supervisord)
    last_exit_signal: int  # the signal that ended the last run, 0 if it exited
    sockets: list[HeldSocketInfo]  # only for a program with ``sockets =``


class HeldSocketInfo(TypedDict):
    """A socket procward holds for a process (getProcessInfo's ``sockets``)."""

    name: str
    url: str
    fd: int  # its number in the process
    listening: bool  # held now; false when it could not be bound (``error`` says why)
    error: str


def sockets_text(info: ProcessInfo) -> str:
    """``name=url (fd N)`` for each held socket, as ``status --sockets`` shows them ('-' for none)."""
    parts = [f"{s['name']}={s['url']} (fd {s['fd']})" + ("" if s["listening"] else f" NOT HELD: {s['error']}")
             for s in info.get("sockets", [])]
    return ", ".join(parts) or "-"


def exit_code(info: ProcessInfo) -> int:
    """The last exit's code procward saw (-1 for a signal); another daemon's process, without procward's
    keys, has only its exitstatus."""
    return info.get("last_exit_code", info["exitstatus"])


def exit_text(info: ProcessInfo) -> str:
    """The last exit as a person reads it: the code, or the signal's name."""
    sig = info.get("last_exit_signal", 0)
    if sig:
        try:
            return signal.Signals(sig).name
        except ValueError:
            return f"signal {sig}"
    return str(exit_code(info))


def namespec(group: str, name: str) -> str:
    """``name`` for a program's only process, ``group:name`` otherwise (supervisorctl's display)."""
    return name if group == name else f"{group}:{name}"


def split_namespec(spec: str) -> tuple[str, str | None]:
    """``g:p`` -> (g, p); ``g:*`` or ``g:`` -> (g, None); ``p`` -> (p, p)."""
    group, sep, name = spec.partition(":")
    if not sep:
        return spec, spec
    return group, (None if name in ("", "*") else name)
