"""Side by side: procward vs supervisord 4.3 on one generated config of N `sleep` programs.

Measures, through the XML-RPC API on the unix socket only:
  - time from daemon start to the first answered RPC, and to all N processes RUNNING
  - daemon CPU % (utime+stime from /proc) and context switches/s over an idle window, RSS
  - time from SIGTERM to daemon exit, and children left behind
Usage: python bench/spawn_idle.py [-n 500] [--idle 30] [--runs 1] [--startsecs 0]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support import children_of, pid_alive, rpc_client  # noqa: E402

DAEMONS = {
    "procward": [sys.executable, "-m", "procward", "-n", "-c"],
    "supervisord": [sys.executable, "-m", "supervisor.supervisord", "-n", "-c"],
}
CLK = os.sysconf("SC_CLK_TCK")


def write_config(directory: Path, n: int, startsecs: int) -> Path:
    conf = directory / "bench.conf"
    lines = [
        "[supervisord]", f"logfile={directory}/main.log", f"pidfile={directory}/d.pid",
        f"childlogdir={directory}", "minfds=16384", "loglevel=info", "",
        "[unix_http_server]", f"file={directory}/d.sock", "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
    ]
    for i in range(n):
        lines += [f"[program:p{i:04d}]", "command=sleep 3600", f"startsecs={startsecs}",
                  "stdout_logfile=NONE", "stderr_logfile=NONE", ""]
    conf.write_text("\n".join(lines))
    return conf


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def status_field(pid: int, name: str) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def run_once(kind: str, n: int, idle: float, startsecs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as tmp:
        directory = Path(tmp)
        conf = write_config(directory, n, startsecs)
        sock = str(directory / "d.sock")
        started = time.monotonic()
        proc = subprocess.Popen([*DAEMONS[kind], str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        first_rpc = all_running = None
        deadline = started + 120
        while time.monotonic() < deadline:
            try:
                infos = rpc_client(sock).supervisor.getAllProcessInfo()
            except OSError:
                time.sleep(0.01)
                continue
            now = time.monotonic()
            first_rpc = first_rpc or now - started
            if len(infos) == n and all(i["statename"] == "RUNNING" for i in infos):
                all_running = now - started
                break
            time.sleep(0.02)
        time.sleep(2)  # let start-up work settle before the idle window
        ticks0, switches0 = cpu_ticks(proc.pid), _switches(proc.pid)
        time.sleep(idle)
        ticks1, switches1 = cpu_ticks(proc.pid), _switches(proc.pid)
        rss_kb = status_field(proc.pid, "VmRSS")
        kids = children_of(proc.pid)
        stop_start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        shutdown = time.monotonic() - stop_start
        left = [k for k in kids if pid_alive(k)]
        for k in left:
            os.kill(k, signal.SIGKILL)
        return {
            "first_rpc_s": first_rpc or float("nan"),
            "all_running_s": all_running or float("nan"),
            "idle_cpu_pct": 100.0 * (ticks1 - ticks0) / CLK / idle,
            "idle_switches_per_s": (switches1 - switches0) / idle,
            "rss_mb": rss_kb / 1024,
            "shutdown_s": shutdown,
            "orphans": len(left),
        }


def _switches(pid: int) -> int:
    return status_field(pid, "voluntary_ctxt_switches") + status_field(pid, "nonvoluntary_ctxt_switches")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--startsecs", type=int, default=0)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {k: [] for k in DAEMONS}
    for _ in range(args.runs):
        for kind in DAEMONS:  # alternate, so drift on the machine hits both alike
            results[kind].append(run_once(kind, args.n, args.idle, args.startsecs))
    print(f"N={args.n} sleep programs, startsecs={args.startsecs}, idle window {args.idle:.0f}s, "
          f"runs={args.runs}, {os.cpu_count()} cpus, Python {sys.version.split()[0]}")
    print(f"{'figure':<22}{'procward':>22}{'supervisord 4.3':>22}{'ratio sv/pw':>14}")
    for key in results["procward"][0]:
        pw = [r[key] for r in results["procward"]]
        sv = [r[key] for r in results["supervisord"]]
        pw_m, sv_m = statistics.median(pw), statistics.median(sv)
        ratio = f"{sv_m / pw_m:.1f}x" if pw_m else "-"
        print(f"{key:<22}{_fmt(pw):>22}{_fmt(sv):>22}{ratio:>14}")
    return 0


def _fmt(values: list[float]) -> str:
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.4g}"
    return f"{med:.4g} [{min(values):.3g}-{max(values):.3g}]"


if __name__ == "__main__":
    raise SystemExit(main())
