"""Alertmanager as an alarm channel (``alarm_alertmanager = URL[, URL...]``): alarms become alerts.

Unlike the other channels an alert is a condition, not a message: it is posted to ``/api/v2/alerts`` when
it starts (``startsAt``), posted again every ``alarm_alertmanager_resend`` seconds while it lasts, with an
``endsAt`` four resends ahead as Prometheus does (a procward that dies leaves alerts that resolve by
themselves), and posted with ``endsAt`` = now when the program recovers (RUNNING again, healthy with a
health check) or is stopped on purpose, so Alertmanager resolves it. Grouping, silencing, inhibition and
de-duplication are Alertmanager's; procward's batching and rate limits do not apply here. Every URL is
posted to (the peers of an Alertmanager cluster each expect the alerts). A dead Alertmanager is retried
with backoff (1 s doubling up to the resend interval) in the background; nothing waits for it. The resend
timer exists only while an alert is active: an idle daemon does not wake up for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections import Counter
from datetime import UTC, datetime

from procward.config.model import AlarmConfig, AlarmEvent
from procward.core.alarms.channels import post_json
from procward.core.tasks import TaskSet

log = logging.getLogger(__name__)
ALERTNAMES = {AlarmEvent.FATAL: "ProcwardProgramFatal", AlarmEvent.EXIT: "ProcwardProgramExited",
              AlarmEvent.FLAPPING: "ProcwardProgramFlapping", AlarmEvent.UNHEALTHY: "ProcwardProgramUnhealthy",
              AlarmEvent.MEMORY: "ProcwardProgramMemoryLimit", AlarmEvent.TEST: "ProcwardTest"}
SEVERITY = {AlarmEvent.FATAL: "critical", AlarmEvent.TEST: "none"}  # others: warning
FIRST_RETRY = 1.0
_LOG_EVERY = 60.0


def _stamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AlertmanagerChannel:
    """The active alerts of one daemon and their delivery to every configured Alertmanager."""

    def __init__(self, config: AlarmConfig, loop: asyncio.AbstractEventLoop, counts: Counter[tuple[str, str, str]],
                 node: str = "") -> None:
        self.urls = tuple(url.rstrip("/") + "/api/v2/alerts" for url in config.alertmanager)
        self.resend = config.alertmanager_resend
        self.timeout = config.timeout
        self._loop = loop
        self._counts = counts
        self._node = node or socket.gethostname()
        self._active: dict[tuple[str, AlarmEvent], dict[str, object]] = {}  # (namespec, event) -> alert
        self._outbox: dict[tuple[str, AlarmEvent], dict[str, object]] = {}  # resolved, not delivered yet
        self._timer: asyncio.TimerHandle | None = None
        self._retry = FIRST_RETRY
        self._sending = False
        self._again = False
        self._last_log = -_LOG_EVERY
        self._tasks = TaskSet(loop, "alertmanager")

    def fire(self, event: AlarmEvent, alarm: dict[str, object]) -> None:
        """An alert starts (or its annotations change while it lasts): posted now."""
        key = (str(alarm["program"]), event)
        previous = self._active.get(key)
        starts = previous["startsAt"] if previous else _stamp(float(alarm["time"]))  # type: ignore[arg-type]
        self._active[key] = self._alert(event, alarm, starts)
        self._outbox.pop(key, None)
        self._post_soon()

    def resolve(self, namespec: str) -> None:
        """The program recovered or was stopped on purpose: its alerts end now."""
        for key in [k for k in self._active if k[0] == namespec]:
            alert = self._active.pop(key)
            self._outbox[key] = {**alert, "endsAt": _stamp(time.time())}
        if self._outbox:
            self._post_soon()

    async def test(self, alarm: dict[str, object]) -> bool:
        """``alarm test``: a test alert that ends by itself after one resend interval."""
        alert = self._alert(AlarmEvent.TEST, alarm, _stamp(time.time()))
        alert["endsAt"] = _stamp(time.time() + self.resend)
        return await self._deliver([alert]) is None

    def _alert(self, event: AlarmEvent, alarm: dict[str, object], starts: object) -> dict[str, object]:
        labels = {"alertname": ALERTNAMES[event], "program": str(alarm["program"]), "group": str(alarm["group"]),
                  "host": str(alarm["host"]), "node": self._node, "severity": SEVERITY.get(event, "warning"),
                  "source": "procward"}
        annotations = {"summary": f"{alarm['program']} {event.value} on {alarm['host']}",
                       "description": str(alarm["detail"] or event.value)}
        if alarm.get("exit"):
            annotations["exit"] = str(alarm["exit"])
        for stream in ("stdout", "stderr"):
            if alarm.get(stream):
                annotations[f"last_{stream}"] = str(alarm[stream])[-1000:]
        return {"labels": labels, "annotations": annotations, "startsAt": starts}

    def _post_soon(self) -> None:
        if self._sending:
            self._again = True  # after the post in flight, with what changed meanwhile
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._sending = True
        self._tasks.start(self._send(), "alertmanager post")

    async def _send(self) -> None:
        try:
            while True:
                self._again = False
                ends = _stamp(time.time() + 4 * self.resend)
                firing = [{**alert, "endsAt": ends} for alert in self._active.values()]
                resolved = dict(self._outbox)
                failure = await self._deliver([*firing, *resolved.values()])
                for alert in [*firing, *resolved.values()]:
                    labels = alert["labels"]
                    assert isinstance(labels, dict)
                    self._counts["alertmanager", labels["alertname"], "failed" if failure else "delivered"] += 1
                if failure is None:
                    for key, alert in resolved.items():
                        if self._outbox.get(key) is alert:
                            del self._outbox[key]
                    self._retry = FIRST_RETRY
                    delay = self.resend
                else:
                    self._log_failure(failure)
                    delay, self._retry = self._retry, min(self._retry * 2, self.resend)
                if not self._again:
                    break
        finally:
            self._sending = False
        if self._active or self._outbox:  # the timer lives only while there is something to say
            self._timer = self._loop.call_later(delay, self._post_soon)

    async def _deliver(self, alerts: list[dict[str, object]]) -> str | None:
        """POST ``alerts`` to every URL; None when all took them, else the first failure."""
        if not alerts:
            return None
        body = json.dumps(alerts).encode()
        results = await asyncio.gather(*(asyncio.to_thread(post_json, url, body, self.timeout) for url in self.urls))
        failures = [f"{url}: {why}" for url, why in zip(self.urls, results, strict=True) if why is not None]
        return "; ".join(failures) or None

    def _log_failure(self, reason: str) -> None:
        now = self._loop.time()
        if now - self._last_log >= _LOG_EVERY:
            self._last_log = now
            log.warning("alarms: alertmanager failed: %s (retried in the background)", reason)

    async def aclose(self) -> None:
        """Stop resending (the daemon exits or reloads: the alerts' endsAt resolves them if nobody resends)."""
        if self._timer is not None:
            self._timer.cancel()
        await self._tasks.aclose()
