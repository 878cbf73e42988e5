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
-s more than once -- run the command on every server given (a URL, or the name of a [node:x]
     section or a Go remotes= entry, which carries its credentials), each line prefixed with the server
--nodes -- run the command on this daemon and every [node:x] of the configuration file
--timeout SECONDS -- with several servers, how long each may take to answer (default 30); one that
     has not answered by then is one line saying so, and the others' answers are printed as they come

action [arguments] -- see below

Actions are commands like "tail" or "stop". If -i is specified or no action is
specified on the command line, a "shell" interpreting actions typed
interactively is started. Use the action "help" to find out about available
actions. Read-only actions take --json for machine-readable output.
"""


FANOUT_TIMEOUT = 30.0


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
    fanout: list[tuple[str, CtlConfig]] = field(default_factory=list)  # (label, server): more than one daemon
    timeout: float = FANOUT_TIMEOUT  # seconds each server of a fan-out has to answer


def parse(argv: Sequence[str], search: Sequence[str]) -> CtlOptions:
    """Parse flags, read the configuration (explicit, or the first of ``search`` that exists)."""
    try:
        flags, args = getopt.getopt(list(argv), "c:hivs:u:p:r:", [
            "configuration=", "help", "interactive", "version", "serverurl=", "username=", "password=",
            "history-file=", "history_file=", "nodes", "timeout="])
    except getopt.GetoptError as exc:
        raise UsageError(str(exc)) from None
    given = dict(flags)
    opts = CtlOptions(args=args)
    opts.show_help = "-h" in given or "--help" in given
    opts.show_version = "-v" in given or "--version" in given
    if "--timeout" in given:
        try:
            opts.timeout = float(given["--timeout"])
        except ValueError:
            opts.timeout = -1.0
        if not 0 < opts.timeout < float("inf"):
            raise UsageError(f"--timeout takes a number of seconds > 0, got {given['--timeout']!r}")
    config_file = given.get("-c") or given.get("--configuration")
    if config_file is None:
        config_file = next((p for p in search if os.path.exists(p)), None)
    elif not os.path.exists(config_file):
        raise UsageError(f"could not find config file {config_file}")
    section = load_ctl(config_file) if config_file else CtlConfig()
    urls = [value for flag, value in flags if flag in ("-s", "--serverurl")]
    node = next((n for n in section.nodes if urls and n.name == urls[-1]), None)
    if node is not None:  # -s NAME: a node of the file, with its credentials
        section = replace(section, serverurl=node.serverurl, username=node.username, password=node.password)
        urls[-1] = node.serverurl
    serverurl = (urls[-1] if urls else None) or section.serverurl
    if len(urls) > 1 or "--nodes" in given:
        serverurl = section.serverurl  # each server of the fan-out is checked by _fanout
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
    names = [value for flag, value in flags if flag in ("-s", "--serverurl")]
    if len(names) > 1 or "--nodes" in given:
        opts.fanout = _fanout(opts.server, section, names if len(names) > 1 else [], nodes="--nodes" in given)
        if opts.interactive:
            raise UsageError("several servers take one command, not the interactive shell")
    return opts


def _fanout(local: CtlConfig, section: CtlConfig, names: list[str], *, nodes: bool) -> list[tuple[str, CtlConfig]]:
    """(label, server) for each -s value (a node's name, or a URL with the -u/-p credentials), or for
    this daemon and every node."""
    known = {node.name: node for node in section.nodes}
    chosen: list[tuple[str, CtlConfig]] = []
    if nodes:
        chosen.append(("local", local))
        names = [n.name for n in section.nodes]
    for name in names:
        node = known.get(name)
        if node is not None:
            chosen.append((name, replace(local, serverurl=node.serverurl, username=node.username,
                                         password=node.password)))
        elif name.startswith(("http://", "unix://")):
            url = "unix://" + os.path.abspath(name[7:]) if name.startswith("unix://") else name
            chosen.append((name, replace(local, serverurl=url)))
        else:
            raise UsageError(f"{name!r} is neither a URL nor a node of the configuration file")
    return chosen


def _first(given: dict[str, str], *names: str) -> str | None:
    for name in names:
        if name in given:
            return given[name]
    return None
