"""supervisorctl's log commands: tail (one-shot and -f), maintail and fg, over /logtail and XML-RPC."""

from __future__ import annotations

import sys
import threading
import urllib.parse
import xmlrpc.client
from typing import Any

from procward.ctl.controller import BaseController, Exit
from procward.ctl.transport import LogStream
from procward.errors import OutputClosed
from procward.protocol import Faults, ProcessState

DEFAULT_TAIL_BYTES = 1600
GO_LOGTAIL_BYTES = 10240

_LOG_ERRORS: dict[int, str] = {Faults.NO_FILE: "no log file", Faults.FAILED: "unknown error reading log",
                               Faults.BAD_NAME: "no such process name"}


class LogCommands(BaseController):
    """The commands that read or follow logs."""

    def do_tail(self, arg: str) -> None:
        if not self.upcheck():
            return
        args = arg.split()
        if not 1 <= len(args) <= 3:
            self._usage("too few arguments" if not args else "too many arguments", self.help_tail)
            return
        modifier = args.pop(0) if args[0].startswith("-") else None
        if not args:
            self._fail_with("Error: tail requires process name")
            return
        name, channel = args[0], (args[-1].lower() if len(args) > 1 else "stdout")
        if channel not in ("stdout", "stderr"):
            self._fail_with(f"Error: bad channel {channel!r}")
            return
        count = self._byte_count(modifier)
        if count is False:
            return
        if count is None:
            self._follow(f"/logtail/{urllib.parse.quote(name)}/{channel}", name)
            return
        read = "readProcessStdoutLog" if channel == "stdout" else "readProcessStderrLog"
        try:
            self.output(getattr(self.supervisor(), read)(name, -count, 0))
        except xmlrpc.client.Fault as exc:
            self._log_fault(exc, name)

    def help_tail(self) -> None:
        self.output("tail [-f] <name> [stdout|stderr] (default stdout)\nEx:\n"
                    "tail -f <name>\t\tContinuous tail of named process stdout\n"
                    "\t\t\tCtrl-C to exit.\n"
                    "tail -100 <name>\tlast 100 *bytes* of process stdout\n"
                    "tail <name> stderr\tlast 1600 *bytes* of process stderr")

    def do_logtail(self, arg: str) -> None:
        """Go supervisord's ``ctl logtail [-t stdout|stderr] NAME``: the last 10 KiB of the log, then exit
        (what Go's client asks for: tailProcessStdoutLog(name, 0, 10240))."""
        if not self.upcheck():
            return
        args = arg.split()
        channel = "stdout"
        for flag in ("-t", "--type"):
            if flag in args:
                at = args.index(flag)
                channel = args[at + 1].lower() if at + 1 < len(args) else ""
                del args[at:at + 2]
        if channel not in ("stdout", "stderr"):
            self._fail_with(f"Error: bad log type {channel!r} (stdout or stderr)")
            return
        if len(args) != 1:
            self._usage("logtail takes one process name", self.help_logtail)
            return
        tail = "tailProcessStdoutLog" if channel == "stdout" else "tailProcessStderrLog"
        try:
            text, _offset, _overflow = getattr(self.supervisor(), tail)(args[0], 0, GO_LOGTAIL_BYTES)
        except xmlrpc.client.Fault as exc:
            self._log_fault(exc, args[0])
            return
        self.write(text)

    def help_logtail(self) -> None:
        self.output("logtail [-t stdout|stderr] <name>\tthe last 10 KiB of the process's log (Go supervisord's "
                    "spelling; tail -f follows)")

    def do_maintail(self, arg: str) -> None:
        if not self.upcheck():
            return
        args = arg.split()
        if len(args) > 1:
            self._usage("too many arguments", self.help_maintail)
            return
        if args and not args[0].startswith("-"):
            self._fail_with(f"Error: bad argument {args[0]}")
            return
        count = self._byte_count(args[0] if args else None)
        if count is False:
            return
        if count is None:
            self._follow("/mainlogtail", "supervisord")
            return
        try:
            self.output(self.supervisor().readLog(-count, 0))
        except xmlrpc.client.Fault as exc:
            self._log_fault(exc, "supervisord")

    def help_maintail(self) -> None:
        self.output("maintail -f \tContinuous tail of supervisor main log file (Ctrl-C to exit)\n"
                    "maintail -100\tlast 100 *bytes* of supervisord main log file\n"
                    "maintail\tlast 1600 *bytes* of supervisor main log file\n")

    def _byte_count(self, modifier: str | None) -> int | bool | None:
        """1600 by default, None for -f, False (after saying so) for a bad modifier."""
        if modifier is None:
            return DEFAULT_TAIL_BYTES
        if modifier == "-f":
            return None
        try:
            return int(modifier[1:])
        except ValueError:
            self._fail_with(f"Error: bad argument {modifier}")
            return False

    def _log_fault(self, exc: xmlrpc.client.Fault, name: str) -> None:
        self.exitstatus = Exit.GENERIC
        words = _LOG_ERRORS.get(exc.faultCode)
        if words is None:
            raise exc
        self.output(f"{name}: ERROR ({words})")

    def _follow(self, path: str, name: str) -> None:
        self.output("==> Press Ctrl-C to exit <==")
        try:
            server = self.options.server
            stream = LogStream(server.serverurl, path, server.username, server.password)
        except xmlrpc.client.ProtocolError as exc:
            if exc.errcode != 404:
                raise
            self._fail_with(f"{name}: ERROR (no such process name or no log file)")
            return
        try:
            for chunk in stream.chunks():
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
        except BrokenPipeError:
            stream.close()
            raise OutputClosed from None
        except KeyboardInterrupt:
            stream.close()
            self.output("")

    def do_fg(self, arg: str) -> None:
        if not self.upcheck():
            return
        names = arg.split()
        if len(names) != 1:
            self._fail_with("ERROR: no process name supplied" if not names
                            else "ERROR: too many process names supplied")
            if not names:
                self.help_fg()
            return
        name, sup = names[0], self.supervisor()
        try:
            info = sup.getProcessInfo(name)
        except xmlrpc.client.Fault as exc:
            if exc.faultCode == Faults.BAD_NAME:
                self._fail_with("ERROR: bad process name supplied")
            else:
                self.output(f"ERROR: {exc}")
            return
        if info["state"] != ProcessState.RUNNING:
            self._fail_with("ERROR: process not running")
            return
        self.output("==> Press Ctrl-C to exit <==")
        server = self.options.server
        streams = [LogStream(server.serverurl, f"/logtail/{urllib.parse.quote(name)}/{channel}",
                             server.username, server.password) for channel in ("stdout", "stderr")]
        threads = [threading.Thread(target=_copy, args=(s,), daemon=True) for s in streams]
        for thread in threads:
            thread.start()
        try:
            self._fg_input(name, sup)
        except (KeyboardInterrupt, EOFError):
            self.output("Exiting foreground")
        finally:
            for stream in streams:
                stream.close()

    def _fg_input(self, name: str, sup: Any) -> None:
        """Send typed lines to the program until it stops (supervisorctl checks after each line)."""
        while True:
            line = input() + "\n"
            try:
                sup.sendProcessStdin(name, line)
            except xmlrpc.client.Fault as exc:
                self.output("Process got killed" if exc.faultCode == Faults.NOT_RUNNING else f"ERROR: {exc}")
                self.output("Exiting foreground")
                return
            if sup.getProcessInfo(name)["state"] != ProcessState.RUNNING:
                self.output("Process got killed")
                self.output("Exiting foreground")
                return

    def help_fg(self) -> None:
        self.output("fg <process>\tConnect to a process in foreground mode")
        self.output("\t\tCtrl-C to exit")


def _copy(stream: LogStream) -> None:
    try:
        for chunk in stream.chunks():
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
    except BrokenPipeError:  # the reader of stdout went away: this copy ends, quietly
        stream.close()
