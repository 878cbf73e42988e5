"""procward in the fleet engines (issue 28's figures), with the real Debian Prometheus and Alertmanager:

  F1 alarm -> Alertmanager   a program goes FATAL: the time from its FATAL (the alert's startsAt, the
                             daemon's clock) until Alertmanager's API lists the alert (polled every 5 ms);
                             --alarms times, median [min-max]
  F2 scrape at N             N sleeping programs scraped every second by a real Prometheus with the shipped
                             rules loaded: daemon CPU % during --seconds of scraping, Prometheus's own
                             scrape_duration_seconds and the rule group's evaluation time, samples per scrape

Usage: python bench/fleet.py [--n 1000] [--seconds 30] [--alarms 10]
"""

from __future__ import annotations

import argparse
import datetime
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from engines import Alertmanager, Prometheus
from harness import cpu_seconds, daemon, program, sleepers, wait_all
from support import free_port, wait_until

RULES = Path(__file__).resolve().parents[1] / "examples" / "prometheus" / "procward-rules.yml"


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.4g} [{min(values):.3g}-{max(values):.3g}]"


def f1_alertmanager(alarms: int) -> list[float]:
    latencies = []
    with tempfile.TemporaryDirectory(prefix="bench-am-") as tmp:
        am = Alertmanager(Path(tmp) / "am")
        try:
            conf = "".join(program(f"bad{i}", f"{sys.executable} -c 'raise SystemExit(3)'", autostart="false",
                                   startretries=0, startsecs=1) for i in range(alarms))
            with daemon("procward", conf, supervisord_extra=f"alarm_alertmanager = {am.url}") as d:
                wait_all(d, alarms, state="STOPPED", timeout=60)
                for i in range(alarms):
                    d.rpc().supervisor.startProcess(f"bad{i}", False)
                    while True:
                        found = am.alerts(program=f"bad{i}")
                        if found:
                            seen = time.time()
                            break
                        time.sleep(0.005)
                    starts = datetime.datetime.fromisoformat(found[0]["startsAt"].replace("Z", "+00:00"))
                    latencies.append(1000 * (seen - starts.timestamp()))
        finally:
            am.stop()
    return latencies


def f2_scrape(n: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-prom-") as tmp:
        port = free_port()
        with daemon("procward", sleepers(n) + f"[inet_http_server]\nport=127.0.0.1:{port}\n") as d:
            wait_all(d, n)
            idle0, t0 = cpu_seconds(d.proc.pid), time.monotonic()
            time.sleep(seconds / 3)
            idle = 100 * (cpu_seconds(d.proc.pid) - idle0) / (time.monotonic() - t0)
            prom = Prometheus(Path(tmp) / "prom", [f"127.0.0.1:{port}"], rules=[RULES])
            try:
                # Prometheus finds static targets in its first discovery round (~5 s), then scrapes
                wait_until(lambda: prom.value('up{job="procward"}') == 1, what="the first scrape", timeout=60)
                time.sleep(3)  # past the first scrapes (the first reads /proc for every process)
                cpu0, t0 = cpu_seconds(d.proc.pid), time.monotonic()
                time.sleep(seconds)
                busy = 100 * (cpu_seconds(d.proc.pid) - cpu0) / (time.monotonic() - t0)
                scrape = prom.value('avg_over_time(scrape_duration_seconds{job="procward"}[20s])')
                samples = prom.value('scrape_samples_scraped{job="procward"}')
                # Prometheus's own metrics (it does not scrape itself here): the rule group's evaluation time
                own = prom.get("/metrics", raw=True).decode()
                found = re.findall(r"^prometheus_rule_group_last_duration_seconds\{[^}]*\} (\S+)$", own, re.M)
                rules = max(map(float, found)) if found else None
            finally:
                prom.stop()
    return {"daemon CPU % idle (no scrape)": idle, "daemon CPU % scraped every 1 s": busy,
            "scrape duration ms (Prometheus)": 1000 * (scrape or 0), "samples per scrape": samples or 0,
            "rule group evaluation ms": 1000 * (rules or 0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--alarms", type=int, default=10)
    args = parser.parse_args()
    print(f"F1 alarm -> Alertmanager ms ({args.alarms} alarms): {_fmt(f1_alertmanager(args.alarms))}", flush=True)
    for key, value in f2_scrape(args.n, args.seconds).items():
        print(f"F2 N={args.n} {key}: {value:.4g}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
