"""Alarms: being told when a program dies, goes FATAL, flaps, turns unhealthy or hits its memory limit.

One small mechanism on the event bus. Each event of a program that alarms for it becomes an Alarm; the
first for a (program, event) pair goes out at once, repeats within ``interval`` are counted and reported
in the next one; alarms arriving within ``batch`` seconds of each other leave as one message (a host
reboot sends one mail, not 300). Messages wait in a bounded queue (the oldest dropped, and counted, when
full) for one delivery task that sends them through every channel (core/alarms/channels.py). Nothing here
blocks the loop or a program.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

from procward.config.model import AlarmConfig, AlarmEvent
from procward.core.alarms import channels as alarmsend
from procward.core.alarms.alertmanager import ALERTNAMES, AlertmanagerChannel
from procward.core.events import Event
from procward.core.exits import ExitWatcher
from procward.core.output import tails
from procward.core.process.lifecycle import Process
from procward.core.states import ProcessState
from procward.core.tasks import TaskSet

log = logging.getLogger(__name__)
TAIL_BYTES = 2048  # of each log, in a message
_TROUBLE = (AlarmEvent.FATAL, AlarmEvent.FLAPPING, AlarmEvent.UNHEALTHY, AlarmEvent.MEMORY)
_WATCHED = ("PROCESS_STATE_FATAL", "PROCESS_STATE_EXITED", "PROCESS_STATE_RUNNING", "PROCESS_STATE_STARTING",
            "PROCESS_STATE_STOPPED", "PROCWARD_HEALTH_", "PROCWARD_MEMORY_LIMIT")


@dataclass(slots=True)
class Alarm:
    """What an operator needs at 3 a.m. about one event of one process."""

    event: str
    program: str  # the namespec
    group: str
    host: str
    time: float
    detail: str = ""  # why: spawnerr, the health check's reason, the memory figure
    exit: str = ""  # "exit status 1" or "terminated by SIGSEGV (core dumped)"
    exit_code: int | None = None  # the same as numbers, for a program reading the JSON: the code, or
    signal: int | None = None  # the signal that ended it (None when the event is not an exit)
    core: bool = False
    restarts_in_window: int = 0
    uptime: float = 0.0
    suppressed: int = 0  # repeats of this event not sent since the last alarm for it
    stdout: str = ""
    stderr: str = ""

    def as_dict(self) -> dict[str, object]:
        """The JSON form (webhook body, command stdin)."""
        return asdict(self)


@dataclass(slots=True)
class _Track:
    """Per process: restart times (flapping), open troubles (for recovered), silenced."""

    restarts: deque[float] = field(default_factory=deque)
    troubles: set[AlarmEvent] = field(default_factory=set)


class Alarms:
    """Watches the bus for one Supervisor and sends alarms (owned by the Supervisor)."""

    def __init__(self, config: AlarmConfig, lookup: Callable[[str], Process | None], exits: ExitWatcher,
                 loop: asyncio.AbstractEventLoop, silenced: set[str], counts: Counter[tuple[str, str, str]],
                 node: str = "") -> None:
        self.config = config
        self._lookup = lookup
        self._loop = loop
        self.sender = alarmsend.Sender(config, exits)
        self.silenced = silenced  # namespecs, the Supervisor's (silencing outlives a reload)
        # (channel, event, result) -> alarms, the Supervisor's (counters outlive a reload)
        self.counts = counts
        self._tracks: dict[str, _Track] = {}
        self._last: dict[tuple[str, str], float] = {}  # (program, event) -> time its last alarm went out
        self._suppressed: dict[tuple[str, str], int] = {}
        self._batch: list[Alarm] = []
        self._batch_timer: asyncio.TimerHandle | None = None
        self._queue: deque[list[Alarm]] = deque()
        self.dropped = 0  # messages dropped because the queue was full
        self.sent = 0
        self.failed = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # set while nothing waits for delivery
        self._idle.set()
        self._tasks = TaskSet(loop, "alarms")
        self._tasks.start(self._deliver(), "alarm delivery")
        # Alerts, not messages: their own life (fired, resent, resolved) beside the batched channels.
        self.alertmanager = AlertmanagerChannel(config, loop, counts, node) if config.alertmanager else None

    @staticmethod
    def wants(name: str) -> bool:
        """The bus events alarms look at."""
        return name.startswith(_WATCHED)

    def on_event(self, event: Event) -> None:
        """A bus subscriber."""
        fields, spec = event.fields, event.namespec
        process = self._lookup(spec)
        if process is None:
            return
        track = self._tracks.setdefault(spec, _Track())
        detail = event.payload.split("\n", 1)[1] if "\n" in event.payload else ""
        name = event.name
        if name == "PROCESS_STATE_FATAL":
            self._raise(process, AlarmEvent.FATAL, process.spawnerr, track)
        elif name == "PROCESS_STATE_EXITED" and fields.get("expected") == "0":
            self._raise(process, AlarmEvent.EXIT, process.spawnerr, track)
        elif name == "PROCESS_STATE_STARTING" and fields.get("from_state") in ("EXITED", "BACKOFF"):
            self._count_restart(process, track)
        elif name == "PROCWARD_HEALTH_UNHEALTHY":
            self._raise(process, AlarmEvent.UNHEALTHY, detail, track)
        elif name == "PROCWARD_MEMORY_LIMIT":
            self._raise(process, AlarmEvent.MEMORY, detail or event.payload, track)
        elif name == "PROCWARD_HEALTH_HEALTHY" or (
                name == "PROCESS_STATE_RUNNING" and process.config.healthcheck is None):
            if self.alertmanager is not None:
                self.alertmanager.resolve(spec)
            if track.troubles:
                what = ", ".join(sorted(track.troubles))
                track.troubles.clear()
                self._raise(process, AlarmEvent.RECOVERED, f"after {what}", track)
        elif name == "PROCESS_STATE_STOPPED" and self.alertmanager is not None:
            self.alertmanager.resolve(spec)  # stopped on purpose: nothing to alert about any more

    def _count_restart(self, process: Process, track: _Track) -> None:
        now = self._loop.time()  # the loop's clock (monotonic): one clock for batches, windows and limits
        track.restarts.append(now)
        while track.restarts and now - track.restarts[0] > self.config.flap_window:
            track.restarts.popleft()
        if len(track.restarts) >= self.config.flap_restarts:
            self._raise(process, AlarmEvent.FLAPPING,
                        f"{len(track.restarts)} restarts within {self.config.flap_window:g}s", track)

    def _raise(self, process: Process, event: AlarmEvent, detail: str, track: _Track) -> None:
        if event in _TROUBLE:
            track.troubles.add(event)
        wanted = process.config.alarm_events if process.config.alarm_events is not None else self.config.events
        if event not in wanted or process.namespec in self.silenced:
            return
        key = (process.namespec, event.value)
        now = self._loop.time()  # the loop's clock (monotonic): one clock for batches, windows and limits
        repeat = key in self._last and now - self._last[key] < self.config.interval
        to_alertmanager = self.alertmanager is not None and event in ALERTNAMES  # no rate limit: it groups
        if repeat and not to_alertmanager:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        alarm = self.describe(process, event, detail)  # once, for both paths: it reads the logs' tails
        alarm.restarts_in_window = len(track.restarts)
        if to_alertmanager:
            assert self.alertmanager is not None
            self.alertmanager.fire(event, alarm.as_dict())
        if repeat:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        alarm.suppressed = self._suppressed.pop(key, 0)
        self._add(alarm)

    def describe(self, process: Process, event: AlarmEvent, detail: str) -> Alarm:
        """An Alarm for ``process`` now, with its exit, uptime and the tails of its logs."""
        counters = process.counters
        ended = process.state in (ProcessState.EXITED, ProcessState.FATAL, ProcessState.BACKOFF)
        exit_text = counters.last_exit if ended else ""
        end = time.time() if process.state == ProcessState.RUNNING else process.laststop
        code = counters.last_code if exit_text and not counters.last_signal else None
        return Alarm(event=event.value, program=process.namespec, group=process.group, host=socket.gethostname(),
                     time=time.time(), detail=detail, exit=exit_text, core=bool(exit_text and counters.last_core),
                     exit_code=code, signal=(counters.last_signal or None) if exit_text else None,
                     uptime=max(0.0, end - process.laststart) if process.laststart else 0.0,
                     stdout=_tail(process, "stdout"), stderr=_tail(process, "stderr"))

    def _add(self, alarm: Alarm) -> None:
        self._batch.append(alarm)
        if self._batch_timer is None:
            self._batch_timer = self._loop.call_later(self.config.batch, self._flush)

    def _flush(self) -> None:
        self._batch_timer = None
        batch, self._batch = self._batch, []
        if not batch:
            return
        if len(self._queue) >= self.config.queue:
            self._count(self._queue.popleft(), dict.fromkeys(self.sender.channels(), None))
            self.dropped += 1
            log.warning("alarms: delivery queue full (%d messages): the oldest is dropped (%d so far)",
                        self.config.queue, self.dropped)
        self._queue.append(batch)
        self._idle.clear()
        self._wake.set()

    async def _deliver(self) -> None:
        """The one task that sends messages, in order, one at a time."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = self._queue.popleft()
                results = await self.sender.send([a.as_dict() for a in batch], dropped=self.dropped)
                self.sent += sum(ok for ok in results.values())
                self.failed += sum(not ok for ok in results.values())
                self._count(batch, results)
            self._idle.set()

    def _count(self, batch: list[Alarm], results: Mapping[str, bool | None]) -> None:
        """Each alarm of a message, per channel: delivered, failed, or dropped (None: never sent)."""
        for alarm in batch:
            for channel, ok in results.items():
                self.counts[channel, alarm.event, "dropped" if ok is None else "delivered" if ok else "failed"] += 1

    async def test(self) -> dict[str, bool]:
        """A test alarm through every channel now (no batching, no rate limit): channel -> delivered."""
        alarm = Alarm(event=AlarmEvent.TEST.value, program="procward", group="", host=socket.gethostname(),
                      time=time.time(), detail="a test alarm (procward ctl alarm test)")
        results = await self.sender.send([alarm.as_dict()], dropped=self.dropped)
        if self.alertmanager is not None:
            results["alertmanager"] = await self.alertmanager.test(alarm.as_dict())
        return results

    async def aclose(self) -> None:
        """Send what is batched (bounded by the channels' timeouts), then stop."""
        if self._batch_timer is not None:
            self._batch_timer.cancel()
            self._flush()
        try:
            await asyncio.wait_for(self._idle.wait(), self.config.timeout * 2)
        except TimeoutError:
            log.warning("alarms: %d messages not delivered at shutdown", len(self._queue))
        await self._tasks.aclose()
        if self.alertmanager is not None:
            await self.alertmanager.aclose()


def _tail(process: Process, channel: str) -> str:
    path = process.output.paths.get(channel)
    if not path or not os.path.exists(path):
        return ""
    try:
        data, _offset, _overflow = tails.tail(path, 0, TAIL_BYTES)
    except OSError:
        return ""
    lines = data.decode("utf-8", "replace").splitlines()
    return "\n".join(lines[1:] if len(data) >= TAIL_BYTES else lines)  # the first may be cut
