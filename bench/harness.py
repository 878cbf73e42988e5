"""The benchmark's harness: a daemon on a generated config, driven only through XML-RPC on its unix socket,
and what is read of it (CPU, RSS, context switches, I/O from /proc). Shared by bench/run.py's scenarios and
bench/fleet.py; any supervisord-compatible daemon whose command line is in DAEMONS can be driven."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support import UnixHTTPConnection, children_of, pid_alive, rpc_client

DAEMONS = {
    "procward": [sys.executable, "-m", "procward", "-n", "-c"],
    "supervisord": [sys.executable, "-m", "supervisor.supervisord", "-n", "-c"],
}
CLK = os.sysconf("SC_CLK_TCK")


# -- measuring a daemon ------------------------------------------------------------------------------

def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / CLK


def run_seconds(pid: int) -> float:
    """CPU time of every thread of ``pid`` so far, from the scheduler (ns; /proc/<pid>/stat counts 10 ms
    ticks, too coarse for a program that ran for a millisecond). 0 for a process gone meanwhile."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in tasks:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/schedstat") as handle:
            total += int(handle.read().split()[0])
    return total / 1e9


def reaped_seconds(pid: int) -> float:
    """CPU time of the children ``pid`` has reaped (a procward boot's helpers), in ticks."""
    fields = _stat(pid)
    return (int(fields[13]) + int(fields[14])) / CLK


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


def http_get(sock: str, path: str) -> bytes:
    """One GET on a fresh connection: the body of a 200 (anything else fails: Go supervisord answers
    /index.html with an empty 301, which was once timed as its page)."""
    conn = UnixHTTPConnection(sock)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {response.reason}")
        return body
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


