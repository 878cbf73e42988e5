"""``cron=`` (Go supervisord's option): start a program at each time its expression matches.

A program that is running (or starting, or stopping) at that time is left alone; one that is stopped,
exited, fatal or in backoff is started, as ``supervisorctl start`` would. One timer per program, armed
for its next matching time: nothing runs in between. Timers sleep at most an hour and then look at the
wall clock again, so a clock step (NTP, a suspended VM) delays a start by an hour at most.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from procward.config.values import cron_schedule

if TYPE_CHECKING:
    from procward.core.process.lifecycle import Process

log = logging.getLogger(__name__)

MAX_SLEEP = 3600.0


class CronStarts:
    """The timers of the programs with ``cron=``; owned by the Supervisor, one entry per process."""

    def __init__(self, loop: asyncio.AbstractEventLoop, start: Callable[[Process], None]) -> None:
        self._loop = loop
        self._start = start  # the Supervisor's: decides whether the process may start now
        self._timers: dict[Process, asyncio.TimerHandle] = {}

    def add(self, process: Process) -> None:
        """Arm the process's timer (a no-op for a process without cron=)."""
        if process.config.cron:
            self._arm(process)

    def remove(self, process: Process) -> None:
        """Disarm it (its group is being removed, or the daemon is stopping)."""
        timer = self._timers.pop(process, None)
        if timer is not None:
            timer.cancel()

    def _arm(self, process: Process) -> None:
        expression = process.config.cron or ""
        due = cron_schedule(expression, datetime.now().astimezone())
        self._sleep_until(process, due)

    def _sleep_until(self, process: Process, due: datetime) -> None:
        delay = (due - datetime.now().astimezone()).total_seconds()
        self._timers[process] = self._loop.call_later(min(max(delay, 0.0), MAX_SLEEP), self._wake, process, due)

    def _wake(self, process: Process, due: datetime) -> None:
        if datetime.now().astimezone() < due:
            self._sleep_until(process, due)  # a capped sleep, or a timer a little early: not yet
            return
        log.info("%s: cron %r matched at %s", process.namespec, process.config.cron, due.isoformat())
        self._start(process)
        self._arm(process)
