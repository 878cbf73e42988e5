"""``[supervisord] supervise_dir``: daemontools/meetbill supervise's status directory for every process
of the daemon, so scripts and monitoring written for ``supervise`` work on the daemon's programs.

Each process gets ``<dir>/<program>/`` (``<dir>/<group>/<process>/`` when its group has another name)
with ``lock`` (flock'ed by the daemon), the ``control`` and ``ok`` FIFOs, and the 20-byte ``status``
rewritten at each state change. A control byte is the same request as the XML-RPC call (through the
same registry, so the same faults, events and log lines): ``u``/``o`` startProcess (``o``, "up once", also
keeps the process from being restarted when it exits, until the next ``u`` or ``d``), ``d`` stopProcess,
``k t i a h p c`` signalProcess (KILL TERM INT ALRM HUP STOP CONT), ``s``/``n`` procward.silenceAlarms /
resumeAlarms. ``x`` and ``r`` mean "exit" and "re-read" to one supervise; for the daemon they are
logged and ignored (``supervisorctl shutdown`` and ``update`` do those).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field

from procward.config.model import Config
from procward.core.daemon.supervisor import Supervisor
from procward.core.events import Event
from procward.core.process.lifecycle import Process
from procward.core.states import ProcessState
from procward.core.tasks import TaskSet
from procward.errors import ProcwardError
from procward.rpc import api
from procward.rpc.faults import RPCError
from procward.rpc.registry import Registry
from procward.supervise import statusfiles as svfiles

log = logging.getLogger(__name__)
_WANT_UP = (ProcessState.STARTING, ProcessState.RUNNING, ProcessState.BACKOFF)
# method, and whether it takes supervisorctl's "wait" (False: the byte's writer is not waiting for it)
_CALLS = {"u": ("supervisor.startProcess", True), "o": ("supervisor.startProcess", True),
          "d": ("supervisor.stopProcess", True), "s": ("procward.silenceAlarms", False),
          "n": ("procward.resumeAlarms", False)}
_SIGNALS = {"k": "KILL", "t": "TERM", "i": "INT", "a": "ALRM", "h": "HUP", "p": "STOP", "c": "CONT"}


class StatusDirError(ProcwardError):
    """supervise_dir cannot be made."""


@dataclass(slots=True)
class _Entry:
    """One process's status directory and its open files."""

    directory: str
    lock: int
    control: tuple[int, int]
    ok: tuple[int, int]
    status: svfiles.Status = field(default_factory=svfiles.Status)

    def close(self) -> None:
        for fd in (self.lock, *self.control, *self.ok):
            with contextlib.suppress(OSError):
                os.close(fd)


class StatusDirService:
    """A core Service: keeps the status directories of one Supervisor run."""

    def __init__(self) -> None:
        self._base: str | None = None
        self._sup: Supervisor | None = None
        self._registry: Registry | None = None
        self._entries: dict[str, _Entry] = {}
        self._tasks: TaskSet | None = None
        self._bound = False  # bind ran once: a later failure (a reload) is a log line, not a refusal

    def bind(self, config: Config) -> list[str]:
        """Make the base directory (an error at the first start refuses it, later it is a log line)."""
        first, self._bound = not self._bound, True
        self._base = config.supervisord.supervise_dir
        if self._base is None:
            return []
        try:
            os.makedirs(self._base, 0o755, exist_ok=True)
        except OSError as exc:
            message = f"[supervisord] supervise_dir: cannot make {self._base}: {exc.strerror}"
            self._base = None
            if first:
                raise StatusDirError(message) from None
            return [message]
        return []

    async def start(self, supervisor: Supervisor) -> None:
        """Attach every process, and follow state changes and groups coming and going."""
        if self._base is None:
            return
        self._sup = supervisor
        self._registry = api.build(supervisor)
        self._tasks = TaskSet(asyncio.get_running_loop(), "supervise_dir")
        for process in supervisor.all_processes():
            self._attach(process)
        supervisor.bus.subscribe(self._on_event, lambda name: name.startswith(("PROCESS_", "PROCWARD_GROUP_")))

    async def stop(self) -> None:
        """Detach (the files stay; the locks are released)."""
        if self._sup is not None:
            self._sup.bus.unsubscribe(self._on_event)
        for spec in list(self._entries):
            self._detach(spec)
        if self._tasks is not None:
            await self._tasks.aclose()
        self._sup = None

    def close(self) -> None:
        """Nothing is left open after ``stop``."""

    def handover(self) -> dict[str, int]:
        """Nothing to hand over: the next daemon takes the locks and FIFOs again."""
        return {}

    def adopt(self, fds: dict[str, int]) -> None:
        """Nothing was handed over."""

    # -- directories ---------------------------------------------------------------------------------------

    def _path(self, process: Process) -> str:
        name = process.name if process.group == process.name else f"{process.group}/{process.name}"
        return os.path.join(self._base or "", name)

    def _attach(self, process: Process) -> None:
        directory = self._path(process)
        try:
            os.makedirs(directory, 0o700, exist_ok=True)
            lock = svfiles.take_lock(directory)
        except (OSError, svfiles.StatusDirError) as exc:
            log.error("supervise_dir: %s: %s", process.namespec, exc)  # noqa: TRY400 - an operator error, not a bug
            return
        try:
            control = svfiles.open_fifo(svfiles.fifo(directory, "control"))
            ok = svfiles.open_fifo(svfiles.fifo(directory, "ok"))
        except svfiles.StatusDirError as exc:
            os.close(lock)
            log.error("supervise_dir: %s: %s", process.namespec, exc)  # noqa: TRY400 - an operator error, not a bug
            return
        entry = _Entry(directory, lock, control, ok)
        self._entries[process.namespec] = entry
        asyncio.get_running_loop().add_reader(control[0], self._control, process.namespec)
        self._update(process, entry)

    def _detach(self, spec: str) -> None:
        entry = self._entries.pop(spec, None)
        if entry is not None:
            asyncio.get_running_loop().remove_reader(entry.control[0])
            entry.close()

    def _update(self, process: Process, entry: _Entry) -> None:
        status = entry.status
        if process.pid != status.pid or not status.changed:
            status.pid, status.changed = process.pid, svfiles.now()
        status.want = "" if process.once else "u" if process.state in _WANT_UP or process.restart_pending else "d"
        if not process.pid:
            status.paused = False
        try:
            svfiles.write_status(entry.directory, status)
        except FileNotFoundError:  # the directory was removed under us: made again, with new FIFOs
            self._detach(process.namespec)
            self._attach(process)
        except OSError as exc:
            log.warning("supervise_dir: cannot write %s/status: %s", entry.directory, exc.strerror)

    # -- events and control bytes --------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if self._sup is None or not event.name.startswith(("PROCESS_STATE_", "PROCESS_GROUP_", "PROCWARD_GROUP_")):
            return  # the bus hands every subscriber every event; ``wants`` only spares costly payloads
        if event.name.startswith(("PROCESS_GROUP_", "PROCWARD_GROUP_")):
            self._follow_groups()
            return
        spec = event.namespec
        entry = self._entries.get(spec)
        if entry is not None:
            _group, process = self._sup.lookup(spec)
            if process is not None:
                self._update(process, entry)

    def _follow_groups(self) -> None:
        assert self._sup is not None
        current = {p.namespec: p for p in self._sup.all_processes()}
        for spec in set(self._entries) - set(current):
            self._detach(spec)
        for spec, process in current.items():
            if spec not in self._entries:
                self._attach(process)

    def _control(self, spec: str) -> None:
        entry = self._entries.get(spec)
        if entry is None or self._tasks is None:
            return
        for byte in svfiles.read_commands(entry.control[0]):
            self._tasks.start(self._request(spec, chr(byte)), f"{spec} control {chr(byte)}")

    def _set_once(self, spec: str, once: bool) -> None:
        """``o``: up once (started if down, not restarted when it exits) until the next ``u`` or ``d``."""
        assert self._sup is not None
        _group, process = self._sup.lookup(spec)
        if process is not None and process.once != once:
            process.once = once
            entry = self._entries.get(spec)
            if entry is not None:
                self._update(process, entry)

    async def _request(self, spec: str, command: str) -> None:
        assert self._registry is not None
        if command in "xr":
            log.info("supervise_dir: %s: control %r has no meaning for a program of the daemon: ignored",
                     spec, command)
            return
        params: tuple[object, ...]
        if command in _SIGNALS:
            method, params = "supervisor.signalProcess", (spec, _SIGNALS[command])
        else:
            method, waits = _CALLS[command]
            params = (spec, False) if waits else (spec,)
        log.info("supervise_dir: %s: control %r: %s", spec, command, method)
        if command in "uod":
            self._set_once(spec, command == "o")
        try:
            await self._registry.call(method, params)
        except RPCError as exc:
            log.info("supervise_dir: %s: %s: %s", spec, method, exc.text)
            return
        entry = self._entries.get(spec)
        if entry is not None and command in "pcsn":
            if command in "pc":
                entry.status.paused = command == "p"
            else:
                entry.status.silenced = command == "s"
            with contextlib.suppress(OSError):
                svfiles.write_status(entry.directory, entry.status)
