"""Event listener pools: Supervisor's listener protocol over each listener's stdin and stdout.

A pool ([eventlistener:x]) buffers the events it subscribes to (``buffer_size``; on overflow the
oldest is discarded and logged) and hands each to one READY listener of the pool:

    listener stdout:  READY\\n
    listener stdin:   ver:3.0 server:<id> serial:<n> pool:<name> poolserial:<n> eventname:<T> len:<n>\\n<payload>
    listener stdout:  RESULT 2\\nOK            (processed)   or   RESULT 4\\nFAIL (rejected: sent again)

Listener states: ACKNOWLEDGED (after spawn and after a result), READY, BUSY (an event is out), UNKNOWN
(it broke the protocol; it gets nothing more until restarted). A rejected event, a bad result line, and a
listener that exits while BUSY all put the event back at the head of the buffer, so no event is lost.
Events are dispatched when they arrive, when a listener says READY, and when a listener enters RUNNING:
no polling.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from procward.config.eventnames import ancestry
from procward.config.model import GroupConfig
from procward.core.events import Event, EventBus, tick_event
from procward.core.process.lifecycle import NotRunning, Process
from procward.core.process.stdin import NoStdin
from procward.core.states import ProcessState

log = logging.getLogger(__name__)

PROTOCOL_VERSION = "3.0"
READY = b"READY\n"
RESULT = b"RESULT "
TICK_PERIODS = (5, 60, 3600)


class ListenerState(enum.Enum):
    """Supervisor's EventListenerStates."""

    READY = 10
    BUSY = 20
    ACKNOWLEDGED = 30
    UNKNOWN = 40


@dataclass(slots=True)
class Pending:
    """An event waiting in (or sent from) one pool's buffer, with the serials its envelope carries."""

    event: Event
    serial: int
    pool_serial: int


@dataclass(slots=True)
class Serials:
    """The global event serial, shared by every pool (Supervisor's GlobalSerial)."""

    last: int = -1

    def next(self) -> int:
        self.last += 1
        return self.last


@dataclass(slots=True)
class Listener:
    """Protocol state of one listener process."""

    process: Process
    state: ListenerState = ListenerState.ACKNOWLEDGED
    pending: Pending | None = None  # the event it is working on (BUSY)
    buffer: bytes = b""
    result_len: int | None = None
    result: bytes = b""

    def reset(self) -> None:
        self.state, self.pending, self.buffer, self.result_len, self.result = (
            ListenerState.ACKNOWLEDGED, None, b"", None, b"")


@dataclass
class ListenerPool:
    """One [eventlistener:x] group's buffer and listeners."""

    config: GroupConfig
    processes: list[Process]
    identifier: str
    serials: Serials
    subscribed: frozenset[str] = field(init=False)
    buffer: deque[Pending] = field(default_factory=deque)
    pool_serial: int = -1
    listeners: dict[str, Listener] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.config.listener is not None
        self.subscribed = frozenset(self.config.listener.events)
        self.buffer_size = self.config.listener.buffer_size
        self.dropped = 0  # events discarded because the buffer was full (metrics)
        for process in self.processes:
            listener = Listener(process)
            self.listeners[process.name] = listener
            process.output.stdout_taps.append(functools.partial(self._on_output, listener))
            process.observers.append(functools.partial(self._on_state, listener))

    @property
    def name(self) -> str:
        return self.config.name

    def subscribes(self, event_name: str) -> bool:
        """Whether the pool takes events of this type (``events=`` names it or one of its ancestors)."""
        return any(n in self.subscribed for n in ancestry(event_name))

    # -- buffering ---------------------------------------------------------------------------------

    def accept(self, event: Event, serial: int) -> None:
        """A new event this pool subscribes to."""
        self.pool_serial += 1
        self._buffer(Pending(event, serial, self.pool_serial), head=False)
        self.dispatch()

    def _buffer(self, pending: Pending, *, head: bool) -> None:
        if len(self.buffer) >= self.buffer_size:
            discarded = self.buffer.popleft()
            self.dropped += 1
            log.error("pool %s event buffer overflowed, discarding event %s", self.name, discarded.serial)
        if head:
            self.buffer.appendleft(pending)
        else:
            self.buffer.append(pending)

    def _rebuffer(self, pending: Pending) -> None:
        log.debug("rebuffering event %s for pool %s (buf size=%d, max=%d)", pending.serial, self.name,
                  len(self.buffer), self.buffer_size)
        self._buffer(pending, head=True)

    # -- dispatch ----------------------------------------------------------------------------------

    def dispatch(self) -> None:
        """Send buffered events, oldest first, while a RUNNING listener is READY."""
        while self.buffer:
            if not self._send(self.buffer[0]):
                return
            self.buffer.popleft()

    def _send(self, pending: Pending) -> bool:
        for listener in self.listeners.values():
            if listener.process.state != ProcessState.RUNNING or listener.state != ListenerState.READY:
                continue
            try:
                listener.process.write_stdin(self._envelope(pending))
            except (NoStdin, NotRunning):
                log.debug("epipe occurred while sending event %s to listener %s, listener state unchanged",
                          pending.serial, listener.process.name)
                continue
            listener.state = ListenerState.BUSY
            listener.pending = pending
            log.debug("event %s sent to listener %s", pending.serial, listener.process.name)
            return True
        return False

    def _envelope(self, pending: Pending) -> bytes:
        payload = pending.event.payload
        # len counts characters of the payload, as Supervisor computes it before encoding.
        header = (f"ver:{PROTOCOL_VERSION} server:{self.identifier} serial:{pending.serial} pool:{self.name} "
                  f"poolserial:{pending.pool_serial} eventname:{pending.event.name} len:{len(payload)}\n")
        return (header + payload).encode("utf-8", "surrogateescape")

    # -- the listener's side -------------------------------------------------------------------------

    def _on_state(self, listener: Listener, _process: Process, old: ProcessState, new: ProcessState) -> None:
        if new == ProcessState.STARTING:
            listener.reset()
        elif new == ProcessState.RUNNING:
            self.dispatch()
        elif new in (ProcessState.EXITED, ProcessState.STOPPED, ProcessState.BACKOFF, ProcessState.FATAL):
            pending, listener.pending = listener.pending, None
            if pending is not None:  # it died holding an event: nothing is lost
                log.warning("%s: listener exited with event %s unacknowledged; it will be sent again",
                            listener.process.name, pending.serial)
                self._rebuffer(pending)
                self.dispatch()

    def _on_output(self, listener: Listener, data: bytes) -> None:
        listener.buffer += data
        while listener.buffer and self._step(listener):
            pass

    def _step(self, listener: Listener) -> bool:
        """Consume what the buffer allows; True if it may allow more."""
        name = listener.process.name
        if listener.state == ListenerState.UNKNOWN:
            listener.buffer = b""
            return False
        if listener.state == ListenerState.ACKNOWLEDGED:
            if len(listener.buffer) < len(READY):
                return False
            if listener.buffer.startswith(READY):
                listener.buffer = listener.buffer[len(READY):]
                self._change(listener, ListenerState.READY)
                self.dispatch()
                return True
            self._change(listener, ListenerState.UNKNOWN)
            listener.buffer = b""
            return False
        if listener.state == ListenerState.READY:
            # Output while READY is a protocol error (Supervisor is as strict).
            self._change(listener, ListenerState.UNKNOWN)
            listener.buffer = b""
            return False
        if listener.result_len is None:
            line, newline, rest = listener.buffer.partition(b"\n")
            if not newline:
                return False
            listener.buffer = rest
            length = _result_length(line)
            if length is None:
                log.warning("%s: bad result line: '%s'", name, line.decode("utf-8", "backslashreplace"))
                self._change(listener, ListenerState.UNKNOWN)
                listener.buffer = b""
                self._reject(listener)
                return False
            listener.result_len = length
            return True
        needed = listener.result_len - len(listener.result)
        listener.result += listener.buffer[:needed]
        listener.buffer = listener.buffer[needed:]
        if len(listener.result) < listener.result_len:
            return False
        result, listener.result, listener.result_len = listener.result, b"", None
        self._handle_result(listener, result)
        return True

    def _handle_result(self, listener: Listener, result: bytes) -> None:
        if result == b"OK":
            log.debug("%s: event was processed", listener.process.name)
            listener.pending = None
            self._change(listener, ListenerState.ACKNOWLEDGED)
            return
        log.warning("%s: event was rejected", listener.process.name)
        self._change(listener, ListenerState.ACKNOWLEDGED)
        self._reject(listener)

    def _reject(self, listener: Listener) -> None:
        pending, listener.pending = listener.pending, None
        if pending is not None:
            self._rebuffer(pending)
            self.dispatch()  # another READY listener of the pool may take it now

    def _change(self, listener: Listener, new: ListenerState) -> None:
        old, listener.state = listener.state, new
        log.debug("%s: %s -> %s", listener.process.name, old.name, new.name)


def _result_length(line: bytes) -> int | None:
    """n of a ``RESULT n`` line, or None for anything else."""
    if not line.startswith(RESULT):
        return None
    try:
        length = int(line[len(RESULT):])
    except ValueError:
        return None
    return length if length >= 0 else None


class EventHub:
    """Routes events from the bus to the listener pools that subscribe to them, and emits TICKs."""

    def __init__(self, bus: EventBus, loop: asyncio.AbstractEventLoop, identifier: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.bus = bus
        self.loop = loop
        self.identifier = identifier
        self.serials = Serials()
        self.pools: dict[str, ListenerPool] = {}
        # Pools of a reload in progress: their listeners are gone, their queues take events until the
        # new configuration's pool of the same name takes them over (drop_parked ends the rest).
        self._parked: dict[str, ListenerPool] = {}
        self._clock = clock
        self._ticks: dict[int, asyncio.TimerHandle] = {}
        self._last_tick: dict[int, int] = {}
        bus.subscribe(self._route, self.wants)

    def wants(self, name: str) -> bool:
        """Whether some pool subscribes to events called ``name``."""
        return bool(self._pools_for(name))

    def _pools_for(self, name: str) -> list[ListenerPool]:
        pools = [*self.pools.values(), *self._parked.values()] if self._parked else self.pools.values()
        return [pool for pool in pools if pool.subscribes(name)]

    def add_pool(self, config: GroupConfig, processes: list[Process]) -> ListenerPool:
        pool = ListenerPool(config, processes, self.identifier, self.serials)
        self.pools[config.name] = pool
        parked = self._parked.pop(config.name, None)
        if parked is not None:
            # The same pool after a reload: its queue, with each event's serials, goes on where it was.
            pool.pool_serial, pool.dropped = parked.pool_serial, parked.dropped
            for pending in parked.buffer:
                if pool.subscribes(pending.event.name):
                    pool._buffer(pending, head=False)
        self._schedule_ticks()
        return pool

    def handover(self) -> dict[str, object]:
        """The pools' state for the next daemon (a reexec): the global serial, each pool's queue and
        counters, each listener's protocol state with the event it holds and what it began to answer."""
        def pending(p: Pending | None) -> list[object] | None:
            return None if p is None else [p.event.name, p.event.payload, p.serial, p.pool_serial]

        return {
            "serial": self.serials.last,
            "pools": {name: {"pool_serial": pool.pool_serial, "dropped": pool.dropped,
                             "buffer": [pending(p) for p in pool.buffer]} for name, pool in self.pools.items()},
            "listeners": {listener.process.namespec: {
                "state": listener.state.name, "pending": pending(listener.pending), "buffer": listener.buffer.hex(),
                "result_len": listener.result_len, "result": listener.result.hex()}
                for pool in self.pools.values() for listener in pool.listeners.values()},
        }

    def adopt(self, state: dict[str, Any]) -> None:
        """Go on where the previous daemon stopped: queued events stay queued, a listener holding one
        still holds it (its answer is waiting in its pipe), READY ones are sent events at once."""
        def pending(item: list[Any] | None) -> Pending | None:
            return None if item is None else Pending(Event(item[0], item[1]), item[2], item[3])

        self.serials.last = max(self.serials.last, state["serial"])
        for name, saved in state["pools"].items():
            pool = self.pools.get(name)
            if pool is None:
                continue
            pool.pool_serial, pool.dropped = saved["pool_serial"], saved["dropped"]
            pool.buffer.extend(p for p in map(pending, saved["buffer"]) if p is not None)
        for pool in self.pools.values():
            for listener in pool.listeners.values():
                saved = state["listeners"].get(listener.process.namespec)
                if saved is None:
                    continue
                listener.state = ListenerState[saved["state"]]
                listener.pending = pending(saved["pending"])
                listener.buffer = bytes.fromhex(saved["buffer"])
                listener.result_len = saved["result_len"]
                listener.result = bytes.fromhex(saved["result"])
            pool.dispatch()

    def remove_pool(self, name: str, *, park: bool = False) -> None:
        """The pool's group is gone. With ``park`` (a reload: the pool may come back), its queue keeps
        what it holds and takes new events until ``add_pool`` of the same name or ``drop_parked``."""
        pool = self.pools.pop(name, None)
        if park and pool is not None:
            pool.listeners.clear()  # their processes are closed: nothing is sent until the new pool's
            self._parked[name] = pool
        self._schedule_ticks()

    def drop_parked(self) -> None:
        """The reload is done: pools the new configuration does not have lose their queues."""
        for name, pool in self._parked.items():
            if pool.buffer:
                log.warning("pool %s is gone after the reload: %d queued event(s) discarded", name, len(pool.buffer))
        self._parked.clear()

    def close(self) -> None:
        for handle in self._ticks.values():
            handle.cancel()
        self._ticks.clear()

    def _route(self, event: Event) -> None:
        pools = self._pools_for(event.name)
        if not pools:
            return  # no serial is used for an event nobody receives, as in Supervisor
        serial = self.serials.next()
        for pool in pools:
            pool.accept(event, serial)

    # -- TICK_5 / TICK_60 / TICK_3600: timers at period boundaries, only while someone listens ----------

    def _schedule_ticks(self) -> None:
        for period in TICK_PERIODS:
            wanted = self.wants(f"TICK_{period}")
            if wanted and period not in self._ticks:
                self._last_tick[period] = int(self._clock() // period * period)
                self._arm(period)
            elif not wanted and period in self._ticks:
                self._ticks.pop(period).cancel()

    def _arm(self, period: int) -> None:
        now = self._clock()
        boundary = (now // period + 1) * period
        self._ticks[period] = self.loop.call_later(boundary - now, self._tick, period)

    def _tick(self, period: int) -> None:
        this_tick = int(self._clock() // period * period)
        if this_tick != self._last_tick.get(period):
            self._last_tick[period] = this_tick
            self.bus.publish(tick_event(period, this_tick))
        self._arm(period)
