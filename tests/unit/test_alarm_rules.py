"""Which events become alarms, batched and rate limited, over a virtual clock; the channels are a recorder
(what they send is tested against real receivers in tests/integration/test_alarms.py)."""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_state_machine import World

from procward.config.build import BuildOptions, load
from procward.core.alarms.rules import Alarms
from procward.core.events import Event, process_state_event


class Recorder:
    """Stands for the channels: records each message (a list of alarms as dicts)."""

    def __init__(self) -> None:
        self.messages: list[list[dict[str, Any]]] = []

    def channels(self) -> list[str]:
        return ["command"]

    async def send(self, alarms: list[dict[str, Any]], *, dropped: int) -> dict[str, bool]:
        self.messages.append(alarms)
        return {"command": True}


class Setup:
    def __init__(self, tmp_path: Path, options: str) -> None:
        conf = tmp_path / "alarms.conf"
        conf.write_text(textwrap.dedent(f"""\
            [supervisord]
            logfile={tmp_path}/main.log
            alarm_command=/bin/true
            """) + textwrap.dedent(options))
        config = load(str(conf), BuildOptions(host_checks=False)).supervisord.alarms
        assert config is not None
        self.w = World(tmp_path, "")
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self.alarms = Alarms(config, lambda spec: self.w.process if spec == "p" else None, self.w.exits,
                             self.w.loop, set(), self.counts)
        self.sent = Recorder()
        self.alarms.sender = self.sent  # type: ignore[assignment]

    def fatal(self) -> None:
        self.alarms.on_event(process_state_event("FATAL", process="p", group="p", from_state="BACKOFF"))

    def starting_again(self) -> None:
        self.alarms.on_event(process_state_event("STARTING", process="p", group="p", from_state="EXITED"))

    def events(self) -> list[list[str]]:
        return [[a["event"] for a in message] for message in self.sent.messages]

    def close(self) -> None:
        self.w.loop.run_until_complete(self.alarms.aclose())
        self.w.close()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Any]:
    made: list[Setup] = []

    def make(options: str = "") -> Setup:
        made.append(Setup(tmp_path, options))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_alarms_of_one_batch_window_go_as_one_message(setup: Any) -> None:
    s = setup("alarm_batch=2\nalarm_flapping=3/60\n")
    s.fatal()
    for _ in range(3):
        s.starting_again()  # the third restart within 60 s is flapping
    s.w.loop.advance(1.9)
    assert s.sent.messages == []
    s.w.loop.advance(0.2)
    assert s.events() == [["fatal", "flapping"]]
    assert s.sent.messages[0][1]["restarts_in_window"] == 3
    assert s.counts == Counter({("command", "fatal", "delivered"): 1, ("command", "flapping", "delivered"): 1})


def test_one_program_event_is_rate_limited_and_the_next_alarm_counts_what_it_held_back(setup: Any) -> None:
    s = setup("alarm_batch=1\nalarm_interval=30\n")
    s.fatal()
    s.w.loop.advance(1.1)
    s.fatal()
    s.fatal()  # within 30 s of the first: held back, counted
    s.w.loop.advance(5)
    assert s.events() == [["fatal"]]
    s.w.loop.advance(25)  # past the interval
    s.fatal()
    s.w.loop.advance(1.1)
    assert s.events() == [["fatal"], ["fatal"]]
    assert s.sent.messages[1][0]["suppressed"] == 2


def test_silenced_and_unwanted_events_send_nothing(setup: Any) -> None:
    s = setup("alarm_batch=1\nalarm_events=exit\n")
    s.fatal()  # not in alarm_events
    s.alarms.silenced.add("p")
    s.alarms.on_event(Event("PROCESS_STATE_EXITED", "processname:p groupname:p from_state:RUNNING expected:0 pid:1"))
    s.w.loop.advance(2)
    assert s.sent.messages == []
