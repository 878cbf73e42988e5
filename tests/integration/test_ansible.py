"""Ansible's community.general.supervisorctl module (the ``ansible`` package from PyPI, connection local)
driving procward as it drives supervisord: present, started, stopped, restarted, absent, through the real
supervisorctl and through procward's own client, with ``config=`` and with ``server_url=`` plus
credentials; a second run of each changes nothing. The playbook shipped in docs/ is checked too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support import free_port, wait_until

BIN = Path(sys.executable).parent
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ansible" / "procward.yml"
WEB = """
[program:web]
command=sleep 3600
autostart=false
startsecs=0
"""


def playbook(path: Path, connect: dict[str, str], tasks: list[dict[str, object]]) -> None:
    """A play of supervisorctl tasks (and file rewrites), each registered as it runs."""
    body = []
    for index, task in enumerate(tasks):
        if "content" in task:  # rewrite the configuration, as a template task would
            body.append({"name": f"t{index} write config", "ansible.builtin.copy": {
                "dest": connect["config_file"], "content": task["content"]}})
            continue
        args = {**{k: v for k, v in connect.items() if k != "config_file"}, **task}
        body.append({"name": f"t{index} {task['state']}", "community.general.supervisorctl": args})
    path.write_text(json.dumps([{"hosts": "localhost", "connection": "local", "gather_facts": False,
                                 "tasks": body}]))


def run(path: Path) -> list[tuple[str, bool, bool, str]]:
    """(task name, changed, failed, msg) of each task, from Ansible's JSON callback."""
    env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "json", "LC_ALL": "C.UTF-8", "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCAL_TEMP": str(path.parent / "ansible-tmp"), "ANSIBLE_HOME": str(path.parent / "ansible")}
    result = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-e",
                             f"ansible_python_interpreter={sys.executable}", str(path)],
                            capture_output=True, text=True, timeout=180, env=env, check=False)
    start = result.stdout.find("{")
    assert start >= 0, result.stdout + result.stderr
    report = json.loads(result.stdout[start:])
    return [(task["task"]["name"], bool(task["hosts"]["localhost"].get("changed")),
             bool(task["hosts"]["localhost"].get("failed")), str(task["hosts"]["localhost"].get("msg", "")))
            for play in report["plays"] for task in play["tasks"]]


def steps(conf: str) -> list[dict[str, object]]:
    """Each state twice (the second must change nothing; restarted always restarts), then absent."""
    return [
        {"content": conf + WEB},
        {"name": "web", "state": "present"}, {"name": "web", "state": "present"},
        {"name": "web", "state": "started"}, {"name": "web", "state": "started"},
        {"name": "web", "state": "restarted"},
        {"name": "web", "state": "stopped"}, {"name": "web", "state": "stopped"},
        {"name": "web", "state": "started"},
        {"content": conf},
        {"name": "web", "state": "absent", "stop_before_removing": True},
        {"name": "web", "state": "absent"},
    ]


EXPECTED_CHANGES = [True, True, False, True, False, True, True, False, True, True, True, False]


@pytest.mark.parametrize("client", ["supervisorctl", "procwardctl"])
def test_the_module_with_config(daemon, tmp_path: Path, client: str) -> None:
    d = daemon("")
    base = d.conf.read_text()
    play = tmp_path / "play.yml"
    playbook(play, {"config": str(d.conf), "supervisorctl_path": str(BIN / client), "config_file": str(d.conf)},
             steps(base))
    results = run(play)
    assert [failed for _, _, failed, _ in results] == [False] * len(results), results
    assert [changed for _, changed, _, _ in results] == EXPECTED_CHANGES, results
    assert "web" not in {i["name"] for i in d.rpc().supervisor.getAllProcessInfo()}


@pytest.mark.parametrize("client", ["supervisorctl", "procwardctl"])
def test_the_module_with_server_url_and_credentials(daemon, tmp_path: Path, client: str) -> None:
    port = free_port()
    d = daemon(WEB, supervisord_extra="", server_extra="")
    conf = d.conf.read_text() + textwrap.dedent(f"""
        [inet_http_server]
        port=127.0.0.1:{port}
        username=deploy
        password=s3cret
        """)
    d.conf.write_text(conf)
    d.rpc().supervisor.restart()  # the TCP server with its credentials
    wait_until(lambda: d.rpc().supervisor.getState()["statename"] == "RUNNING", what="restarted", timeout=20)
    play = tmp_path / "play.yml"
    connect = {"server_url": f"http://127.0.0.1:{port}", "username": "deploy", "password": "s3cret",
               "supervisorctl_path": str(BIN / client), "config_file": str(d.conf)}
    playbook(play, connect, [{"name": "web", "state": "started"}, {"name": "web", "state": "started"},
                             {"name": "web", "state": "restarted"},
                             {"name": "web", "state": "stopped"}, {"name": "web", "state": "stopped"}])
    results = run(play)
    assert [failed for _, _, failed, _ in results] == [False] * 5, results
    assert [changed for _, changed, _, _ in results] == [True, False, True, True, False], results
    assert d.state("web") == "STOPPED"
    playbook(play, {**connect, "password": "wrong"}, [{"name": "web", "state": "started"}])
    (name, changed, failed, msg), = run(play)
    assert failed, (name, msg)
    assert not changed
    assert d.state("web") == "STOPPED"


def test_the_shipped_playbook_is_valid_ansible() -> None:
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    result = subprocess.run([str(BIN / "ansible-playbook"), "--syntax-check", "-i", "localhost,", str(EXAMPLE)],
                            capture_output=True, text=True, timeout=120, env=env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
