"""procward vs supervisord 4.3, side by side in one run, through XML-RPC on a unix socket only.

Scenarios (see docs/performance.md):
  S1 spawn       N sleep programs: start to first answered RPC, start to all RUNNING; the CPU that
                 took (daemon with its reaped helpers, programs) and its bound on this machine's CPUs
  S2 idle        500 running, idle window: daemon CPU %, context switches/s, RSS
  S3 restart     100 autorestart programs: SIGKILL one, time until a new pid is RUNNING (median, p95)
  S4 logs        one program writes --log-mb MiB to stdout: MB/s, daemon CPU s; plain, rotating, and
                 with stdout_events_enabled (every byte passes through the daemon)
  S5 rpc         500 programs: getAllProcessInfo / getProcessInfo latency, calls/s, the daemon's CPU
                 per getProcessInfo; startProcessGroup / stopProcessGroup of a 100-program group with wait
  S6 stop        500 running: stopAllProcesses, then SIGTERM to exit; orphans left
  S7 writers     50 programs writing numbered lines at 2 MB/s each: daemon CPU %, lines lost or duplicated
  S9 web         the web page at N=100 and 1000 (render time, bytes); procward only: 10 live pages
                 connected and idle (daemon CPU, wake-ups), one state change fanned out to all 10
  S10 metrics    procward only (supervisord has no /metrics): a /metrics scrape at N=100 and 1000,
                 time and daemon CPU per scrape, bytes
  S11 sockets    an HTTP server under a steady 500 requests/s from 127.0.0.1 while it is restarted 10
                 times, then while a numprocs=4 copy is restarted one process at a time 5 times: failed
                 requests (refused, reset, other) and latency p99; the server binding its own port under
                 both daemons, and under procward with the port held (sockets =)
Every figure is the median of --runs runs (default 3) with min and max; the ratio is supervisord/procward
for times and costs (above 1 means procward is better).

Usage: python bench/run.py [--runs 3] [--only S1,S3] [--sizes 100,500,1000,2000] [--quick]
                          [--daemon 'NAME=COMMAND ... -c']   (a third column: any supervisord-compatible
                          daemon whose command line, followed by the config file, runs it in the foreground)
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import DAEMONS
from scenarios import (
    S4_BASELINE,
    S4_CAT_CPU,
    s1_spawn,
    s2_s5_s6,
    s3_restart,
    s4_logs,
    s7_writers,
    s9_web,
    s10_metrics,
    s11_sockets,
)

# -- driver -------------------------------------------------------------------------------------------

@dataclass
class Table:
    rows: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, kind: str, figures: dict[str, float]) -> None:
        for key, value in figures.items():
            self.rows.setdefault(key, {k: [] for k in DAEMONS})[kind].append(value)
            # As it comes, on stderr: a long run that is stopped still leaves what it measured.
            print(f"# {kind}: {key} = {value:.4g}", file=sys.stderr, flush=True)

    def print(self) -> None:
        """One column per daemon; after each peer's column, its figure over procward's (times, costs)
        or procward's over its (rates): above 1 means procward is better."""
        peers = [k for k in DAEMONS if k != "procward"]
        # A space before each cell: a wide one ("2452 [2.41e+03-2.48e+03]") must not run into the next.
        head = f"{'figure':<52} {'procward':>24}"
        for peer in peers:
            head += f" {'supervisord 4.3' if peer == 'supervisord' else peer:>24} {'ratio':>8}"
        print(head)
        for key, per in self.rows.items():
            pw = per["procward"]
            if not pw:
                continue
            line = f"{key:<52} {_fmt(pw):>24}"
            for peer in peers:
                theirs = per[peer]
                if not theirs:  # a procward feature the peer does not have, or a size it was spared
                    line += f" {'-':>24} {'-':>8}"
                    continue
                # Rates, and bytes taken per read (larger: fewer reads). Not S11's requests answered: their
                # number follows the scenario's length, not the daemon's quality.
                higher_better = any(word in key for word in ("MB/s", "calls/s", "KB per read"))
                pm, sm = statistics.median(pw), statistics.median(theirs)
                # counts such as orphans or lost lines have no ratio
                ratio = (f"{(pm / sm if higher_better else sm / pm):.1f}x" if pm and sm
                         else "same" if pm == sm else "-")
                line += f" {_fmt(theirs):>24} {ratio:>8}"
            print(line, flush=True)


def attempt(kind: str, scenario: Callable[..., dict[str, float]], *args: Any, **kwargs: Any) -> dict[str, float]:
    """A scenario's figures; a peer that fails one (a feature it lacks, a bug of its own) leaves its
    cells empty with the reason on stderr, instead of ending the run. procward's failures end it."""
    try:
        return scenario(kind, *args, **kwargs)
    except Exception as exc:
        if kind == "procward":
            raise
        print(f"# {kind}: {scenario.__name__} failed: {exc}", file=sys.stderr, flush=True)
        return {}


def _fmt(values: list[float]) -> str:
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.4g}"
    return f"{med:.4g} [{min(values):.3g}-{max(values):.3g}]"


def precompile() -> None:
    """Byte-compile both daemons' packages, as a pip install of a wheel does.

    An editable install (and PYTHONDONTWRITEBYTECODE, set on some machines) leaves procward without
    .pyc files, so every start would compile its sources (~0.1 s) while supervisord, installed from
    PyPI, starts from bytecode.
    """
    import supervisor

    import procward

    for package in (procward, supervisor):
        compileall.compile_dir(str(Path(package.__file__).parent), quiet=1)


def main() -> int:
    parser = argparse.ArgumentParser(description="procward vs supervisord 4.3 benchmark")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="S1,S2,S3,S4,S5,S6,S7,S9,S10,S11", help="comma-separated scenarios")
    parser.add_argument("--sizes", default="100,500,1000,2000", help="N for S1 (and S2/S5 with --scaling)")
    parser.add_argument("--scaling", action="store_true", help="S2/S5/S6 at every size, not only 500")
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--log-mb", type=int, default=1024)
    parser.add_argument("--writers-seconds", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="1 run, small sizes, short windows (smoke test)")
    parser.add_argument("--supervisord-up-to", type=int, default=0,
                        help="S2/S5/S6 with --scaling: run the peers only up to this N "
                             "(supervisord's getAllProcessInfo takes ~15 s at N=5000, and S5 makes 70 of them)")
    parser.add_argument("--daemon", action="append", default=[], metavar="NAME=COMMAND",
                        help="another daemon to run beside the two, e.g. 'go=/path/supervisord -c': the "
                             "config file's path is appended to COMMAND")
    args = parser.parse_args()
    for extra in args.daemon:
        name, sep, command = extra.partition("=")
        if not sep or not command.split() or name in DAEMONS:
            parser.error(f"--daemon {extra!r}: expected NAME=COMMAND with a new NAME")
        DAEMONS[name] = command.split()
    if args.quick:
        args.runs, args.sizes, args.idle, args.kills, args.log_mb, args.writers_seconds = 1, "100", 3, 10, 64, 3
    only = set(args.only.upper().split(","))
    precompile()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{os.cpu_count()} cpus, Python {sys.version.split()[0]}, runs={args.runs}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    table = Table()
    for _ in range(args.runs):
        for kind in DAEMONS:  # alternate, so drift on the machine hits both alike
            if "S1" in only:
                for n in sizes:
                    table.add(kind, attempt(kind, s1_spawn, n, 0))
                table.add(kind, attempt(kind, s1_spawn, min(sizes[-1], 500), 1))
            if only & {"S2", "S5", "S6"}:
                for n in (sizes if args.scaling else [500 if not args.quick else sizes[0]]):
                    if kind != "procward" and args.supervisord_up_to and n > args.supervisord_up_to:
                        continue
                    table.add(kind, attempt(kind, s2_s5_s6, n, args.idle, args.quick))
            if "S3" in only:
                table.add(kind, attempt(kind, s3_restart, args.kills))
            if "S4" in only:
                table.add(kind, attempt(kind, s4_logs, args.log_mb))
            if "S7" in only:
                table.add(kind, attempt(kind, s7_writers, args.writers_seconds))
            if "S9" in only:
                for n in (100, 1000):
                    table.add(kind, attempt(kind, s9_web, n, 10, args.idle))
            if "S10" in only and kind == "procward":
                for n in (100, 1000):
                    table.add(kind, attempt(kind, s10_metrics, n))
            if "S11" in only:
                table.add(kind, attempt(kind, s11_sockets, held=False))
                if kind == "procward":
                    table.add(kind, attempt(kind, s11_sockets, held=True))
    if "S4" in only:
        print(f"S4 limit: dd | cat > file on this machine: {_fmt(S4_BASELINE)} MB/s, "
              f"cat's CPU {_fmt(S4_CAT_CPU)} s")
    table.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
