"""What happened to a process over its life, counted for the metrics: restarts by reason, exits, core
dumps. Plain integers the state machine bumps; readers (the /metrics collector) only read."""

from __future__ import annotations

import dataclasses
import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from procward.core.exits import ExitStatus


class RestartReason(enum.StrEnum):
    """Why a process was started again."""

    EXIT = "exit"  # autorestart after it exited
    START_FAILURE = "start_failure"  # the next attempt after BACKOFF
    HEALTH_CHECK = "health_check"
    WATCHDOG = "watchdog"
    MEMORY_LIMIT = "memory_limit"
    FILE_CHANGE = "file_change"
    MANUAL = "manual"  # a start request after the first start (start, restart, the web page)


@dataclass(slots=True)
class ProcessCounters:
    """Monotonic counts for one process (they survive restarts; a removed group takes them along)."""

    restarts: Counter[RestartReason] = field(default_factory=Counter)
    exits_expected: int = 0
    exits_unexpected: int = 0
    core_dumps: int = 0
    last_code: int = 0  # how the last run ended, stopped or not: its exit code, -1 when a signal ended it
    last_signal: int = 0  # the signal that ended the last run (0: it exited)
    last_core: bool = False  # the last run that ended by itself dumped core
    last_exit: str = ""  # how the last run that ended by itself ended ("exit status 3"), for alarms

    def ended(self, status: ExitStatus) -> None:
        """A run ended, whatever ended it. Unlike getProcessInfo's ``exitstatus`` (0 for a start that
        failed, as supervisord has it), this is the exit procward saw: metrics, alarms and the page show it."""
        self.last_code = status.exitstatus
        self.last_signal = status.signal or 0

    def exited(self, status: ExitStatus, *, expected: bool) -> None:
        """A run ended by itself (not by a stop request)."""
        if expected:
            self.exits_expected += 1
        else:
            self.exits_unexpected += 1
        self.core_dumps += status.core
        self.last_core = status.core
        self.last_exit = status.describe()

    def snapshot(self) -> dict[str, Any]:
        """The counts as plain data (a reexec's record)."""
        saved = dataclasses.asdict(self)
        saved["restarts"] = {str(reason): count for reason, count in self.restarts.items()}
        return saved

    @classmethod
    def restored(cls, saved: dict[str, Any]) -> ProcessCounters:
        """Counts from ``snapshot``'s data; fields another version of the record lacks keep their defaults,
        fields it has and this one does not are left out."""
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {key: value for key, value in saved.items() if key in known}
        fields["restarts"] = Counter({RestartReason(k): v for k, v in saved.get("restarts", {}).items()})
        return cls(**fields)
