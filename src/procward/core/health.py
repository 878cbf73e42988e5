"""Health checks: http (2xx/3xx), tcp (connects) and exec (exit 0) probes, run while a process is RUNNING.

Each probe is bounded by the check's timeout. A process is healthy after one passing probe and
unhealthy after ``retries`` consecutive failures; failures inside ``start_period`` after the start do
not count. Probes are timers on the loop: nothing runs for programs without a health check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Callable
from enum import StrEnum

from procward.config.model import HealthCheck, HealthKind
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


async def probe(check: HealthCheck, exits: ExitWatcher) -> str | None:
    """None when the probe passes, else why it failed (for the log and the description)."""
    try:
        return await asyncio.wait_for(_PROBES[check.kind](check.target, exits), check.timeout)
    except TimeoutError:
        return f"no answer within {check.timeout:g}s"
    except OSError as exc:
        return exc.strerror or str(exc)


async def _http(url: str, _: ExitWatcher) -> str | None:
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {parts.netloc}\r\nUser-Agent: procward-healthcheck\r\n"
                     "Connection: close\r\n\r\n".encode("ascii", "replace"))
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


async def _tcp(address: str, _exits: ExitWatcher) -> str | None:
    host, _sep, port = address.rpartition(":")
    _reader, writer = await asyncio.open_connection(host, int(port))
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


async def _exec(command: str, exits: ExitWatcher) -> str | None:
    # Spawned and reaped like the programs themselves (pidfd), so the subreaper never races it.
    popen = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL,  # noqa: ASYNC220 - fork+exec only
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0)
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
    return None if status.code == 0 else status.describe()


_PROBES = {HealthKind.HTTP: _http, HealthKind.TCP: _tcp, HealthKind.EXEC: _exec}


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
        failures = 0
        while True:
            reason = await probe(self.check, self._exits)
            if reason is None:
                failures = 0
                self._set(Health.HEALTHY, "")
            elif time.monotonic() - started >= self.check.start_period:
                failures += 1
                log.info("healthcheck of %s failed (%d/%d): %s", self.check.target, failures, self.check.retries,
                         reason)
                if failures >= self.check.retries:
                    self._set(Health.UNHEALTHY, f"{reason}, {failures} consecutive failures")
            await asyncio.sleep(self.check.interval)

    def _set(self, health: Health, reason: str) -> None:
        if health != self.health:
            self.health = health
            self._on_change(health, reason)
