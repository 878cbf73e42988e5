"""What the machine and the interpreter allow, to put bench/run.py's figures in context.

  - raw spawn cost: a bare loop of subprocess.Popen(["sleep", "3600"]) holding what procward holds per
    program (three pipes). Every spawn copies the parent's descriptor table, so the cost per spawn grows
    with the number of programs already running: N programs cost more than N times one.
  - raw restart: SIGKILL a child, wait for it (blocking waitpid: the fastest detection there is), spawn
    the next: the floor under S3, which adds a supervisor's bookkeeping and a client's polling.
  - RPC floor: the S5 round trip (a fresh connection, one POST of a getProcessInfo call, the answer read
    by http.client) against an asyncio server that parses nothing and answers a canned 1.5 KB body, one
    on asyncio's streams and one on a bare Protocol: what the client, the kernel and asyncio cost before
    any HTTP parsing or XML-RPC work; with the server's CPU per call (its schedstat), to set beside S5's
    "daemon CPU per call".
  - RSS floor: a bare interpreter, then the daemon's imports one group at a time (ssl blocked, as in the
    daemon)

Usage: python bench/limits.py [--sizes 500,1000,2000]
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import time

IMPORT_STEPS = [
    ("stdlib (asyncio, logging, subprocess)", "import asyncio, logging.handlers, subprocess"),
    ("defusedxml.ElementTree", "import defusedxml.ElementTree"),
    ("httptools", "import httptools"),
    ("procward's modules", "import procward.cli, procward.core.daemon.run, procward.http.server, procward.rpc"),
]


def raw_spawn(n: int) -> float:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(3 * n + 64, 1024), hard))
    children = []
    t0 = time.perf_counter()
    for _ in range(n):
        child = subprocess.Popen(["sleep", "3600"], process_group=0, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        children.append(child)
    elapsed = time.perf_counter() - t0
    for child in children:
        child.kill()
    for child in children:
        child.wait()
        for pipe in (child.stdin, child.stdout, child.stderr):
            assert pipe is not None
            pipe.close()
    return elapsed


def raw_restart(kills: int) -> list[float]:
    """Seconds from SIGKILL to the next child spawned, ``kills`` times."""
    samples = []
    child = subprocess.Popen(["sleep", "3600"], process_group=0, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    for _ in range(kills):
        t0 = time.perf_counter()
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        for pipe in (child.stdin, child.stdout, child.stderr):
            assert pipe is not None
            pipe.close()
        child = subprocess.Popen(["sleep", "3600"], process_group=0, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        samples.append(time.perf_counter() - t0)
    child.kill()
    child.wait()
    return samples


# Two canned-answer servers: asyncio's streams (what a plain asyncio server costs; it closes after its
# answer), and a bare Protocol that answers from data_received once the head and body are in and closes
# at the client's end of file, as procward's keep-alive connections do (the least asyncio can do: no
# task, no reader, no close of its own). Both answer 1.5 KB, about a getProcessInfo struct.
_ANSWER = """
import asyncio, sys
ANSWER = b"HTTP/1.1 200 OK\\r\\nContent-Type: text/xml\\r\\nContent-Length: 1500\\r\\n\\r\\n" + b"x" * 1500
"""
FLOOR_SERVERS = {
    "asyncio streams": _ANSWER + """
async def serve(reader, writer):
    head = await reader.readuntil(b"\\r\\n\\r\\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\\r\\n")[0])
    await reader.readexactly(length)
    writer.write(ANSWER)
    await writer.drain()
    writer.close()
async def main():
    server = await asyncio.start_unix_server(serve, sys.argv[1])
    print("ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
""",
    "asyncio protocol": _ANSWER + """
class Answer(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.data = transport, b""
    def data_received(self, data):
        self.data += data
        head, sep, body = self.data.partition(b"\\r\\n\\r\\n")
        if sep and len(body) >= int(head.lower().split(b"content-length:")[1].split(b"\\r\\n")[0]):
            self.transport.write(ANSWER)
            self.data = b""
async def main():
    server = await asyncio.get_running_loop().create_unix_server(Answer, sys.argv[1])
    print("ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
""",
}


def rpc_floor(server: str, calls: int) -> tuple[list[float], float]:
    """Seconds per round trip against the canned-answer ``server`` (FLOOR_SERVERS) in a child process, and
    the seconds of CPU it used per call."""
    import tempfile

    from harness import run_seconds
    from support import UnixHTTPConnection

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "floor.sock")
        child = subprocess.Popen([sys.executable, "-c", FLOOR_SERVERS[server], path], stdout=subprocess.PIPE,
                                 text=True)
        try:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("the floor server did not start")
            body = b"<?xml version='1.0'?>\n<methodCall>\n<methodName>supervisor.getProcessInfo</methodName>\n" \
                   b"<params>\n<param>\n<value><string>p0001</string></value>\n</param>\n</params>\n</methodCall>\n"
            samples = []
            cpu0 = run_seconds(child.pid)
            for _ in range(calls):
                t0 = time.perf_counter()
                conn = UnixHTTPConnection(path)
                conn.request("POST", "/RPC2", body, {"Content-Type": "text/xml"})
                conn.getresponse().read()
                conn.close()
                samples.append(time.perf_counter() - t0)
            return samples, (run_seconds(child.pid) - cpu0) / calls
        finally:
            child.kill()
            child.wait()


def import_rss() -> list[tuple[str, float]]:
    code = ["import sys; sys.modules['ssl'] = None",
            "rss = lambda: int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) / 1024",
            "print('interpreter', rss())"]
    code += [f"{stmt}; print({label!r}, rss())" for label, stmt in IMPORT_STEPS]
    out = subprocess.run([sys.executable, "-c", "\n".join(code)], capture_output=True, text=True, check=True)
    return [(line.rsplit(" ", 1)[0], float(line.rsplit(" ", 1)[1])) for line in out.stdout.splitlines()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,1000,2000")
    parser.add_argument("--kills", type=int, default=300)
    args = parser.parse_args()
    for server in FLOOR_SERVERS:
        floor, server_cpu = rpc_floor(server, 3000)
        floor.sort()
        print(f"RPC floor (fresh connection, canned answer, {server}) x3000: median "
              f"{1000 * floor[len(floor) // 2]:.3f} ms, p95 {1000 * floor[int(0.95 * len(floor))]:.3f} ms, "
              f"server CPU {1e6 * server_cpu:.0f} us a call")
    samples = sorted(raw_restart(args.kills))
    print(f"raw restart (SIGKILL, waitpid, Popen) x{args.kills}: median {1000 * samples[len(samples) // 2]:.3f} ms, "
          f"p95 {1000 * samples[int(0.95 * len(samples))]:.3f} ms")
    for n in (int(s) for s in args.sizes.split(",")):
        elapsed = raw_spawn(n)
        print(f"raw Popen x{n}: {elapsed:.3f} s ({1000 * elapsed / n:.2f} ms each)")
    previous = 0.0
    for label, rss in import_rss():
        print(f"RSS after {label}: {rss:.1f} MB (+{rss - previous:.1f})")
        previous = rss
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
