"""Event listener pools without listeners: what a pool buffers, the serials it gives, overflow, and a
SIGHUP reload's parking of a pool's queue until its successor takes it over."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from procward.config.build import BuildOptions, load
from procward.config.model import GroupConfig
from procward.core.daemon.listeners import EventHub
from procward.core.events import EventBus, process_state_event


def pool_config(tmp_path: Path, events: str, buffer_size: int = 10) -> GroupConfig:
    conf = tmp_path / "supervisord.conf"
    conf.write_text(textwrap.dedent(f"""\
        [supervisord]
        logfile={tmp_path}/main.log
        [eventlistener:watch]
        command=/bin/cat
        events={events}
        buffer_size={buffer_size}
        """))
    return load(str(conf), BuildOptions(host_checks=False)).groups[0]


@pytest.fixture
def hub() -> Iterator[tuple[EventHub, EventBus]]:
    loop = asyncio.new_event_loop()
    bus = EventBus()
    hub = EventHub(bus, loop, "supervisor", clock=lambda: 1000.0)
    yield hub, bus
    hub.close()
    loop.close()


def state(name: str, n: int) -> object:
    return process_state_event(name, process=f"p{n}", group=f"p{n}", from_state="STARTING")


def queued(hub: EventHub, name: str = "watch") -> list[tuple[str, int, int]]:
    return [(p.event.name, p.serial, p.pool_serial) for p in hub.pools[name].buffer]


def test_a_pool_queues_what_it_subscribes_to_with_serials(hub, tmp_path: Path) -> None:
    h, bus = hub
    h.add_pool(pool_config(tmp_path, "PROCESS_STATE_EXITED"), [])
    bus.publish(state("RUNNING", 1))  # not subscribed: no serial used
    bus.publish(state("EXITED", 2))
    bus.publish(state("EXITED", 3))
    assert queued(h) == [("PROCESS_STATE_EXITED", 0, 0), ("PROCESS_STATE_EXITED", 1, 1)]


def test_a_full_buffer_drops_the_oldest_and_counts_it(hub, tmp_path: Path) -> None:
    h, bus = hub
    h.add_pool(pool_config(tmp_path, "PROCESS_STATE", buffer_size=2), [])
    for n in range(5):
        bus.publish(state("EXITED", n))
    assert [pool_serial for _, _, pool_serial in queued(h)] == [3, 4]
    assert h.pools["watch"].dropped == 3


def test_a_reload_hands_the_queue_and_what_came_meanwhile_to_the_new_pool(hub, tmp_path: Path) -> None:
    h, bus = hub
    h.add_pool(pool_config(tmp_path, "PROCESS_STATE"), [])
    bus.publish(state("EXITED", 1))
    h.remove_pool("watch", park=True)  # the reload dropped the group
    bus.publish(state("STOPPED", 2))  # raised while the reload is under way
    assert "watch" not in h.pools
    (tmp_path / "new").mkdir()
    h.add_pool(pool_config(tmp_path / "new", "PROCESS_STATE_EXITED"), [])  # the new file narrows events=
    h.drop_parked()
    assert queued(h) == [("PROCESS_STATE_EXITED", 0, 0)]  # STOPPED (serial 1) is no longer subscribed to
    bus.publish(state("EXITED", 3))
    assert queued(h)[-1] == ("PROCESS_STATE_EXITED", 2, 2)  # serials go on past the parked ones


def test_a_pool_the_new_file_lacks_loses_its_queue_and_update_parks_nothing(hub, tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    h, bus = hub
    h.add_pool(pool_config(tmp_path, "PROCESS_STATE"), [])
    bus.publish(state("EXITED", 1))
    h.remove_pool("watch", park=True)
    h.drop_parked()
    assert "pool watch is gone after the reload: 1 queued event(s) discarded" in caplog.text
    bus.publish(state("EXITED", 2))  # nobody subscribes now
    h.add_pool(pool_config(tmp_path, "PROCESS_STATE"), [])
    assert queued(h) == []
    h.remove_pool("watch")  # update/remove: not parked, the queue goes with the group
    h.add_pool(pool_config(tmp_path, "PROCESS_STATE"), [])
    assert queued(h) == []
