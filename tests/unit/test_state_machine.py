"""The Process state machine without processes: a virtual clock, a fake spawner, a fake exit source and a
recorded kill. Each test is a sequence of events and the sequence of states it must produce."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from procward.config.build import BuildOptions, load
from procward.config.model import Backoff, RestartPolicy
from procward.core.daemon.supervisor import SHUTDOWN_KILL_GRACE, wait_stopped
from procward.core.events import EventBus
from procward.core.exits import ExitStatus
from procward.core.process.lifecycle import Process
from procward.core.process.restarts import GiveUp, Restarts
from procward.core.runtime import Runtime
from procward.core.spawn import Spawned
from procward.core.states import ALLOWED, Detail, InvalidTransition, ProcessState

S = ProcessState


class ClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose time moves only when the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time on and run every callback and timer that is due by then."""
        self.now += seconds
        for _ in range(3):  # a timer may schedule another that is due at once
            self.run_until_complete(asyncio.sleep(0))


class FakeExits:
    """The exit source: the test decides when a pid exits and how."""

    def __init__(self) -> None:
        self.callbacks: dict[int, Any] = {}
        self.watched: set[int] = set()

    def watch(self, pid: int, callback: Any) -> None:
        self.callbacks[pid] = callback

    def exit(self, pid: int, code: int | None = 0, sig: int = 0) -> None:
        self.callbacks.pop(pid)(ExitStatus(code=code, signal=sig))


class World:
    """One Process over the fakes, with everything it did recorded."""

    def __init__(self, tmp_path: Path, options: str) -> None:
        conf = tmp_path / "supervisord.conf"
        conf.write_text(textwrap.dedent(f"""\
            [supervisord]
            logfile={tmp_path}/main.log
            [program:p]
            command=/bin/true
            stdout_logfile=NONE
            stderr_logfile=NONE
            killdescendants=false
            """) + textwrap.dedent(options))
        config = load(str(conf), BuildOptions(host_checks=False)).groups[0].processes[0]
        self.loop = ClockLoop()
        self.exits = FakeExits()
        self.kills: list[tuple[int, int]] = []
        self.pids = itertools.count(40000)
        self._fds: list[int] = []
        rt = Runtime(loop=self.loop, exits=self.exits, bus=EventBus(), spawn=self._spawn,  # type: ignore[arg-type]
                     kill=lambda pid, sig: self.kills.append((pid, sig)))
        self.process = Process(config, "p", rt)
        self.states: list[str] = []
        self.process.observers.append(lambda _p, _old, new: self.states.append(new.name))

    def _spawn(self, config: Any, env: dict[str, str], *, stdin_fd: int | None = None, sockets: Any = ()) -> Spawned:
        read, write = os.pipe()
        os.close(write)  # the child's end: the fake child writes nothing
        return Spawned(pid=next(self.pids), popen=SimpleNamespace(returncode=None),  # type: ignore[arg-type]
                       stdin=None, stdout=read, stderr=None)

    def exit(self, code: int | None = 0, sig: int = 0) -> None:
        self.exits.exit(self.process.pid, code, sig)

    def close(self) -> None:
        self.loop.run_until_complete(self.process.aclose())
        self.loop.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Any]:
    made: list[World] = []

    def make(options: str = "") -> World:
        made.append(World(tmp_path, options))
        return made[-1]

    yield make
    for w in made:
        w.close()


class TestTransitionTable:
    """The one table of edges: every allowed pair passes, every other pair raises."""

    @pytest.mark.parametrize(("old", "new"), list(itertools.product(S, S)),
                             ids=[f"{a.name}->{b.name}" for a, b in itertools.product(S, S)])
    def test_pair(self, world: Any, old: ProcessState, new: ProcessState) -> None:
        """_enter(new) from old succeeds exactly when the table allows the edge."""
        process = world().process
        process.state = old
        if new in ALLOWED[old]:
            process._enter(new)
            assert process.state == new
        else:
            with pytest.raises(InvalidTransition):
                process._enter(new)
            assert process.state == old


class TestRestarts:
    """The restart arithmetic, pure."""

    def test_linear_backoff_is_supervisors(self) -> None:
        """The n-th consecutive failure waits n seconds."""
        restarts = Restarts(RestartPolicy())
        assert [restarts.backoff_delay(n) for n in range(1, 6)] == [1, 2, 3, 4, 5]

    def test_exponential_backoff_doubles_up_to_its_cap(self) -> None:
        """backoff=exponential waits 1, 2, 4, 8 ... capped by backoff_max."""
        restarts = Restarts(RestartPolicy(backoff=Backoff.EXPONENTIAL, backoff_max=10))
        assert [restarts.backoff_delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]

    def test_max_restarts_window_forgets_old_restarts(self) -> None:
        """At most N restarts within the window; restarts older than the window no longer count."""
        restarts = Restarts(RestartPolicy(max_restarts=3, restart_window=10))
        assert [restarts.after_exit(expected=True, uptime=1, now=t) for t in (0, 1, 2)] == [0, 0, 0]
        assert restarts.after_exit(expected=True, uptime=1, now=3) == GiveUp("restarted 3 times within 10s "
                                                                             "(max_restarts)")
        assert restarts.after_exit(expected=True, uptime=1, now=10.5) == 0  # the restart at 0 expired

    def test_crash_streak_resets_after_a_long_run(self) -> None:
        """With exponential backoff, crashes wait longer and longer; a run of 60 s forgives them."""
        restarts = Restarts(RestartPolicy(backoff=Backoff.EXPONENTIAL, restartpause=1))
        delays = [restarts.after_exit(expected=False, uptime=5, now=t) for t in range(4)]
        assert delays == [2, 3, 5, 9]  # restartpause + 1, 2, 4, 8
        assert restarts.after_exit(expected=False, uptime=60, now=10) == 2
        assert restarts.after_exit(expected=True, uptime=5, now=11) == 1  # an expected exit adds no backoff


class TestLifecycle:
    """Sequences of events and the states they give."""

    def test_startsecs_zero_runs_at_once_and_exits_to_exited(self, world: Any) -> None:
        """startsecs=0: RUNNING at spawn; an expected exit without autorestart stays EXITED."""
        w = world("startsecs=0\nautorestart=false\n")
        w.process.start()
        assert w.states == ["STARTING", "RUNNING"]
        w.exit(0)
        assert w.states == ["STARTING", "RUNNING", "EXITED"]
        w.loop.advance(100)
        assert w.process.state == S.EXITED

    def test_failures_before_startsecs_back_off_then_give_up(self, world: Any) -> None:
        """Exits before startsecs: BACKOFF with 1 s, 2 s waits, FATAL after startretries."""
        w = world("startsecs=5\nstartretries=2\n")
        w.process.start()
        w.loop.advance(1)
        w.exit(1)
        assert w.states == ["STARTING", "BACKOFF"]
        w.loop.advance(0.9)
        assert w.process.state == S.BACKOFF  # the first wait is 1 s
        w.loop.advance(0.2)
        assert w.process.state == S.STARTING
        w.exit(1)
        w.loop.advance(1.9)
        assert w.process.state == S.BACKOFF  # the second wait is 2 s
        w.loop.advance(0.2)
        w.exit(1)
        assert w.states == ["STARTING", "BACKOFF", "STARTING", "BACKOFF", "STARTING", "BACKOFF", "FATAL"]
        assert w.process.spawnerr == "Exited too quickly (process log may have details)"

    def test_startsecs_passes_into_running(self, world: Any) -> None:
        """Up for startsecs: RUNNING by the timer."""
        w = world("startsecs=3\n")
        w.process.start()
        w.loop.advance(2.9)
        assert w.process.state == S.STARTING
        w.loop.advance(0.2)
        assert w.states == ["STARTING", "RUNNING"]

    @pytest.mark.parametrize(("autorestart", "code", "restarts"), [
        ("false", 1, False), ("true", 0, True), ("true", 1, True),
        ("unexpected", 0, False), ("unexpected", 2, False), ("unexpected", 1, True),
    ])
    def test_exitcodes_and_autorestart(self, world: Any, autorestart: str, code: int, restarts: bool) -> None:
        """exitcodes=0,2: autorestart decides from whether the exit was expected."""
        w = world(f"startsecs=0\nexitcodes=0,2\nautorestart={autorestart}\n")
        w.process.start()
        w.exit(code)
        w.loop.advance(0)
        expected = ["STARTING", "RUNNING", "EXITED"] + (["STARTING", "RUNNING"] if restarts else [])
        assert w.states == expected
        if not restarts:  # a new spawn clears it
            assert w.process.spawnerr == ("" if code in (0, 2) else f"Bad exit code {code}")

    def test_max_restarts_ends_in_fatal(self, world: Any) -> None:
        """max_restarts=2 over the process's life: the third unexpected exit is FATAL with the reason."""
        w = world("startsecs=0\nautorestart=true\nmax_restarts=2\n")
        w.process.start()
        for _ in range(3):
            w.exit(1)
            w.loop.advance(0)
        assert w.states[-2:] == ["EXITED", "FATAL"]
        assert w.states.count("STARTING") == 3
        assert w.process.spawnerr == "restarted 2 times (max_restarts)"

    def test_stop_signals_then_kills_after_stopwaitsecs(self, world: Any) -> None:
        """stop: the stop signal, SIGKILL after stopwaitsecs, STOPPED when the exit comes."""
        w = world("startsecs=0\nstopsignal=INT\nstopwaitsecs=4\n")
        w.process.start()
        pid = w.process.pid
        w.process.stop()
        assert w.process.detail == Detail.STOP_SIGNALLED
        assert w.kills == [(pid, signal.SIGINT)]
        w.loop.advance(4.1)
        assert w.kills == [(pid, signal.SIGINT), (pid, signal.SIGKILL)]
        w.exit(None, signal.SIGKILL)
        assert w.states == ["STARTING", "RUNNING", "STOPPING", "STOPPED"]

    def test_stop_during_the_pidfile_wait_signals_nobody(self, world: Any, tmp_path: Path) -> None:
        """The command exited (expected) and no pidfile names its daemon yet: stop ends the wait, no signal
        is sent to anyone, the state is STOPPED, and the wait never comes back."""
        w = world(f"startsecs=1\npidfile={tmp_path}/never.pid\n")
        w.process.start()
        w.exit(0)
        assert w.process.detail == Detail.PIDFILE_WAIT
        assert w.process.pid == 0
        w.process.stop()
        assert w.kills == []
        assert w.states == ["STARTING", "STOPPING", "STOPPED"]
        w.loop.advance(10)  # past the 5 s pidfile wait
        assert w.process.state == S.STOPPED

    def test_restart_pending_is_called_off_by_stop(self, world: Any) -> None:
        """restartpause: EXITED with a timer ahead; stop calls it off."""
        w = world("startsecs=0\nautorestart=true\nrestartpause=5\n")
        w.process.start()
        w.exit(0)
        assert w.process.detail == Detail.RESTART_PENDING
        w.process.stop()
        w.loop.advance(10)
        assert w.states == ["STARTING", "RUNNING", "EXITED"]


class TestHandover:
    """reexec: a process handed over as data and taken over by a new Process object is the same process:
    state, sub-state, counters, restart windows, and its pending timer, which still fires on time."""

    def test_a_pending_restart_goes_over_with_its_time_left(self, world: Any) -> None:
        w = world("startsecs=0\nautorestart=true\nrestartpause=5\nmax_restarts=4\n")
        w.process.start()
        w.exit(3)
        w.loop.advance(2)  # 3 s of the restartpause left
        assert w.process.detail == Detail.RESTART_PENDING
        record = w.process.hand_over()
        w.loop.run_until_complete(w.process.aclose())  # the old daemon execs: its timers go with it
        fresh = Process(w.process.config, "p", w.process.rt)
        fresh.take_over(record)
        assert (fresh.state, fresh.detail) == (S.EXITED, Detail.RESTART_PENDING)
        assert (fresh.starts, fresh.exitstatus, fresh.spawnerr) == (1, 3, "Bad exit code 3")
        assert fresh.counters.snapshot() == w.process.counters.snapshot()
        assert fresh.counters.last_code == 3
        assert fresh.restarts.snapshot() == w.process.restarts.snapshot()
        w.loop.advance(2.9)
        assert fresh.state == S.EXITED
        w.loop.advance(0.2)
        assert fresh.state == S.RUNNING  # the restart, 5 s after the exit, not 5 s after the handover
        w.loop.run_until_complete(fresh.aclose())

    def test_backoff_and_its_retry_go_over(self, world: Any) -> None:
        w = world("startsecs=10\nstartretries=3\n")
        w.process.start()
        w.exit(1)
        assert (w.process.state, w.process.backoff) == (S.BACKOFF, 1)
        record = w.process.hand_over()
        w.loop.run_until_complete(w.process.aclose())
        fresh = Process(w.process.config, "p", w.process.rt)
        fresh.take_over(record)
        assert (fresh.state, fresh.backoff, fresh.detail) == (S.BACKOFF, 1, Detail.NONE)
        w.loop.advance(1.1)  # the first retry comes 1 s after the failure
        assert fresh.state == S.STARTING
        w.loop.run_until_complete(fresh.aclose())

    def test_a_record_without_a_newer_field_still_loads(self, world: Any) -> None:
        """The record a daemon of an older version wrote (no ``once``, no ``last_code``) is taken over."""
        w = world()
        w.process.start()
        w.exit(1)
        record = w.process.hand_over()
        w.loop.run_until_complete(w.process.aclose())
        del record["once"], record["counters"]["last_code"]
        record["counters"]["retired_field"] = 7  # and one this version does not know
        fresh = Process(w.process.config, "p", w.process.rt)
        fresh.take_over(record)
        assert (fresh.once, fresh.counters.last_code, fresh.state) == (False, 0, w.process.state)
        w.loop.run_until_complete(fresh.aclose())


class TestShutdownWait:
    """Shutdown's wait for processes to stop is bounded."""

    def test_a_process_that_never_exits_is_given_up_on_and_named(self, world: Any,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
        """STOPPING forever (SIGKILL cannot end it): after stopwaitsecs + the grace, the wait ends and the
        log names it with its pid."""
        w = world("startsecs=0\nstopwaitsecs=2\n")
        w.process.start()
        pid = w.process.pid
        w.process.stop_for_shutdown()
        waiting = w.loop.create_task(wait_stopped([w.process], limit=2 + SHUTDOWN_KILL_GRACE))
        for _ in range(int(2 + SHUTDOWN_KILL_GRACE)):
            w.loop.advance(1)
            assert not waiting.done()
        w.loop.advance(1)
        assert waiting.done()
        assert (pid, signal.SIGKILL) in w.kills
        assert f"giving up on p (pid {pid}): still STOPPING" in caplog.text

    def test_processes_that_stop_end_the_wait_at_once(self, world: Any) -> None:
        """The common case: the exit ends the wait, with no time passing."""
        w = world("startsecs=0\n")
        w.process.start()
        w.process.stop_for_shutdown()
        waiting = w.loop.create_task(wait_stopped([w.process], limit=60))
        w.loop.advance(0)
        assert not waiting.done()
        w.exit(None, signal.SIGTERM)
        w.loop.advance(0)
        assert waiting.done()
