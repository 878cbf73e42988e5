"""Child logs rotated by time, named by date, gzipped off the loop, their total size capped."""

from __future__ import annotations

import gzip
import re
import sys
from pathlib import Path

from support import wait_until

COUNTER = "import itertools, sys, time\nfor i in itertools.count():\n    print(f'line {i:06d}', flush=True)\n    time.sleep(0.01)\n"


def start(daemon, tmp_path: Path, options: str):
    (tmp_path / "count.py").write_text(COUNTER)
    options = options.replace("\n", "\n        ")
    return daemon(f"""
        [program:c]
        command={sys.executable} %(here)s/count.py
        startsecs=0
        stdout_logfile=%(here)s/c.log
        {options}
        """)


def numbers(data: bytes) -> list[int]:
    return [int(line.split()[1]) for line in data.splitlines()]


def all_lines(tmp_path: Path) -> list[int]:
    """Every numbered line across the current file and its backups, in file-name order of age."""
    found: list[int] = []
    for path in tmp_path.glob("c.log*"):
        data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        found += numbers(data)
    return sorted(found)


def test_rotation_every_interval_gzipped_loses_and_repeats_nothing(daemon, tmp_path: Path) -> None:
    """rotate_every=1s with compress: .1.gz, .2.gz appear; every line exactly once across the files."""
    d = start(daemon, tmp_path, "stdout_logfile_rotate_every=1s\nstdout_logfile_compress=true\n"
                                "stdout_logfile_backups=50")
    wait_until(lambda: (tmp_path / "c.log.3.gz").exists(), what="three gzipped rotations", timeout=30)
    d.rpc().supervisor.stopProcess("c")
    d.stop()  # the group's rotation jobs finish before the daemon exits
    lines = all_lines(tmp_path)
    assert lines == list(range(len(lines)))
    assert not list(tmp_path.glob("c.log.rotating-*"))
    assert not list(tmp_path.glob("c.log.[0-9]"))  # every backup compressed


def test_backups_named_by_date_and_capped(daemon, tmp_path: Path) -> None:
    """rotate_naming=date with a small maxbytes: backups are c.log.YYYY-MM-DD..., and their total stays
    under total_maxbytes."""
    d = start(daemon, tmp_path, "stdout_logfile_maxbytes=600\nstdout_logfile_rotate_naming=date\n"
                                "stdout_logfile_total_maxbytes=2KB")
    wait_until(lambda: len(list(tmp_path.glob("c.log.2*"))) >= 3, what="dated backups", timeout=30)
    d.rpc().supervisor.stopProcess("c")
    d.stop()
    dated = sorted(p.name for p in tmp_path.glob("c.log.*"))
    assert all(re.fullmatch(r"c\.log\.\d{4}-\d\d-\d\d(\.\d+)?", name) for name in dated), dated
    assert sum((tmp_path / name).stat().st_size for name in dated) <= 2048


def test_a_rotation_period_that_does_not_parse(tmp_path: Path) -> None:
    """A bad period names the option and the accepted forms."""
    import pytest

    from procward.config.build import load
    from procward.errors import ConfigError

    conf = tmp_path / "x.conf"
    conf.write_text(f"[supervisord]\nlogfile={tmp_path}/m.log\n[program:a]\ncommand=sleep 1\n"
                    "stdout_logfile_rotate_every=fortnightly\n")
    with pytest.raises(ConfigError) as error:
        load(str(conf))
    assert str(error.value) == (f"{conf}:5: [program:a] stdout_logfile_rotate_every: expected hourly, daily, "
                                "weekly, never or a period like 30m, 12h, 2d, got 'fortnightly'")
