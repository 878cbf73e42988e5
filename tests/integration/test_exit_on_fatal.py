"""``exit_on_fatal``: the container's policy. A listed program going FATAL stops everything and the daemon
exits 1; an unlisted one does not; a normal shutdown exits 0."""

from __future__ import annotations

from pathlib import Path

from support import pid_alive, wait_until


def test_listed_fatal_program_stops_the_daemon_with_status_1(daemon, tmp_path: Path) -> None:
    d = daemon("""
        [program:web]
        command=sleep 300
        startsecs=0

        [program:flaky]
        command=sh -c 'exit 1'
        startsecs=5
        startretries=0
        autostart=false

        [program:key]
        command=sh -c 'exit 1'
        startsecs=5
        startretries=0
        autostart=false
        """, supervisord_extra="exit_on_fatal=key")
    web = d.wait_state("web", "RUNNING")["pid"]
    d.rpc().supervisor.startProcess("flaky", False)
    d.wait_state("flaky", "FATAL")  # not listed: the daemon stays
    assert d.rpc().supervisor.getState()["statename"] == "RUNNING"
    d.rpc().supervisor.startProcess("key", False)
    assert d.proc.wait(timeout=30) == 1
    assert not pid_alive(web)
    d.wait_log("key entered FATAL and is listed in exit_on_fatal")


def test_normal_shutdown_exits_0(daemon) -> None:
    d = daemon("""
        [program:web]
        command=sleep 300
        startsecs=0
        """, supervisord_extra="exit_on_fatal=*")
    d.wait_state("web", "RUNNING")
    d.rpc().supervisor.shutdown()
    wait_until(lambda: d.proc.poll() is not None, what="daemon gone", timeout=30)
    assert d.proc.returncode == 0
