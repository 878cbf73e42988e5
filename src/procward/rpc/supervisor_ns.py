"""The ``supervisor.*`` namespace: Supervisor 4.3's API, method for method, over the core."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from procward import API_VERSION, SUPERVISOR_COMPAT_VERSION
from procward.config.values import signal_number
from procward.core.daemon.group import ProcessGroup
from procward.core.daemon.supervisor import Supervisor
from procward.core.events import Event
from procward.core.output import tails
from procward.core.process.lifecycle import Process
from procward.core.states import RUNNING_STATES, SIGNALLABLE_STATES, STOPPED_STATES, ProcessState
from procward.protocol import ProcessInfo
from procward.rpc.codec import clean_text
from procward.rpc.faults import Faults, RPCError, faults_for
from procward.rpc.info import config_info, process_info
from procward.rpc.registry import Registry, checks

log = logging.getLogger(__name__)

S = ProcessState
# Seconds between "waiting for X to stop" lines while a call waits for a stop, as supervisord writes them.
STOP_REPORT = 2.0


@contextlib.contextmanager
def _stop_reports(processes: list[Process]) -> Iterator[None]:
    """While a call waits for stops: "waiting for X to stop" in the main log every STOP_REPORT seconds
    for each of ``processes`` still stopping, supervisord's line (its first comes at once, for stops
    a millisecond long too; here after the first interval). One timer for a whole batch."""
    if not processes:
        yield
        return
    loop = asyncio.get_running_loop()
    handle: asyncio.TimerHandle

    def report() -> None:
        nonlocal handle
        for process in processes:
            if process.state == S.STOPPING:
                log.info("waiting for %s to stop", process.name)
        handle = loop.call_later(STOP_REPORT, report)

    handle = loop.call_later(STOP_REPORT, report)
    try:
        yield
    finally:
        handle.cancel()


def _read_log(path: str | None, offset: int, length: int) -> str:
    """readLog / readProcess*Log: a range of the file; NO_FILE without one (Supervisor's fault text)."""
    if path is None or not os.path.exists(path):
        raise RPCError(Faults.NO_FILE, path)
    try:
        data = tails.read_range(path, offset, length)
    except ValueError:
        raise RPCError(Faults.BAD_ARGUMENTS) from None
    except OSError as exc:
        raise RPCError(Faults.FAILED, exc.strerror) from None
    return clean_text(data.decode("utf-8", "replace"))


def _result(process: Process, code: Faults = Faults.SUCCESS, text: str = "OK") -> dict[str, Any]:
    return {"name": process.name, "group": process.group, "status": int(code), "description": text}


class SupervisorNamespace:
    """Adapters from XML-RPC calls to Supervisor methods; faults exactly as Supervisor's."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.sup = supervisor

    # ---- helpers ----

    def _check_state(self) -> None:
        if self.sup.state < 1:  # RESTARTING or SHUTDOWN
            raise RPCError(Faults.SHUTDOWN_STATE)

    def _lookup(self, name: str) -> tuple[ProcessGroup, Process | None]:
        with faults_for(name):
            return self.sup.lookup(name)

    def _process(self, name: str) -> Process:
        _, process = self._lookup(name)
        if process is None:
            raise RPCError(Faults.BAD_NAME, name)
        return process

    def _group(self, name: str) -> ProcessGroup:
        group = self.sup.groups.get(name)
        if group is None:
            raise RPCError(Faults.BAD_NAME, name)
        return group

    def _all(self) -> list[Process]:
        return list(self.sup.all_processes())

    # ---- status and control of the daemon ----

    async def getAPIVersion(self) -> str:
        """Return the version of the RPC API used by supervisord

        @return string version id
        """
        return API_VERSION

    async def getSupervisorVersion(self) -> str:
        """Return the version of the supervisor package in use by supervisord

        @return string version id
        """
        return SUPERVISOR_COMPAT_VERSION

    async def getIdentification(self) -> str:
        """Return identifying string of supervisord

        @return string identifier identifying string
        """
        return self.sup.config.supervisord.identifier

    async def getState(self) -> dict[str, Any]:
        """Return current state of supervisord as a struct

        @return struct A struct with keys int statecode, string statename
        """
        return {"statecode": int(self.sup.state), "statename": self.sup.state.name}

    async def getPID(self) -> int:
        """Return the PID of supervisord

        @return int PID
        """
        return os.getpid()

    async def readLog(self, offset: int, length: int) -> str:
        """Read length bytes from the main log starting at offset

        @param int offset         offset to start reading from.
        @param int length         number of bytes to read from the log.
        @return string result     Bytes of log
        """
        self._check_state()
        return _read_log(self.sup.config.supervisord.logfile, offset, length)

    async def clearLog(self) -> bool:
        """Clear the main log.

        @return boolean result always returns True unless error
        """
        self._check_state()
        path = self.sup.config.supervisord.logfile
        try:
            with open(path, "r+b") as handle:
                handle.truncate(0)
        except FileNotFoundError:
            raise RPCError(Faults.NO_FILE, path) from None
        except OSError as exc:
            raise RPCError(Faults.FAILED, f"{path}: {exc.strerror}") from None
        return True

    async def shutdown(self) -> bool:
        """Shut down the supervisor process

        @return boolean result always returns True unless error
        """
        self._check_state()
        self.sup.request_shutdown()
        return True

    async def restart(self) -> bool:
        """Restart the supervisor process

        @return boolean result  always return True unless error
        """
        self._check_state()
        if not self.sup.request_restart():
            raise RPCError(Faults.CANT_REREAD, "the configuration has an error; see the main log")
        return True

    async def reloadConfig(self) -> list[list[list[str]]]:
        """Reload the configuration.

        The result contains three arrays containing names of process
        groups:

        * `added` gives the process groups that have been added
        * `changed` gives the process groups whose contents have
          changed
        * `removed` gives the process groups that are no longer
          in the configuration

        @return array result  [[added, changed, removed]]
        """
        self._check_state()
        with faults_for(""):
            change = self.sup.reload_config()
        return [[list(change.added), list(change.changed), list(change.removed)]]

    @checks(name="config_name")
    async def addProcessGroup(self, name: str) -> bool:
        """Update the config for a running process from config file.

        @param string name         name of process group to add
        @return boolean result     true if successful
        """
        self._check_state()
        with faults_for(name):
            self.sup.add_group_by_name(name)
        return True

    async def removeProcessGroup(self, name: str) -> bool:
        """Remove a stopped process from the active configuration.

        @param string name         name of process group to remove
        @return boolean result     Indicates whether the removal was successful
        """
        self._check_state()
        with faults_for(name):
            await self.sup.remove_group(name)
        return True

    # ---- start / stop / signal ----

    async def startProcess(self, name: str, wait: bool = True) -> Any:
        """Start a process

        @param string name Process name (or ``group:name``, or ``group:*``)
        @param boolean wait Wait for process to be fully started
        @return boolean result     Always true unless error
        """
        self._check_state()
        group, process = self._lookup(name)
        if process is None:
            return await self.startProcessGroup(group.name, wait)
        await self._start_one(process, name, wait)
        return True

    async def _start_one(self, process: Process, name: str, wait: bool) -> None:
        with faults_for(name):
            self.sup.start_process(process)
        if process.spawnerr:
            raise RPCError(Faults.SPAWN_ERROR, name)
        if wait and process.state != S.RUNNING:
            state = await self.sup.wait_started(process)
            if process.spawnerr:
                raise RPCError(Faults.SPAWN_ERROR, name)
            if state != S.RUNNING:
                raise RPCError(Faults.ABNORMAL_TERMINATION, name)

    async def startProcessGroup(self, name: str, wait: bool = True) -> list[dict[str, Any]]:
        """Start all processes in the group named 'name'

        @param string name     The group name
        @param boolean wait    Wait for each process to be fully started
        @return array result   An array of process status info structs
        """
        self._check_state()
        group = self._group(name)
        return await self._start_many(group.in_start_order(), wait)

    async def startAllProcesses(self, wait: bool = True) -> list[dict[str, Any]]:
        """Start all processes listed in the configuration file

        @param boolean wait    Wait for each process to be fully started
        @return array result   An array of process status info structs
        """
        self._check_state()
        return await self._start_many(self._all(), wait)

    async def _start_many(self, processes: Iterable[Process], wait: bool) -> list[dict[str, Any]]:
        todo = [p for p in processes if p.state not in RUNNING_STATES]
        return await self._gather(todo, lambda p: self._start_one(p, p.namespec, wait))

    async def _gather(self, processes: list[Process],
                      action: Callable[[Process], Awaitable[None]]) -> list[dict[str, Any]]:
        """Run ``action`` on every process concurrently; one result struct each, in order."""
        outcomes = await asyncio.gather(*(action(p) for p in processes), return_exceptions=True)
        results = []
        for process, outcome in zip(processes, outcomes, strict=True):
            if isinstance(outcome, RPCError):
                results.append(_result(process, outcome.code, outcome.text))
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                results.append(_result(process))
        return results

    async def stopProcess(self, name: str, wait: bool = True) -> Any:
        """Stop a process named by name

        @param string name  The name of the process to stop (or 'group:name')
        @param boolean wait        Wait for the process to be fully stopped
        @return boolean result     Always return True unless error
        """
        self._check_state()
        group, process = self._lookup(name)
        if process is None:
            return await self.stopProcessGroup(group.name, wait)
        await self._stop_one(process, name, wait)
        return True

    async def _stop_one(self, process: Process, name: str, wait: bool, *, report: bool = True) -> None:
        """Stop one process; ``report``: its wait is reported here (a batch has one report for all)."""
        if self.sup.gate.cancel(process):
            return  # it was waiting for its dependencies: it now stays stopped
        if process.state not in RUNNING_STATES and not process.restart_pending:
            raise RPCError(Faults.NOT_RUNNING, name)
        with faults_for(name):
            process.stop()
        if wait:
            with _stop_reports([process] if report else []):
                await process.wait_state(STOPPED_STATES)

    async def stopProcessGroup(self, name: str, wait: bool = True) -> list[dict[str, Any]]:
        """Stop all processes in the process group named 'name'

        @param string name     The group name
        @param boolean wait    Wait for each process to be fully stopped
        @return array result   An array of process status info structs
        """
        self._check_state()
        group = self._group(name)
        return await self._stop_many(group.in_start_order(), wait)

    async def stopAllProcesses(self, wait: bool = True) -> list[dict[str, Any]]:
        """Stop all processes in the process list

        @param  boolean wait   Wait for each process to be fully stopped
        @return array result   An array of process status info structs
        """
        self._check_state()
        return await self._stop_many(self._all(), wait)

    async def _stop_many(self, processes: Iterable[Process], wait: bool) -> list[dict[str, Any]]:
        todo = [p for p in processes if p.state in RUNNING_STATES]
        with _stop_reports(todo if wait else []):
            return await self._gather(todo, lambda p: self._stop_one(p, p.namespec, wait, report=False))

    def _signal_one(self, process: Process, name: str, sig: int | str) -> None:
        try:
            number = signal_number(str(sig))
        except ValueError:
            raise RPCError(Faults.BAD_SIGNAL, str(sig)) from None
        if process.state not in SIGNALLABLE_STATES:
            raise RPCError(Faults.NOT_RUNNING, name)
        try:
            with faults_for(name):
                process.signal(number)
        except OSError as exc:
            raise RPCError(Faults.FAILED, f"{name}: {exc.strerror}") from None

    async def signalProcess(self, name: str, signal: int | str) -> Any:
        """Send an arbitrary UNIX signal to the process named by name

        @param string name    Name of the process to signal (or 'group:name')
        @param string signal  Signal to send, as name ('HUP') or number ('1')
        @return boolean
        """
        self._check_state()
        group, process = self._lookup(name)
        if process is None:
            return await self.signalProcessGroup(group.name, signal)
        self._signal_one(process, name, signal)
        return True

    async def signalProcessGroup(self, name: str, signal: int | str) -> list[dict[str, Any]]:
        """Send a signal to all processes in the group named 'name'

        @param string name    The group name
        @param string signal  Signal to send, as name ('HUP') or number ('1')
        @return array
        """
        self._check_state()
        group = self._group(name)
        return self._signal_many(group.in_start_order(), signal)

    async def signalAllProcesses(self, signal: int | str) -> list[dict[str, Any]]:
        """Send a signal to all processes in the process list

        @param string signal  Signal to send, as name ('HUP') or number ('1')
        @return array         An array of process status info structs
        """
        self._check_state()
        return self._signal_many(self._all(), signal)

    def _signal_many(self, processes: Iterable[Process], sig: int | str) -> list[dict[str, Any]]:
        results = []
        for process in processes:
            if process.state not in SIGNALLABLE_STATES:
                continue
            try:
                self._signal_one(process, process.namespec, sig)
            except RPCError as exc:
                results.append(_result(process, exc.code, exc.text))
            else:
                results.append(_result(process))
        return results

    # ---- information ----

    async def getAllConfigInfo(self) -> list[dict[str, Any]]:
        """Get info about all available process configurations. Each struct
        represents a single process (i.e. groups get flattened).

        @return array result  An array of process config info structs
        """
        self._check_state()
        infos: list[dict[str, Any]] = []
        for group in self.sup.parsed.groups:
            active = self.sup.groups.get(group.name)
            infos.extend(config_info(group, cfg, active) for cfg in group.processes)
        infos.sort(key=lambda info: info["name"])
        return infos

    async def getProcessInfo(self, name: str) -> ProcessInfo:
        """Get info about a process named name

        @param string name The name of the process (or 'group:name')
        @return struct result     A structure containing data about the process
        """
        self._check_state()
        process = self._process(name)
        # The last sample (never waited for: the first call after a quiet spell starts a fresh one).
        return process_info(process, time.time(), self.sup.usage.get(process.namespec))

    async def getAllProcessInfo(self) -> list[ProcessInfo]:
        """Get info about all processes

        @return array result  An array of process status results
        """
        self._check_state()
        now = time.time()
        processes = sorted(self._all(), key=lambda p: (p.group, p.name))
        usage = self.sup.usage.latest()
        return [process_info(p, now, usage.get(p.namespec)) for p in processes]

    # ---- logs ----

    def _read(self, process: Process, channel: str, offset: int, length: int) -> str:
        return _read_log(process.output.paths[channel], offset, length)

    async def readProcessStdoutLog(self, name: str, offset: int, length: int) -> str:
        """Read length bytes from name's stdout log starting at offset

        @param string name        the name of the process (or 'group:name')
        @param int offset         offset to start reading from.
        @param int length         number of bytes to read from the log.
        @return string result     Bytes of log
        """
        self._check_state()
        return self._read(self._process(name), "stdout", offset, length)

    async def readProcessStderrLog(self, name: str, offset: int, length: int) -> str:
        """Read length bytes from name's stderr log starting at offset

        @param string name        the name of the process (or 'group:name')
        @param int offset         offset to start reading from.
        @param int length         number of bytes to read from the log.
        @return string result     Bytes of log
        """
        self._check_state()
        return self._read(self._process(name), "stderr", offset, length)

    def _tail(self, process: Process, channel: str, offset: int, length: int) -> list[Any]:
        path = process.output.paths[channel]
        if path is None or not os.path.exists(path):
            return ["", 0, False]  # Supervisor's answer for a missing log: not a fault
        data, new_offset, overflow = tails.tail(path, offset, length)
        return [clean_text(data.decode("utf-8", "replace")), new_offset, overflow]

    async def tailProcessStdoutLog(self, name: str, offset: int, length: int) -> list[Any]:
        """Provides a more efficient way to tail the (stdout) log than
        readProcessStdoutLog().  Use readProcessStdoutLog() to read
        chunks and tailProcessStdoutLog() to tail.

        Requests (length) bytes from the (name)'s log, starting at
        (offset).  If the total log size is greater than (offset +
        length), the overflow flag is set and the (offset) is
        automatically increased to position the buffer at the end of
        the log.  If less than (length) bytes are available, the
        maximum number of available bytes will be returned.  (offset)
        returned is always the last offset in the log +1.

        @param string name         the name of the process (or 'group:name')
        @param int offset          offset to start reading from
        @param int length          maximum number of bytes to return
        @return array result       [string bytes, int offset, bool overflow]
        """
        self._check_state()
        return self._tail(self._process(name), "stdout", offset, length)

    async def tailProcessStderrLog(self, name: str, offset: int, length: int) -> list[Any]:
        """Provides a more efficient way to tail the (stderr) log than
        readProcessStderrLog().  Use readProcessStderrLog() to read
        chunks and tailProcessStderrLog() to tail.

        Requests (length) bytes from the (name)'s log, starting at
        (offset).  If the total log size is greater than (offset +
        length), the overflow flag is set and the (offset) is
        automatically increased to position the buffer at the end of
        the log.  If less than (length) bytes are available, the
        maximum number of available bytes will be returned.  (offset)
        returned is always the last offset in the log +1.

        @param string name         the name of the process (or 'group:name')
        @param int offset          offset to start reading from
        @param int length          maximum number of bytes to return
        @return array result       [string bytes, int offset, bool overflow]
        """
        self._check_state()
        return self._tail(self._process(name), "stderr", offset, length)

    async def clearProcessLogs(self, name: str) -> bool:
        """Clear the stdout and stderr logs for the named process and
        reopen them.

        @param string name   The name of the process (or 'group:name')
        @return boolean result      Always True unless error
        """
        self._check_state()
        process = self._process(name)
        try:
            process.output.clear()
        except OSError as exc:
            raise RPCError(Faults.FAILED, f"{name}: {exc.strerror}") from None
        return True

    async def clearAllProcessLogs(self) -> list[dict[str, Any]]:
        """Clear all process log files

        @return array result   An array of process status info structs
        """
        self._check_state()
        results = []
        for process in self._all():
            try:
                process.output.clear()
            except OSError as exc:
                results.append(_result(process, Faults.FAILED, f"FAILED: {exc.strerror}"))
            else:
                results.append(_result(process))
        return results

    async def sendProcessStdin(self, name: str, chars: str) -> bool:
        """Send a string of chars to the stdin of the process name.
        If non-7-bit data is sent (unicode), it is encoded to utf-8
        before being sent to the process' stdin.  If chars is not a
        string or is not unicode, raise INCORRECT_PARAMETERS.  If the
        process is not running, raise NOT_RUNNING.  If the process'
        stdin cannot accept input (e.g. it was closed by the child
        process), raise NO_FILE.

        @param string name        The process name to send to (or 'group:name')
        @param string chars       The character data to send to the process
        @return boolean result    Always return True unless error
        """
        self._check_state()
        process = self._process(name)
        with faults_for(name):
            process.write_stdin(chars.encode("utf-8"))
        return True

    @checks(type="text", data="text")
    async def sendRemoteCommEvent(self, type: str, data: str) -> bool:
        """Send an event that will be received by event listener
        subprocesses subscribing to the RemoteCommunicationEvent.

        @param  string  type  String for the "type" key in the event header
        @param  string  data  Data for the event body
        @return boolean       Always return True unless error
        """
        self.sup.bus.publish(Event("REMOTE_COMMUNICATION", f"type:{type}\n{data}"))
        return True


ALIASES = {"getVersion": "getAPIVersion", "readMainLog": "readLog", "readProcessLog": "readProcessStdoutLog",
           "tailProcessLog": "tailProcessStdoutLog", "clearProcessLog": "clearProcessLogs"}


def register(registry: Registry, ns: SupervisorNamespace) -> None:
    """Add every supervisor.* method (aliases included) to ``registry``."""
    registry.add_namespace("supervisor", ns, ALIASES)
