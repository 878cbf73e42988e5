"""The command interpreter: one-shot or interactive, supervisorctl's exit statuses, errors, completion."""

from __future__ import annotations

import cmd
import contextlib
import dataclasses
import errno
import getpass
import http.client
import xmlrpc.client
from enum import IntEnum
from typing import IO, Any

from procward import API_VERSION
from procward.ctl.options import CtlOptions
from procward.ctl.transport import server_proxy
from procward.errors import OutputClosed
from procward.protocol import Faults, ProcessInfo


class Exit(IntEnum):
    """LSB init-script exit statuses, as supervisorctl 4.x uses them."""

    SUCCESS = 0
    GENERIC = 1
    INVALID_ARGS = 2
    UNIMPLEMENTED_FEATURE = 3
    INSUFFICIENT_PRIVILEGES = 4
    NOT_INSTALLED = 5
    NOT_RUNNING = 7


class StatusExit(IntEnum):
    """LSB status exit statuses (only ``status`` uses these)."""

    NOT_RUNNING = 3
    UNKNOWN = 4


DEAD_PROGRAM_FAULTS = (Faults.SPAWN_ERROR, Faults.ABNORMAL_TERMINATION, Faults.NOT_RUNNING)

# Commands whose arguments are process names, and those whose arguments are group names (completion).
PROCESS_ARG_COMMANDS = frozenset({"clear", "fg", "pid", "restart", "signal", "start", "status", "stop", "tail"})
GROUP_ARG_COMMANDS = frozenset({"add", "remove", "update"})


class BaseController(cmd.Cmd):
    """Shell mechanics shared by every command: dispatch, errors, upcheck, completion, output."""

    doc_header = "default commands (type help <topic>):"

    def __init__(self, options: CtlOptions, stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> None:
        super().__init__("tab", stdin, stdout)
        self.options = options
        self.prompt = options.server.prompt + "> "
        self.exitstatus: int = Exit.SUCCESS
        self._complete_info: list[ProcessInfo] | None = None

    # -- output and server access ------------------------------------------------------------------

    def output(self, message: str) -> None:
        """One line on stdout, flushed: scripts read it through pipes."""
        self.write(message + "\n")

    def write(self, text: str) -> None:
        """``text`` as it is on stdout, flushed; OutputClosed when its reader went away (``| head``)."""
        try:
            self.stdout.write(text)
            self.stdout.flush()
        except BrokenPipeError:
            raise OutputClosed from None

    def supervisor(self) -> Any:
        """The ``supervisor.*`` namespace of the current server."""
        return server_proxy(self.options.server.serverurl, self.credentials).supervisor

    def server(self) -> Any:
        """The whole proxy (``system.*``, ``procward.*``)."""
        return server_proxy(self.options.server.serverurl, self.credentials)

    def credentials(self) -> tuple[str | None, str | None]:
        return self.options.server.username, self.options.server.password

    def set_exitstatus_from_fault(self, code: int, ignored: int | None = None) -> None:
        """Map one result status to the command's exit status, as supervisorctl does."""
        if code in (ignored, Faults.SUCCESS):
            return
        self.exitstatus = Exit.NOT_RUNNING if code in DEAD_PROGRAM_FAULTS else Exit.GENERIC

    def upcheck(self) -> bool:
        """Is a compatible daemon answering? Prints why not and sets the exit status."""
        try:
            api = self.supervisor().getVersion()
        except xmlrpc.client.Fault as exc:
            if exc.faultCode == Faults.UNKNOWN_METHOD:
                self.output("Sorry, supervisord responded but did not recognize the supervisor namespace "
                            "commands that supervisorctl uses to control it.  Please check that the "
                            "[rpcinterface:supervisor] section is enabled in the configuration file "
                            "(see sample.conf).")
                self.exitstatus = Exit.UNIMPLEMENTED_FEATURE
                return False
            self.exitstatus = Exit.GENERIC
            raise
        except OSError as exc:
            if exc.errno == errno.ECONNREFUSED:
                self.output(f"{self.options.server.serverurl} refused connection")
                self.exitstatus = Exit.INSUFFICIENT_PRIVILEGES
                return False
            if exc.errno == errno.ENOENT:
                self.output(f"{self.options.server.serverurl} no such file")
                self.exitstatus = Exit.NOT_RUNNING
                return False
            self.exitstatus = Exit.GENERIC
            raise
        if api != API_VERSION:
            self.output(f"Sorry, this version of supervisorctl expects to talk to a server with API version "
                        f"{API_VERSION}, but the remote version is {api}.")
            self.exitstatus = Exit.NOT_INSTALLED
            return False
        return True

    def _usage(self, message: str, helper: Any) -> None:
        self.output(f"Error: {message}")
        self.exitstatus = Exit.GENERIC
        helper()

    def _fail_with(self, message: str) -> None:
        self.output(message)
        self.exitstatus = Exit.GENERIC

    # -- dispatch ----------------------------------------------------------------------------------

    def emptyline(self) -> bool:
        return False  # a blank line must not repeat the last command

    def default(self, line: str) -> None:
        self.output(f"*** Unknown syntax: {line}")
        self.exitstatus = Exit.GENERIC

    def onecmd(self, line: str) -> bool:
        """Run one command; every failure becomes a message and an exit status, never a traceback."""
        line = _go_spelling(line)
        name, arg, line = self.parseline(line)
        if not line:
            return self.emptyline()
        if not name:
            self.default(line)
            return False
        self._complete_info = None
        self.lastcmd = line
        func = getattr(self, "do_" + name, None)
        if func is None:
            self.default(line)
            return False
        try:
            return bool(func(arg))
        except xmlrpc.client.ProtocolError as exc:
            if exc.errcode != 401:
                return self._fail(f"error: {self.options.server.serverurl} answered HTTP {exc.errcode} {exc.errmsg}")
            self.output("Server requires authentication")
            if not self.options.interactive:
                self.exitstatus = Exit.GENERIC
                return False
            self.options.server = dataclasses.replace(self.options.server, username=input("Username:"),
                                                      password=getpass.getpass(prompt="Password:"))
            self.output("")
            return self.onecmd(line)
        except xmlrpc.client.Fault as exc:
            return self._fail(f"error: {exc.faultString} (fault {exc.faultCode})")
        except ConnectionRefusedError:
            return self._fail(f"error: {self.options.server.serverurl} refused connection (is the daemon running?)")
        except FileNotFoundError:
            return self._fail(f"error: {self.options.server.serverurl} no such file (is the daemon running?)")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return self._fail(f"error: talking to {self.options.server.serverurl}: {exc}")

    def _fail(self, message: str) -> bool:
        self.output(message)
        self.exitstatus = Exit.GENERIC
        return False

    # -- interactive shell -------------------------------------------------------------------------

    def shell(self) -> None:
        """The interactive loop: history file, completion of names with ':' '*' '-', status first."""
        try:
            import readline
        except ImportError:  # pragma: no cover - Python built without readline
            readline = None  # type: ignore[assignment]
        if readline is not None:
            delims = readline.get_completer_delims()
            readline.set_completer_delims(delims.replace(":", "").replace("*", "").replace("-", ""))
            if self.options.server.history_file:
                with contextlib.suppress(OSError):
                    readline.read_history_file(self.options.server.history_file)
        self.cmdqueue.append("status")
        try:
            self.cmdloop()
        except KeyboardInterrupt:
            self.output("")
        finally:
            if readline is not None and self.options.server.history_file:
                with contextlib.suppress(OSError):
                    readline.write_history_file(self.options.server.history_file)

    def do_EOF(self, arg: str) -> bool:
        self.output("")
        return True

    def help_EOF(self) -> None:
        self.output("To quit, type ^D or use the quit command")

    # -- completion --------------------------------------------------------------------------------

    def completions(self, text: str, line: str) -> list[str]:
        """Candidates for ``text`` at the end of ``line`` (commands, groups or process names)."""
        words = line.split()
        if not line.strip() or (len(words) == 1 and not line.endswith(" ")) or words[0] == "help":
            return [c + " " for c in self.commands() if c.startswith(text)]
        if words[0] in GROUP_ARG_COMMANDS:
            groups = dict.fromkeys(info["group"] for info in self._infos())
            return [g + " " for g in groups if g.startswith(text)]
        if words[0] in PROCESS_ARG_COMMANDS:
            names: dict[str, None] = {}
            for info in self._infos():
                if ":" in text or info["name"] != info["group"]:
                    names[f"{info['group']}:{info['name']}"] = None
                    names[f"{info['group']}:*"] = None
                else:
                    names[info["name"]] = None
            return [n + " " for n in names if n.startswith(text)]
        return []

    # typeshed says list[str]; cmd.Cmd.complete (readline's completer) returns one match per state.
    def complete(self, text: str, state: int) -> str | None:  # type: ignore[override]
        import readline

        try:
            matches = self.completions(text, readline.get_line_buffer())
        except Exception:  # noqa: BLE001 - a completion must never kill the shell
            return None
        return matches[state] if state < len(matches) else None

    def commands(self) -> list[str]:
        return sorted({name[3:] for name in dir(self) if name.startswith("do_") and name not in ("do_EOF", "do_help")})

    def _infos(self) -> list[ProcessInfo]:
        # readline calls complete() once per candidate; one RPC per command line is enough.
        if self._complete_info is None:
            self._complete_info = self.supervisor().getAllProcessInfo()
        return self._complete_info


def run(controller: BaseController, options: CtlOptions) -> int:
    """One-shot command (its exit status), then the shell if asked (always 0, as supervisorctl)."""
    if options.args:
        controller.onecmd(" ".join(options.args))
        if not options.interactive:
            return controller.exitstatus
    if options.interactive:
        controller.shell()
    return Exit.SUCCESS


# Go supervisord's ctl spellings, read as supervisorctl's commands: (command, suffix of each name).
_GO_COMMANDS = {"start-group": ("start", ":*"), "stop-group": ("stop", ":*")}


def _go_spelling(line: str) -> str:
    word, _, rest = line.strip().partition(" ")
    if word not in _GO_COMMANDS:
        return line
    command, suffix = _GO_COMMANDS[word]
    return " ".join([command, *(name + suffix for name in rest.split())])
