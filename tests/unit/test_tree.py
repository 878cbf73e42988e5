"""procward.core.tree helpers that read /proc, on real processes."""

from __future__ import annotations

import os
import subprocess

from procward.core.tree import start_time


def test_start_time_names_a_child_only_for_its_parent() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        started = start_time(child.pid)
        assert isinstance(started, int)
        assert started > 0
        assert start_time(child.pid, parent=os.getpid()) == started
        assert start_time(child.pid, parent=1) is None  # not init's child: someone else's pid
    finally:
        child.kill()
        child.wait()
    assert start_time(child.pid) is None  # reaped: no such process
