"""A stop or a signal reaches the program's processes and nothing else; shutdown always ends."""

from __future__ import annotations

import os
import time

from support import pid_alive, wait_until


def test_stop_while_waiting_for_a_pidfile_signals_nobody(daemon) -> None:
    """The command exited and its pidfile is not written yet (no pid known): a stop ends the wait and
    leaves the program STOPPED. It used to call kill(0, SIGTERM): the daemon's own process group."""
    d = daemon("""
        [program:slowpid]
        command=sh -c 'exit 0'
        pidfile=%(here)s/never-written.pid
        startsecs=1
        [program:bystander]
        command=sleep 300
        startsecs=0
        """)
    bystander = d.wait_state("bystander", "RUNNING")["pid"]
    d.wait_log("spawned: 'slowpid'")
    wait_until(lambda: "exited" not in d.log_text() and d.state("slowpid") == "STARTING",
               what="slowpid waiting for its pidfile")
    began = time.monotonic()
    assert d.rpc().supervisor.stopProcess("slowpid") is True
    assert time.monotonic() - began < 4  # not the 5 s pidfile wait
    assert d.state("slowpid") == "STOPPED"
    d.wait_log("the wait for its pidfile is called off")
    assert d.proc.poll() is None, "the daemon signalled itself"
    assert "received SIGTERM" not in d.log_text()
    assert d.rpc().supervisor.getProcessInfo("bystander")["pid"] == bystander
    assert pid_alive(bystander)
    assert d.stop() == 0


def test_restart_during_the_pidfile_wait_starts_again(daemon) -> None:
    """restart (stop then start) during the pidfile wait spawns the command again, signalling nobody."""
    d = daemon("""
        [program:slowpid]
        command=sh -c 'exit 0'
        pidfile=%(here)s/never-written.pid
        startsecs=1
        """)
    d.wait_log("spawned: 'slowpid'")
    wait_until(lambda: d.state("slowpid") == "STARTING", what="slowpid waiting for its pidfile")
    d.rpc().supervisor.stopProcess("slowpid")
    d.rpc().supervisor.startProcess("slowpid", False)
    wait_until(lambda: d.log_text().count("spawned: 'slowpid'") == 2, what="second spawn")
    assert d.proc.poll() is None
    assert os.getpgid(d.proc.pid) == d.proc.pid  # the test daemon leads its own group (see support.py)
