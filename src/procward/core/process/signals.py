"""The one place a signal reaches a program's process (or its group)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

log = logging.getLogger(__name__)


def deliver(pid: int, sig: int, kill: Callable[[int, int], None], name: str, *, as_group: bool = False) -> None:
    """``sig`` to ``pid`` (to its process group with ``as_group``), never to pid 0, -1, the daemon or its
    group. ``kill`` is the runtime's (tests count the signals)."""
    if pid <= 0 or pid == os.getpid():
        log.error("not signalling %s: it has no process (pid %s)", name, pid)
        return
    target = pid
    try:
        if as_group:
            # A followed daemon (pidfile, MAINPID) leads its own process group, not the command's.
            group = os.getpgid(pid)
            if group > 1 and group != os.getpgrp():
                target = -group
        kill(target, sig)
    except ProcessLookupError:
        pass  # it exited already; its SIGCHLD will say so
