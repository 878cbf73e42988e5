"""Runtime: what every Process shares (the loop, exit watching, the event bus, daemon-wide settings, and the
two doors to the OS)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from procward.config.values import default_childlogdir
from procward.core import tree
from procward.core.events import EventBus
from procward.core.exits import ExitWatcher
from procward.core.heldsockets import HeldSockets
from procward.core.spawn import SpawnFunction, spawn


@dataclass(slots=True)
class Runtime:
    """What every Process shares: the loop, exit watching, the event bus, daemon-wide settings."""

    loop: asyncio.AbstractEventLoop
    exits: ExitWatcher
    bus: EventBus
    identifier: str = "supervisor"
    childlogdir: str = field(default_factory=default_childlogdir)
    serverurl: str | None = None
    strip_ansi: bool = False
    echo_output: bool = False  # loglevel debug: child output is copied into the main log
    record: tree.SpawnRecord | None = None  # what a daemon started after a SIGKILL of this one must stop
    sockets: HeldSockets = field(default_factory=HeldSockets)  # the daemon's, across configurations
    # The two doors to the OS, replaceable so the unit tests drive the state machine without processes.
    spawn: SpawnFunction = spawn
    kill: Callable[[int, int], None] = os.kill
