"""Where one process's output goes: its log files, listeners and log events.

A Process keeps one ProcessOutput for its whole life, so log files stay open across restarts. Each
spawn attaches the child's pipes to it, and each exit detaches them after copying what they still hold.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from typing import Any

from procward.config.model import LineFormat, LogConfig, ProcessConfig
from procward.config.values import LogTarget
from procward.core.events import EventBus, Notifier, output_text, process_communication_event, process_log_event
from procward.core.output.linelog import LineWriter
from procward.core.output.logfile import LogSink, RotatingFile
from procward.core.output.pipes import COALESCE, CaptureSpec, DataListener, OutputChannel
from procward.core.output.targets import LineSplitter, Syslog, syslog_forwarder
from procward.core.spawn import Spawned
from procward.core.tasks import TaskSet

log = logging.getLogger(__name__)
CHANNELS = ("stdout", "stderr")
LAST_LINE = 200
_WINDOW = 4096  # bytes looked at a time for the end of a line's content (last_complete_line)


class ProcessOutput:
    """The stdout and stderr of one process: files, listeners, events, followers."""

    # Slots: one per process, thousands in a daemon.
    __slots__ = ("_bus", "_channels", "_echo_output", "_extra_files", "_files", "_last_line", "_loop", "_strip_ansi",
                 "_syslogs", "_tasks", "_writers", "config", "group", "logged", "paths", "stdout_taps", "written")

    def __init__(self, config: ProcessConfig, group: str, loop: asyncio.AbstractEventLoop, bus: EventBus, *,
                 identifier: str, childlogdir: str, strip_ansi: bool, echo: bool) -> None:
        self.config = config
        self.group = group
        self._loop = loop
        self._bus = bus
        self._strip_ansi = strip_ansi
        self._echo_output = echo  # loglevel debug: child output is copied into the main log
        self.paths: dict[str, str | None] = {
            channel: _log_path(config.name, channel, getattr(config, channel), identifier, childlogdir)
            for channel in CHANNELS}
        self._files: dict[str, RotatingFile | None] = dict.fromkeys(CHANNELS)
        self.written = Notifier(loop)  # log followers (/logtail) wait on this
        # An event listener pool reads the listener's protocol from its stdout through these.
        self.stdout_taps: list[DataListener] = []
        self._channels: list[OutputChannel] = []
        self._writers: list[LineWriter] = []  # line formats of the current run (flushed at its exit)
        self._last_line = b""  # the end of the latest complete line written on stdout or stderr
        self.logged: Counter[str] = Counter()  # bytes the process wrote, by stream (metrics)
        self._extra_files: dict[str, RotatingFile] = {}  # more files a *_logfile list names, by path
        self._syslogs: list[Syslog] = []  # syslog targets of the current run
        self._tasks = TaskSet(loop, f"output of {config.name}")  # TCP syslog connections

    def attach(self, spawned: Spawned) -> None:
        """Copy the pipes of the child just spawned (its events carry its pid)."""
        pid = spawned.pid
        pipes = [("stdout", spawned.stdout)]
        if spawned.stderr is not None:
            pipes.append(("stderr", spawned.stderr))
        for channel, fd in pipes:
            cfg: LogConfig = getattr(self.config, channel)
            listeners: list[DataListener] = [_Tap(self, channel)]
            if self._echo_output:
                listeners.append(self._echo(channel))
            if cfg.syslog:
                listeners.append(syslog_forwarder(self.config.name))
            listeners.extend(self._extra_targets(channel, cfg, pid))
            protocol = channel == "stdout" and bool(self.stdout_taps)  # a listener's stdout is its protocol
            if protocol:
                listeners.extend(self.stdout_taps)
            log_events = self._log_events(channel, pid) if cfg.events_enabled and not protocol else None
            if log_events is not None:
                listeners.append(log_events)
            capture = None
            if cfg.capture_maxbytes and not protocol:
                capture = CaptureSpec(cfg.capture_maxbytes, self._comm_events(channel, pid), log_events)
            self._channels.append(OutputChannel(self._loop, fd, self._sink(channel, cfg, pid),
                                                strip_ansi=self._strip_ansi, listeners=tuple(listeners),
                                                wakers=(self.written.notify,), capture=capture,
                                                # a listener's READY/RESULT must not wait
                                                coalesce=0 if protocol else COALESCE))

    def handover(self) -> dict[str, Any]:
        """Stop copying without closing anything (a reexec): the pipes' fds, the lines begun, and the
        log paths (AUTO ones were made by this daemon)."""
        fds = [channel.release() for channel in self._channels]
        self._channels = []
        partials = [writer.partial.hex() for writer in self._writers]
        return {"fds": fds, "partials": partials, "paths": self.paths}

    def adopt(self, spawned: Spawned, partials: list[str]) -> None:
        """Copy the pipes of a child adopted across a reexec, going on with its lines begun."""
        self.attach(spawned)
        for writer, partial in zip(self._writers, partials, strict=False):
            writer.resume(bytes.fromhex(partial))

    def problem(self) -> str:
        """Why a log file of this process cannot be written ('' when all can): a start is refused then,
        as supervisord refuses it, rather than running a program whose output goes nowhere."""
        for channel in CHANNELS:
            if channel == "stderr" and self.config.redirect_stderr:
                continue
            cfg: LogConfig = getattr(self.config, channel)
            logfile = self._file(channel, cfg)
            if logfile is not None and (why := logfile.problem()):
                return f"couldn't open {channel} log file {logfile.path}: {why}"
        return ""

    def _extra_targets(self, channel: str, cfg: LogConfig, pid: int) -> list[DataListener]:
        """Listeners for the further targets of a ``*_logfile`` list: files and devices, syslog."""
        listeners: list[DataListener] = []
        for path in cfg.extra_files:
            if path not in self._extra_files:
                self._extra_files[path] = RotatingFile(path, cfg.maxbytes, cfg.backups, cfg.rotation)
            listeners.append(self._extra_files[path].write)
        for target in cfg.syslog_targets:
            sender = Syslog(target, self._loop, self._tasks, stream=channel, pid=pid)
            self._syslogs.append(sender)
            listeners.append(LineSplitter(sender))
        return listeners

    @property
    def last_line(self) -> str:
        """The latest line of output (its last LAST_LINE bytes), for the web page."""
        return self._last_line.decode("utf-8", "replace")

    def detach(self) -> None:
        """Copy what the pipes still hold, then close them (the child has exited)."""
        for channel in self._channels:
            channel.drain()
            channel.close()
        self._channels = []
        for writer in self._writers:
            writer.flush()  # the last partial line of the run
        self._writers = []
        for sender in self._syslogs:
            sender.close()
        self._syslogs = []

    def _sink(self, channel: str, cfg: LogConfig, pid: int) -> LogSink | None:
        """The log file, behind a LineWriter when the channel's format is not raw."""
        logfile = self._file(channel, cfg)
        if logfile is None or cfg.line_format == LineFormat.RAW:
            return logfile
        writer = LineWriter(logfile, self._loop, cfg.line_format, name=self.config.name, group=self.group,
                            pid=pid, stream=channel, time_format=cfg.time_format, with_name=cfg.with_name)
        self._writers.append(writer)
        return writer

    def reopen(self) -> None:
        """Reopen the log files (SIGUSR2)."""
        for logfile in self._files.values():
            if logfile is not None:
                logfile.reopen()

    def clear(self) -> None:
        """Truncate both log files by removing and reopening them."""
        for channel, path in self.paths.items():
            logfile = self._files[channel]
            if logfile is not None:
                logfile.clear()
            elif path and os.path.exists(path):
                os.unlink(path)

    async def aclose(self) -> None:
        """Close the log files (the process is being removed), after rotations under way are done."""
        await self._tasks.aclose()
        for extra in self._extra_files.values():
            extra.close()
        for logfile in self._files.values():
            if logfile is not None:
                logfile.close()
                if logfile.rotator is not None:
                    await logfile.rotator.wait()

    def _file(self, channel: str, cfg: LogConfig) -> RotatingFile | None:
        path = self.paths[channel]
        if path is None:
            return None
        current = self._files[channel]
        if current is None:
            current = self._files[channel] = RotatingFile(path, cfg.maxbytes, cfg.backups, cfg.rotation)
        return current

    def _log_events(self, channel: str, pid: int) -> DataListener:
        name = f"PROCESS_LOG_{channel.upper()}"

        def publish(data: bytes) -> None:
            if self._bus.wants(name):  # no text copy of every block of output when nobody listens
                self._bus.publish(process_log_event(channel, process=self.config.name, group=self.group, pid=pid,
                                                    data=data))
        return publish

    def _comm_events(self, channel: str, pid: int) -> DataListener:
        def publish(data: bytes) -> None:
            log.debug("'%s' %s emitted a comm event", self.config.name, channel)
            self._bus.publish(process_communication_event(channel, process=self.config.name, group=self.group,
                                                          pid=pid, data=data))
        return publish

    def _echo(self, channel: str) -> DataListener:
        def echo(data: bytes) -> None:
            log.debug("%r %s output:\n%s", self.config.name, channel, output_text(data))
        return echo


def _log_path(name: str, channel: str, cfg: LogConfig, identifier: str, childlogdir: str) -> str | None:
    if cfg.target == LogTarget.NONE:
        return None
    if cfg.target == LogTarget.AUTO:
        import tempfile  # here: a daemon whose programs all name their log files never loads it (config/build.py)

        fd, path = tempfile.mkstemp(prefix=f"{name}-{channel}---{identifier}-", suffix=".log", dir=childlogdir)
        os.close(fd)
        return path
    return str(cfg.target)


class _Tap:
    """What each stream feeds besides its files: its byte count (metrics) and the latest complete line of
    the process (the web page). A line that comes in pieces (an unbuffered program writes each piece of a
    print) counts once it ends: the page showed "out é" where the program had printed "out é 12".
    An object with slots, not the two closures a stream it replaces: ~1 KB less a process."""

    __slots__ = ("carry", "channel", "output")

    def __init__(self, output: ProcessOutput, channel: str) -> None:
        self.output, self.channel = output, channel
        self.carry = b""  # the stream's line begun and not ended yet (its last LAST_LINE bytes)

    def __call__(self, data: bytes) -> None:
        output = self.output
        output.logged[self.channel] += len(data)
        line, self.carry = last_complete_line(self.carry, data)
        if line:
            output._last_line = line


def last_complete_line(carry: bytes, data: bytes) -> tuple[bytes, bytes]:
    """(the last non-empty line ``data`` completes, or b""; the new carry) for a stream whose unfinished
    line so far is ``carry``. Scans back from the end of the block and copies no more than a few
    LAST_LINE bytes whatever the block's size: it runs at every read of every program, and a copy of a
    block without a newline (256 KiB from a busy pipe), with its page faults, cost the daemon 1.4x
    supervisord's CPU per MB (docs/performance.md, round 8)."""
    last = data.rfind(b"\n")
    if last < 0:
        return b"", (carry + data[-LAST_LINE:])[-LAST_LINE:]
    end = _content_end(data, last)
    start = data.rfind(b"\n", 0, end) + 1 if end else 0
    if start:
        line = data[max(start, end - LAST_LINE):end]
    else:  # the line began before this block: the carry is its beginning
        line = (carry + data[max(0, end - LAST_LINE):end]).rstrip(b"\r")[-LAST_LINE:]
    return line, data[max(last + 1, len(data) - LAST_LINE):]


def _content_end(data: bytes, end: int) -> int:
    """Where ``data[:end]`` ends once its trailing CRs and LFs are left out (0: it has nothing else),
    looked at a window at a time: a block of blank lines is not copied or stepped through byte by byte."""
    while end:
        window = data[max(0, end - _WINDOW):end]
        kept = len(window.rstrip(b"\r\n"))
        if kept:
            return end - len(window) + kept
        end -= len(window)
    return 0
