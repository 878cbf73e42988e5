"""A mass start's spawns made by helper processes (core/massspawn.py): real helpers, real children."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import Daemon, children_of, pid_alive, rpc_client, wait_until

from procward.core.massspawn import MIN_BATCH

PROBE = Path(__file__).resolve().parents[1] / "programs" / "massspawn_probe.py"
NOTIFIER = Path(__file__).resolve().parents[1] / "programs" / "notifier.py"
pytestmark = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="helpers are used with 2 CPUs or more")


def _probe(tmp_path: Path, scenario: str) -> dict:
    conf = tmp_path / "probe.conf"
    conf.write_text(textwrap.dedent(f"""\
        [supervisord]
        logfile={tmp_path}/main.log
        [program:p]
        command=sleep 3600
        """))
    done = subprocess.run([sys.executable, str(PROBE), scenario, str(conf)], capture_output=True, text=True,
                          timeout=60, check=True)
    return json.loads(done.stdout)


def test_many_programs_are_spawned_by_helpers_and_become_the_daemons_children(
        daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    count = MIN_BATCH + 14
    programs = "".join(textwrap.dedent(f"""\
        [program:p{i:02d}]
        command=sh -c 'echo $PPID > {tmp_path}/p{i:02d}.parent; echo hello {i} $SUPERVISOR_PROCESS_NAME $OWN; exec sleep 3600'
        startsecs=0
        stdout_logfile={tmp_path}/p{i:02d}.log
        environment=OWN="v{i}"
        """) for i in range(count))
    programs += "[program:missing]\ncommand=/nonexistent/prog\nstartsecs=0\nstartretries=0\n"
    # A notify program is spawned by the daemon itself (its READY=1 may come before a helper's pid would).
    programs += f"[program:notifying]\ncommand={sys.executable} {NOTIFIER} 0\nnotify=true\nstartsecs=0\n"
    # A failed exec: the helper's child exits (chdir fails after the fork), and the helper reaps it.
    programs += f"[program:nodir]\ncommand=sleep 3600\ndirectory={tmp_path}/gone\nstartsecs=0\nstartretries=0\n"
    d = daemon(programs)
    assert d.proc is not None
    sup = d.rpc().supervisor

    def running() -> Any:
        infos = sup.getAllProcessInfo()
        ours = [i for i in infos if i["name"].startswith("p")]
        return sum(i["statename"] == "RUNNING" for i in ours) == count and {i["name"]: i for i in infos}

    infos = wait_until(running, what=f"{count} programs RUNNING")
    assert d.wait_state("notifying", "RUNNING")["pid"]  # on its READY=1
    assert d.wait_state("missing", "FATAL")["spawnerr"] == "can't find command '/nonexistent/prog'"
    assert d.wait_state("nodir", "FATAL")["spawnerr"] == f"couldn't chdir to {tmp_path}/gone: ENOENT"
    parents = set()
    for i in range(count):
        log = tmp_path / f"p{i:02d}.log"
        wait_until(lambda log=log: log.exists() and log.read_text(), what=f"{log.name} written")
        # Its output reaches its log, and its environment (made by the helper) is its own.
        assert log.read_text() == f"hello {i} p{i:02d} v{i}\n"
        parents.add(int((tmp_path / f"p{i:02d}.parent").read_text()))
    # Spawned by the helpers, not by the daemon itself (a program's shell that began after its helper
    # exited sees the daemon as its parent already).
    lines = re.findall(r"spawning (\d+) programs in a helper process \(pid (\d+)\)", d.log_text())
    assert sum(int(n) for n, _ in lines) == count + 2, d.log_text()  # all but the notify program
    helpers = {int(pid) for _, pid in lines}
    assert len(helpers) == 2  # an even share each
    assert parents <= helpers | {d.proc.pid}
    assert not any(pid_alive(helper) for helper in helpers)  # they are gone
    pids = {infos[f"p{i:02d}"]["pid"] for i in range(count)}
    assert pids <= set(children_of(d.proc.pid))  # and the programs are the daemon's own children
    # The daemon stops them as any process: a stop, then a shutdown, leave nothing.
    sup.stopProcess("p03")
    assert sup.getProcessInfo("p03")["statename"] == "STOPPED"
    assert not pid_alive(infos["p03"]["pid"])
    d.stop()
    assert not any(pid_alive(pid) for pid in pids)
    assert (tmp_path / "stderr.txt").read_text() == ""  # nothing from the helpers (a signal's wakeup write)


def test_a_request_called_off_before_its_spawn_leaves_no_process(tmp_path: Path) -> None:
    report = _probe(tmp_path, "cancel")
    assert report["helpers"] == 2
    assert sorted(report["outcomes"], key=int) == [str(i) for i in range(20) if i != 4]
    assert all(outcome.startswith("pid ") for outcome in report["outcomes"].values())
    assert report["unwanted_alive"] == []
    assert report["delivered_ours"] == 19  # each delivered pid is alive, and the probe's own child


def test_killed_helpers_leave_no_process_their_requests_do_not_know(tmp_path: Path) -> None:
    report = _probe(tmp_path, "kill")
    assert report["helpers"] == 2
    outcomes = report["outcomes"]
    assert sorted(outcomes, key=int) == [str(i) for i in range(40)]  # every request has its outcome
    failed = [o for o in outcomes.values() if o.startswith("error")]
    assert all(o == "error couldn't spawn: its helper ended first" for o in failed)
    assert report["unwanted_alive"] == []  # what the helpers did start but not report was killed
    assert report["delivered_ours"] == 40 - len(failed)


def test_helpers_are_used_only_by_a_child_subreaper() -> None:
    """Without the subreaper role the helpers' programs would go to init when a helper exits, and their
    exits would never be seen: then the daemon spawns every program itself."""
    code = ("from procward.core.exits import become_subreaper\n"
            "from procward.core.massspawn import MIN_BATCH, MassSpawner as M\n"
            "print(M.worth_it(1000), end=' ')\n"
            "become_subreaper()\n"
            "print(M.worth_it(1000), M.worth_it(MIN_BATCH - 1))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["False", "True", "False"]


def test_a_mass_start_holds_no_more_descriptors_than_a_chunk_beyond_its_programs(tmp_path: Path) -> None:
    """100 programs hold 3 descriptors each (300); a helper's chunk of 50 needs 300 more while it is
    forked. Under a limit of 520 the start must not run out (with every pipe made up front it needed 600)."""
    programs = "".join(f"[program:p{i:03d}]\ncommand=sleep 3600\nstartsecs=0\nstdout_logfile=NONE\n"
                       f"stderr_logfile=NONE\n" for i in range(100))
    conf = tmp_path / "supervisord.conf"
    conf.write_text(f"[supervisord]\nlogfile={tmp_path}/main.log\npidfile={tmp_path}/d.pid\nminfds=64\n"
                    f"[unix_http_server]\nfile={tmp_path}/d.sock\n[rpcinterface:supervisor]\n"
                    "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n" + programs)
    limit = (520, 520)
    proc = subprocess.Popen([sys.executable, "-m", "procward", "-n", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, limit))
    try:
        sup = rpc_client(str(tmp_path / "d.sock")).supervisor
        infos = wait_until(lambda: (i := sup.getAllProcessInfo()) and all(p["statename"] == "RUNNING" for p in i) and i,
                           what="100 programs RUNNING", timeout=30)
        assert len(infos) == 100
        log = (tmp_path / "main.log").read_text()
        assert "Too many open files" not in log
        assert "spawning 50 programs in a helper process" in log
        assert all(p["spawnerr"] == "" for p in infos)
    finally:
        kids = children_of(proc.pid)
        proc.terminate()
        proc.wait(timeout=30)
        assert not [k for k in kids if pid_alive(k)]
