"""What the machine and the interpreter allow, to put bench/run.py's figures in context.

  - raw spawn cost: a bare loop of subprocess.Popen(["sleep", "3600"]) holding what procward holds per
    program (three pipes and a pidfd). Every spawn copies the parent's descriptor table, so the cost per
    spawn grows with the number of programs already running: N programs cost more than N times one.
  - RSS floor: a bare interpreter, then the daemon's imports one group at a time (ssl blocked, as in the
    daemon)

Usage: python bench/limits.py [--sizes 500,1000,2000]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

IMPORT_STEPS = [
    ("stdlib (asyncio, logging, subprocess)", "import asyncio, logging.handlers, subprocess"),
    ("defusedxml.ElementTree", "import defusedxml.ElementTree"),
    ("h11", "import h11"),
    ("procward's modules", "import procward.cli, procward.core.daemon, procward.http.server, procward.rpc"),
]


def raw_spawn(n: int) -> float:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(4 * n + 64, 1024), hard))
    children, pidfds = [], []
    t0 = time.perf_counter()
    for _ in range(n):
        child = subprocess.Popen(["sleep", "3600"], process_group=0, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        children.append(child)
        pidfds.append(os.pidfd_open(child.pid))
    elapsed = time.perf_counter() - t0
    for child in children:
        child.kill()
    for child in children:
        child.wait()
        for pipe in (child.stdin, child.stdout, child.stderr):
            assert pipe is not None
            pipe.close()
    for fd in pidfds:
        os.close(fd)
    return elapsed


def import_rss() -> list[tuple[str, float]]:
    code = ["import sys; sys.modules['ssl'] = None",
            "rss = lambda: int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) / 1024",
            "print('interpreter', rss())"]
    code += [f"{stmt}; print({label!r}, rss())" for label, stmt in IMPORT_STEPS]
    out = subprocess.run([sys.executable, "-c", "\n".join(code)], capture_output=True, text=True, check=True)
    return [(line.rsplit(" ", 1)[0], float(line.rsplit(" ", 1)[1])) for line in out.stdout.splitlines()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,1000,2000")
    args = parser.parse_args()
    for n in (int(s) for s in args.sizes.split(",")):
        elapsed = raw_spawn(n)
        print(f"raw Popen x{n}: {elapsed:.3f} s ({1000 * elapsed / n:.2f} ms each)")
    previous = 0.0
    for label, rss in import_rss():
        print(f"RSS after {label}: {rss:.1f} MB (+{rss - previous:.1f})")
        previous = rss
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
