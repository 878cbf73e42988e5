"""``procward supervise``: check the arguments and the status directory while the caller still waits,
then detach as the reference does (``daemon(1, 0)``) and supervise.

Unlike the reference, every error up to the detach (bad flags, a directory that cannot be made, a second
supervisor on the same directory) is printed on stderr and returned as the exit status, where the
reference prints to a stdout it has already closed and exits 0.
"""

from __future__ import annotations

import asyncio
import os
import sys

from procward.supervise import options
from procward.supervise import statusfiles as svfiles
from procward.supervise.service import Log, Service

VERSION = "v 1.0.0"


def main(args: list[str]) -> int:
    """Entry point; the exit status (100 bad arguments, 110 directory, 111 log or lock, 1 FIFOs)."""
    try:
        opts = options.parse(args)
    except options.UsageError as exc:
        print(f"procward supervise: {exc}", file=sys.stderr)
        return 100
    if opts.version:
        print(VERSION)
        return 100  # as the reference
    try:
        os.mkdir(opts.directory, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        print(f"procward supervise: unable to create dir {opts.directory}: {exc.strerror}", file=sys.stderr)
        return 110
    try:
        log = Log(opts.directory)
    except OSError as exc:
        print(f"procward supervise: unable to open the logs in {opts.directory}: {exc.strerror}", file=sys.stderr)
        return 111
    try:
        lock = svfiles.take_lock(opts.directory)
        control = svfiles.open_fifo(svfiles.fifo(opts.directory, "control"))
        ok = svfiles.open_fifo(svfiles.fifo(opts.directory, "ok"))
    except svfiles.StatusDirError as exc:
        log.fatal(str(exc))
        print(f"procward supervise: {exc}", file=sys.stderr)
        return exc.code
    if not opts.foreground:
        _detach()
    fifos = {"control": control, "ok": ok}  # both ends held open while the supervisor lives
    status = asyncio.run(Service(opts, log, fifos).run())
    for fd in (lock, *fifos["control"], *fifos["ok"]):
        os.close(fd)
    return status


def _detach() -> None:
    """daemon(1, 0): the caller gets exit status 0 now; the supervisor runs on in a new session, its
    stdio on /dev/null, in the same directory."""
    if os.fork():
        os._exit(0)
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
