"""``procward ctl`` on several daemons at once: repeated -s or --nodes, unix and TCP, each with its own
credentials, lines prefixed with the server; a daemon that does not answer is reported, the others answer."""

from __future__ import annotations

import json
from pathlib import Path

from support import Daemon, wait_until
from test_beyond import free_port


def test_one_command_on_many_daemons(daemon, tmp_path: Path) -> None:
    (tmp_path / "beta").mkdir()
    beta = Daemon(tmp_path / "beta", """
        [program:far]
        command=sleep 300
        startsecs=0
        autostart=false
        """, auth=("bob", "secret"))
    beta.start()
    dead = free_port()
    try:
        d = daemon(f"""
            [program:near]
            command=sleep 300
            startsecs=0

            [node:beta]
            serverurl=unix://{beta.sock}
            username=bob
            password=secret

            [node:gone]
            serverurl=http://127.0.0.1:{dead}
            """)
        d.wait_state("near", "RUNNING")
        status = d.ctl("--nodes", "status")
        lines = status.stdout.splitlines()
        assert any(line.startswith("local: near") and "RUNNING" in line for line in lines), lines
        assert any(line.startswith("beta: far") and "STOPPED" in line for line in lines), lines
        assert f"gone: http://127.0.0.1:{dead} refused connection" in lines
        assert status.returncode == 4  # the worst: a daemon that does not answer

        started = d.ctl("-s", "beta", "-s", f"unix://{d.sock}", "start", "far", "near")
        assert "beta: far: started" in started.stdout.splitlines()
        assert f"unix://{d.sock}: near: ERROR (already started)" in started.stdout.splitlines()
        assert beta.state("far") == "RUNNING"

        listed = json.loads(d.ctl("-s", "beta", "-s", f"unix://{d.sock}", "status", "--json").stdout)
        assert {(item["node"], item["name"]) for item in listed} == {("beta", "far"), (f"unix://{d.sock}", "near")}

        bad = d.ctl("-s", "beta", "-s", "nowhere", "status")
        assert bad.returncode == 2
        assert "'nowhere' is neither a URL nor a node" in bad.stderr
    finally:
        beta.stop()


def test_a_host_that_accepts_but_never_answers_costs_its_timeout_only(daemon, tmp_path: Path) -> None:
    """A TCP port that accepts and never answers: the other daemon's lines are printed, the hung one is
    one line, and the command returns (4, as for a daemon that refused)."""
    import socket

    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)  # the kernel completes connections; nobody ever reads or answers
    port = hung.getsockname()[1]
    try:
        d = daemon(f"""
            [program:near]
            command=sh -c 'echo hello-near; exec sleep 300'
            startsecs=0

            [node:hung]
            serverurl=http://127.0.0.1:{port}
            """)
        d.wait_state("near", "RUNNING")
        status = d.ctl("-s", f"unix://{d.sock}", "-s", "hung", "--timeout", "2", "status")
        lines = status.stdout.splitlines()
        assert any(line.startswith(f"unix://{d.sock}: near") and "RUNNING" in line for line in lines), lines
        assert "hung: ERROR: no answer within 2s" in lines
        assert status.returncode == 4

        # Go's logtail writes where every command of a fan-out writes: its host's lines, prefixed.
        wait_until(lambda: "hello-near" in d.rpc().supervisor.tailProcessStdoutLog("near", 0, 100)[0],
                   what="near's line")
        tailed = d.ctl("-s", f"unix://{d.sock}", "-s", "hung", "--timeout", "1", "logtail", "near")
        assert f"unix://{d.sock}: hello-near" in tailed.stdout.splitlines(), tailed.stdout

        listed = json.loads(d.ctl("--nodes", "--timeout", "1", "status", "--json").stdout)
        assert {"node": "hung", "error": "ERROR: no answer within 1s"} in listed
        assert any(item.get("name") == "near" for item in listed)

        bad = d.ctl("--nodes", "--timeout", "soon", "status")
        assert bad.returncode == 2
        assert "--timeout takes a number of seconds > 0, got 'soon'" in bad.stderr
    finally:
        hung.close()
