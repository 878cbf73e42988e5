"""Events and the bus that delivers them. The bus belongs to the Supervisor (no module globals)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from procward.config.eventnames import ancestry
from procward.protocol import namespec

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    """One event: its Supervisor type name and its payload text (exactly as listeners receive it)."""

    name: str
    payload: str

    @property
    def fields(self) -> dict[str, str]:
        """The ``key:value`` tokens of the payload's first line (processname, groupname, pid, ...)."""
        return dict(item.split(":", 1) for item in self.payload.split("\n", 1)[0].split() if ":" in item)

    @property
    def namespec(self) -> str:
        """The process a process event is about, as a namespec (from its groupname and processname)."""
        fields = self.fields
        return namespec(fields.get("groupname", ""), fields.get("processname", ""))

    def matches(self, subscribed: frozenset[str]) -> bool:
        """True when the type or one of its parents is subscribed."""
        return any(kind in subscribed for kind in ancestry(self.name))


def output_text(data: bytes) -> str:
    """Child output as supervisord shows it in events and the debug log: UTF-8, else ``Undecodable: b'..'``."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return f"Undecodable: {data!r}"


def process_log_event(channel: str, *, process: str, group: str, pid: int, data: bytes) -> Event:
    """PROCESS_LOG_STDOUT/STDERR (``*_events_enabled``)."""
    return Event(f"PROCESS_LOG_{channel.upper()}",
                 f"processname:{process} groupname:{group} pid:{pid} channel:{channel}\n{output_text(data)}")


def process_communication_event(channel: str, *, process: str, group: str, pid: int, data: bytes) -> Event:
    """PROCESS_COMMUNICATION_STDOUT/STDERR: what a program wrote between the capture tokens."""
    return Event(f"PROCESS_COMMUNICATION_{channel.upper()}",
                 f"processname:{process} groupname:{group} pid:{pid}\n{output_text(data)}")


def tick_event(period: int, when: int) -> Event:
    """TICK_5 / TICK_60 / TICK_3600, ``when`` being the start of the period that just began."""
    return Event(f"TICK_{period}", f"when:{when}")


def process_state_event(state_name: str, *, process: str, group: str, from_state: str,
                        tries: int = 0, expected: bool = False, pid: int = 0) -> Event:
    """PROCESS_STATE_<X> with the extra tokens Supervisor sends for that state."""
    payload = f"processname:{process} groupname:{group} from_state:{from_state}"
    if state_name in ("STARTING", "BACKOFF"):
        payload += f" tries:{tries}"
    elif state_name in ("RUNNING", "STOPPING", "STOPPED"):
        payload += f" pid:{pid}"
    elif state_name == "EXITED":
        payload += f" expected:{int(expected)} pid:{pid}"
    return Event(f"PROCESS_STATE_{state_name}", payload)


Subscriber = Callable[[Event], None]


class EventBus:
    """Synchronous fan-out: subscribers are called in order, each failure logged and contained."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._interests: dict[Subscriber, Callable[[str], bool]] = {}

    def subscribe(self, subscriber: Subscriber, wants: Callable[[str], bool] | None = None) -> None:
        """Receive every published event; ``wants(name)`` says which ones matter to the subscriber."""
        self._subscribers.append(subscriber)
        if wants is not None:
            self._interests[subscriber] = wants

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Stop receiving events."""
        self._subscribers.remove(subscriber)
        self._interests.pop(subscriber, None)

    def wants(self, name: str) -> bool:
        """Whether any subscriber cares for events called ``name``: costly payloads (a program's output
        as text) are built only then."""
        return any(s not in self._interests or self._interests[s](name) for s in self._subscribers)

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber."""
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception:  # a boundary: one broken subscriber must not break the state machine
                log.exception("event subscriber failed on %s", event.name)


class Notifier:
    """Wakes whoever waits for "something was written" (log followers); costs nothing without waiters."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiters: list[asyncio.Future[None]] = []

    def wait(self) -> asyncio.Future[None]:
        """A future completed at the next notify()."""
        future: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append(future)
        return future

    def notify(self, _data: bytes = b"") -> None:
        """Wake every waiter."""
        waiters, self._waiters = self._waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)
