"""The reference's command line (getopt ``t:r:f:p:u:F:hv?``; ``-u DIR CMD ARGS...`` ends the options)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

USAGE = """usage: procward supervise -p STATUS_DIR -f "CMD" [-F supervise.conf] [-r SCRIPT [-t SECS]] [--foreground]
       procward supervise [-F supervise.conf] -u STATUS_DIR CMD ARGS...
STATUS_DIR must contain status/<service>; CMD is split on blanks, with no shell."""
MAX_ARGS, MAX_ARG = 511, 1023  # the reference's limits on -f's words


class UsageError(Exception):
    """Bad arguments: the message, and exit status 100 as the reference."""


@dataclass(slots=True)
class Options:
    """What the command line asks for."""

    directory: str = ""
    service: str = ""  # everything after the first "status/" of the directory
    argv: list[str] = field(default_factory=list)
    conf: str = "supervise.conf"  # relative to the current directory, as the reference
    script: str | None = None  # -r: run "SCRIPT n" at each exit instead of the alarm checks
    reset_after: int = 0  # -t: n goes back to 0 after this many seconds between exits
    foreground: bool = False  # procward's addition: do not detach (systemd, containers)
    version: bool = False


def parse(args: list[str]) -> Options:
    """Options from ``args`` (after ``supervise``); UsageError for what the reference refuses."""
    opts = Options()
    command = ""
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--foreground":
            opts.foreground = True
            continue
        if arg in ("-h", "-?", "--help"):
            raise UsageError(USAGE)
        if arg == "-v":
            opts.version = True
            return opts
        if arg not in ("-t", "-r", "-f", "-p", "-u", "-F"):
            raise UsageError(f"unknown option {arg!r}\n{USAGE}")
        if not rest:
            raise UsageError(f"option {arg} needs a value\n{USAGE}")
        value = rest.pop(0)
        if arg == "-t":
            if not value.isdigit():
                raise UsageError(f"-t expects seconds, got {value!r}")
            opts.reset_after = int(value)
        elif arg == "-r":
            opts.script = value
        elif arg == "-f":
            command = value
        elif arg == "-F":
            opts.conf = value
        elif arg == "-p":
            opts.directory = value
        else:  # -u DIR CMD ARGS...: the rest is the command, word for word
            opts.directory, opts.argv = value, rest
            break
    if command and not opts.argv:
        opts.argv = command.replace("\t", " ").split()
    if not opts.argv or not opts.directory:
        raise UsageError(f"-p STATUS_DIR and -f CMD (or -u STATUS_DIR CMD ...) are required\n{USAGE}")
    if len(opts.argv) > MAX_ARGS or any(len(a) > MAX_ARG for a in opts.argv):
        raise UsageError("arg is too long")
    opts.directory = opts.directory.rstrip("/ \t")
    opts.service = service_name(opts.directory)
    opts.directory = os.path.abspath(opts.directory)
    return opts


def service_name(directory: str) -> str:
    """The part of the path after its first ``status/``: the name in logs, alarms and the config file."""
    _, found, name = directory.partition("status/")
    name = name.lstrip("/")
    if not found or not name:
        raise UsageError(f"the status directory must be .../status/<service>, got {directory!r}")
    return name
