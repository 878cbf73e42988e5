"""The page's live stream (Server-Sent Events): a snapshot of every process when a browser connects, then
each process whose state or health changed, the moment the core publishes it.

Nothing polls for state. The hub subscribes to the core's event bus only while some browser is connected;
an event marks its process changed and wakes the streams, which send the changed rows once per loop pass
(a mass stop of 500 processes is a few messages, not 500 per browser). EventSource reconnects by itself
(after a SIGHUP reload, which closes every connection, within a second); a reconnect gets a fresh snapshot.

The charts: after the snapshot a page gets each process's recent samples (``history``), then one
``samples`` message per sampling period with every process's newest CPU and memory. The one timer that
takes those samples runs only while at least one page is connected, whatever their number; with no page
open the daemon samples only when something else asks (a scrape, ``status --usage``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable

from procward.core.daemon.supervisor import Supervisor
from procward.core.daemon.usage import MAX_AGE
from procward.core.events import Event
from procward.http.server import Request
from procward.http.web.page import error_channel, has_stderr
from procward.protocol import ProcessInfo, exit_code, exit_text, namespec
from procward.rpc.info import process_info

RECONNECT_MS = 1000  # EventSource's wait before reconnecting (browsers default to about 3 s)
MAX_STREAMS = 1000  # past this, the oldest stream is told to go (it reconnects later)
_WATCHED = ("PROCESS_STATE", "PROCWARD_HEALTH", "PROCESS_GROUP", "PROCWARD_GROUP")
SAMPLE_PERIOD = MAX_AGE  # seconds between chart samples while a page is open
SPARK_POINTS = 30  # samples a row's sparkline shows (2.5 minutes)


def row(info: ProcessInfo, restarts: int, output: str) -> dict[str, object]:
    """What the page needs to redraw one row."""
    return {"name": namespec(info["group"], info["name"]), "group": info["group"], "state": info["statename"],
            "description": info["description"], "pid": info["pid"], "start": info["start"], "now": info["now"],
            "exit": exit_text(info), "exit_code": exit_code(info),
            "health": info.get("health", ""), "ready": info.get("ready", False),
            "restarts": restarts, "output": output, "cpu": info.get("cpu_percent", 0.0),
            "rss_kb": info.get("rss_kb", 0), "stderr": has_stderr(info),
            # where a failed process's error is, for the row's link (a stat, for FATAL and BACKOFF only)
            "errlog": error_channel(info) if info["statename"] in ("FATAL", "BACKOFF") else ""}


class _Stream:
    def __init__(self) -> None:
        self.changed: set[str] = set()
        self.groups_changed = False
        self.samples = False  # a new sample to send
        self.wake = asyncio.Event()
        self.closed = False


class LiveHub:
    """Fans the core's state changes out to every connected page."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._sup = supervisor
        self._streams: list[_Stream] = []
        self._subscribed = False
        self._sampler: asyncio.Task[None] | None = None  # alive while a page is connected

    def _on_event(self, event: Event) -> None:
        if not event.name.startswith(_WATCHED):
            return
        if event.name.startswith(("PROCESS_GROUP", "PROCWARD_GROUP")):
            for stream in self._streams:
                stream.groups_changed = True
                stream.wake.set()
            return
        name = event.namespec
        for stream in self._streams:
            stream.changed.add(name)
            stream.wake.set()

    def _wants(self, name: str) -> bool:
        return name.startswith(_WATCHED)

    def _attach(self) -> _Stream:
        stream = _Stream()
        self._streams.append(stream)
        if len(self._streams) > MAX_STREAMS:
            oldest = self._streams.pop(0)
            oldest.closed = True
            oldest.wake.set()
        if not self._subscribed:
            self._sup.bus.subscribe(self._on_event, self._wants)
            self._subscribed = True
        if self._sampler is None:
            self._sampler = asyncio.ensure_future(self._sample())
        return stream

    def _detach(self, stream: _Stream) -> None:
        if stream in self._streams:
            self._streams.remove(stream)
        if not self._streams and self._subscribed:
            self._sup.bus.unsubscribe(self._on_event)
            self._subscribed = False
        if not self._streams and self._sampler is not None:
            self._sampler.cancel()
            self._sampler = None

    async def _sample(self) -> None:
        """Every SAMPLE_PERIOD while a page is open: one sample of every process, announced to the pages."""
        while True:
            await asyncio.sleep(SAMPLE_PERIOD)
            await self._sup.usage.refresh()
            for stream in self._streams:
                stream.samples = True
                stream.wake.set()

    def _history(self, wanted: Callable[[str], bool], points: int) -> dict[str, list[list[float]]]:
        """Per process: [times], [CPU %], [resident KiB] of its last ``points`` samples."""
        out: dict[str, list[list[float]]] = {}
        for p in self._sup.all_processes():
            if wanted(p.namespec):
                samples = self._sup.usage.history(p.namespec, points)
                # truncated as a run's "start" is: a start after a sample must not land before it
                # (rounded, a sample at x.6 came out later than a restart at x.8)
                out[p.namespec] = [[int(t) for t, _, _ in samples], [round(c, 1) for _, c, _ in samples],
                                   [r for _, _, r in samples]]
        return out

    def _rows(self, wanted: Callable[[str], bool]) -> list[dict[str, object]]:
        now = time.time()
        usage = self._sup.usage.latest()
        return [row(process_info(p, now, usage.get(p.namespec)), max(0, p.starts - 1), p.output.last_line)
                for p in self._sup.all_processes() if wanted(p.namespec)]

    async def stream(self, request: Request, only: str = "") -> AsyncIterator[bytes]:
        """The event stream of one page (of one process with ``only``): a snapshot and the charts'
        history, then changes and samples until the browser goes away."""
        stream = self._attach()
        shown: Callable[[str], bool] = (lambda name: name == only) if only else (lambda _: True)
        disconnected = asyncio.ensure_future(request.disconnected.wait())
        try:
            # A reload closes the daemon's connections with its servers: the page reconnects a second later.
            yield (b"retry: %d\n" % RECONNECT_MS + _message("snapshot", self._rows(shown))
                   + _message("history", self._history(shown, 10**6 if only else SPARK_POINTS)))
            while not stream.closed:
                woke = asyncio.ensure_future(stream.wake.wait())
                await asyncio.wait([woke, disconnected], return_when=asyncio.FIRST_COMPLETED)
                woke.cancel()
                await asyncio.gather(woke, return_exceptions=True)
                if disconnected.done():
                    return
                stream.wake.clear()
                if stream.groups_changed:  # processes came or went: the page redraws from a snapshot
                    stream.groups_changed = False
                    stream.changed.clear()
                    yield _message("snapshot", self._rows(shown))
                    continue
                if stream.samples:
                    stream.samples = False
                    yield _message("samples", self._history(shown, 1))
                changed, stream.changed = stream.changed, set()
                changed = {name for name in changed if shown(name)}
                if changed:
                    yield _message("update", self._rows(changed.__contains__))
        finally:
            disconnected.cancel()
            await asyncio.gather(disconnected, return_exceptions=True)
            self._detach(stream)


def _message(kind: str, data: object) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
