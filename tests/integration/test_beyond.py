"""Beyond supervisord: health checks, sd_notify, depends_on, restart policies, self-daemonizing programs,
no descendant left behind, memory_limit, file-change restarts and environment files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import free_port, pid_alive, wait_until

NOTIFIER = Path(__file__).resolve().parents[1] / "programs" / "notifier.py"
PY = sys.executable


def http_server(tmp_path: Path, port: int, sick: Path) -> Path:
    script = tmp_path / f"server{port}.py"
    script.write_text(f"""
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(500 if os.path.exists({str(sick)!r}) else 200)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", {port}), H).serve_forever()
""")
    return script


def info(d, name: str) -> dict:
    return d.rpc().supervisor.getProcessInfo(name)


def procward_check(conf: Path) -> subprocess.CompletedProcess[str]:
    """``procward check -c conf``, its output as text."""
    return subprocess.run([PY, "-m", "procward", "check", "-c", str(conf)], capture_output=True, text=True,
                          timeout=60, check=False)


def refused_option(tmp_path: Path, option: str) -> tuple[Path, str]:
    """``procward check`` of a program with ``option``: refused (exit 2, no traceback); the file and stderr."""
    conf = tmp_path / "supervisord.conf"
    conf.write_text(f"[supervisord]\n[program:a]\ncommand=sleep 1\n{option}\n")
    check = procward_check(conf)
    assert check.returncode == 2, check.stderr
    assert "Traceback" not in check.stderr
    return conf, check.stderr


def new_pid(d, name: str, old: int, timeout: float = 20) -> int:
    return wait_until(lambda: (i := info(d, name))["pid"] not in (0, old) and i["statename"] == "RUNNING"
                      and i["pid"], what=f"{name} running with a new pid", timeout=timeout)


def tree_pids(token_pid: int) -> set[int]:
    """Every process carrying the PROCWARD_TREE token of ``token_pid`` (a test-side full scan)."""
    environ = Path(f"/proc/{token_pid}/environ").read_bytes().split(b"\0")
    token = next((e for e in environ if e.startswith(b"PROCWARD_TREE=")), None)
    if token is None:
        # Read while the process execs (the program's `sh -c '...; exec sleep'`), environ is empty: none
        # found yet, and the caller's wait_until reads again.
        return set()
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if token in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0") and pid_alive(int(entry)):
                    found.add(int(entry))
            except OSError:
                continue
    return found


# -- health and readiness -------------------------------------------------------------------------------

def test_http_healthcheck_restarts_an_unhealthy_program(daemon, tmp_path: Path) -> None:
    """Healthy while the port answers 200; after 2 failed probes (HTTP 500) it is restarted."""
    port, sick = free_port(), tmp_path / "sick"
    d = daemon(f"""
        [program:web]
        command={PY} {http_server(tmp_path, port, sick)}
        startsecs=0
        healthcheck=http://127.0.0.1:{port}/
        healthcheck_interval=0.2
        healthcheck_timeout=2
        healthcheck_retries=2
        """)
    first = wait_until(lambda: (i := info(d, "web"))["health"] == "healthy" and i, what="healthy")
    assert first["ready"] is True
    sick.touch()
    new_pid(d, "web", first["pid"])
    sick.unlink()
    d.wait_log("health: web is unhealthy (HTTP 500, 2 consecutive failures)")
    wait_until(lambda: info(d, "web")["health"] == "healthy", what="healthy again")


def test_tcp_and_exec_checks_report_without_restarting(daemon, tmp_path: Path) -> None:
    """tcp:// connects or not; exec exits 0 or not; action=report only reports."""
    port, closed, marker = free_port(), free_port(), tmp_path / "ok"
    d = daemon(f"""
        [program:listener]
        command={PY} -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',{port})); s.listen(); time.sleep(300)"
        startsecs=0
        healthcheck=tcp://127.0.0.1:{port}
        healthcheck_interval=0.2
        [program:deaf]
        command=sleep 300
        startsecs=0
        healthcheck=tcp://127.0.0.1:{closed}
        healthcheck_interval=0.2
        healthcheck_retries=1
        healthcheck_action=report
        [program:probed]
        command=sleep 300
        startsecs=0
        healthcheck=exec test -f {marker}
        healthcheck_interval=0.2
        healthcheck_retries=1
        healthcheck_action=report
        """)
    wait_until(lambda: info(d, "listener")["health"] == "healthy", what="tcp healthy")
    deaf = wait_until(lambda: (i := info(d, "deaf"))["health"] == "unhealthy" and i, what="tcp unhealthy")
    assert deaf["ready"] is False
    assert deaf["statename"] == "RUNNING"
    probed = wait_until(lambda: (i := info(d, "probed"))["health"] == "unhealthy" and i, what="exec unhealthy")
    marker.touch()
    wait_until(lambda: info(d, "probed")["health"] == "healthy", what="exec healthy")
    assert info(d, "probed")["pid"] == probed["pid"]
    assert info(d, "deaf")["pid"] == deaf["pid"]
    ctl = subprocess.run([PY, "-m", "procward", "ctl", "-c", str(d.conf), "status", "--health"],
                         capture_output=True, text=True, timeout=60, check=False)
    lines = {line.split()[0]: line.split()[2] for line in ctl.stdout.splitlines()}
    assert lines == {"deaf": "unhealthy", "listener": "healthy", "probed": "healthy"}


def test_notify_ready_gates_running_and_dependents(daemon) -> None:
    """notify=true: STARTING until READY=1 (sent after 1.5 s); a dependent starts only after that."""
    d = daemon(f"""
        [program:db]
        command={PY} {NOTIFIER} 1.5 --status "accepting connections"
        notify=true
        [program:app]
        command=sleep 300
        startsecs=0
        depends_on=db
        """)
    early = info(d, "db")
    assert early["statename"] == "STARTING"
    assert info(d, "app")["statename"] == "STOPPED"
    assert "waiting for db (STARTING)" in info(d, "app")["description"]
    db = d.wait_state("db", "RUNNING")
    app = d.wait_state("app", "RUNNING")
    assert app["start"] >= db["start"]
    assert db["description"].endswith(", accepting connections")  # STATUS= joins the description
    d.wait_log("success: db entered RUNNING state, process sent READY=1")
    # Shutdown stops the dependent before what it depends on.
    d.stop()
    log = d.log_text()
    assert log.index("stopped: app") < log.index("stopped: db")


def test_watchdog_timeout_restarts_a_hung_program(daemon) -> None:
    """No WATCHDOG=1 within watchdog_sec: restarted."""
    d = daemon(f"""
        [program:hung]
        command={PY} {NOTIFIER} 0 --watchdog-pings 2
        notify=true
        watchdog_sec=1
        """)
    first = d.wait_state("hung", "RUNNING")["pid"]
    new_pid(d, "hung", first)
    d.wait_log("restarting hung: watchdog timeout: no WATCHDOG=1 for 1s")


def test_dependency_that_goes_fatal_leaves_dependents_waiting(daemon) -> None:
    """A FATAL dependency: the dependent waits, saying why, without spinning."""
    d = daemon("""
        [program:db]
        command=sh -c 'exit 1'
        startsecs=1
        startretries=0
        [program:app]
        command=sleep 300
        startsecs=0
        depends_on=db
        """)
    d.wait_state("db", "FATAL")
    wait_until(lambda: info(d, "app")["description"] == "waiting for db (FATAL)", what="waiting reason")
    assert info(d, "app")["statename"] == "STOPPED"
    assert d.log_text().count("spawned: 'app'") == 0


# -- restart policies -----------------------------------------------------------------------------------

def test_infinite_retries_with_capped_exponential_backoff(daemon) -> None:
    """startretries=infinite never goes FATAL; the delay grows 1, 2, 2 (backoff_max=2)."""
    d = daemon("""
        [program:flaky]
        command=sh -c 'exit 1'
        startsecs=1
        startretries=infinite
        backoff=exponential
        backoff_max=2
        """)
    wait_until(lambda: d.log_text().count("spawned: 'flaky'") >= 5, what="five attempts", timeout=20)
    assert info(d, "flaky")["statename"] in ("BACKOFF", "STARTING")
    assert "gave up: flaky" not in d.log_text()


def test_max_restarts_within_window_then_fatal(daemon) -> None:
    """max_restarts=2 in restart_window=60: three runs, then FATAL with the reason."""
    d = daemon("""
        [program:loop]
        command=sh -c 'sleep 0.1; exit 0'
        startsecs=0
        autorestart=true
        max_restarts=2
        restart_window=60
        """)
    fatal = d.wait_state("loop", "FATAL", timeout=15)
    assert fatal["description"] == "restarted 2 times within 60s (max_restarts)"
    assert d.log_text().count("spawned: 'loop'") == 3


def test_run_once_retry_only_on_failure(daemon) -> None:
    """autorestart=unexpected + max_restarts=2: a failing job runs 3 times; a succeeding one once."""
    d = daemon("""
        [program:failing]
        command=sh -c 'sleep 0.1; exit 4'
        startsecs=0
        max_restarts=2
        [program:succeeding]
        command=sh -c 'sleep 0.1; exit 0'
        startsecs=0
        max_restarts=2
        """)
    d.wait_state("failing", "FATAL", timeout=15)
    d.wait_state("succeeding", "EXITED")
    log = d.log_text()
    assert log.count("spawned: 'failing'") == 3
    assert log.count("spawned: 'succeeding'") == 1


def test_restartpause_and_exponential_crash_backoff(daemon) -> None:
    """restartpause waits before each automatic restart; backoff=exponential adds 1, 2, 4 ... s to crashes."""
    d = daemon("""
        [program:paused]
        command=sh -c 'sleep 0.1; exit 0'
        startsecs=0
        autorestart=true
        restartpause=1
        [program:crashy]
        command=sh -c 'exit 3'
        startsecs=0
        backoff=exponential
        """)
    d.wait_log("paused will be started again in 1s")
    d.wait_log("crashy will be started again in 1s")
    d.wait_log("crashy will be started again in 2s", timeout=15)
    assert info(d, "paused")["statename"] in ("EXITED", "RUNNING")
    d.rpc().supervisor.stopProcess("crashy")  # stop calls off the pending restart
    assert info(d, "crashy")["statename"] == "EXITED"


# -- process trees ---------------------------------------------------------------------------------------

def test_pidfile_daemon_is_followed_stopped_and_restarted(daemon, tmp_path: Path) -> None:
    """An nginx-style double fork with pidfile=: the daemon is the program (pid, stop, restart on death)."""
    d = daemon("""
        [program:nginxish]
        command=sh -c '(setsid sh -c "echo \\$\\$ > %(here)s/d.pid; exec sleep 300" &); sleep 0.2; exit 0'
        pidfile=%(here)s/d.pid
        startsecs=1
        """)
    running = d.wait_state("nginxish", "RUNNING")
    assert running["pid"] == int((tmp_path / "d.pid").read_text())
    os.kill(running["pid"], signal.SIGKILL)
    second = new_pid(d, "nginxish", running["pid"])
    assert second == int((tmp_path / "d.pid").read_text())
    d.rpc().supervisor.stopProcess("nginxish")
    wait_until(lambda: not pid_alive(second), what="followed daemon stopped")


def test_daemonizer_without_pidfile_is_reported_fatal(daemon) -> None:
    """Exit 0 leaving its fork running: FATAL with the reason, and the fork is stopped."""
    d = daemon("""
        [program:forker]
        command=sh -c 'setsid sleep 300 & exit 0'
        startsecs=1
        """)
    fatal = d.wait_state("forker", "FATAL")
    assert fatal["description"] == "daemonized itself: run it in the foreground or set pidfile="
    d.wait_log("forker left 1 process(es) behind")


def test_no_descendant_survives_a_stop(daemon) -> None:
    """setsid and double-forked descendants are stopped with the program."""
    d = daemon("""
        [program:tree]
        command=sh -c 'setsid sleep 301 & (sleep 302 &); exec sleep 300'
        startsecs=0
        """)
    pid = d.wait_state("tree", "RUNNING")["pid"]
    members = wait_until(lambda: len(t := tree_pids(pid)) == 3 and t, what="three processes in the tree")
    d.rpc().supervisor.stopProcess("tree")
    wait_until(lambda: not any(pid_alive(p) for p in members), what="whole tree gone")


def test_killdescendants_false_keeps_supervisors_behaviour(daemon) -> None:
    """The opt-out leaves a detached child running after the program stops."""
    d = daemon("""
        [program:leaver]
        command=sh -c 'setsid sleep 303 & exec sleep 300'
        startsecs=0
        killdescendants=false
        """)
    pid = d.wait_state("leaver", "RUNNING")["pid"]
    members = wait_until(lambda: len(t := tree_pids(pid)) == 2 and t, what="two processes")
    d.rpc().supervisor.stopProcess("leaver")
    survivors = [p for p in members if p != pid and pid_alive(p)]
    assert len(survivors) == 1
    for p in survivors:
        os.kill(p, signal.SIGKILL)


# -- resources, files, environment ------------------------------------------------------------------------

def test_memory_limit_restarts_the_program(daemon) -> None:
    """RSS of the tree above memory_limit: restarted, logged, evented."""
    d = daemon(f"""
        [program:hog]
        command={PY} -c "import time; data = b'x' * (60 << 20); time.sleep(300)"
        startsecs=0
        memory_limit=30MB
        """)
    first = d.wait_state("hog", "RUNNING")["pid"]
    new_pid(d, "hog", first, timeout=30)
    d.wait_log("restarting hog: rss ")


def test_file_change_restarts_the_program(daemon, tmp_path: Path) -> None:
    """A matching file changing under restart_directory_monitor restarts the program."""
    watched = tmp_path / "watched"
    watched.mkdir()
    d = daemon(f"""
        [program:app]
        command=sleep 300
        startsecs=0
        restart_directory_monitor={watched}
        restart_file_pattern=*.conf
        """)
    first = d.wait_state("app", "RUNNING")["pid"]
    wait_until(lambda: (watched / "app.conf").write_text(str(time.time())) and
               info(d, "app")["pid"] not in (0, first), what="restart after app.conf changed", timeout=20,
               interval=0.5)


HUPPY = """import signal, time
signal.signal(signal.SIGHUP, lambda *_: print("got HUP", flush=True))
print("ready", flush=True)
while True:
    time.sleep(60)
"""


def test_file_change_signal_or_command_instead_of_restart(daemon, tmp_path: Path) -> None:
    """Go's restart_signal_when_file_changed sends the signal and restart_cmd_when_file_changed runs the
    command; neither restarts the program (same pid)."""
    watched = tmp_path / "watched"
    watched.mkdir()
    (tmp_path / "huppy.py").write_text(HUPPY)
    marker = tmp_path / "ran"
    d = daemon(f"""
        [program:huppy]
        command={PY} -u {tmp_path / "huppy.py"}
        startsecs=0
        stdout_logfile=%(here)s/huppy.log
        restart_directory_monitor={watched}
        restart_file_pattern=*.conf
        restart_signal_when_file_changed=HUP

        [program:cmdy]
        command=sleep 300
        startsecs=0
        restart_directory_monitor={watched}
        restart_file_pattern=*.ini
        restart_cmd_when_file_changed=echo "ran in $PWD" >> {marker}
        directory={tmp_path}
        """)
    huppy = d.wait_state("huppy", "RUNNING")["pid"]
    cmdy = d.wait_state("cmdy", "RUNNING")["pid"]
    wait_until(lambda: "ready" in (tmp_path / "huppy.log").read_text(), what="the HUP handler")
    wait_until(lambda: (watched / "app.conf").write_text(str(time.time())) and
               "got HUP" in (tmp_path / "huppy.log").read_text(), what="HUP after app.conf changed", timeout=20,
               interval=0.5)
    wait_until(lambda: (watched / "app.ini").write_text(str(time.time())) and marker.exists(),
               what="the command after app.ini changed", timeout=20, interval=0.5)
    assert marker.read_text().splitlines()[0] == f"ran in {tmp_path}"
    assert info(d, "huppy")["pid"] == huppy
    assert info(d, "cmdy")["pid"] == cmdy
    d.wait_log("sent SIGHUP")


def test_environment_file_and_its_errors(daemon, tmp_path: Path) -> None:
    """environment_file joins the environment (environment= wins); a missing file or bad line is located."""
    env = tmp_path / "app.env"
    env.write_text("# comment\nGREETING=hello\nexport TARGET='world'\nOVERRIDDEN=file\n")
    d = daemon(f"""
        [program:envy]
        command=sh -c 'echo "$GREETING $TARGET $OVERRIDDEN"; exec sleep 300'
        startsecs=0
        environment_file={env}
        environment=OVERRIDDEN="config"
        stdout_logfile=%(here)s/envy.log
        """)
    wait_until(lambda: (tmp_path / "envy.log").read_text() == "hello world config\n", what="variables")
    d.stop()
    for content, expected in ((None, "cannot read environment file"), ("GOOD=1\nthis is not valid\n", ":2:")):
        if content is None:
            env.unlink()
        else:
            env.write_text(content)
        check = procward_check(d.conf)
        assert check.returncode == 2
        assert expected in check.stderr
        assert "environment_file" in check.stderr
        assert "Traceback" not in check.stderr


STUBBORN = """import signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
def leave(*_):
    print("got INT", flush=True)
    sys.exit(0)
signal.signal(signal.SIGINT, leave)
print("ready", flush=True)
while True:
    time.sleep(60)
"""


def test_go_stopsignal_list(daemon, tmp_path: Path) -> None:
    """Go's stopsignal list: TERM (ignored), then INT after stopwaitsecs, which ends the program: no SIGKILL."""
    (tmp_path / "stubborn.py").write_text(STUBBORN)
    d = daemon(f"""
        [program:stubborn]
        command={PY} -u {tmp_path / "stubborn.py"}
        startsecs=0
        stopsignal = TERM INT
        stopwaitsecs = 1
        killwaitsecs = 3
        stdout_logfile=%(here)s/stubborn.log
        """)
    d.wait_state("stubborn", "RUNNING")
    wait_until(lambda: "ready" in (tmp_path / "stubborn.log").read_text(), what="the handlers installed")
    config = next(c for c in d.rpc().supervisor.getAllConfigInfo() if c["name"] == "stubborn")
    assert config["stopsignal"] == signal.SIGTERM  # the first of the list: Supervisor's clients read one number
    d.rpc().supervisor.stopProcess("stubborn")
    assert info(d, "stubborn")["statename"] == "STOPPED"
    assert (tmp_path / "stubborn.log").read_text() == "ready\ngot INT\n"
    assert info(d, "stubborn")["exitstatus"] == 0  # exited by itself on INT, not killed


def test_go_cron_starts_a_stopped_program_and_leaves_a_running_one(daemon, tmp_path: Path) -> None:
    """cron= (six fields: seconds first, as Go reads them): a program that is not running is started at each
    matching time; one still running is left alone (same pid)."""
    ticks = tmp_path / "ticks"
    d = daemon(f"""
        [program:ticker]
        command=sh -c 'echo tick >> {ticks}'
        autostart=false
        autorestart=false
        startsecs=0
        cron=* * * * * *

        [program:long]
        command=sleep 300
        startsecs=0
        cron = * * * * * *
        """)
    wait_until(lambda: ticks.exists() and len(ticks.read_text().splitlines()) >= 2, what="two scheduled runs",
               timeout=20)
    pid = d.wait_state("long", "RUNNING")["pid"]
    d.wait_log("long: still running, the scheduled start is skipped")
    assert info(d, "long")["pid"] == pid


@pytest.mark.parametrize(("option", "expected"), [
    ("stopsignal = TERM BOGUS", "BOGUS"),
    ("stopsignal = ,", "expected a signal name"),
    ("killwaitsecs = -1", "killwaitsecs"),
    *[(f"cron = {expression}", "expected a cron expression") for expression in
      ("* * *", "61 * * * *", "@every 5m", "not cron")],
])
def test_go_option_errors_are_located(tmp_path: Path, option: str, expected: str) -> None:
    """A bad name in a stopsignal list, a negative killwaitsecs or a cron expression cronsim cannot read
    refuses the file with one located line."""
    conf, stderr = refused_option(tmp_path, option)
    assert f"{conf}:4" in stderr
    assert expected in stderr


def test_go_program_default_section(daemon, tmp_path: Path) -> None:
    """[program-default] gives every [program:x] the options it does not set itself, expanded per program;
    a bad value there is located at its own line."""
    d = daemon("""
        [program-default]
        autostart=false
        startsecs=0
        stdout_logfile=%(here)s/%(program_name)s.out

        [program:mine]
        command=sh -c 'echo mine; exec sleep 300'
        autostart=true

        [program:idle]
        command=sleep 300
        """)
    d.wait_state("mine", "RUNNING")
    wait_until(lambda: (tmp_path / "mine.out").exists() and (tmp_path / "mine.out").read_text() == "mine\n",
               what="the default log path, expanded for the program")
    assert info(d, "idle")["statename"] == "STOPPED"  # autostart=false from the defaults
    d.stop()
    conf = tmp_path / "bad.conf"
    conf.write_text("[supervisord]\n[program-default]\nautostart=maybe\n[program:a]\ncommand=sleep 1\n")
    check = procward_check(conf)
    assert check.returncode == 2
    assert f"{conf}:3: [program:a] autostart" in check.stderr
    assert "unknown section" not in check.stderr


def test_go_env_files(daemon, tmp_path: Path) -> None:
    """Go's envFiles: several files in order (a later one wins), environment= wins over all; a missing
    entry refuses the configuration naming the option and the file."""
    (tmp_path / "a.env").write_text("FIRST=a\nSHARED=a\nOVERRIDDEN=a\n")
    (tmp_path / "b.env").write_text("SHARED=b\nOVERRIDDEN=b\n")
    d = daemon(f"""
        [program:envy]
        command=sh -c 'echo "$FIRST $SHARED $OVERRIDDEN"; exec sleep 300'
        startsecs=0
        envFiles = {tmp_path / "a.env"}, {tmp_path / "b.env"}
        environment=OVERRIDDEN="config"
        stdout_logfile=%(here)s/envy.log
        """)
    wait_until(lambda: (tmp_path / "envy.log").read_text() == "a b config\n", what="variables from both files")
    d.stop()
    (tmp_path / "b.env").unlink()
    check = procward_check(d.conf)
    assert check.returncode == 2
    assert "envfiles" in check.stderr
    assert f"cannot read environment file {tmp_path / 'b.env'}" in check.stderr
    assert "Traceback" not in check.stderr


@pytest.mark.parametrize(("programs", "expected"), [
    ("[program:a]\ncommand=sleep 1\ndepends_on=ghost\n", "[program:a] depends_on: names 'ghost'"),
    ("[program:a]\ncommand=sleep 1\ndepends_on=b\n[program:b]\ncommand=sleep 1\ndepends_on=a\n",
     "depends_on cycle: "),
])
def test_dependency_errors_are_located(tmp_path: Path, programs: str, expected: str) -> None:
    """An unknown name or a cycle is a config error naming the places involved."""
    conf = tmp_path / "supervisord.conf"
    conf.write_text("[supervisord]\n" + programs)
    check = procward_check(conf)
    assert check.returncode == 2, check.stderr
    assert expected in check.stderr
    if "cycle" in expected:
        assert "[program:a]" in check.stderr
        assert "[program:b]" in check.stderr


def test_daemon_sigterm_leaves_no_process_of_any_tree(daemon) -> None:
    """Shutdown waits until descendants that ignore SIGTERM are killed too."""
    d = daemon("""
        [program:stubborn]
        command=sh -c 'setsid sh -c "trap \\"\\" TERM; sleep 300" & exec sleep 300'
        startsecs=0
        stopwaitsecs=1
        """)
    pid = d.wait_state("stubborn", "RUNNING")["pid"]
    members = wait_until(lambda: len(t := tree_pids(pid)) >= 2 and t, what="the tree")
    d.stop()
    assert not [p for p in members if pid_alive(p)]
