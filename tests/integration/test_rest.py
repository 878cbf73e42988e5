"""Go supervisord's REST routes, asked with a plain HTTP client over TCP, behind the site's credentials."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import pytest
from support import wait_until
from test_http import basic, free_port, request

ADMIN = basic("admin", "secret")
VIEWER = basic("viewer", "look")


@pytest.fixture
def rest(daemon, tmp_path: Path):
    port = free_port()
    d = daemon(f"""
        [program:web]
        command=sh -c 'echo hello-from-web; exec sleep 300'
        startsecs=0
        stdout_logfile=%(here)s/web.log

        [program:worker]
        command=sleep 300
        startsecs=0
        autostart=false

        [program:pool]
        command=sleep 300
        process_name=%(program_name)s_%(process_num)d
        numprocs=2
        startsecs=0
        autostart=false

        [inet_http_server]
        port=127.0.0.1:{port}
        username=admin
        password=secret
        readonly_username=viewer
        readonly_password=look
        """)
    d.wait_state("web", "RUNNING")

    def call(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
             raw: bytes | None = None) -> tuple[int, bytes]:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        return request(conn, method, path, data, {**ADMIN, **(headers or {})})

    return d, call


def state(d, name: str) -> str:
    return str(d.rpc().supervisor.getProcessInfo(name)["statename"])


def test_program_list_has_go_shape(rest) -> None:
    d, call = rest
    status, body = call("GET", "/program/list")
    assert status == 200
    listed = {p["name"]: p for p in json.loads(body)}
    assert set(listed) == {"web", "worker", "pool_0", "pool_1"}
    assert set(listed["web"]) == {"node", "name", "group", "description", "start", "stop", "now", "state", "statename",
                                  "spawnerr", "exitstatus", "logfile", "stdout_logfile", "stderr_logfile", "pid"}
    assert listed["web"]["statename"] == "RUNNING"
    assert listed["web"]["pid"] == d.rpc().supervisor.getProcessInfo("web")["pid"] > 0
    assert listed["pool_0"]["group"] == "pool"


def test_start_stop_restart_one_program(rest) -> None:
    d, call = rest
    assert call("POST", "/program/start/worker") == (200, b'{"success": true}\n')
    assert state(d, "worker") == "RUNNING"
    first = d.rpc().supervisor.getProcessInfo("worker")["pid"]
    assert call("PUT", "/program/restart/worker") == (200, b'{"success": true}\n')
    assert d.rpc().supervisor.getProcessInfo("worker")["pid"] not in (0, first)
    assert call("PUT", "/program/stop/worker") == (200, b'{"success": true}\n')
    assert state(d, "worker") == "STOPPED"
    assert call("POST", "/program/stop/worker") == (200, b'{"success": false}\n')  # not running: Go's shape
    assert call("POST", "/program/start/ghost") == (200, b'{"success": false}\n')  # unknown program: Go's shape
    assert call("POST", "/program/start/pool")[1] == b'{"success": true}\n'  # numprocs > 1: the whole program
    assert state(d, "pool:pool_0") == state(d, "pool:pool_1") == "RUNNING"
    assert call("GET", "/program/start/worker")[0] == 405


def test_start_and_stop_programs_lists(rest) -> None:
    d, call = rest
    assert call("POST", "/program/startPrograms", ["worker", "pool"]) == (200, b"Success to start the programs")
    assert state(d, "worker") == state(d, "pool:pool_1") == "RUNNING"
    assert call("PUT", "/program/stopPrograms", ["worker", "ghost"]) == (200, b"Success to stop the programs")
    assert state(d, "worker") == "STOPPED"
    # Go's newer body: node and program; an empty node, or this daemon's name, is this daemon.
    assert call("POST", "/program/startPrograms", [{"node": "", "program": "worker"}]) == (
        200, b"Success to start the programs")
    assert state(d, "worker") == "RUNNING"
    assert call("POST", "/program/stopPrograms", [{"program": "worker"}, {"node": "nowhere", "program": "web"}]
                ) == (200, b"Success to stop the programs")
    assert state(d, "worker") == "STOPPED"
    assert state(d, "web") == "RUNNING"  # an unknown node's entry is skipped
    for bad in (b"not json", b'{"a": 1}', b"[1, 2]", b"", b'[{"node": "x"}]', b'[{"program": 3}]'):
        assert call("POST", "/program/startPrograms", raw=bad) == (400, b"not a valid request")
    assert state(d, "web") == "RUNNING"  # the daemon keeps serving


def test_logs_conf_shutdown_and_reload(rest, tmp_path: Path) -> None:
    d, call = rest
    wait_until(lambda: b"hello-from-web" in call("GET", "/program/log/web/stdout")[1], what="the log over REST")
    assert call("GET", "/program/log/ghost/stdout")[0] == 404
    status, conf = call("GET", "/conf/web")
    assert status == 200
    assert b"[program:web]" in conf
    assert call("GET", "/conf/ghost")[0] == 404
    d.conf.write_text(d.conf.read_text() + "\n[program:late]\ncommand=sleep 300\nstartsecs=0\n")
    assert call("POST", "/supervisor/reload") == (200, b'{"success": true}\n')
    assert state(d, "late") == "RUNNING"
    d.conf.write_text(d.conf.read_text() + "\n[program:broken\n")
    assert call("POST", "/supervisor/reload") == (200, b'{"success": false}\n')
    assert call("POST", "/supervisor/shutdown") == (200, b'{"success": true}\n')  # Go's newer answer
    wait_until(lambda: d.proc.poll() is not None, what="the daemon to exit", timeout=30)


def test_credentials_and_foreign_pages_are_refused(rest) -> None:
    d, call = rest
    assert call("GET", "/program/list", headers={"Authorization": "Basic bm86bm8="})[0] == 401
    assert call("GET", "/program/list", headers=VIEWER)[0] == 200  # the read-only user may look
    assert call("POST", "/program/stop/web", headers=VIEWER)[0] == 403
    assert call("GET", "/conf/web", headers=VIEWER)[0] == 403  # the file may hold the password
    assert call("POST", "/program/stop/web", headers={"Origin": "http://evil.example"})[0] == 403
    assert call("POST", "/program/stop/web", headers={"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert state(d, "web") == "RUNNING"
