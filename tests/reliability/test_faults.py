"""Faults: broken log storage, crash storms, signal storms, a SIGKILLed daemon. Bounded and cleaned up by pid."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path

import pytest
from support import Daemon, children_of, pid_alive, wait_until

PY = sys.executable
COUNTER = Path(__file__).resolve().parents[1] / "programs" / "counter.py"


def counter(burst: int = 50, pause: float = 0.01) -> str:
    return f"{PY} {COUNTER} {burst} {pause}"


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def zombies_of(pid: int) -> list[int]:
    return [k for k in children_of(pid) if not pid_alive(k) and Path(f"/proc/{k}").exists()]


def numbers(paths: list[Path]) -> list[int]:
    found = []
    for path in paths:
        found += [int(line.split(b" ", 1)[0]) for line in path.read_bytes().splitlines() if line[:8].isdigit()]
    return found


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str):
    """A tiny tmpfs (root) to fill up; skip when mounting is not possible here."""
    path.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                            capture_output=True, timeout=30, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {result.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], timeout=30, check=False)


def test_disk_full_never_blocks_the_program_and_logging_resumes(daemon, tmp_path: Path) -> None:
    """A full log filesystem: one error line, the program keeps running, logging resumes when space returns."""
    with small_tmpfs(tmp_path / "logs", "2m") as logs:
        filler = logs / "filler"
        d = daemon(f"""
            [program:chatty]
            command={counter()}
            startsecs=0
            stdout_logfile={logs}/chatty.log
            stdout_logfile_maxbytes=0
            """)
        pid = d.wait_state("chatty", "RUNNING")["pid"]
        wait_until(lambda: (logs / "chatty.log").stat().st_size > 10000, what="first output")
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k", "count=64"], capture_output=True,
                       timeout=30, check=False)  # fills the 2 MiB filesystem
        d.wait_log(f"cannot write log file {logs}/chatty.log: No space left on device")
        # The program is never blocked on its pipe: it keeps producing while nothing can be written.
        progress = Path(f"/proc/{pid}/io")
        before = int(progress.read_text().split("wchar: ")[1].split()[0])
        wait_until(lambda: int(progress.read_text().split("wchar: ")[1].split()[0]) > before + 500_000,
                   what="the program writing on while the disk is full", timeout=20)
        filler.unlink()
        d.wait_log(f"log file {logs}/chatty.log is written again")
        assert d.log_text().count("No space left on device") == 1  # rate-limited
        assert "Traceback" not in d.log_text()
        assert d.state("chatty") == "RUNNING"


def test_deleted_log_directory_is_recreated_and_written_again(daemon, tmp_path: Path) -> None:
    """rm -rf of the log directory while the program runs: the directory and file come back by themselves."""
    logs = tmp_path / "logs"
    logs.mkdir()
    d = daemon(f"""
        [program:chatty]
        command={counter(pause=0.05)}
        startsecs=0
        stdout_logfile={logs}/chatty.log
        """)
    wait_until(lambda: (logs / "chatty.log").exists(), what="log file")
    shutil.rmtree(logs)
    d.wait_log(f"log directory {logs} was missing: created it again for {logs}/chatty.log")
    wait_until(lambda: (logs / "chatty.log").exists() and (logs / "chatty.log").stat().st_size > 0,
               what="log file recreated and written")
    assert d.state("chatty") == "RUNNING"
    assert "Traceback" not in d.log_text()


def test_log_directory_deleted_before_a_start_is_recreated(daemon, tmp_path: Path) -> None:
    """The log directory removed while the program is stopped: startProcess recreates it and the output
    is written there (supervisord refuses the start; procward never runs it with its output going nowhere)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    d = daemon(f"""
        [program:chatty]
        command={counter(pause=0.05)}
        startsecs=0
        autostart=false
        stdout_logfile={logs}/chatty.log
        stderr_logfile={logs}/chatty.err
        """)
    shutil.rmtree(logs)
    assert d.rpc().supervisor.startProcess("chatty") is True
    wait_until(lambda: (logs / "chatty.log").exists() and (logs / "chatty.log").stat().st_size > 0,
               what="log written in the recreated directory")
    assert "cannot write log file" not in d.log_text()


def test_log_file_that_cannot_be_opened_refuses_the_start(daemon, tmp_path: Path) -> None:
    """A log path that cannot be opened (its directory is a file): SPAWN_ERROR naming the file, as supervisord."""
    (tmp_path / "notadir").mkdir()
    d = daemon(f"""
        [program:blocked]
        command=sleep 300
        startsecs=0
        autostart=false
        startretries=0
        stdout_logfile={tmp_path}/notadir/out.log
        """)
    (tmp_path / "notadir").rmdir()
    (tmp_path / "notadir").write_text("")
    with pytest.raises(xmlrpc.client.Fault) as fault:
        d.rpc().supervisor.startProcess("blocked")
    assert fault.value.faultCode == 50  # SPAWN_ERROR
    info = d.rpc().supervisor.getProcessInfo("blocked")
    assert info["statename"] == "FATAL"
    assert info["pid"] == 0
    assert info["spawnerr"] == f"couldn't open stdout log file {tmp_path}/notadir/out.log: Not a directory"


def test_rotation_under_load_and_sigusr2_loses_no_line(daemon, tmp_path: Path) -> None:
    """Heavy output, small maxbytes, repeated SIGUSR2: every numbered line exactly once across the files."""
    d = daemon(f"""
        [program:chatty]
        command={counter(burst=500, pause=0.001)}
        startsecs=0
        stdout_logfile=%(here)s/chatty.log
        stdout_logfile_maxbytes=200KB
        stdout_logfile_backups=200
        """)
    assert d.proc is not None
    log = tmp_path / "chatty.log"
    pid = d.proc.pid

    def rotated_while_reopening() -> bool:  # SIGUSR2 again and again while the file rotates
        os.kill(pid, signal.SIGUSR2)
        return len(list(tmp_path.glob("chatty.log.*"))) >= 10

    wait_until(rotated_while_reopening, what="ten rotations under SIGUSR2", timeout=30)
    d.rpc().supervisor.stopProcess("chatty")
    backups = sorted(tmp_path.glob("chatty.log.*"), key=lambda p: -int(p.suffix[1:]))
    assert len(backups) >= 5
    seen = numbers([*backups, log])
    assert seen == list(range(len(seen))), "a line was lost or duplicated"


def test_busy_writers_read_in_step_lose_no_line(daemon, tmp_path: Path) -> None:
    """Twenty writers of different rates: their pipes rest and are read together (logs.Rests), some
    exit while resting, the rest are stopped; every log holds every line once, in order."""
    rates = [(50, 0.01), (20, 0.01), (200, 0.005), (5, 0.02)]
    d = daemon("".join(f"""
        [program:w{i}]
        command={counter(*rates[i % 4])}
        startsecs=0
        autorestart=false
        stdout_logfile=%(here)s/w{i}.log
        """ for i in range(20)))
    logs = [tmp_path / f"w{i}.log" for i in range(20)]
    wait_until(lambda: all(log.exists() and log.stat().st_size > 100_000 for log in logs),
               what="100 KB in every log", timeout=60)
    for i in range(0, 20, 3):  # killed while their pipes may rest: what the pipe holds is still copied
        pid = d.rpc().supervisor.getProcessInfo(f"w{i}")["pid"]
        os.kill(pid, signal.SIGKILL)
    d.rpc().supervisor.stopAllProcesses()
    for log in logs:
        seen = numbers([log])
        assert seen == list(range(len(seen))), f"{log.name}: a line was lost or duplicated"
        assert len(seen) > 1000


def test_crash_storm_comes_back_without_leaks(daemon) -> None:
    """20 programs SIGKILLed at ~20/s for 10 s: all RUNNING again, no zombie, descriptors and RSS flat."""
    programs = "".join(f"[program:p{i:02d}]\ncommand=sleep 300\nstartsecs=0\nautorestart=true\n" for i in range(20))
    d = daemon(programs)
    assert d.proc is not None
    daemon_pid = d.proc.pid
    wait_until(lambda: all(i["statename"] == "RUNNING" for i in d.rpc().supervisor.getAllProcessInfo()),
               what="all running")
    fds_before, rss_before = fd_count(daemon_pid), rss_kb(daemon_pid)
    deadline = time.monotonic() + 10
    kills = 0
    while time.monotonic() < deadline:
        info = d.rpc().supervisor.getProcessInfo(f"p{kills % 20:02d}")
        if info["pid"]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(info["pid"], signal.SIGKILL)
            kills += 1
        time.sleep(0.05)  # the storm's pace (~20 kills/s), not synchronisation
    wait_until(lambda: all(i["statename"] == "RUNNING" for i in d.rpc().supervisor.getAllProcessInfo()),
               what="all running after the storm", timeout=10)
    assert kills >= 100
    wait_until(lambda: not zombies_of(daemon_pid), what="no zombies")
    assert fd_count(daemon_pid) <= fds_before + 2
    assert rss_kb(daemon_pid) <= rss_before + 4096
    assert "ERRO" not in d.log_text()
    assert "Traceback" not in d.log_text()


def test_sighup_storm_and_sigterm_while_starting(daemon) -> None:
    """50 SIGHUPs in a second end consistent; SIGTERM while STARTING leaves nothing behind."""
    d = daemon("[program:a]\ncommand=sleep 300\nstartsecs=0\n[program:b]\ncommand=sleep 300\nstartsecs=0\n")
    assert d.proc is not None
    pid = d.proc.pid
    d.wait_state("b", "RUNNING")
    fds_before = fd_count(pid)
    for _ in range(50):
        os.kill(pid, signal.SIGHUP)
    wait_until(lambda: d.rpc().supervisor.getState()["statename"] == "RUNNING" and
               all(i["statename"] == "RUNNING" for i in d.rpc().supervisor.getAllProcessInfo()),
               what="running again after the storm", timeout=30)
    wait_until(lambda: len(children_of(pid)) == 2 and not zombies_of(pid), what="two children, no zombie")
    assert fd_count(pid) <= fds_before + 2
    d.write("[program:slow]\ncommand=sleep 300\nstartsecs=5\n")
    os.kill(pid, signal.SIGHUP)
    d.wait_state("slow", "STARTING")
    kids = children_of(pid)
    assert d.stop() == 0
    assert not [k for k in kids if pid_alive(k)]


def test_next_start_stops_what_a_sigkilled_daemon_left(tmp_path: Path) -> None:
    """After SIGKILL of the daemon its programs live on; the next daemon stops them before starting."""
    d = Daemon(tmp_path, """
        [program:orphaned]
        command=sh -c 'setsid sleep 304 & exec sleep 305'
        startsecs=0
        """)
    d.start()
    assert d.proc is not None
    pid = d.wait_state("orphaned", "RUNNING")["pid"]
    tree = wait_until(lambda: len(k := [pid, *children_of(pid)]) >= 1 and k, what="tree")
    setsid_child = wait_until(lambda: [p for p in _by_cmdline("sleep 304") if pid_alive(p)], what="setsid child")
    os.kill(d.proc.pid, signal.SIGKILL)
    d.proc.wait(timeout=10)
    d.proc = None
    survivors = [p for p in [*tree, *setsid_child] if pid_alive(p)]
    assert survivors, "the killed daemon's programs should still be running"
    d.start()
    try:
        d.wait_log("left by a procward that did not shut down")
        wait_until(lambda: not [p for p in survivors if pid_alive(p)], what="leftovers stopped")
        d.wait_state("orphaned", "RUNNING")
    finally:
        d.stop()


def _stat_start_time(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[19].decode()


def test_a_sigkilled_daemons_program_without_its_token_is_found_by_pid_and_start_time(tmp_path: Path) -> None:
    """A program that drops procward's token from its environment (env -i) is still stopped by the next
    daemon: the spawn record names it by pid and start time too (written shortly after the spawn)."""
    d = Daemon(tmp_path, """
        [program:scrubbed]
        command=env -i sleep 306
        startsecs=0
        """)
    d.start()
    assert d.proc is not None
    pid = d.wait_state("scrubbed", "RUNNING")["pid"]
    # sleep's own name first: /proc/<pid>/environ also reads empty while `env` is still exec'ing it
    wait_until(lambda: Path(f"/proc/{pid}/comm").read_text().strip() == "sleep"
               and b"PROCWARD_TREE" not in Path(f"/proc/{pid}/environ").read_bytes(), what="env -i exec")
    record = tmp_path / "procward.pid.procs"
    wait_until(lambda: f" {pid} {_stat_start_time(pid)}" in record.read_text(), what="start time recorded")
    os.kill(d.proc.pid, signal.SIGKILL)
    d.proc.wait(timeout=10)
    d.proc = None
    assert pid_alive(pid)
    d.start()
    try:
        wait_until(lambda: not pid_alive(pid), what="the scrubbed leftover stopped")
        assert d.wait_state("scrubbed", "RUNNING")["pid"] != pid
    finally:
        d.stop()


def test_spawn_record_stays_bounded_under_a_crash_loop(daemon, tmp_path: Path) -> None:
    """A program restarting without end: the record of spawns is rewritten with the latest spawn per
    program instead of growing a line per spawn forever, and still names the running pid."""
    d = daemon("""
        [program:loop]
        command=true
        startsecs=0
        autorestart=true
        [program:steady]
        command=sleep 300
        startsecs=0
        """)
    record = tmp_path / "procward.pid.procs"
    wait_until(lambda: d.log_text().count("spawned: 'loop'") > 1500, what="1500 spawns", timeout=60)
    lines = record.read_text().splitlines()
    assert len(lines) <= 1000 + 2 + 1  # programs + the compaction margin (+1 written since)
    steady = d.wait_state("steady", "RUNNING")["pid"]
    assert any(line.split()[1] == str(steady) for line in lines)


def _by_cmdline(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").strip() == text.encode():
                    found.append(int(entry))
    return found


def test_foreign_symlink_log_path_is_refused(daemon, tmp_path: Path) -> None:
    """A log path that is a symlink owned by another user is not followed, and the program is not started
    with its output going nowhere (SPAWN_ERROR, as for any log file that cannot be opened)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a symlink owned by another user")
    target = tmp_path / "target"
    link = tmp_path / "evil.log"
    link.symlink_to(target)
    os.lchown(link, 65534, 65534)
    d = daemon("""
        [program:victim]
        command=sh -c 'echo secret; exec sleep 300'
        startsecs=0
        startretries=0
        stdout_logfile=%(here)s/evil.log
        """)
    d.wait_log("refusing to follow symlink owned by uid 65534")
    info = d.wait_state("victim", "FATAL")
    assert info["spawnerr"].startswith(f"couldn't open stdout log file {link}: refusing to follow symlink "
                                       "owned by uid 65534")
    assert not target.exists()
