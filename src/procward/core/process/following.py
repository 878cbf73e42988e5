"""Which pid a program's process really is, when it is not the command procward spawned: the daemon a
``pidfile=`` command forked (read from the pidfile) or the MAINPID= an sd_notify program names."""

from __future__ import annotations

import os

from procward.core import tree

PIDFILE_WAIT = 5.0  # seconds a self-daemonizing program has to write its pidfile after its parent exits


def read_pid(path: str) -> int:
    """The pid a pidfile names (0 when missing, unreadable or not a number)."""
    try:
        with open(path) as handle:
            text = handle.read(64).strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0


def adoptable(pid: int, token: str) -> bool:
    """True when ``pid`` is the daemon's child (so its death is seen) and carries the spawn's token (so it
    is this program's, not a stranger a stale pidfile names)."""
    return pid > 0 and tree.token_of(pid) == token and pid in tree.children(os.getpid())
