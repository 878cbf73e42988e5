"""``procward service``: the systemd unit and the init script, checked by the tools that read them where
they exist here, and the init script run for real against a real daemon."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

from support import rpc_client, wait_until


def service(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "procward", "service", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def config(tmp_path: Path) -> Path:
    conf = tmp_path / "supervisord.conf"
    conf.write_text(f"""
[supervisord]
logfile={tmp_path}/pw.log
pidfile={tmp_path}/pw.pid
minfds=4096
[unix_http_server]
file={tmp_path}/pw.sock
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:sleeper]
command=sleep 300
stopwaitsecs=20
""")
    return conf


def test_systemd_unit(tmp_path: Path) -> None:
    conf = config(tmp_path)
    dest = tmp_path / "units"
    run = service("install", "-c", str(conf), "--init", "systemd", "--dest", str(dest))
    assert run.returncode == 0, run.stderr
    unit = dest / "procward.service"
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.read_string(unit.read_text())
    assert parser["Service"]["Type"] == "notify"
    assert parser["Service"]["ExecStart"].endswith(f" -n -c {conf}")
    assert parser["Service"]["TimeoutStopSec"] == "50"  # the longest stopwaitsecs, and room to spare
    assert parser["Service"]["LimitNOFILE"] == "4096"
    assert parser["Install"]["WantedBy"] == "multi-user.target"
    if shutil.which("systemd-analyze"):
        verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                                check=False)
        assert "procward.service" not in verify.stderr or verify.returncode == 0, verify.stderr

    again = service("install", "-c", str(conf), "--init", "systemd", "--dest", str(dest))
    assert again.returncode == 2
    assert "exists already; --force replaces it" in again.stderr
    assert service("install", "-c", str(conf), "--init", "systemd", "--dest", str(dest), "--force").returncode == 0
    assert service("uninstall", "-c", str(conf), "--init", "systemd", "--dest", str(dest)).returncode == 0
    assert not unit.exists()


def test_a_config_that_does_not_load_is_refused(tmp_path: Path) -> None:
    conf = tmp_path / "bad.conf"
    conf.write_text("[supervisord]\n[program:x]\ncommand=sleep 1\nstartsecs=ten\n")
    run = service("install", "-c", str(conf), "--init", "sysv", "--dest", str(tmp_path))
    assert run.returncode == 2
    assert "the configuration does not load" in run.stderr
    assert f"{conf}:4" in run.stderr
    assert not (tmp_path / "procward").exists()


def test_init_script_headers_syntax_and_a_real_start_stop(tmp_path: Path) -> None:
    conf = config(tmp_path)
    run = service("install", "-c", str(conf), "--init", "sysv", "--dest", str(tmp_path / "init.d"),
                  "--name", "pwtest")
    assert run.returncode == 0, run.stderr
    script = tmp_path / "init.d" / "pwtest"
    text = script.read_text()
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    header = re.search(r"### BEGIN INIT INFO\n(.*?)### END INIT INFO", text, re.DOTALL)
    assert header is not None
    fields = dict(re.findall(r"# ([\w-]+):\s+(.*)", header.group(1)))
    assert fields["Provides"] == "pwtest"
    assert fields["Default-Start"].split() == ["2", "3", "4", "5"]
    assert re.search(r"^# chkconfig: 2345 \d+ \d+$", text, re.MULTILINE)

    def do(action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(script), action], capture_output=True, text=True, timeout=60, check=False)

    def status() -> int:
        """``procward service status``: LSB codes, as the script's own status."""
        return service("status", "-c", str(conf), "--init", "sysv", "--dest", str(tmp_path / "init.d"),
                       "--name", "pwtest").returncode

    assert do("status").returncode == 3
    assert status() == 3
    started = do("start")
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        wait_until(lambda: rpc_client(str(tmp_path / "pw.sock")).supervisor.getProcessInfo("sleeper")["statename"]
                   == "RUNNING", what="the daemon's program running", timeout=20)
        assert do("status").returncode == 0
        assert status() == 0
        assert do("reload").returncode == 0
    finally:
        stopped = do("stop")
    assert stopped.returncode == 0, stopped.stdout
    assert do("status").returncode == 3
    assert status() == 3
    assert do("bogus").returncode == 2
    conf.write_text(conf.read_text() + "\n[program:broken]\ncommand=sleep 1\nstartsecs=ten\n")
    assert status() == 4  # the configuration names the pidfile: without it the status is unknown
