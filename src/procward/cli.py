"""Command line: ``procward`` (the daemon), ``procward check``, ``procward ctl``.

The only place that prints errors for the operator and picks exit codes.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from procward import SUPERVISOR_COMPAT_VERSION, __version__
from procward.config import values
from procward.config.beyond import read_env_file
from procward.config.build import BuildOptions, load
from procward.config.model import Config
from procward.errors import ConfigError, OutputClosed, ProcwardError

USAGE_ERROR = 2


def search_path(argv0: str) -> list[str]:
    """Where supervisord looks for its configuration when -c is not given (same order)."""
    here = os.path.dirname(os.path.abspath(argv0))
    return [
        os.path.join(here, "..", "etc", "supervisord.conf"),
        os.path.join(here, "..", "supervisord.conf"),
        os.path.join(os.getcwd(), "supervisord.conf"),
        os.path.join(os.getcwd(), "etc", "supervisord.conf"),
        "/etc/supervisord.conf",
        "/etc/supervisor/supervisord.conf",
    ]


def find_config(explicit: str | None, argv0: str) -> str:
    """The -c file, or the first existing file of the search path."""
    if explicit:
        return explicit
    for candidate in search_path(argv0):
        if os.path.exists(candidate):
            return os.path.normpath(candidate)
    raise ConfigError("no configuration file found (looked in: " + ", ".join(search_path(argv0)) +
                      "); pass one with -c FILE")


class _Formatter(argparse.HelpFormatter):
    """argparse's own, sized without shutil. argparse makes one at every add_argument (to check the
    metavar), and shutil.get_terminal_size would bring shutil, bz2 and lzma into the daemon (~0.5 MB and
    ~1.5 ms of every start) for a help text it never prints. Same width rule as shutil's: $COLUMNS, else
    the terminal on stdout, else 80."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        if width is None:
            try:
                columns = int(os.environ.get("COLUMNS", "0"))
            except ValueError:
                columns = 0
            if columns <= 0:
                try:
                    columns = os.get_terminal_size(sys.__stdout__.fileno()).columns if sys.__stdout__ else 80
                except (ValueError, OSError):
                    columns = 80
            width = columns - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def _daemon_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="procward", formatter_class=_Formatter,
                                description="procward: run a set of applications (a drop-in for supervisord). "
                                "Also: 'procward check', 'procward ctl'.")
    p.add_argument("-c", "--configuration", metavar="FILE", help="configuration file")
    p.add_argument("-n", "--nodaemon", action="store_true", help="run in the foreground")
    p.add_argument("--daemon", action="store_true", help="detach, even when the file says nodaemon=true "
                   "(Go supervisord's -d, given with no directory after it)")
    p.add_argument("-s", "--silent", action="store_true", help="no logs to stdout (with -n)")
    p.add_argument("-u", "--user", help="run as this user (or numeric uid)")
    p.add_argument("-m", "--umask", help="umask for the daemon (default 022)")
    p.add_argument("-d", "--directory", help="directory to chdir to when daemonized")
    p.add_argument("-l", "--logfile", help="main log file")
    p.add_argument("-y", "--logfile_maxbytes", help="main log rotation size")
    p.add_argument("-z", "--logfile_backups", help="number of main log backups")
    p.add_argument("-e", "--loglevel", help="critical, error, warn, info, debug, trace or blather")
    p.add_argument("-j", "--pidfile", help="pid file")
    p.add_argument("-i", "--identifier", help="identifier (getIdentification, event headers)")
    p.add_argument("-q", "--childlogdir", help="directory for AUTO child logs")
    p.add_argument("-k", "--nocleanup", action="store_true", help="keep old AUTO child logs at start")
    p.add_argument("-a", "--minfds", help="minimum open files")
    p.add_argument("-t", "--strip_ansi", action="store_true", help="strip ANSI escapes from child logs")
    p.add_argument("-v", "--version", action="store_true", help="print the version and exit")
    p.add_argument("--handover", help=argparse.SUPPRESS)  # a reexec's state: set by the daemon for itself
    p.add_argument("--env-file", metavar="FILE", action="append", default=[],
                   help="dotenv file whose variables join the daemon's environment (before the config is read, "
                        "so %%(ENV_X)s sees them; children inherit them); may be repeated")
    return p


def _overrides(config: Config, args: argparse.Namespace) -> Config:
    """Command-line flags override [supervisord], as in supervisord."""
    changes: dict[str, Any] = {}  # each value parsed for its field above
    parsers = {"umask": values.octal, "logfile_maxbytes": values.byte_size, "logfile_backups": values.integer,
               "loglevel": values.log_level, "minfds": values.integer}
    for name in ("user", "umask", "directory", "logfile", "logfile_maxbytes", "logfile_backups", "loglevel",
                 "pidfile", "identifier", "childlogdir", "minfds"):
        raw = getattr(args, name)
        if raw is not None:
            try:
                changes[name] = parsers[name](raw) if name in parsers else raw
            except ValueError as exc:
                raise ConfigError(str(exc), option=f"--{name}") from None
    for flag in ("silent", "nocleanup", "strip_ansi"):
        if getattr(args, flag):
            changes[flag] = True
    if not changes:
        return config
    return dataclasses.replace(config, supervisord=dataclasses.replace(config.supervisord, **changes))


def _go_flags(argv: Sequence[str]) -> list[str]:
    """Go supervisord's ``-d`` takes no value (daemonize); supervisord's ``-d DIR`` is the directory. A ``-d``
    at the end or before another flag is Go's."""
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == "-d" and (i + 1 == len(args) or args[i + 1].startswith("-")):
            args[i] = "--daemon"
    return args


def _without_config(argv: Sequence[str]) -> list[str]:
    """The command line without -c FILE (a reexec names the file it found, as an absolute path)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("-c", "--configuration"):
            skip = True
        elif not (arg.startswith("--configuration=") or (arg.startswith("-c") and not arg.startswith("--"))):
            out.append(arg)  # -cFILE and --configuration=FILE are dropped too
    return out


def run_daemon(argv: Sequence[str]) -> int:
    """``procward [-c FILE] [-n] ...``: load, validate and run until shutdown."""
    args = _daemon_parser().parse_args(_go_flags(argv))
    if args.version:
        print(f"procward {__version__} (supervisord {SUPERVISOR_COMPAT_VERSION} compatible)")
        return 0
    from procward.core import sslgate

    sslgate.keep_out()  # before asyncio is imported: see sslgate
    from procward.core.daemon import run as daemon
    from procward.http.app import HttpService
    from procward.supervisedir import StatusDirService

    try:
        for env_file in args.env_file:
            try:
                os.environ.update(read_env_file(env_file))
            except ValueError as exc:
                raise ConfigError(str(exc), option="--env-file") from None
        path = find_config(args.configuration, sys.argv[0])
        config = _overrides(load(path), args)

        def loader() -> Config:
            return _overrides(load(path), args)

        options = daemon.DaemonOptions(nodaemon=args.nodaemon, daemonize=args.daemon, handover=args.handover,
                                       argv=(*_without_config(argv), "-c", os.path.abspath(path)))
        return daemon.run(config, options, loader,
                          [HttpService(), StatusDirService()])
    except ProcwardError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc))


def _fail(message: str) -> int:
    """One line for the operator, supervisord's usage exit status."""
    print(f"Error: {message}", file=sys.stderr)
    return USAGE_ERROR


def run_init(argv: Sequence[str]) -> int:
    """``procward init [-o FILE] [--force]``: the commented template (echo_supervisord_conf's job)."""
    from procward.commands.inittemplate import TEMPLATE

    p = argparse.ArgumentParser(prog="procward init", description="write a commented configuration template")
    p.add_argument("-o", "--output", metavar="FILE", help="write it there (default: standard output)")
    p.add_argument("-f", "--force", action="store_true", help="replace an existing FILE")
    args = p.parse_args(argv)
    if args.output is None:
        sys.stdout.write(TEMPLATE)
        return 0
    try:
        with open(args.output, "w" if args.force else "x", encoding="utf-8") as handle:
            handle.write(TEMPLATE)
    except FileExistsError:
        return _fail(f"{args.output} exists; --force replaces it")
    except OSError as exc:
        return _fail(f"cannot write {args.output}: {exc.strerror}")
    print(f"wrote {args.output}; check it with: procward check -c {args.output}", file=sys.stderr)
    return 0


def run_check(argv: Sequence[str]) -> int:
    """``procward check [-c FILE]``: validate and print the effective configuration."""
    from procward.config.render import render

    p = argparse.ArgumentParser(prog="procward check", description="validate a configuration and print it")
    p.add_argument("-c", "--configuration", metavar="FILE")
    args = p.parse_args(argv)
    try:
        config = load(find_config(args.configuration, sys.argv[0]), BuildOptions())
    except ConfigError as exc:
        return _fail(str(exc))
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(render(config), end="")
    return 0


_Command = TypeVar("_Command", bound=Callable[..., int])


def _quiet_on_closed_output(command: _Command) -> _Command:
    """A command whose stdout reader went away (``| head``) exits 0 with no traceback, as supervisorctl does;
    stdout is pointed at /dev/null so the interpreter's last flush does not fail again."""
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> int:
        try:
            return int(command(*args, **kwargs))
        except (OutputClosed, BrokenPipeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0

    return cast(_Command, run)


@_quiet_on_closed_output
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``procward``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "check":
        return run_check(args[1:])
    if args and args[0] == "ctl":
        return ctl_main(args[1:])
    if args and args[0] == "init":
        return run_init(args[1:])
    if args and args[0] == "service":
        from procward.commands.service import main as service

        return service(args[1:])
    if args and args[0] == "supervise":
        from procward.supervise.main import main as supervise

        return supervise(args[1:])
    if args == ["version"]:  # Go supervisord's spelling of -v
        args = ["-v"]
    return run_daemon(args)


@_quiet_on_closed_output
def ctl_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``procward ctl`` / ``procwardctl``."""
    from procward.ctl.main import main as ctl

    return ctl(list(sys.argv[1:] if argv is None else argv), search_path(sys.argv[0]))
