"""supervisorctl's command line and [supervisorctl] section, merged (flags win)."""

from __future__ import annotations

import getopt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from procward.config.build import load_ctl
from procward.config.model import CtlConfig
from procward.errors import ProcwardError

USAGE = """procward ctl -- control applications run by procward (or supervisord) from the command line.

Usage: procward ctl [options] [action [arguments]]

Options:
-c/--configuration FILENAME -- configuration file path (searches if not given)
-h/--help -- print usage message and exit
-i/--interactive -- start an interactive shell after executing commands
-s/--serverurl URL -- URL on which the daemon listens
     (default "http://localhost:9001").
-u/--username USERNAME -- username to use for authentication with server
-p/--password PASSWORD -- password to use for authentication with server
-r/--history-file -- keep a readline history (if readline is available)
-v/--version -- print the version and exit

action [arguments] -- see below

Actions are commands like "tail" or "stop". If -i is specified or no action is
specified on the command line, a "shell" interpreting actions typed
interactively is started. Use the action "help" to find out about available
actions. Read-only actions take --json for machine-readable output.
"""


class UsageError(ProcwardError):
    """A bad command line: printed with a pointer to -h, exit 2 (as supervisorctl)."""


@dataclass(slots=True)
class CtlOptions:
    """Everything the controller needs: the [supervisorctl] settings with the flags applied, and the flags
    that are not settings."""

    server: CtlConfig = field(default_factory=CtlConfig)
    interactive: bool = False
    show_help: bool = False
    show_version: bool = False
    args: list[str] = field(default_factory=list)


def parse(argv: Sequence[str], search: Sequence[str]) -> CtlOptions:
    """Parse flags, read the configuration (explicit, or the first of ``search`` that exists)."""
    try:
        flags, args = getopt.getopt(list(argv), "c:hivs:u:p:r:", [
            "configuration=", "help", "interactive", "version", "serverurl=", "username=", "password=",
            "history-file=", "history_file="])
    except getopt.GetoptError as exc:
        raise UsageError(str(exc)) from None
    given = dict(flags)
    opts = CtlOptions(args=args)
    opts.show_help = "-h" in given or "--help" in given
    opts.show_version = "-v" in given or "--version" in given
    config_file = given.get("-c") or given.get("--configuration")
    if config_file is None:
        config_file = next((p for p in search if os.path.exists(p)), None)
    elif not os.path.exists(config_file):
        raise UsageError(f"could not find config file {config_file}")
    section = load_ctl(config_file) if config_file else CtlConfig()
    serverurl = _first(given, "-s", "--serverurl") or section.serverurl
    if serverurl.startswith("unix://"):
        serverurl = "unix://" + os.path.abspath(os.path.expanduser(serverurl[len("unix://"):]))
    elif not serverurl.startswith("http://"):
        raise UsageError(f"serverurl must be http://host:port or unix:///path, got {serverurl!r}")
    opts.server = replace(
        section, serverurl=serverurl,
        username=_first(given, "-u", "--username") or section.username,
        password=_first(given, "-p", "--password") or section.password,
        history_file=_first(given, "-r", "--history-file", "--history_file") or section.history_file)
    opts.interactive = "-i" in given or "--interactive" in given or not args
    return opts


def _first(given: dict[str, str], *names: str) -> str | None:
    for name in names:
        if name in given:
            return given[name]
    return None
