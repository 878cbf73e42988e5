"""Tearing groups down (a SIGHUP reload, update, remove, shutdown) leaves no descendant running and
loses no event."""

from __future__ import annotations

import os
import secrets
import signal
from pathlib import Path

from support import Daemon, pid_alive, wait_until


def marked(marker: str) -> list[int]:
    """Live processes whose command line carries ``marker`` (a full /proc scan, test side only)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in argv and pid_alive(int(entry)):
            found.append(int(entry))
    return found


def forking_programs(marker: str, forkers: int, plain: int) -> str:
    """``forkers`` programs that leave a ``sleep MARKER`` grandchild (no stopasgroup), ``plain`` ones that don't."""
    sections = [f"[program:fork{i}]\ncommand=sh -c 'sleep {marker} & exec sleep 3600'\nstartsecs=0\n"
                "stopwaitsecs=5\n" for i in range(forkers)]
    sections += [f"[program:plain{i}]\ncommand=sleep 3600\nstartsecs=0\n" for i in range(plain)]
    return "\n".join(sections)


def sighup(d: Daemon) -> None:
    """Send SIGHUP and wait until the daemon has taken it."""
    assert d.proc is not None
    reloads = d.log_text().count("received SIGHUP")
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: d.log_text().count("received SIGHUP") > reloads, what="the reload under way")


def all_running(d: Daemon, count: int) -> bool:
    infos = d.rpc().supervisor.getAllProcessInfo()
    return len(infos) == count and all(i["statename"] == "RUNNING" for i in infos)


def test_sighup_reloads_leave_no_grandchild_running(daemon) -> None:
    marker = f"3600.{secrets.randbelow(10**6):06d}"  # sleep takes fractions: unique to this run
    d = daemon(forking_programs(marker, forkers=4, plain=10))
    assert d.proc is not None
    for reload in range(8):
        wait_until(lambda: all_running(d, 14), what=f"every program running before reload {reload}", timeout=20)
        wait_until(lambda: len(marked(marker)) == 4, what="one grandchild per forking program", timeout=10)
        sighup(d)
    wait_until(lambda: all_running(d, 14), what="every program running after the last reload", timeout=20)
    # Each reload stopped four forkers: each of their grandchildren was stopped with them.
    assert len(marked(marker)) == 4, marked(marker)
    d.stop()
    assert marked(marker) == []


def test_update_that_removes_a_program_stops_what_it_left(daemon) -> None:
    marker = f"3600.{secrets.randbelow(10**6):06d}"
    d = daemon(forking_programs(marker, forkers=2, plain=1))
    wait_until(lambda: all_running(d, 3), what="every program running")
    wait_until(lambda: len(marked(marker)) == 2, what="one grandchild per forking program")
    d.write(forking_programs(marker, forkers=0, plain=1))
    update = d.ctl("update")
    assert update.returncode == 0, update.stderr
    assert "fork0: stopped" in update.stdout, update.stdout
    assert "fork0: removed process group" in update.stdout, update.stdout
    # Removing a group waits until what its processes left has exited: nothing is left to a later sweep.
    assert marked(marker) == []
    assert "fork0 left 1 process(es) behind" in d.log_text()


LISTENER = Path(__file__).resolve().parents[1] / "programs" / "listener.py"


def received(record: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def more_events(record: Path, *, what: str) -> None:
    seen = len(received(record))
    wait_until(lambda: len(received(record)) > seen + 8, what=what)


def test_events_raised_during_a_reload_reach_the_listener_after_it(daemon, tmp_path: Path) -> None:
    """A SIGHUP reload stops the listener with everything else: what happens meanwhile is queued and sent
    to its successor, with its serials (no gap in serial or poolserial across five reloads)."""
    import sys

    record = tmp_path / "events.jsonl"
    d = daemon(f"""
        [eventlistener:watch]
        command={sys.executable} {LISTENER} {record}
        events=PROCESS_STATE
        buffer_size=1000
        [program:flap]
        command=sh -c 'sleep 0.1; exit 0'
        startsecs=0
        autorestart=true
        """)
    assert d.proc is not None
    for reload in range(5):
        more_events(record, what=f"events flowing before reload {reload}")
        sighup(d)
    more_events(record, what="events flowing after the last reload")
    events = received(record)
    serials = [int(e["serial"]) for e in events]
    pool_serials = [int(e["poolserial"]) for e in events]
    assert serials == list(range(serials[0], serials[0] + len(serials))), "a serial is missing or repeated"
    assert pool_serials == list(range(pool_serials[0], pool_serials[0] + len(pool_serials)))
    assert d.log_text().count("received SIGHUP") == 5


def test_sigterm_during_a_sighup_reload_shuts_the_daemon_down(daemon, tmp_path: Path) -> None:
    """An init script's ``reload`` then ``stop``: the SIGTERM that arrives while the reload is stopping the
    programs is not lost (the daemon exits instead of coming back up)."""
    stopping, release = tmp_path / "stopping", tmp_path / "release"
    d = daemon(f"""
        [program:slow]
        command=sh -c 'trap "touch {stopping}; while [ ! -e {release} ]; do sleep 0.05; done; exit 0" TERM; while true; do sleep 0.05; done'
        startsecs=0
        stopwaitsecs=30
        """)
    assert d.proc is not None
    d.wait_state("slow", "RUNNING")
    d.proc.send_signal(signal.SIGHUP)
    wait_until(stopping.exists, what="the reload stopping the program")  # it stays STOPPING until released
    d.proc.send_signal(signal.SIGTERM)
    d.wait_log("received SIGTERM indicating exit request")
    release.touch()
    assert d.proc.wait(timeout=30) == 0
    d.proc = None
    assert d.log_text().count("spawned: 'slow'") == 1, d.log_text()
