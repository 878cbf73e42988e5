"""Go supervisord's pre_start_hook / pre_stop_hook, liveness_check_* options and nodes (nodename,
remotes, its node-qualified REST routes), with real programs, real hooks and two real daemons."""

from __future__ import annotations

import http.client
import json
import os
import signal
from pathlib import Path

import pytest
from support import Daemon, pid_alive, wait_until
from test_beyond import free_port, info, procward_check, refused_option


def test_pre_start_hook_runs_before_each_spawn_in_the_programs_environment(daemon, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    d = daemon(f"""
        [program:hooked]
        command=sh -c 'echo spawned >> {marks}; exec sleep 300'
        environment=GREETING=from-env
        startsecs=0
        pre_start_hook=sh -c 'echo "hook $GREETING" >> {marks}'
        """)
    pid = d.wait_state("hooked", "RUNNING")["pid"]
    # RUNNING (startsecs=0) comes at the spawn; the child writes its mark after its exec.
    wait_until(lambda: len(marks.read_text().splitlines()) >= 2, what="the program's mark")
    assert marks.read_text().splitlines() == ["hook from-env", "spawned"]
    os.kill(pid, signal.SIGKILL)  # an automatic restart runs the hook again, as Go does
    wait_until(lambda: marks.read_text().splitlines()[2:] == ["hook from-env", "spawned"], what="hook on restart")


def test_failing_or_hanging_pre_start_hook_fails_the_start(daemon, tmp_path: Path) -> None:
    """Non-zero exit: the start fails, the hook's last output line in spawnerr; a hook past hook_timeout is
    killed and fails the start the same way."""
    hung = tmp_path / "hung.pid"
    d = daemon(f"""
        [program:refused]
        command=sleep 300
        startretries=0
        pre_start_hook=sh -c 'echo checking; echo "config is broken" >&2; exit 3'

        [program:hangs]
        command=sleep 300
        startretries=0
        hook_timeout=0.5
        pre_start_hook=sh -c 'echo $$ > {hung}; exec sleep 300'
        """)
    refused = d.wait_state("refused", "FATAL")
    assert "pre_start_hook failed: exit status 3: config is broken" in refused["spawnerr"]
    hangs = d.wait_state("hangs", "FATAL")
    assert "pre_start_hook failed: no answer within 0.5s" in hangs["spawnerr"]
    hook_pid = int(hung.read_text())
    wait_until(lambda: not pid_alive(hook_pid), what="the timed-out hook killed")
    d.wait_log("pre_start_hook failed")


def test_stop_during_pre_start_hook_calls_it_off(daemon, tmp_path: Path) -> None:
    hook = tmp_path / "hook.pid"
    d = daemon(f"""
        [program:slow]
        command=sleep 300
        autostart=false
        pre_start_hook=sh -c 'echo $$ > {hook}; exec sleep 300'
        """)
    d.rpc().supervisor.startProcess("slow", False)
    wait_until(lambda: hook.exists() and hook.read_text().strip(), what="hook running")
    assert info(d, "slow")["statename"] == "STARTING"
    assert info(d, "slow")["pid"] == 0
    d.rpc().supervisor.stopProcess("slow")
    assert info(d, "slow")["statename"] == "STOPPED"
    wait_until(lambda: not pid_alive(int(hook.read_text())), what="hook killed")


def test_pre_stop_hook_runs_before_the_stop_signal_and_a_failing_one_still_stops(daemon, tmp_path: Path) -> None:
    order = tmp_path / "order"
    trap = f"trap 'echo term >> {order}; exit 0' TERM; while :; do sleep 0.1; done"
    d = daemon(f"""
        [program:polite]
        command=sh -c "{trap}"
        startsecs=0
        pre_stop_hook=sh -c 'echo hook >> {order}'

        [program:grumpy]
        command=sleep 300
        startsecs=0
        pre_stop_hook=sh -c 'echo no >&2; exit 1'
        """)
    d.wait_state("polite", "RUNNING")
    d.wait_state("grumpy", "RUNNING")
    d.rpc().supervisor.stopProcess("polite")
    assert order.read_text().splitlines() == ["hook", "term"]
    d.rpc().supervisor.stopProcess("grumpy")
    assert info(d, "grumpy")["statename"] == "STOPPED"
    d.wait_log("pre_stop_hook failed: exit status 1: no")


def test_liveness_check_actions(daemon, tmp_path: Path) -> None:
    """Go's liveness options map onto the health check: health shows in getProcessInfo; failure_action
    stop stops, a failure_action script runs instead of a restart, success_action runs on healthy."""
    sick, ran, healed = tmp_path / "sick", tmp_path / "ran", tmp_path / "healed"
    probe = f"test ! -e {sick}"
    d = daemon(f"""
        [program:stopper]
        command=sleep 300
        startsecs=0
        liveness_check_script=sh -c '{probe}'
        liveness_check_initial_delay=0
        liveness_check_period=0.1
        liveness_check_failure_threshold=2
        liveness_check_failure_action=stop

        [program:scripted]
        command=sleep 300
        startsecs=0
        liveness_check_script=script://sh -c '{probe}'
        liveness_check_initial_delay=0
        liveness_check_period=0.1
        liveness_check_success_threshold=2
        liveness_check_failure_action=sh -c 'echo failed >> {ran}'
        liveness_check_success_action=sh -c 'echo healthy >> {healed}'
        """)
    wait_until(lambda: info(d, "stopper")["health"] == "healthy", what="stopper healthy")
    wait_until(lambda: healed.exists() and healed.read_text() == "healthy\n", what="success action ran")
    pid = info(d, "scripted")["pid"]
    sick.touch()
    d.wait_state("stopper", "STOPPED")
    wait_until(lambda: ran.exists() and ran.read_text() == "failed\n", what="failure action script ran")
    assert info(d, "scripted")["health"] == "unhealthy"
    assert info(d, "scripted")["pid"] == pid  # a script action restarts nothing


@pytest.mark.parametrize(("option", "expected"), [
    ("liveness_check_script = https://127.0.0.1:1/", "https is not probed"),
    ("liveness_check_script = http://127.0.0.1:1/ --cert-file c.pem", "--cert-file is for https"),
    ("liveness_check_script = http://127.0.0.1:1/ -H nocolon", "expected -H 'Name: value'"),
    ("liveness_check_script = tcp://nowhere", "expected tcp://host:port"),
    ("liveness_check_script = /bin/true\nliveness_check_period = 0", "liveness_check_period"),
    ("liveness_check_script = /bin/true\nliveness_check_failure_threshold = 0", "liveness_check_failure_threshold"),
    ("hook_timeout = -1", "hook_timeout"),
    ("healthcheck = tcp://127.0.0.1:1\nliveness_check_script = /bin/true", "not both"),
])
def test_go_liveness_and_hook_errors_are_located(tmp_path: Path, option: str, expected: str) -> None:
    conf, stderr = refused_option(tmp_path, option)
    assert f"{conf}:" in stderr
    assert expected in stderr


@pytest.mark.parametrize("remotes", ["beta", "beta:nowhere", "beta:127.0.0.1:1, beta:127.0.0.1:2"])
def test_bad_remotes_are_located(tmp_path: Path, remotes: str) -> None:
    conf = tmp_path / "supervisord.conf"
    conf.write_text(f"[supervisord]\n[inet_http_server]\nport=127.0.0.1:1\nremotes={remotes}\n")
    check = procward_check(conf)
    assert check.returncode == 2, check.stderr
    assert f"{conf}:4" in check.stderr
    assert "remotes" in check.stderr


def _get(port: int, method: str, path: str, body: object = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=json.dumps(body).encode() if body is not None else
                     b"" if method != "GET" else None)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_nodename_and_remotes_answer_gos_node_routes(daemon, tmp_path: Path) -> None:
    """Daemon alpha lists beta (remotes=) and a dead node; Go's node routes act on either daemon."""
    alpha_port, beta_port, dead_port = free_port(), free_port(), free_port()
    (tmp_path / "beta").mkdir()
    beta = Daemon(tmp_path / "beta", """
        [program:far]
        command=sleep 300
        startsecs=0
        autostart=false
        """, server_extra="", supervisord_extra="")
    beta.conf.write_text(beta.conf.read_text() + f"\n[inet_http_server]\nport=127.0.0.1:{beta_port}\n")
    beta.start()
    try:
        d = daemon(f"""
            [program:near]
            command=sleep 300
            startsecs=0

            [inet_http_server]
            port=127.0.0.1:{alpha_port}
            nodename=alpha
            remotes=beta:127.0.0.1:{beta_port}, gone:127.0.0.1:{dead_port}
            """)
        d.wait_state("near", "RUNNING")
        status, body = _get(alpha_port, "GET", "/program/list")
        assert status == 200
        listed = {(p["node"], p["name"]) for p in json.loads(body)}
        assert listed == {("alpha", "near"), ("beta", "far")}  # the dead node is left out, the rest answer

        assert _get(alpha_port, "POST", "/program/start/beta/far") == (200, b'{"success": true}\n')
        assert beta.state("far") == "RUNNING"
        status, body = _get(alpha_port, "GET", "/program/info/beta/far")
        assert status == 200
        assert json.loads(body)["statename"] == "RUNNING"
        assert json.loads(body)["node"] == "beta"
        status, body = _get(alpha_port, "GET", "/program/info/alpha/near")
        assert json.loads(body)["pid"] == info(d, "near")["pid"]
        assert _get(alpha_port, "POST", "/program/stop/alpha/near") == (200, b'{"success": true}\n')
        assert d.state("near") == "STOPPED"
        # Go's startPrograms / stopPrograms body: each entry on its node; a dead node's entry fails alone.
        entries = [{"node": "beta", "program": "far"}, {"node": "gone", "program": "far"},
                   {"node": "alpha", "program": "near"}]
        assert _get(alpha_port, "POST", "/program/startPrograms", entries) == (200, b"Success to start the programs")
        assert d.state("near") == "RUNNING"
        assert beta.state("far") == "RUNNING"
        assert _get(alpha_port, "POST", "/program/stopPrograms", entries[:1]) == (200, b"Success to stop the programs")
        assert beta.state("far") == "STOPPED"
        _get(alpha_port, "POST", "/program/start/beta/far")

        status, body = _get(alpha_port, "GET", "/supervisor/listNodes")
        nodes = {n["name"]: n["status"] for n in json.loads(body)}
        assert nodes == {"alpha": "ONLINE", "beta": "ONLINE", "gone": "OFFLINE"}
        assert _get(alpha_port, "GET", "/supervisor/beta/ping") == (200, b'{"success": true}\n')
        assert _get(alpha_port, "GET", "/supervisor/gone/ping") == (200, b'{"success": false}\n')
        assert _get(alpha_port, "GET", "/supervisor/nobody/ping") == (200, b'{"success": false}\n')
        assert _get(alpha_port, "POST", "/program/start/nobody/far")[0] == 404
        assert _get(alpha_port, "POST", "/program/start/gone/far")[0] == 502
        status, body = _get(alpha_port, "GET", "/program/info/beta/nothing")
        assert status == 404
        assert json.loads(body)["error"] == "BAD_NAME: nothing"
        assert b"alpha (pid" in _get(alpha_port, "GET", "/")[1]  # the web page names this node
    finally:
        beta.stop()
