"""The real supervisorctl 4.3 follows streams from procward: tail -f, maintail -f and fg, unix and TCP."""

from __future__ import annotations

import os
import re
import selectors
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import free_port

TALKER = Path(__file__).resolve().parents[1] / "programs" / "talker.py"

PROGRAMS = """
    [program:talk]
    command={python} {talker}
    startsecs=0
    [program:echo]
    command={python} {talker} echo
    startsecs=0
    """


class Ctl:
    """A streaming supervisorctl command whose output is read with a deadline."""

    def __init__(self, args: list[str], *, stdin: bool = False) -> None:
        env = dict(os.environ, PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "supervisor.supervisorctl", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, env=env)
        self.seen = b""

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        """Read output until ``text`` appears; fail with what was seen."""
        wanted = text.encode()
        self._read_until(lambda seen: wanted in seen, repr(text), timeout)
        return self.seen.decode("utf-8", "replace")

    def wait_for_number(self, prefix: str, timeout: float = 15.0) -> int:
        """Read output until a whole line ``prefix N`` has arrived (a read may end inside it); N."""
        pattern = re.compile(re.escape(prefix.encode()) + rb" (\d+)\n")
        self._read_until(lambda seen: pattern.search(seen) is not None, f"a line {prefix!r} N", timeout)
        found = pattern.search(self.seen)
        assert found is not None
        return int(found.group(1))

    def _read_until(self, done: Callable[[bytes], bool], what: str, timeout: float) -> None:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while not done(self.seen):
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise AssertionError(f"no {what} after {timeout}s; saw {self.seen[-500:]!r}")
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise AssertionError(f"supervisorctl ended before {what}; saw {self.seen[-500:]!r}")
                self.seen += chunk

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pipe in (self.proc.stdout, self.proc.stdin):
            if pipe is not None:
                pipe.close()


@pytest.fixture(params=["unix", "tcp"])
def target(request, daemon) -> Iterator[list[str]]:
    """supervisorctl arguments for the daemon over its unix socket, or over TCP with credentials."""
    programs = PROGRAMS.format(python=sys.executable, talker=TALKER)
    if request.param == "unix":
        d = daemon(programs)
        yield ["-c", str(d.conf)]
        return
    port = free_port()
    d = daemon(programs, supervisord_extra=f"\n[inet_http_server]\nport=127.0.0.1:{port}\nusername=alice\n"
                                           "password=s3cret\n")
    yield ["-s", f"http://127.0.0.1:{port}", "-u", "alice", "-p", "s3cret"]


def follow(args: list[str], *command: str, stdin: bool = False) -> Iterator[Ctl]:
    ctl = Ctl([*args, *command], stdin=stdin)
    try:
        yield ctl
    finally:
        ctl.close()


def test_tail_f_stdout_and_stderr(target: list[str]) -> None:
    """tail -f NAME and tail -f NAME stderr show new lines as they are written, non-ASCII included."""
    for ctl in follow(target, "tail", "-f", "talk"):
        number = ctl.wait_for_number("out é")
        ctl.wait_for(f"out é {number + 3}\n")  # lines written after the command started
        assert "Cannot connect" not in ctl.seen.decode("utf-8", "replace")
    for ctl in follow(target, "tail", "-f", "talk", "stderr"):
        number = ctl.wait_for_number("err ü")
        ctl.wait_for(f"err ü {number + 3}\n")
        assert "out é" not in ctl.seen.decode("utf-8", "replace")


def test_maintail_f(target: list[str]) -> None:
    """maintail -f shows the daemon's log, then a line logged after it started (a restart)."""
    for ctl in follow(target, "maintail", "-f"):
        ctl.wait_for("spawned: 'echo'")
        subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", *target, "restart", "echo"],
                       capture_output=True, timeout=60, check=True)
        ctl.wait_for("stopped: echo")


def test_fg_sends_input_and_shows_output(target: list[str]) -> None:
    """fg attaches to a program: typed lines reach its stdin and its answers come back, non-ASCII too."""
    for ctl in follow(target, "fg", "echo", stdin=True):
        ctl.wait_for("==> Press Ctrl-C to exit <==")
        ctl.send("héllo wörld\n")
        ctl.wait_for("echo: héllo wörld")
        ctl.send("second\n")
        ctl.wait_for("echo: second")


@pytest.mark.parametrize("command", [["tail", "-f", "talk"], ["tail", "-f", "talk", "stderr"], ["maintail"],
                                     ["status"], ["avail"], ["logtail", "talk"]])
def test_a_closed_pipe_ends_procward_ctl_quietly(target: list[str], command: list[str]) -> None:
    """``procward ctl tail -f x | head -1`` (and any command whose reader goes away) exits 0 with nothing on
    stderr, as supervisorctl does: no BrokenPipeError traceback. (A follower learns that its reader went away
    at its next write, so each stream followed here is one that keeps growing.)"""
    ctl = " ".join(map(shlex.quote, [sys.executable, "-m", "procward", "ctl", *target, *command]))
    run = subprocess.run(["bash", "-c", f"{ctl} | head -c 1 >/dev/null; echo ${{PIPESTATUS[0]}}"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.stdout == "0\n", (run.stdout, run.stderr)
    assert run.stderr == ""
