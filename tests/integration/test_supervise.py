"""``procward supervise`` driven as meetbill/supervise's users drive it: a byte into ``control``, the pid
out of ``status`` with ``od``, the ``lock`` flock'ed, real children, the real alarm window."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import pid_alive, wait_until

from procward.supervise.statusfiles import TAI_OFFSET, unpack

PROCWARD = [sys.executable, "-m", "procward", "supervise"]


def supervise(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``procward supervise ARGS`` from ``cwd`` as a script would; it detaches, so this returns."""
    return subprocess.run([*PROCWARD, *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False,
                          env={**os.environ, **(env or {})})


def od_pid(directory: Path) -> int:
    """``od -An -j16 -N4 -tu4 status``: the child's pid, as the reference's users read it (0 before the
    detached supervisor wrote its first status)."""
    out = subprocess.run(["od", "-An", "-j16", "-N4", "-tu4", str(directory / "status")], capture_output=True,
                         text=True, check=False).stdout
    return int(out.split()[0]) if out.strip() else 0


def control(directory: Path, commands: str) -> None:
    """``echo X > control``."""
    subprocess.run(["sh", "-c", f"echo {commands} > {directory / 'control'}"], check=True, timeout=10)


def locked(directory: Path) -> bool:
    """Whether a supervisor holds ``lock`` (the flock test the reference's lock_exnb makes)."""
    fd = os.open(directory / "lock", os.O_WRONLY | os.O_APPEND)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # EWOULDBLOCK: held; any other error is the test's failure
        return True
    finally:
        os.close(fd)
    return False


def lines(log: Path) -> list[str]:
    """A supervise log's lines with the times (and, in an alarm, the host) replaced: what the reference
    writes is ``[LEVEL] YYYY-mm-dd HH:MM:SS  msg``, two spaces before the message."""
    text = re.sub(r"(?m)^\[(\w+)\] \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  ", r"[\1] ", log.read_text())
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[Alarm: [^]]*\]", "<time> [Alarm: <host>]", text).splitlines()


def running_pid(directory: Path, old: int = 0) -> int:
    return wait_until(lambda: (pid := od_pid(directory)) not in (0, old) and pid_alive(pid) and pid,
                      what=f"a child in {directory} other than {old}", timeout=15)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Path]:
    """A status directory; whatever supervisor runs on it is told to exit, and its child stopped, at the end."""
    (tmp_path / "status").mkdir()
    directory = tmp_path / "status" / "svc"
    yield directory
    if (directory / "control").exists() and locked(directory):
        control(directory, "dx")
        wait_until(lambda: not locked(directory), what="supervisor gone", timeout=30)


def test_status_directory_files_and_status_bytes(service: Path, tmp_path: Path) -> None:
    started = time.time()
    run = supervise(tmp_path, "-p", "status/svc", "-f", "sleep 300")
    assert run.returncode == 0, run.stderr
    pid = running_pid(service)
    assert Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x00300\x00"
    raw = (service / "status").read_bytes()
    assert len(raw) == 20
    assert raw[12:16] == b"\x00uo\x00"  # not paused, want up, alarms on
    assert abs(int.from_bytes(raw[:8], "big") - TAI_OFFSET - started) < 5
    assert locked(service)
    assert (service / "control").is_fifo()
    assert (service / "ok").is_fifo()
    ok = os.open(service / "ok", os.O_WRONLY | os.O_NONBLOCK)  # "supervise alive": someone reads ok
    os.close(ok)
    assert oct((service / "status").stat().st_mode & 0o777) == "0o644"
    # The child is not started with an ignored SIGHUP (the reference's defect): bit 1 of SigIgn is clear.
    sigign = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("SigIgn"))
    assert not int(sigign.split()[1], 16) & (1 << (signal.SIGHUP - 1))

    second = supervise(tmp_path, "-p", "status/svc", "-f", "sleep 300")
    assert second.returncode == 111
    assert "Unable to acquier" in second.stderr
    assert od_pid(service) == pid  # the second one touched nothing
    assert "Unable to acquier" in (service / "supervise.log.wf").read_text()


@pytest.mark.parametrize(("args", "code", "says"), [
    (["-f", "sleep 1"], 100, "required"),
    (["-p", "nowhere/svc", "-f", "sleep 1"], 100, "status/<service>"),
    (["-p", "status/", "-f", "sleep 1"], 100, "status/<service>"),
    (["-p", "status/svc", "-f", "sleep 1", "-q"], 100, "unknown option"),
    (["-p", "status/svc", "-t", "soon", "-f", "x"], 100, "-t expects seconds"),
    (["-p", "status/missing/svc", "-f", "sleep 1"], 110, "unable to create dir"),
])
def test_bad_arguments_reach_the_caller(tmp_path: Path, args: list[str], code: int, says: str) -> None:
    """The reference prints these to a closed stdout and exits 0 after detaching; here the caller sees them."""
    (tmp_path / "status").mkdir()
    run = supervise(tmp_path, *args)
    assert run.returncode == code
    assert says in run.stderr
    assert "Traceback" not in run.stderr


def test_control_bytes(service: Path, tmp_path: Path) -> None:
    hups = tmp_path / "hups"
    script = f"trap 'echo hup >> {hups}' HUP; while :; do sleep 0.05; done"
    assert supervise(tmp_path, "-u", "status/svc", "sh", "-c", script).returncode == 0
    first = running_pid(service)
    control(service, "h")
    wait_until(lambda: hups.exists() and hups.read_text() == "hup\n", what="SIGHUP reached the child")
    control(service, "p")
    wait_until(lambda: Path(f"/proc/{first}/stat").read_text().split()[2] == "T", what="child stopped")
    wait_until(lambda: (service / "status").read_bytes()[12] == 1, what="paused byte")
    control(service, "c")
    wait_until(lambda: Path(f"/proc/{first}/stat").read_text().split()[2] != "T", what="child continued")
    wait_until(lambda: (service / "status").read_bytes()[12] == 0, what="paused byte cleared")
    control(service, "k")  # SIGKILL: want up, so it is restarted
    second = running_pid(service, first)
    control(service, "s")
    wait_until(lambda: unpack((service / "status").read_bytes()).silenced, what="alarms silenced (x)")
    control(service, "n")
    wait_until(lambda: not unpack((service / "status").read_bytes()).silenced, what="alarms on (o)")
    control(service, "zq")  # not commands: ignored, as the reference does
    control(service, "d")
    wait_until(lambda: od_pid(service) == 0, what="down")
    assert not pid_alive(second)
    assert unpack((service / "status").read_bytes()).want == "d"
    control(service, "u")
    third = running_pid(service, second)
    control(service, "o")  # once: want 0, not restarted after its next exit
    wait_until(lambda: unpack((service / "status").read_bytes()).want == "", what="want once")
    control(service, "t")
    wait_until(lambda: od_pid(service) == 0, what="once: not restarted")
    assert not pid_alive(third)
    control(service, "x")  # down already: the supervisor exits
    wait_until(lambda: not locked(service), what="supervisor exited")


def test_command_is_split_on_blanks_with_no_shell(service: Path, tmp_path: Path) -> None:
    assert supervise(tmp_path, "-p", "status/svc", "-f", "echo $HOME 'quoted'\t*").returncode == 0
    wait_until(lambda: (service / "__stdout").exists() and (service / "__stdout").read_text(), what="output")
    assert (service / "__stdout").read_text().splitlines()[0] == "$HOME 'quoted' *"


def test_x_exits_after_the_child_and_sigterm_stops_the_child(service: Path, tmp_path: Path) -> None:
    assert supervise(tmp_path, "-p", "status/svc", "-f", "sleep 300").returncode == 0
    pid = running_pid(service)
    control(service, "x")  # flagexit: nothing is signalled, the supervisor leaves when the child does
    assert pid_alive(pid)
    assert locked(service)
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not locked(service), what="supervisor exited after its child")
    assert od_pid(service) == 0

    assert supervise(tmp_path, "-p", "status/svc", "-f", "sleep 300").returncode == 0
    pid = running_pid(service)
    supervisor = int(Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[1])
    os.kill(supervisor, signal.SIGTERM)  # the reference dies at once and orphans the child
    wait_until(lambda: not pid_alive(pid), what="child stopped with its supervisor")
    wait_until(lambda: not locked(service), what="supervisor exited")


def test_d_escalates_to_sigkill(service: Path, tmp_path: Path) -> None:
    (tmp_path / "supervise.conf").write_text("[global]\nstop_grace : 1\n")
    assert supervise(tmp_path, "-u", "status/svc", "sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"
                     ).returncode == 0
    pid = running_pid(service)
    control(service, "d")
    wait_until(lambda: not pid_alive(pid), what="stubborn child killed", timeout=15)
    assert "did not stop within 1s: SIGKILL" in (service / "supervise.log.wf").read_text()


def fake_mail(tmp_path: Path) -> dict[str, str]:
    """A ``mail`` on PATH that records its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mail = bin_dir / "mail"
    mail.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'mails'}\n")
    mail.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_max_tries_gives_up_after_the_fourth_run_with_one_alarm(service: Path, tmp_path: Path) -> None:
    """max_tries 3: four runs, each paced by a second, then the supervisor exits; the one alarm goes out
    at the first exit of the window."""
    runs = tmp_path / "runs"
    (tmp_path / "supervise.conf").write_text(
        "[global]\nalarm_interval : 60\nmax_tries : 3\nalarm_mail : ops@example.com\n[svc]\n")
    run = supervise(tmp_path, "-u", "status/svc", "sh", "-c", f"echo run >> {runs}; exit 1", env=fake_mail(tmp_path))
    assert run.returncode == 0
    wait_until(lambda: not locked(service), what="supervisor gave up", timeout=30)
    assert runs.read_text().count("run") == 4
    assert lines(service / "supervise.log") == [
        "[NOTICE] Finished loading configurations!",
        "alarm_interval: 60", "max_tries: 3", "max_tries_if_coredumped: 5", "alarm_mail : ops@example.com",
        "gsm_list_len: 0",
        "[NOTICE] service exited!",
        "[NOTICE] mail sent: echo \"\" | mail -s \"<time> [Alarm: <host>] Service svc exited!\" ops@example.com",
        "[NOTICE] supervise is trying to restart svc...",
        "[NOTICE] service exited!", "[NOTICE] supervise is trying to restart svc...",
        "[NOTICE] service exited!", "[NOTICE] supervise is trying to restart svc...",
        "[NOTICE] service exited!",
        "[NOTICE] supervise refused to restart svc any more and exited itself!",
    ]
    assert not (service / "supervise.log.wf").read_text()  # the reference writes nothing there on this path
    mails = wait_until(lambda: (tmp_path / "mails").exists() and (tmp_path / "mails").read_text().splitlines(),
                       what="the alarm mail")
    assert len(mails) == 1
    assert "Service svc exited!" in mails[0]
    assert mails[0].endswith("ops@example.com")
    assert "mail sent:" in (service / "supervise.log").read_text()


def _cores_dump(tmp_path: Path) -> bool:
    probe = subprocess.run(["sh", "-c", "ulimit -c unlimited; kill -SEGV $$"], cwd=tmp_path, check=False)
    with contextlib.suppress(FileNotFoundError):
        for core in tmp_path.glob("core*"):
            core.unlink()
    return probe.returncode == -signal.SIGSEGV and os.path.exists("/proc/sys/kernel/core_pattern") and \
        not Path("/proc/sys/kernel/core_pattern").read_text().startswith("|")


def test_max_tries_if_coredumped(service: Path, tmp_path: Path) -> None:
    if not _cores_dump(tmp_path):
        pytest.skip("this kernel does not write core files here (core_pattern is a pipe)")
    runs = tmp_path / "runs"
    (tmp_path / "supervise.conf").write_text("[global]\nalarm_interval : 60\nmax_tries_if_coredumped : 1\n")
    run = supervise(tmp_path, "-u", "status/svc", "sh", "-c", f"echo run >> {runs}; ulimit -c unlimited; kill -SEGV $$")
    assert run.returncode == 0
    wait_until(lambda: not locked(service), what="supervisor gave up on cores", timeout=30)
    assert runs.read_text().count("run") == 2
    assert "[NOTICE] service exited with coredump!" in lines(service / "supervise.log")


def test_r_script_runs_at_each_exit_and_config_rereads(service: Path, tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\necho \"$1\" >> {calls}\n")
    hook.chmod(0o755)
    assert supervise(tmp_path, "-r", str(hook), "-t", "300", "-u", "status/svc", "sh", "-c", "exit 3"
                     ).returncode == 0
    wait_until(lambda: calls.exists() and len(calls.read_text().split()) >= 3, what="script runs", timeout=20)
    assert calls.read_text().split()[:3] == ["1", "2", "3"]  # -t 300: n counts up while exits are close
    control(service, "d")
    # -r: no configuration read, no exit line, no checks: the reference's one line per exit, then the restart.
    assert lines(service / "supervise.log")[:4] == [
        f"[NOTICE] restart_cmd: {hook} 1 is called.", "[NOTICE] supervise is trying to restart svc...",
        f"[NOTICE] restart_cmd: {hook} 2 is called.", "[NOTICE] supervise is trying to restart svc..."]


def test_config_is_reread_on_r_and_a_missing_file_keeps_the_old(service: Path, tmp_path: Path) -> None:
    conf = tmp_path / "supervise.conf"
    conf.write_text("[global]\nalarm_interval : 30\nmax_tries : 7\n[svc]\nmax_tries : 9\n")
    assert supervise(tmp_path, "-p", "status/svc", "-f", "sleep 300").returncode == 0
    running_pid(service)
    log = service / "supervise.log"
    wait_until(lambda: "max_tries: 9" in log.read_text(), what="settings loaded")
    assert "alarm_interval: 60" in log.read_text()  # 1-59 is raised to 60, as the reference does
    conf.unlink()
    control(service, "r")
    wait_until(lambda: "Old configurations unchanged" in (service / "supervise.log.wf").read_text(),
               what="missing file kept the settings")


def test_deleted_fifos_are_made_again(service: Path, tmp_path: Path) -> None:
    assert supervise(tmp_path, "-p", "status/svc", "-f", "sleep 300").returncode == 0
    first = running_pid(service)
    (service / "control").unlink()
    (service / "ok").unlink()
    wait_until(lambda: (service / "control").is_fifo() and (service / "ok").is_fifo(), what="FIFOs made again")
    wait_until(lambda: "control was deleted: made again" in (service / "supervise.log.wf").read_text(),
               what="the log line")
    control(service, "k")  # the new control FIFO is the one read
    running_pid(service, first)


def test_an_exec_failure_is_the_references_fatal_line(service: Path, tmp_path: Path) -> None:
    """A command that cannot be run: ``[FATAL] ... unable to start ARGV0`` in supervise.log.wf (the reference's
    child writes it and exits 1, so it counts as an exit and is retried)."""
    (tmp_path / "supervise.conf").write_text("[global]\nalarm_interval : 60\nmax_tries : 1\n")
    assert supervise(tmp_path, "-p", "status/svc", "-f", "/nonexistent/prog --flag").returncode == 0
    wait_until(lambda: not locked(service), what="supervisor gave up", timeout=30)
    assert lines(service / "supervise.log.wf") == ["[FATAL] unable to start /nonexistent/prog"] * 2
    assert lines(service / "supervise.log")[-1] == "[NOTICE] supervise refused to restart svc any more and exited itself!"
