"""``procward ctl`` / ``procwardctl``: supervisorctl's commands, output and exit codes, against procward or
supervisord."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from procward import SUPERVISOR_COMPAT_VERSION, __version__
from procward.ctl import controller, fanout
from procward.ctl.commands import Commands
from procward.ctl.options import USAGE, UsageError, parse
from procward.errors import ProcwardError

USAGE_ERROR = 2


def main(argv: Sequence[str], search: Sequence[str] = ()) -> int:
    """Parse the command line, then run one command or the shell; returns the exit status."""
    try:
        options = parse(argv, search)
    except UsageError as exc:
        print(f"Error: {exc}\nFor help, use procward ctl -h", file=sys.stderr)
        return USAGE_ERROR
    except ProcwardError as exc:  # a broken configuration file, located
        print(f"Error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    if options.show_help:
        print(USAGE)
        return 0
    if options.show_version:
        print(f"procward {__version__} (supervisorctl {SUPERVISOR_COMPAT_VERSION} compatible)")
        return 0
    try:
        if options.fanout:
            return fanout.run(lambda opts, out: Commands(opts, stdout=out), options, print)
        return controller.run(Commands(options), options)
    except KeyboardInterrupt:
        return 1
