"""procward vs supervisord 4.3, side by side in one run, through XML-RPC on a unix socket only.

Scenarios (see docs/performance.md):
  S1 spawn       N sleep programs: start to first answered RPC, start to all RUNNING
  S2 idle        500 running, idle window: daemon CPU %, context switches/s, RSS
  S3 restart     100 autorestart programs: SIGKILL one, time until a new pid is RUNNING (median, p95)
  S4 logs        one program writes --log-mb MiB to stdout: MB/s, daemon CPU s; plain, rotating, and
                 with stdout_events_enabled (every byte passes through the daemon)
  S5 rpc         500 programs: getAllProcessInfo / getProcessInfo latency, calls/s;
                 startProcessGroup / stopProcessGroup of a 100-program group with wait
  S6 stop        500 running: stopAllProcesses, then SIGTERM to exit; orphans left
  S7 writers     50 programs writing numbered lines at 2 MB/s each: daemon CPU %, lines lost or duplicated
  S9 web         the web page at N=100 and 1000 (render time, bytes); procward only: 10 live pages
                 connected and idle (daemon CPU, wake-ups), one state change fanned out to all 10
  S10 metrics    procward only (supervisord has no /metrics): a /metrics scrape at N=100 and 1000,
                 time and daemon CPU per scrape, bytes
  S11 sockets    an HTTP server under a steady 500 requests/s from 127.0.0.1 while it is restarted 10
                 times, then while a numprocs=4 copy is restarted one process at a time 5 times: failed
                 requests (refused, reset, other) and latency p99; the server binding its own port under
                 both daemons, and under procward with the port held (sockets =)
Every figure is the median of --runs runs (default 3) with min and max; the ratio is supervisord/procward
for times and costs (above 1 means procward is better).

Usage: python bench/run.py [--runs 3] [--only S1,S3] [--sizes 100,500,1000,2000] [--quick]
                          [--daemon 'NAME=COMMAND ... -c']   (a third column: any supervisord-compatible
                          daemon whose command line, followed by the config file, runs it in the foreground)
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from steady import SteadyLoad
from support import UnixHTTPConnection, children_of, pid_alive, rpc_client

DAEMONS = {
    "procward": [sys.executable, "-m", "procward", "-n", "-c"],
    "supervisord": [sys.executable, "-m", "supervisor.supervisord", "-n", "-c"],
}
CLK = os.sysconf("SC_CLK_TCK")
WRITER = Path(__file__).with_name("writer.py")
ACTIVATED = Path(__file__).resolve().parents[1] / "tests" / "programs" / "activated.py"


# -- measuring a daemon ------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def read_io(pid: int) -> tuple[int, int]:
    """(read syscalls, bytes read) of a process so far, from /proc/<pid>/io."""
    fields = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return int(fields["syscr"]), int(fields["rchar"])


def status_field(pid: int, name: str) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def switches(pid: int) -> int:
    return status_field(pid, "voluntary_ctxt_switches") + status_field(pid, "nonvoluntary_ctxt_switches")


def program(name: str, command: str, **options: Any) -> str:
    lines = [f"[program:{name}]", f"command={command}"]
    lines += [f"{key}={value}" for key, value in {"startsecs": 0, "stdout_logfile": "NONE",
                                                   "stderr_logfile": "NONE", **options}.items()]
    return "\n".join(lines) + "\n"


def sleepers(n: int, **options: Any) -> str:
    return "".join(program(f"p{i:04d}", "sleep 3600", **options) for i in range(n))


@dataclass
class Running:
    """One daemon on a generated config."""

    kind: str
    dir: Path
    proc: subprocess.Popen[bytes]
    started: float
    sock: str

    def rpc(self) -> Any:
        return rpc_client(self.sock)


@contextlib.contextmanager
def daemon(kind: str, programs: str, supervisord_extra: str = "") -> Iterator[Running]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as tmp:
        directory = Path(tmp)
        conf = directory / "bench.conf"
        conf.write_text("\n".join([
            "[supervisord]", f"logfile={directory}/main.log", f"pidfile={directory}/d.pid",
            f"childlogdir={directory}", "minfds=16384", "loglevel=info", supervisord_extra, "",
            "[unix_http_server]", f"file={directory}/d.sock", "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
        ]) + programs.replace("%(here)s", str(directory)))
        started = time.monotonic()
        # In its own directory: a daemon that takes a path literally (Go supervisord writes a file named
        # NONE for stdout_logfile=NONE) leaves nothing in the caller's.
        proc = subprocess.Popen([*DAEMONS[kind], str(conf)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=directory)
        running = Running(kind, directory, proc, started, str(directory / "d.sock"))
        try:
            yield running
        finally:
            if proc.poll() is None:
                kids = children_of(proc.pid)
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=300)
                for kid in kids:
                    if pid_alive(kid):
                        os.kill(kid, signal.SIGKILL)


# Go supervisord spells state names "Running": compared in upper case.
_STATENAME = re.compile(rb"<name>statename</name>\s*<value><string>([A-Za-z]+)</string>")


def wait_all(d: Running, n: int, state: str = "RUNNING", timeout: float = 300,
             poll: float = 0.01) -> tuple[float, float]:
    """(first answered RPC, all n in ``state``), seconds since the daemon was started; ``poll`` is the
    pause between calls.

    The states are counted in the raw getAllProcessInfo answer. Unmarshalling 2000 structs with
    xmlrpc.client takes the client ~0.15 s of CPU per poll, which on 2 CPUs is taken from the
    programs being started: the figure would then measure the client.
    """
    first = None
    deadline = time.monotonic() + timeout
    wanted = state.encode()
    while time.monotonic() < deadline:
        try:
            body = raw_call(d.sock, "supervisor.getAllProcessInfo")
        except OSError:
            time.sleep(0.005)
            continue
        now = time.monotonic() - d.started
        first = first if first is not None else now
        states = [found.upper() for found in _STATENAME.findall(body)]
        if len(states) >= n and states.count(wanted) >= n:
            return first, now
        time.sleep(poll)
    raise RuntimeError(f"{d.kind}: not all {n} programs {state} after {timeout}s")


def timed(call: Callable[[], Any], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        t0 = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t0)
    return samples


def raw_call(sock: str, method: str, *params: str) -> bytes:
    """One XML-RPC call on a fresh connection; the response body, not unmarshalled."""
    body = xmlrpc.client.dumps(params, method).encode()
    conn = UnixHTTPConnection(sock)
    try:
        conn.request("POST", "/RPC2", body, {"Content-Type": "text/xml"})
        response = conn.getresponse()
        data = response.read()
        if response.status != 200 or b"<fault>" in data:
            raise RuntimeError(f"{method} failed: {response.status} {data[:200]!r}")
        return data
    finally:
        conn.close()


def direct_children(files: list[str]) -> set[int]:
    """The pids in a process's /proc/<pid>/task/<tid>/children files (fast: no scan of /proc)."""
    found: set[int] = set()
    for path in files:
        with contextlib.suppress(OSError), open(path, "rb") as handle:
            found.update(int(pid) for pid in handle.read().split())
    return found


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


# -- scenarios: each returns {figure: value} for one daemon ---------------------------------------------

def s1_spawn(kind: str, n: int, startsecs: int) -> dict[str, float]:
    with daemon(kind, sleepers(n, startsecs=startsecs)) as d:
        first, done = wait_all(d, n)
    suffix = f" N={n}" + (f" startsecs={startsecs}" if startsecs else "")
    return {f"S1 first RPC (s){suffix}": first, f"S1 all RUNNING (s){suffix}": done}


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
        one_info = timed(lambda: raw_call(d.sock, "supervisor.getProcessInfo", "p0001"), 50 if quick else 300)
        parsed = timed(sup.getAllProcessInfo, 5 if quick else 20)
        out[f"S5 getAllProcessInfo via xmlrpc.client median ms N={n}"] = 1000 * statistics.median(parsed)
        out.update({f"S5 getAllProcessInfo median ms N={n}": 1000 * statistics.median(all_info),
                    f"S5 getAllProcessInfo p95 ms N={n}": 1000 * p95(all_info),
                    f"S5 getProcessInfo median ms N={n}": 1000 * statistics.median(one_info),
                    f"S5 getProcessInfo p95 ms N={n}": 1000 * p95(one_info),
                    f"S5 getProcessInfo calls/s N={n}": len(one_info) / sum(one_info)})
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
            conn = UnixHTTPConnection(d.sock)
            try:
                conn.request("GET", "/index.html")
                return conn.getresponse().read()
            finally:
                conn.close()

        size = len(render())
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


def s10_metrics(n: int, scrapes: int = 20) -> dict[str, float]:
    with daemon("procward", sleepers(n)) as d:
        wait_all(d, n, poll=0.1)

        def scrape() -> bytes:
            conn = UnixHTTPConnection(d.sock)
            try:
                conn.request("GET", "/metrics")
                return conn.getresponse().read()
            finally:
                conn.close()

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


# -- driver -------------------------------------------------------------------------------------------

@dataclass
class Table:
    rows: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, kind: str, figures: dict[str, float]) -> None:
        for key, value in figures.items():
            self.rows.setdefault(key, {k: [] for k in DAEMONS})[kind].append(value)
            # As it comes, on stderr: a long run that is stopped still leaves what it measured.
            print(f"# {kind}: {key} = {value:.4g}", file=sys.stderr, flush=True)

    def print(self) -> None:
        """One column per daemon; after each peer's column, its figure over procward's (times, costs)
        or procward's over its (rates): above 1 means procward is better."""
        peers = [k for k in DAEMONS if k != "procward"]
        head = f"{'figure':<52}{'procward':>24}"
        for peer in peers:
            head += f"{'supervisord 4.3' if peer == 'supervisord' else peer:>24}{'ratio':>9}"
        print(head)
        for key, per in self.rows.items():
            pw = per["procward"]
            if not pw:
                continue
            line = f"{key:<52}{_fmt(pw):>24}"
            for peer in peers:
                theirs = per[peer]
                if not theirs:  # a procward feature the peer does not have, or a size it was spared
                    line += f"{'-':>24}{'-':>9}"
                    continue
                higher_better = "MB/s" in key or "calls/s" in key
                pm, sm = statistics.median(pw), statistics.median(theirs)
                # counts such as orphans or lost lines have no ratio
                ratio = (f"{(pm / sm if higher_better else sm / pm):.1f}x" if pm and sm
                         else "same" if pm == sm else "-")
                line += f"{_fmt(theirs):>24}{ratio:>9}"
            print(line, flush=True)


def attempt(kind: str, scenario: Callable[..., dict[str, float]], *args: Any, **kwargs: Any) -> dict[str, float]:
    """A scenario's figures; a peer that fails one (a feature it lacks, a bug of its own) leaves its
    cells empty with the reason on stderr, instead of ending the run. procward's failures end it."""
    try:
        return scenario(kind, *args, **kwargs)
    except Exception as exc:
        if kind == "procward":
            raise
        print(f"# {kind}: {scenario.__name__} failed: {exc}", file=sys.stderr, flush=True)
        return {}


def _fmt(values: list[float]) -> str:
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.4g}"
    return f"{med:.4g} [{min(values):.3g}-{max(values):.3g}]"


def precompile() -> None:
    """Byte-compile both daemons' packages, as a pip install of a wheel does.

    An editable install (and PYTHONDONTWRITEBYTECODE, set on some machines) leaves procward without
    .pyc files, so every start would compile its sources (~0.1 s) while supervisord, installed from
    PyPI, starts from bytecode.
    """
    import supervisor

    import procward

    for package in (procward, supervisor):
        compileall.compile_dir(str(Path(package.__file__).parent), quiet=1)


def main() -> int:
    parser = argparse.ArgumentParser(description="procward vs supervisord 4.3 benchmark")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="S1,S2,S3,S4,S5,S6,S7,S9,S10,S11", help="comma-separated scenarios")
    parser.add_argument("--sizes", default="100,500,1000,2000", help="N for S1 (and S2/S5 with --scaling)")
    parser.add_argument("--scaling", action="store_true", help="S2/S5/S6 at every size, not only 500")
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--log-mb", type=int, default=1024)
    parser.add_argument("--writers-seconds", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="1 run, small sizes, short windows (smoke test)")
    parser.add_argument("--supervisord-up-to", type=int, default=0,
                        help="S2/S5/S6 with --scaling: run the peers only up to this N "
                             "(supervisord's getAllProcessInfo takes ~15 s at N=5000, and S5 makes 70 of them)")
    parser.add_argument("--daemon", action="append", default=[], metavar="NAME=COMMAND",
                        help="another daemon to run beside the two, e.g. 'go=/path/supervisord -c': the "
                             "config file's path is appended to COMMAND")
    args = parser.parse_args()
    for extra in args.daemon:
        name, sep, command = extra.partition("=")
        if not sep or not command.split() or name in DAEMONS:
            parser.error(f"--daemon {extra!r}: expected NAME=COMMAND with a new NAME")
        DAEMONS[name] = command.split()
    if args.quick:
        args.runs, args.sizes, args.idle, args.kills, args.log_mb, args.writers_seconds = 1, "100", 3, 10, 64, 3
    only = set(args.only.upper().split(","))
    precompile()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{os.cpu_count()} cpus, Python {sys.version.split()[0]}, runs={args.runs}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    table = Table()
    for _ in range(args.runs):
        for kind in DAEMONS:  # alternate, so drift on the machine hits both alike
            if "S1" in only:
                for n in sizes:
                    table.add(kind, attempt(kind, s1_spawn, n, 0))
                table.add(kind, attempt(kind, s1_spawn, min(sizes[-1], 500), 1))
            if only & {"S2", "S5", "S6"}:
                for n in (sizes if args.scaling else [500 if not args.quick else sizes[0]]):
                    if kind != "procward" and args.supervisord_up_to and n > args.supervisord_up_to:
                        continue
                    table.add(kind, attempt(kind, s2_s5_s6, n, args.idle, args.quick))
            if "S3" in only:
                table.add(kind, attempt(kind, s3_restart, args.kills))
            if "S4" in only:
                table.add(kind, attempt(kind, s4_logs, args.log_mb))
            if "S7" in only:
                table.add(kind, attempt(kind, s7_writers, args.writers_seconds))
            if "S9" in only:
                for n in (100, 1000):
                    table.add(kind, attempt(kind, s9_web, n, 10, args.idle))
            if "S10" in only and kind == "procward":
                for n in (100, 1000):
                    table.add(kind, attempt(kind, s10_metrics, n))
            if "S11" in only:
                table.add(kind, attempt(kind, s11_sockets, held=False))
                if kind == "procward":
                    table.add(kind, attempt(kind, s11_sockets, held=True))
    if "S4" in only:
        print(f"S4 limit: dd | cat > file on this machine: {_fmt(S4_BASELINE)} MB/s, "
              f"cat's CPU {_fmt(S4_CAT_CPU)} s")
    table.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
