"""The resource sampler's /proc reader on real process trees, with psutil as the oracle."""

from __future__ import annotations

import subprocess
import sys

import psutil
from support import wait_until

from procward.core.daemon.usage import _scan

# A parent holding 8 MiB with two children: one that burns CPU for a moment and one that sleeps.
TREE = ("import subprocess, sys, time\n"
        "ballast = bytearray(8 << 20)\n"
        "kids = [subprocess.Popen([sys.executable, '-c', 'import time\\nt = time.process_time()\\n"
        "while time.process_time() - t < 0.5: pass\\ntime.sleep(60)']),\n"
        "        subprocess.Popen(['sleep', '60'])]\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n")


def test_scan_adds_up_a_whole_tree_as_psutil_sees_it() -> None:
    root = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True)
    try:
        assert root.stdout is not None
        assert root.stdout.readline().strip() == "ready"
        tree = psutil.Process(root.pid)
        wait_until(lambda: sum(sum(p.cpu_times()[:2]) for p in tree.children()) >= 0.3, what="the child's CPU")
        members = [tree, *tree.children(recursive=True)]
        cpu, rss, fds, count = _scan({"tree": root.pid, "gone": 2**22 + 1})["tree"]
        assert count == len(members) == 3
        assert fds == sum(p.num_fds() for p in members)
        expected_rss = sum(p.memory_info().rss for p in members)
        assert abs(rss - expected_rss) < 0.1 * expected_rss
        assert rss > 8 << 20  # the parent's ballast is counted
        expected_cpu = sum(sum(p.cpu_times()[:2]) for p in members)
        assert 0.3 <= cpu <= expected_cpu + 0.05  # ticks: /proc and psutil read the same counters
    finally:
        for proc in psutil.Process(root.pid).children(recursive=True):
            proc.kill()
        root.kill()
        root.wait()
        root.stdout.close()
    assert _scan({"gone": root.pid})["gone"] == (0.0, 0, 0, 0)
