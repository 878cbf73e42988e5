"""procward ctl against supervisorctl 4.3, command by command, on the same daemon: same lines, same exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from support import wait_until

PROGRAMS = """
    [program:web]
    command=sleep 300
    startsecs=0
    [program:crash]
    command=sh -c "echo boom >&2; exit 1"
    startsecs=1
    startretries=0
    [program:idle]
    command=sleep 300
    autostart=false
    startsecs=0
    [group:workers]
    programs=w
    [program:w]
    command=sleep 300
    numprocs=2
    process_name=w%(process_num)d
    startsecs=0
    """

SUPERVISORCTL = [sys.executable, "-m", "supervisor.supervisorctl"]
PROCWARD_CTL = [sys.executable, "-m", "procward", "ctl"]

# Commands whose output does not depend on which client ran first.
READ_ONLY = [
    "status", "status web", "status nope", "status workers:*", "status nogroup:*", "status web nope",
    "pid web", "pid nope", "pid idle", "avail", "version", "help", "help start", "help tail", "help nope",
    "bogus", "start", "stop", "restart", "signal", "signal HUP", "start nosuch", "stop nosuch",
    "start nogroup:*", "stop nogroup:*", "stop idle", "start crash", "start web", "tail crash stderr",
    "tail nope", "tail -x web", "tail web badchannel", "tail", "tail a b c d", "maintail -x", "maintail a b",
    "clear nope", "signal NOPE web", "signal CONT web", "signal CONT workers:*", "signal CONT nogroup:*",
    "reread", "update", "update nogroup", "add nope", "add web", "remove web", "remove nope",
    "shutdown now", "reload now", "avail x", "version x", "reread x", "fg", "fg nope", "fg idle", "fg a b",
    "open ftp://x",
]
# (command, command that undoes it) run by each client in turn.
STATEFUL = [("start idle", "stop idle"), ("stop web", "start web"), ("restart web", None),
            ("stop workers:*", "start workers:*"), ("clear web", None)]


def run(argv: list[str], conf: str, line: str) -> tuple[int, str]:
    result = subprocess.run([*argv, "-c", conf, *line.split()], capture_output=True, text=True, timeout=60,
                            check=False)
    return result.returncode, normalize(result.stdout)


def normalize(text: str) -> str:
    """Hide what legitimately differs between two runs a moment apart, and the client's name."""
    text = re.sub(r"pid \d+, uptime \d+:\d\d:\d\d", "pid N, uptime T", text)
    text = re.sub(r"^\d+$", "PID", text, flags=re.M)
    return text.replace("supervisorctl", "CTL").replace("procward ctl", "CTL")


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    from support import Daemon

    d = Daemon(tmp_path_factory.mktemp("parity"), PROGRAMS).start()
    d.wait_state("crash", "FATAL")
    d.wait_state("workers:w1", "RUNNING")
    yield d
    d.stop()


@pytest.mark.parametrize("line", READ_ONLY)
def test_same_output_and_exit_code(shared, line) -> None:
    """Each command gives procward ctl the lines and exit status supervisorctl 4.3 gives."""
    theirs = run(SUPERVISORCTL, str(shared.conf), line)
    ours = run(PROCWARD_CTL, str(shared.conf), line)
    assert ours == theirs


@pytest.mark.parametrize(("line", "undo"), STATEFUL)
def test_same_output_for_commands_that_change_state(shared, line, undo) -> None:
    """State-changing commands, each run from the same starting state by both clients."""
    results = []
    for client in (SUPERVISORCTL, PROCWARD_CTL):
        results.append(run(client, str(shared.conf), line))
        if undo:
            run(client, str(shared.conf), undo)
    assert results[0] == results[1]
    assert results[0][1], "the command printed nothing"


def test_interactive_shell_reads_commands_from_stdin(shared) -> None:
    """Without an action, ctl runs status, then a shell; exit status 0 as supervisorctl's shell."""
    result = subprocess.run([*PROCWARD_CTL, "-c", str(shared.conf)], input="status web\nstart nope\nquit\n",
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0
    lines = result.stdout.split("supervisor> ")
    assert lines[0].splitlines()[0].startswith("crash ")  # the initial status
    assert lines[1].startswith("web ")
    assert "RUNNING" in lines[1]
    assert lines[2].strip() == "nope: ERROR (no such process)"


def test_status_json(shared) -> None:
    """status --json carries every getProcessInfo key plus the namespec; exit codes as status."""
    result = subprocess.run([*PROCWARD_CTL, "-c", str(shared.conf), "status", "--json", "web", "workers:*"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0
    infos = json.loads(result.stdout)
    assert [i["namespec"] for i in infos] == ["web", "workers:w0", "workers:w1"]
    assert set(shared.rpc().supervisor.getProcessInfo("web")) <= set(infos[0])
    stopped = subprocess.run([*PROCWARD_CTL, "-c", str(shared.conf), "status", "--json", "crash"],
                             capture_output=True, text=True, timeout=60, check=False)
    assert stopped.returncode == 3
    assert json.loads(stopped.stdout)[0]["statename"] == "FATAL"
    pids = json.loads(subprocess.run([*PROCWARD_CTL, "-c", str(shared.conf), "pid", "--json", "all"],
                                     capture_output=True, text=True, timeout=60, check=True).stdout)
    assert pids["web"] == shared.rpc().supervisor.getProcessInfo("web")["pid"]


def test_tail_follow_streams_new_output(tmp_path, daemon) -> None:
    """tail -f prints what the program writes after it started following."""
    d = daemon("""
        [program:talker]
        command=sh -c 'i=0; while true; do i=$((i+1)); echo line$i; sleep 0.1; done'
        startsecs=0
        """)
    d.wait_state("talker", "RUNNING")
    with subprocess.Popen([*PROCWARD_CTL, "-c", str(d.conf), "tail", "-f", "talker"], stdout=subprocess.PIPE,
                          text=True) as proc:
        try:
            seen: list[str] = []
            assert proc.stdout is not None

            def three_lines() -> bool:
                seen.append(proc.stdout.readline())
                return sum(1 for s in seen if s.startswith("line")) >= 3

            wait_until(three_lines, what="three followed lines", timeout=15)
            assert seen[0].strip() == "==> Press Ctrl-C to exit <=="
        finally:
            proc.terminate()


def test_fg_sends_stdin_and_shows_output(daemon) -> None:
    """fg streams the program's output and sends typed lines to its stdin."""
    d = daemon("""
        [program:echoer]
        command=sh -c 'while read line; do echo "got:$line"; done'
        startsecs=0
        """)
    d.wait_state("echoer", "RUNNING")
    with subprocess.Popen([*PROCWARD_CTL, "-c", str(d.conf), "fg", "echoer"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdin is not None
            assert proc.stdout is not None
            proc.stdin.write("hello\n")
            proc.stdin.flush()
            wait_until(lambda: "got:hello" in proc.stdout.readline(), what="echoed line", timeout=15)
            proc.stdin.close()  # EOF ends fg
            assert proc.wait(timeout=15) == 0
            assert "Exiting foreground" in proc.stdout.read()
        finally:
            if proc.poll() is None:
                proc.kill()


def test_daemon_down_and_bad_credentials(tmp_path, daemon) -> None:
    """Clear words for a missing socket and for wrong credentials; supervisorctl's exit codes."""
    d = daemon("[program:a]\ncommand=sleep 300\n", auth=("admin", "s3cret"),
               ctl_extra="username=admin\npassword=wrong")
    for argv in (SUPERVISORCTL, PROCWARD_CTL):  # supervisorctl follows it with a stray traceback line
        code, out = run(argv, str(d.conf), "status")
        assert (code, out.splitlines()[0]) == (1, "Server requires authentication")
    assert run(PROCWARD_CTL, str(d.conf), "status")[1] == "Server requires authentication\n"
    code, out = run(PROCWARD_CTL, str(d.conf), "-p s3cret status")
    assert code == 0
    assert out.startswith("a ")
    d.stop()
    for argv in (SUPERVISORCTL, PROCWARD_CTL):
        code, out = run(argv, str(d.conf), "status")
        assert code == 4
        assert out.strip().endswith("procward.sock no such file")
    code, out = run(PROCWARD_CTL, str(d.conf), "avail")
    assert code == 1
    assert "no such file (is the daemon running?)" in out


def test_config_without_ctl_section_uses_the_daemon_socket(tmp_path, daemon) -> None:
    """procward ctl finds the daemon through [unix_http_server] when [supervisorctl] is absent."""
    d = daemon("[program:a]\ncommand=sleep 300\nstartsecs=0\n")
    d.wait_state("a", "RUNNING")
    text = d.conf.read_text()
    bare = tmp_path / "bare.conf"
    bare.write_text(re.sub(r"\[supervisorctl\]\nserverurl=[^\n]*\n", "", text))
    assert "[supervisorctl]" not in bare.read_text()
    code, out = run(PROCWARD_CTL, str(bare), "status")
    assert code == 0
    assert re.match(r"^a +RUNNING", out)


def test_usage_errors(tmp_path) -> None:
    """Unknown flags and a missing -c file exit 2 with one line, no traceback."""
    missing = subprocess.run([*PROCWARD_CTL, "-c", str(tmp_path / "nope.conf"), "status"], capture_output=True,
                             text=True, timeout=60, check=False)
    assert missing.returncode == 2
    assert "could not find config file" in missing.stderr
    assert "Traceback" not in missing.stderr
    flag = subprocess.run([*PROCWARD_CTL, "--bogus"], capture_output=True, text=True, timeout=60, check=False)
    assert flag.returncode == 2
    assert "Traceback" not in flag.stderr


def test_go_supervisord_spellings(daemon) -> None:
    """procward ctl reads Go supervisord's start-group / stop-group; `procward version` prints the version."""
    d = daemon("""
        [group:g]
        programs=a,b
        [program:a]
        command=sleep 300
        startsecs=0
        [program:b]
        command=sleep 300
        startsecs=0
        """)
    d.wait_state("g:b", "RUNNING")
    stop = subprocess.run([sys.executable, "-m", "procward", "ctl", "-c", str(d.conf), "stop-group", "g"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert sorted(stop.stdout.split("\n")[:2]) == ["g:a: stopped", "g:b: stopped"], stop.stdout
    start = subprocess.run([sys.executable, "-m", "procward", "ctl", "-c", str(d.conf), "start-group", "g"],
                           capture_output=True, text=True, timeout=60, check=False)
    assert sorted(start.stdout.split("\n")[:2]) == ["g:a: started", "g:b: started"], start.stdout
    version = subprocess.run([sys.executable, "-m", "procward", "version"], capture_output=True, text=True,
                             timeout=60, check=True)
    assert version.stdout.startswith("procward ")


def test_go_logtail_prints_the_end_of_the_log_and_exits(daemon) -> None:
    """Go's ``ctl logtail NAME`` prints the last 10 KiB (tailProcessStdoutLog(name, 0, 10240)) and exits 0;
    ``-t stderr`` / ``--type stderr`` reads stderr. A Go user's script does not hang on it."""
    d = daemon("""
        [program:chatty]
        command=sh -c 'i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo "out $i"; done; echo "err 1" >&2; exec sleep 300'
        startsecs=0
        """)
    d.wait_state("chatty", "RUNNING")
    wait_until(lambda: "out 3000" in d.rpc().supervisor.tailProcessStdoutLog("chatty", 0, 100)[0], what="3000 lines")
    out = d.ctl("logtail", "chatty")
    assert out.returncode == 0, out.stderr
    assert out.stdout.endswith("out 3000\n")
    assert len(out.stdout.encode()) == 10240  # the last 10 KiB of a 26 KiB log
    for flag in ("-t", "--type"):
        err = d.ctl("logtail", flag, "stderr", "chatty")
        assert (err.returncode, err.stdout) == (0, "err 1\n"), err
    unknown = d.ctl("logtail", "nosuch")
    assert unknown.returncode == 1
    assert "nosuch: ERROR (no such process name)" in unknown.stdout
    bad = d.ctl("logtail", "-t", "both", "chatty")
    assert bad.returncode == 1
    assert "bad log type 'both'" in bad.stdout


def test_help_update_lists_procwards_own_flags(daemon) -> None:
    d = daemon("[program:a]\ncommand=sleep 300\nstartsecs=0\n")
    helped = d.ctl("help", "update")
    assert helped.returncode == 0
    for flag in ("update --dry-run", "update --precise", "update --rolling"):
        assert flag in helped.stdout, helped.stdout
    assert "update <gname> [...]" in helped.stdout  # supervisorctl's own lines stay
