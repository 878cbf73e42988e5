"""depends_on's start gate over a virtual clock: starts wait for what they depend on, starting it first,
say what they wait for, and a stop calls them off."""

from __future__ import annotations

import itertools
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from test_state_machine import ClockLoop, FakeExits

from procward.config.build import BuildOptions, load
from procward.core.daemon.depends import StartGate
from procward.core.events import EventBus
from procward.core.process.lifecycle import Process
from procward.core.runtime import Runtime
from procward.core.spawn import Spawned
from procward.core.states import ProcessState

S = ProcessState


class Stack:
    """cache <- db <- web (each depends on the one before), over one fake runtime and a start gate."""

    def __init__(self, tmp_path: Path) -> None:
        conf = tmp_path / "supervisord.conf"
        conf.write_text(textwrap.dedent(f"""\
            [supervisord]
            logfile={tmp_path}/main.log
            [program:cache]
            command=/bin/true
            startsecs=2
            startretries=0
            [program:db]
            command=/bin/true
            startsecs=2
            startretries=0
            depends_on=cache
            [program:web]
            command=/bin/true
            startsecs=1
            depends_on=db
            """).replace("command=/bin/true", "command=/bin/true\nstdout_logfile=NONE\nstderr_logfile=NONE\nkilldescendants=false"))
        self.groups = load(str(conf), BuildOptions(host_checks=False)).groups
        self.loop = ClockLoop()
        self.exits = FakeExits()
        pids = itertools.count(50000)

        def spawn(config: Any, env: dict[str, str], *, stdin_fd: int | None = None, sockets: Any = ()) -> Spawned:
            read, write = os.pipe()
            os.close(write)
            return Spawned(pid=next(pids), popen=SimpleNamespace(returncode=None),  # type: ignore[arg-type]
                           stdin=None, stdout=read, stderr=None)

        rt = Runtime(loop=self.loop, exits=self.exits, bus=EventBus(), spawn=spawn,  # type: ignore[arg-type]
                     kill=lambda pid, sig: None)
        self.p = {g.name: Process(g.processes[0], g.name, rt) for g in self.groups}
        self.gate = StartGate(self.loop, lambda: self.groups,
                              lambda spec: self.p.get(spec.split(":")[0]))

    def close(self) -> None:
        self.loop.run_until_complete(self.gate.aclose())
        for process in self.p.values():
            self.loop.run_until_complete(process.aclose())
        self.loop.close()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = Stack(tmp_path)
    yield s
    s.close()


def test_a_start_waits_for_its_dependencies_and_starts_them_first(stack: Stack) -> None:
    p = stack.p
    stack.gate.start(p["web"])
    stack.loop.advance(0)
    assert (p["cache"].state, p["db"].state, p["web"].state) == (S.STARTING, S.STOPPED, S.STOPPED)
    assert p["web"] in stack.gate
    assert p["db"] in stack.gate
    assert p["web"].waiting == "waiting for db (STOPPED)"
    assert p["db"].waiting == "waiting for cache (STARTING)"
    stack.loop.advance(2.1)  # cache RUNNING after its startsecs: db goes
    assert (p["cache"].state, p["db"].state) == (S.RUNNING, S.STARTING)
    assert p["web"].waiting == "waiting for db (STARTING)"
    stack.loop.advance(2.1)
    assert (p["db"].state, p["web"].state, p["web"].waiting) == (S.RUNNING, S.STARTING, "")
    assert stack.gate.held() == []


def test_a_failed_dependency_keeps_the_start_waiting_and_a_stop_calls_it_off(stack: Stack) -> None:
    p = stack.p
    stack.gate.start(p["db"])
    stack.loop.advance(0)
    stack.exits.exit(p["cache"].pid, 1)  # before its startsecs, with no retries: FATAL
    stack.loop.advance(0.1)
    assert p["cache"].state == S.FATAL
    assert p["db"].waiting == "waiting for cache (FATAL)"
    assert stack.gate.cancel(p["db"])
    stack.loop.advance(0)
    assert (p["db"].state, p["db"].waiting, stack.gate.held()) == (S.STOPPED, "", [])
    assert not stack.gate.cancel(p["db"])  # nothing left to call off


def test_depth_orders_shutdown(stack: Stack) -> None:
    assert [stack.gate.depth(stack.p[name]) for name in ("cache", "db", "web")] == [0, 1, 2]
    assert stack.gate.dependencies(stack.p["web"]) == [stack.p["db"]]
