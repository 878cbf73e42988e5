"""Health checks: http (2xx/3xx), tcp (connects) and exec (exit 0) probes, run while a process is RUNNING.

Each probe is bounded by the check's timeout. A process is healthy after ``successes`` consecutive
passing probes and unhealthy after ``retries`` consecutive failures; nothing is probed in the first
``initial_delay`` seconds and failures inside ``start_period`` do not count. Probes are timers on the
loop: nothing runs for programs without a health check. ``run`` runs the same scripts for hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from enum import StrEnum

from procward.config.model import HealthCheck, HealthKind, Script
from procward.core.exits import ExitStatus, ExitWatcher
from procward.core.tasks import TaskSet

log = logging.getLogger(__name__)



class Health(StrEnum):
    """A process's verdict while RUNNING (NONE: no check, or not running); the values are what
    getProcessInfo's ``health`` key carries."""

    NONE = ""
    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"

_MAX_STATUS_LINE = 1024


async def run(script: Script, limit: float, exits: ExitWatcher, env: dict[str, str] | None = None) -> str | None:
    """None when the script passes within ``limit`` seconds, else why it did not (for logs and spawnerr)."""
    try:
        return await asyncio.wait_for(_PROBES[script.kind](script, exits, env), limit)
    except TimeoutError:
        return f"no answer within {limit:g}s"
    except OSError as exc:
        return exc.strerror or str(exc)


async def _http(script: Script, _exits: ExitWatcher, _env: dict[str, str] | None) -> str | None:
    import urllib.parse  # here: only HTTP probes need it (with ipaddress, ~0.4 MB and 2 ms of every start)

    parts = urllib.parse.urlsplit(script.target)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    body = b""
    if script.data:
        body = script.data.encode()
        if script.data.startswith("@"):
            with open(script.data[1:], "rb") as handle:  # a small local file, read at each run as Go does
                body = handle.read()
    head = [f"{'POST' if script.data else 'GET'} {path} HTTP/1.0", f"Host: {parts.netloc}",
            "User-Agent: procward-healthcheck", "Connection: close",
            *(f"{name}: {value}" for name, value in script.headers)]
    if script.data:
        head.append(f"Content-Length: {len(body)}")
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write("\r\n".join([*head, "", ""]).encode("latin-1", "replace") + body)
        await writer.drain()
        line = await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    fields = line[:_MAX_STATUS_LINE].decode("latin-1").split()
    if len(fields) < 2 or not fields[1].isdigit():
        return f"not an HTTP answer: {line[:80]!r}"
    status = int(fields[1])
    return None if 200 <= status < 400 else f"HTTP {status}"


async def _tcp(script: Script, _exits: ExitWatcher, _env: dict[str, str] | None) -> str | None:
    host, _sep, port = script.target.rpartition(":")
    _reader, writer = await asyncio.open_connection(host, int(port))
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


async def _exec(script: Script, exits: ExitWatcher, env: dict[str, str] | None) -> str | None:
    import tempfile  # here: see _http

    # Spawned and reaped like the programs themselves (pidfd), so the subreaper never races it. Output
    # goes to a file, not a pipe: a chatty script can never block on a full pipe, and its last line is kept.
    # ``data`` (an alarm's JSON, a mail) is its stdin, from a file for the same reason.
    with tempfile.TemporaryFile() as output, tempfile.TemporaryFile() as stdin:
        stdin.write(script.data.encode())
        stdin.seek(0)
        popen = subprocess.Popen(["/bin/sh", "-c", script.target], stdin=stdin,  # noqa: ASYNC220 - fork+exec only
                                 stdout=output, stderr=subprocess.STDOUT, process_group=0, env=env)
        done: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()

        def exited(status: ExitStatus) -> None:
            if not done.done():
                done.set_result(status)

        exits.watch(popen.pid, exited)
        try:
            status = await asyncio.shield(done)
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGKILL)
            await done
            raise
        finally:
            popen.returncode = 0  # reaped by the watcher; keep subprocess from trying again
        if status.code == 0:
            return None
        output.seek(max(0, output.tell() - _MAX_STATUS_LINE))
        lines = output.read().decode("utf-8", "replace").strip().splitlines()
    return status.describe() + (f": {lines[-1]}" if lines else "")


_PROBES = {HealthKind.HTTP: _http, HealthKind.TCP: _tcp, HealthKind.EXEC: _exec}


RESULTS_KEPT = 20


class HealthMonitor:
    """Runs one process's check while it is RUNNING and reports each change of verdict.

    Its probe loop is a task of the process's TaskSet, so the process awaits it when it is removed.
    """

    def __init__(self, check: HealthCheck, exits: ExitWatcher, tasks: TaskSet,
                 on_change: Callable[[Health, str], None]) -> None:
        self.check = check
        self._exits = exits
        self._tasks = tasks
        self._on_change = on_change  # (new health, reason)
        self.health = Health.NONE
        self._task: asyncio.Task[None] | None = None
        self.results: list[tuple[float, str]] = []  # the last probes: (Unix time, '' passed or why it failed)

    def start(self) -> None:
        """The process entered RUNNING."""
        self.stop()
        self._set(Health.STARTING, "")
        self._task = self._tasks.start(self._run(time.monotonic()), "healthcheck")

    def stop(self) -> None:
        """The process left RUNNING."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.health = Health.NONE

    async def _run(self, started: float) -> None:
        check = self.check
        failures = passes = 0
        await asyncio.sleep(check.initial_delay)
        while True:
            reason = await run(check.probe, check.timeout, self._exits)
            self.results.append((time.time(), reason or ""))
            if len(self.results) > RESULTS_KEPT:
                del self.results[0]
            if reason is None:
                failures, passes = 0, passes + 1
                if passes >= check.successes:
                    self._set(Health.HEALTHY, "")
            elif time.monotonic() - started >= check.start_period:
                failures, passes = failures + 1, 0
                log.info("healthcheck of %s failed (%d/%d): %s", check.probe.target, failures, check.retries, reason)
                if failures >= check.retries:
                    self._set(Health.UNHEALTHY, f"{reason}, {failures} consecutive failures")
            await asyncio.sleep(check.interval)

    def _set(self, health: Health, reason: str) -> None:
        if health != self.health:
            self.health = health
            self._on_change(health, reason)
