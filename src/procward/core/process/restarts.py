"""Restart arithmetic of one process: backoff delays, the max_restarts window, the crash streak.

Pure logic over times it is given (no loop, no clock of its own), so the unit tests drive it with any
sequence of events. The Process asks it two questions: how long to wait before retrying a failed start,
and what to do after an exit that autorestart wants to restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from procward.config.model import Backoff, RestartPolicy

CRASH_STREAK_RESET = 60.0  # a run this long forgives earlier crashes (exponential backoff starts over)


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Restarting is over: the process goes FATAL with this reason."""

    reason: str


class Restarts:
    """The counters behind a process's restart decisions."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        # Lists, not deques: a few entries at most, and an empty deque costs ~600 bytes a process.
        self._times: list[float] = []  # times of automatic restarts, for the max_restarts window
        self._crash_streak = 0
        self._cores: list[float] = []  # times of core dumps, for max_tries_if_coredumped

    def snapshot(self) -> dict[str, Any]:
        """The counters as plain data (a reexec's record; the times are monotonic, the same clock after exec)."""
        return {"restart_times": list(self._times), "crash_streak": self._crash_streak, "cores": list(self._cores)}

    def restore(self, saved: dict[str, Any]) -> None:
        """Go on from ``snapshot``'s data."""
        self._times[:] = saved["restart_times"]
        self._crash_streak = saved["crash_streak"]
        self._cores[:] = saved["cores"]

    def backoff_delay(self, failures: int) -> float:
        """Seconds before the next attempt after ``failures`` consecutive failures.

        Supervisor's delay: the n-th consecutive failure waits n seconds; with backoff=exponential
        2^(n-1); capped by backoff_max.
        """
        policy = self.policy
        delay = float(failures if policy.backoff == Backoff.LINEAR else 2 ** max(0, failures - 1))
        return min(delay, policy.backoff_max) if policy.backoff_max else delay

    def after_exit(self, *, expected: bool, uptime: float, now: float, core: bool = False) -> float | GiveUp:
        """An exit that autorestart restarts: the delay before the restart, or why to give up.

        ``now`` is a monotonic time; ``uptime`` how long the process ran; ``core`` whether it dumped core
        (max_tries_if_coredumped gives up at the first dump past that many in restart_window, as supervise).
        """
        policy = self.policy
        if policy.max_cores and core:
            while policy.restart_window and self._cores and now - self._cores[0] > policy.restart_window:
                del self._cores[0]
            self._cores.append(now)
            if len(self._cores) > policy.max_cores:
                within = f" within {policy.restart_window}s" if policy.restart_window else ""
                return GiveUp(f"dumped core {len(self._cores)} times{within} (max_tries_if_coredumped)")
        if policy.max_restarts:
            while policy.restart_window and self._times and now - self._times[0] > policy.restart_window:
                del self._times[0]
            if len(self._times) >= policy.max_restarts:
                within = f" within {policy.restart_window}s" if policy.restart_window else ""
                return GiveUp(f"restarted {len(self._times)} times{within} (max_restarts)")
            self._times.append(now)
        delay = float(policy.restartpause)
        if policy.delays_crashes and not expected:
            self._crash_streak = 1 if uptime >= CRASH_STREAK_RESET else self._crash_streak + 1
            delay += self.backoff_delay(self._crash_streak)
        return delay
