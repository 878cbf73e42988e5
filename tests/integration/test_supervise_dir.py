"""``[supervisord] supervise_dir``: supervise's status files for the daemon's programs, driven with
``echo X > control`` and read with ``od``, as scripts written for supervise do."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from support import wait_until
from test_supervise import control, locked, od_pid

from procward.supervise.statusfiles import unpack


def test_status_files_follow_the_programs_and_control_bytes_are_rpc_requests(daemon, tmp_path: Path) -> None:
    d = daemon("""
        [program:web]
        command=sleep 300
        startsecs=0

        [program:a]
        command=sleep 300
        startsecs=0

        [group:g]
        programs=a
        """, supervisord_extra="supervise_dir=%(here)s/status")
    web = tmp_path / "status" / "web"
    pid = d.wait_state("web", "RUNNING")["pid"]
    wait_until(lambda: od_pid(web) == pid, what="status names web's pid")
    assert unpack((web / "status").read_bytes()).want == "u"
    assert locked(web)
    assert (web / "control").is_fifo()
    member = tmp_path / "status" / "g" / "a"
    wait_until(lambda: od_pid(member) == d.wait_state("g:a", "RUNNING")["pid"], what="group member's status")

    control(web, "d")
    d.wait_state("web", "STOPPED")
    wait_until(lambda: od_pid(web) == 0 and unpack((web / "status").read_bytes()).want == "d", what="down")
    d.wait_log("supervise_dir: web: control 'd': supervisor.stopProcess")
    control(web, "u")
    pid = d.wait_state("web", "RUNNING")["pid"]
    wait_until(lambda: od_pid(web) == pid, what="up again")

    control(web, "p")
    wait_until(lambda: Path(f"/proc/{pid}/stat").read_text().split()[2] == "T", what="SIGSTOP")
    wait_until(lambda: unpack((web / "status").read_bytes()).paused, what="paused flag")
    control(web, "c")
    wait_until(lambda: Path(f"/proc/{pid}/stat").read_text().split()[2] != "T", what="SIGCONT")

    control(web, "k")  # SIGKILL: an unexpected exit, restarted by autorestart=unexpected
    wait_until(lambda: od_pid(web) not in (0, pid) and d.state("web") == "RUNNING", what="restarted")
    assert od_pid(web) == d.rpc().supervisor.getProcessInfo("web")["pid"]
    control(web, "x")
    d.wait_log("control 'x' has no meaning for a program of the daemon")


def test_unusable_supervise_dir_refuses_the_start(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "file").write_text("")
    conf = tmp_path / "supervisord.conf"
    conf.write_text(f"[supervisord]\nsupervise_dir={tmp_path}/file/status\nnodaemon=true\n"
                    f"pidfile={tmp_path}/pw.pid\nlogfile={tmp_path}/pw.log\n[program:a]\ncommand=sleep 1\n")
    run = subprocess.run([sys.executable, "-m", "procward", "-n", "-c", str(conf)], capture_output=True, text=True,
                         timeout=30, check=False)
    assert run.returncode == 2
    assert "supervise_dir: cannot make" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_reload_onto_an_unusable_supervise_dir_is_a_log_line(daemon, tmp_path: Path) -> None:
    import os
    import signal

    d = daemon("""
        [program:web]
        command=sleep 300
        startsecs=0
        """)
    pid = d.wait_state("web", "RUNNING")["pid"]
    (tmp_path / "file").write_text("")
    d.conf.write_text(d.conf.read_text().replace("[supervisord]\n", f"[supervisord]\nsupervise_dir={tmp_path}/file/s\n"))
    os.kill(d.proc.pid, signal.SIGHUP)
    d.wait_log("supervise_dir: cannot make")
    wait_until(lambda: d.rpc().supervisor.getProcessInfo("web")["statename"] == "RUNNING", what="running again")
    assert d.proc.poll() is None
    assert d.rpc().supervisor.getProcessInfo("web")["pid"] != pid  # SIGHUP restarts everything, as supervisord


def test_o_is_up_once_until_the_next_u_or_d(daemon, tmp_path: Path) -> None:
    """``o`` as in daemontools: start it if down, do not restart it when it exits (autorestart=true or
    not); the status byte says 0 (neither up nor down) and getProcessInfo shows it EXITED; ``u`` ends it."""
    d = daemon("""
        [program:job]
        command=sleep 300
        startsecs=0
        autorestart=true
        autostart=false
        """, supervisord_extra="supervise_dir=%(here)s/status")
    job = tmp_path / "status" / "job"
    wait_until(lambda: (job / "control").exists(), what="job's status directory")
    control(job, "o")
    pid = d.wait_state("job", "RUNNING")["pid"]
    wait_until(lambda: od_pid(job) == pid and unpack((job / "status").read_bytes()).want == "", what="once")
    os.kill(pid, signal.SIGKILL)
    d.wait_state("job", "EXITED")
    wait_until(lambda: od_pid(job) == 0, what="down after its one run")
    assert unpack((job / "status").read_bytes()).want == ""
    d.wait_log("job is not started again: it was started once (supervise's o)")
    assert d.state("job") == "EXITED"  # autorestart=true did not restart it

    control(job, "u")  # up: restarted when it exits again
    pid = d.wait_state("job", "RUNNING")["pid"]
    wait_until(lambda: unpack((job / "status").read_bytes()).want == "u", what="want up")
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: d.state("job") == "RUNNING" and d.rpc().supervisor.getProcessInfo("job")["pid"] != pid,
               what="restarted by autorestart again")
