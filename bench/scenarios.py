"""The benchmark's scenarios (S1-S11, see bench/run.py): each runs one daemon and returns {figure: value}."""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import (
    children_of,
    cpu_seconds,
    daemon,
    direct_children,
    http_get,
    p95,
    pid_alive,
    program,
    raw_call,
    read_io,
    reaped_seconds,
    run_seconds,
    sleepers,
    status_field,
    switches,
    timed,
    wait_all,
)
from steady import SteadyLoad
from support import UnixHTTPConnection

WRITER = Path(__file__).with_name("writer.py")
ACTIVATED = Path(__file__).resolve().parents[1] / "tests" / "programs" / "activated.py"


# -- scenarios: each returns {figure: value} for one daemon ---------------------------------------------

def s1_spawn(kind: str, n: int, startsecs: int) -> dict[str, float]:
    with daemon(kind, sleepers(n, startsecs=startsecs)) as d:
        first, done = wait_all(d, n)
        # The CPU the start took, read as soon as it is over: the daemon's threads, the children it reaped
        # (procward's spawning helpers) and its programs so far (a `sleep` has used only its exec and
        # start by then). Spread perfectly over the machine's CPUs, that work could not take less than
        # "bound": how far "all RUNNING" is from it is what a daemon could still win on this machine.
        daemon_cpu = run_seconds(d.proc.pid) + reaped_seconds(d.proc.pid)
        programs_cpu = sum(run_seconds(pid) for pid in children_of(d.proc.pid))
    suffix = f" N={n}" + (f" startsecs={startsecs}" if startsecs else "")
    out = {f"S1 first RPC (s){suffix}": first, f"S1 all RUNNING (s){suffix}": done}
    if not startsecs:  # with startsecs=1 the figure is the wait, not the work
        cpus = len(os.sched_getaffinity(0))
        out |= {f"S1 daemon CPU (s){suffix}": daemon_cpu, f"S1 programs' CPU (s){suffix}": programs_cpu,
                f"S1 bound: all CPU / {cpus} CPUs (s){suffix}": (daemon_cpu + programs_cpu) / cpus}
    return out


def s2_s5_s6(kind: str, n: int, idle: float, quick: bool) -> dict[str, float]:
    group = "".join(program(f"g{i:03d}", "sleep 3600", autostart="false") for i in range(100))
    group += "[group:grp]\nprograms=" + ",".join(f"g{i:03d}" for i in range(100)) + "\n"
    with daemon(kind, sleepers(n) + group) as d:
        wait_all(d, n)
        time.sleep(2)  # let start-up work settle before the idle window
        cpu0, sw0 = cpu_seconds(d.proc.pid), switches(d.proc.pid)
        time.sleep(idle)
        cpu1, sw1 = cpu_seconds(d.proc.pid), switches(d.proc.pid)
        out = {f"S2 idle CPU % N={n}": 100 * (cpu1 - cpu0) / idle,
               f"S2 idle switches/s N={n}": (sw1 - sw0) / idle,
               f"S2 RSS MB N={n}": status_field(d.proc.pid, "VmRSS") / 1024}
        sup = d.rpc().supervisor
        # Round trip with the response read but not unmarshalled: the daemon's cost. Python's
        # xmlrpc.client then spends about 25 ms parsing 500 structs, the same for both daemons.
        all_info = timed(lambda: raw_call(d.sock, "supervisor.getAllProcessInfo"), 10 if quick else 50)
        # The daemon's CPU (all its threads) per call beside the round trip, which also holds the client's
        # own work: bench/limits.py's RPC floor prints the same for a server that answers a canned body.
        cpu0 = run_seconds(d.proc.pid)
        one_info = timed(lambda: raw_call(d.sock, "supervisor.getProcessInfo", "p0001"), 50 if quick else 300)
        one_cpu = (run_seconds(d.proc.pid) - cpu0) / len(one_info)
        parsed = timed(sup.getAllProcessInfo, 5 if quick else 20)
        out[f"S5 getAllProcessInfo via xmlrpc.client median ms N={n}"] = 1000 * statistics.median(parsed)
        out.update({f"S5 getAllProcessInfo median ms N={n}": 1000 * statistics.median(all_info),
                    f"S5 getAllProcessInfo p95 ms N={n}": 1000 * p95(all_info),
                    f"S5 getProcessInfo median ms N={n}": 1000 * statistics.median(one_info),
                    f"S5 getProcessInfo p95 ms N={n}": 1000 * p95(one_info),
                    f"S5 getProcessInfo calls/s N={n}": len(one_info) / sum(one_info),
                    f"S5 getProcessInfo daemon CPU us/call N={n}": 1e6 * one_cpu})
        out[f"S5 startProcessGroup 100 (s) N={n}"] = timed(lambda: sup.startProcessGroup("grp", True), 1)[0]
        out[f"S5 stopProcessGroup 100 (s) N={n}"] = timed(lambda: sup.stopProcessGroup("grp", True), 1)[0]
        kids = children_of(d.proc.pid)
        out[f"S6 stopAllProcesses (s) N={n}"] = timed(lambda: sup.stopAllProcesses(True), 1)[0]
        sup.startAllProcesses(True)
        wait_all(d, n)
        kids = children_of(d.proc.pid)
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        d.proc.wait(timeout=300)
        out[f"S6 SIGTERM to exit (s) N={n}"] = time.monotonic() - t0
        out[f"S6 orphans N={n}"] = sum(pid_alive(k) for k in kids)
    return out


def s3_restart(kind: str, kills: int) -> dict[str, float]:
    with daemon(kind, sleepers(100, autorestart="true")) as d:
        wait_all(d, 100)
        sup = d.rpc().supervisor
        samples = []
        for i in range(kills):
            name = f"p{i % 100:04d}"
            old = sup.getProcessInfo(name)["pid"]
            t0 = time.perf_counter()
            os.kill(old, signal.SIGKILL)
            while True:
                info = sup.getProcessInfo(name)
                if info["pid"] not in (0, old) and info["statename"].upper() == "RUNNING":
                    break
                if time.perf_counter() - t0 > 30:
                    raise RuntimeError(f"{kind}: {name} not restarted")
            samples.append(time.perf_counter() - t0)
        # The same restart seen without the RPC poller: the daemon's new child appears in its children
        # list in /proc (read by this client, at no cost to the daemon). The difference from the figure
        # above is what polling getProcessInfo through xmlrpc.client adds (a round trip in flight when the
        # restart is done, and the daemon answering polls while it restarts).
        unpolled = []
        for i in range(kills):
            name = f"p{i % 100:04d}"
            old = sup.getProcessInfo(name)["pid"]
            tasks = [f"/proc/{d.proc.pid}/task/{tid}/children" for tid in os.listdir(f"/proc/{d.proc.pid}/task")]
            before = direct_children(tasks)
            t0 = time.perf_counter()
            os.kill(old, signal.SIGKILL)
            while not direct_children(tasks) - before:
                time.sleep(0.0001)  # read in a tight loop, it slowed the restart it measures (1.9 vs 0.9 ms)
                if time.perf_counter() - t0 > 30:
                    raise RuntimeError(f"{kind}: {name} not restarted")
            unpolled.append(time.perf_counter() - t0)
            while sup.getProcessInfo(name)["statename"].upper() != "RUNNING":
                time.sleep(0.001)
    return {"S3 restart after SIGKILL median ms": 1000 * statistics.median(samples),
            "S3 restart after SIGKILL p95 ms": 1000 * p95(samples),
            "S3 restart after SIGKILL, seen in /proc, median ms": 1000 * statistics.median(unpolled),
            "S3 restart after SIGKILL, seen in /proc, p95 ms": 1000 * p95(unpolled)}


S4_BASELINE: list[float] = []  # dd | cat > file, MB/s, once before every S4 measurement
S4_CAT_CPU: list[float] = []  # cat's own CPU seconds in that copy: the floor of a copy through a process


def s4_logs(kind: str, mib: int) -> dict[str, float]:
    out = {}
    zeros = f"dd if=/dev/zero bs=1M count={mib} status=none"
    lines = f"sh -c 'yes {'x' * 99} | head -c {mib}M'"  # 100-byte lines, as fast as yes writes them
    variants: list[tuple[str, str, dict[str, Any]]] = [
        ("plain", zeros, {"stdout_logfile_maxbytes": 0}),
        ("rotating 50MB x10", zeros, {"stdout_logfile_maxbytes": "50MB", "stdout_logfile_backups": 10}),
        ("events enabled", zeros, {"stdout_logfile_maxbytes": 0, "stdout_events_enabled": "true"}),
        ("100-byte lines, raw", lines, {"stdout_logfile_maxbytes": 0}),
    ]
    if kind == "procward":  # line formats are procward's: each beside the raw figure above
        variants += [("100-byte lines, text", lines, {"stdout_logfile_maxbytes": 0, "stdout_log_format": "text"}),
                     ("100-byte lines, json", lines, {"stdout_logfile_maxbytes": 0, "stdout_log_format": "json"})]
    for label, command, options in variants:
        conf = program("writer", command, autostart="false", autorestart="false",
                       stdout_logfile="%(here)s/writer.log", **options)
        with daemon(kind, conf) as d:
            wait_all(d, 0)
            # Right before each measurement: on a VM, page cache the guest has not touched lately can
            # cost a host fault per page (0.4 s vs 2-3 s of kernel time per GiB measured here), and
            # that would decide the figure; the same write also gives this run's machine limit.
            S4_BASELINE.append(s4_baseline(mib, d.dir))
            sup = d.rpc().supervisor
            cpu0 = cpu_seconds(d.proc.pid)
            t0 = time.monotonic()
            sup.startProcess("writer", False)
            while sup.getProcessInfo("writer")["statename"].upper() not in ("EXITED", "FATAL"):
                time.sleep(0.005)
            elapsed = time.monotonic() - t0
            out[f"S4 {label} MB/s ({mib} MiB)"] = mib * 1.048576 / elapsed
            out[f"S4 {label} daemon CPU s"] = cpu_seconds(d.proc.pid) - cpu0
    return out


def s4_baseline(mib: int, directory: Path) -> float:
    """MB/s of ``dd | cat > file``; cat's CPU seconds go to S4_CAT_CPU."""
    out = directory / "baseline.out"
    t0 = time.monotonic()
    dd = subprocess.Popen(["dd", "if=/dev/zero", "bs=1M", f"count={mib}", "status=none"], stdout=subprocess.PIPE)
    with open(out, "wb") as sink:
        cat = subprocess.Popen(["cat"], stdin=dd.stdout, stdout=sink)
    assert dd.stdout is not None
    dd.stdout.close()
    _, status, usage = os.wait4(cat.pid, 0)
    cat.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.monotonic() - t0
    if dd.wait() or cat.returncode:
        raise RuntimeError("dd | cat failed")
    S4_CAT_CPU.append(usage.ru_utime + usage.ru_stime)
    out.unlink()
    return mib * 1.048576 / elapsed


def s7_writers(kind: str, seconds: float) -> dict[str, float]:
    conf = "".join(program(f"w{i:02d}", f"{sys.executable} {WRITER} {seconds} 2000000", autorestart="false",
                           stdout_logfile=f"%(here)s/w{i:02d}.log", stdout_logfile_maxbytes=0)
                   for i in range(50))
    with daemon(kind, conf) as d:
        wait_all(d, 50)
        cpu0, t0 = cpu_seconds(d.proc.pid), time.monotonic()
        sw0, io0 = switches(d.proc.pid), read_io(d.proc.pid)
        # Polled slowly: answering getAllProcessInfo 100 times a second would be part of the CPU measured.
        wait_all(d, 50, state="EXITED", timeout=seconds * 10 + 60, poll=0.5)
        cpu = cpu_seconds(d.proc.pid) - cpu0
        elapsed = time.monotonic() - t0
        wakeups = (switches(d.proc.pid) - sw0) / elapsed
        io = read_io(d.proc.pid)
        reads, read_bytes = io[0] - io0[0], io[1] - io0[1]
        lost = dup = 0
        for i in range(50):
            numbers = [int(line.split(b" ", 1)[0]) for line in (d.dir / f"w{i:02d}.log").read_bytes().splitlines()]
            expected = numbers[-1] + 1 if numbers else 0
            lost += expected - len(set(numbers))
            dup += len(numbers) - len(set(numbers))
    return {"S7 daemon CPU % (50 writers)": 100 * cpu / elapsed, "S7 lines lost": lost, "S7 lines duplicated": dup,
            "S7 daemon wake-ups/s": wakeups, "S7 reads/s": reads / elapsed,
            "S7 KB per read": read_bytes / max(reads, 1) / 1000}


def s9_web(kind: str, n: int, browsers: int, idle: float) -> dict[str, float]:
    with daemon(kind, sleepers(n)) as d:
        wait_all(d, n, poll=0.1)

        def render() -> bytes:
            return http_get(d.sock, "/index.html")

        page = render()
        if b"p0000" not in page:  # a page that fetches the list with scripts afterwards is another figure
            raise RuntimeError("the page does not list the programs")
        size = len(page)
        figures = {f"S9 page render N={n} (ms)": 1000 * statistics.median(timed(render, 20)),
                   f"S9 page bytes N={n} (KB)": size / 1024}
        if kind != "procward" or n > 100:
            return figures
        streams = [_EventStream(d.sock) for _ in range(browsers)]
        try:
            time.sleep(0.5)  # let the connections settle before the window
            cpu0, sw0, t0 = cpu_seconds(d.proc.pid), switches(d.proc.pid), time.monotonic()
            time.sleep(idle)
            elapsed = time.monotonic() - t0
            figures[f"S9 idle CPU % ({browsers} live pages)"] = 100 * (cpu_seconds(d.proc.pid) - cpu0) / elapsed
            figures[f"S9 wake-ups/s ({browsers} live pages)"] = (switches(d.proc.pid) - sw0) / elapsed
            t0 = time.perf_counter()
            raw_call(d.sock, "supervisor.stopProcess", "p0000")
            for stream in streams:
                stream.wait_for(b"p0000", timeout=30)
            figures[f"S9 stop seen by all {browsers} pages (ms)"] = 1000 * (time.perf_counter() - t0)
        finally:
            for stream in streams:
                stream.close()
        return figures


def s10_metrics(kind: str, n: int, scrapes: int = 20) -> dict[str, float]:
    """procward's /metrics (supervisord has none): called with kind "procward" only."""
    with daemon(kind, sleepers(n)) as d:
        wait_all(d, n, poll=0.1)

        def scrape() -> bytes:
            return http_get(d.sock, "/metrics")

        first = time.perf_counter()
        size = len(scrape())  # the first scrape loads prometheus_client and waits for the first sample
        first = time.perf_counter() - first
        cpu0 = cpu_seconds(d.proc.pid)
        times = timed(scrape, scrapes)
        cpu = cpu_seconds(d.proc.pid) - cpu0
        return {f"S10 /metrics scrape N={n} (ms)": 1000 * statistics.median(times),
                f"S10 /metrics p95 N={n} (ms)": 1000 * p95(times),
                f"S10 daemon CPU per scrape N={n} (ms)": 1000 * cpu / scrapes,
                f"S10 first scrape N={n} (ms)": 1000 * first,
                f"S10 /metrics bytes N={n} (KB)": size / 1024}


def s11_sockets(kind: str, held: bool) -> dict[str, float]:
    """Failed requests while a server is restarted (S11); see the module docstring."""
    from support import free_port

    port = free_port()
    serve = f"{sys.executable} {ACTIVATED} --fd 3" if held else f"{sys.executable} {ACTIVATED} --bind {port}"
    extra: dict[str, Any] = {"sockets": f"tcp://127.0.0.1:{port}", "sockets_env": "false"} if held else {}
    label = "held sockets" if held else "own port"
    figures: dict[str, float] = {}
    for case, numprocs, rounds in (("restart x10", 1, 10), ("numprocs=4 rolled x5", 4, 5)):
        options = dict(extra, startsecs=1, stopwaitsecs=10)
        if numprocs > 1:
            options.update(numprocs=numprocs, process_name="%(program_name)s_%(process_num)d")
        with daemon(kind, program("web", serve, **options)) as d:
            wait_all(d, numprocs, timeout=60)
            names = [f"web:{i['name']}" for i in d.rpc().supervisor.getAllProcessInfo()]
            with SteadyLoad(port, 500) as load:
                time.sleep(1.0)  # the load settles before the first restart
                for _ in range(rounds):
                    for name in names:  # one at a time, as supervisorctl restart web:web_0; ... would
                        d.rpc().supervisor.stopProcess(name)
                        d.rpc().supervisor.startProcess(name)  # waits startsecs: RUNNING before the next
                time.sleep(1.0)
        latencies = sorted(load.latencies)
        figures[f"S11 {case}: failed requests ({label})"] = sum(load.failed.values())
        figures[f"S11 {case}: refused ({label})"] = load.failed.get("refused", 0)
        figures[f"S11 {case}: reset ({label})"] = load.failed.get("reset", 0)
        figures[f"S11 {case}: answered ({label})"] = len(latencies)
        figures[f"S11 {case}: latency p99 ms ({label})"] = 1000 * latencies[int(len(latencies) * 0.99)]
    return figures


class _EventStream:
    """One live page's /events stream, read on a thread."""

    def __init__(self, sock: str) -> None:
        import threading

        self.conn = UnixHTTPConnection(sock)
        self.conn.request("GET", "/events")
        self.response = self.conn.getresponse()
        self.seen = b""
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        import http.client

        with contextlib.suppress(OSError, ValueError, AttributeError, http.client.HTTPException):
            while chunk := self.response.read1(65536):
                with self.changed:
                    self.seen += chunk
                    self.changed.notify_all()

    def wait_for(self, text: bytes, timeout: float) -> None:
        marker = b"event: update"
        with self.changed:
            if not self.changed.wait_for(lambda: marker in self.seen and text in self.seen.split(marker, 1)[1],
                                         timeout):
                raise RuntimeError("the update did not reach a live page")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.sock.shutdown(2)
        self.conn.close()


