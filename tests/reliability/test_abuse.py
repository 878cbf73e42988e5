"""Abuse of the HTTP/RPC interface over the real sockets: every bad request answered at once, nothing leaks."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time

from support import UnixHTTPConnection, wait_until

GET_STATE = (b"<?xml version='1.0'?><methodCall><methodName>supervisor.getState</methodName>"
             b"<params></params></methodCall>")


def raw(sock_path: str, data: bytes, *, shut: bool = True, timeout: float = 15) -> tuple[bytes, float]:
    """Send raw bytes; return the whole answer and how long it took."""
    start = time.monotonic()
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks), time.monotonic() - start


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def served(d) -> bool:
    return d.rpc().supervisor.getState()["statename"] == "RUNNING"


def test_half_closed_and_oversized_heads_get_4xx_at_once(daemon) -> None:
    """A body cut short by a half-close is 400; an oversized header line is 431; both answered at once."""
    d = daemon("[program:a]\ncommand=sleep 300\nstartsecs=0\n")
    head = b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nContent-Type: text/xml\r\n\r\n"
    answer, took = raw(d.sock, head + b"<?xml")
    assert status_of(answer) == 400
    assert took < 2
    answer, took = raw(d.sock, b"GET /ok.html HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
    assert status_of(answer) == 431
    assert took < 2
    answer, took = raw(d.sock, b"NOT HTTP AT ALL\r\n\r\n")
    assert status_of(answer) == 400
    assert took < 2
    answer, took = raw(d.sock, b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert status_of(answer) == 400
    assert took < 2
    assert served(d)


def test_deep_nesting_is_refused_quickly_and_memory_stays_flat(daemon) -> None:
    """10^5-deep nesting: refused (413, it is over the body limit) fast; RSS flat afterwards."""
    d = daemon("[program:a]\ncommand=sleep 300\nstartsecs=0\n")
    assert d.proc is not None
    before = _rss(d.proc.pid)
    body = (b"<?xml version='1.0'?><methodCall><methodName>system.listMethods</methodName><params><param><value>"
            + b"<array><data><value>" * 100_000 + b"</value></data></array>" * 100_000
            + b"</value></param></params></methodCall>")
    head = f"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    answer, took = raw(d.sock, head + body[:65536], shut=False)
    assert status_of(answer) == 413
    assert took < 2
    assert served(d)
    assert _rss(d.proc.pid) < before + 8192


def test_slow_client_is_timed_out_while_others_are_served(daemon) -> None:
    """One byte every half second: the daemon answers others meanwhile and drops the slow one (408/close)."""
    d = daemon("[program:a]\ncommand=sleep 300\nstartsecs=0\n")
    result: dict[str, object] = {}

    def slow() -> None:
        start = time.monotonic()
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(30)
            s.connect(d.sock)
            try:
                for byte in b"GET /ok.html HTTP/1.1\r\nHost: slowloris\r\nX-Pad: " + b"p" * 100:
                    s.send(bytes([byte]))
                    time.sleep(0.5)  # the attacker's pace
            except OSError:
                pass
            result["answer"] = s.recv(1024)
        result["took"] = time.monotonic() - start

    thread = threading.Thread(target=slow)
    thread.start()
    while thread.is_alive():
        assert served(d)  # others are answered while the slow client dribbles
        thread.join(timeout=0.5)
    assert result["took"] < 15  # cut off at the head timeout, long before its ~60 s of dribbling
    assert status_of(result["answer"]) in (0, 408)  # type: ignore[arg-type]


def test_hundreds_of_idle_connections_do_not_lock_others_out(daemon) -> None:
    """300 idle connections: still served; descriptors come back when they go."""
    d = daemon("[program:a]\ncommand=sleep 300\nstartsecs=0\n")
    assert d.proc is not None
    fds_before = len(os.listdir(f"/proc/{d.proc.pid}/fd"))
    idle = []
    try:
        for _ in range(300):
            s = socket.socket(socket.AF_UNIX)
            s.connect(d.sock)
            idle.append(s)
        assert served(d)
        conn = UnixHTTPConnection(d.sock, timeout=10)
        conn.request("GET", "/ok.html")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        for s in idle:
            s.close()
    wait_until(lambda: len(os.listdir(f"/proc/{d.proc.pid}/fd")) <= fds_before + 2,
               what="descriptors released")


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_http_framing_pipelining_head_continue_and_http10(daemon) -> None:
    """What the server writes itself, checked on the raw socket: pipelined requests answered in order
    on one connection, HEAD without a body, 100 Continue for a client that asks, an HTTP/1.0 client's
    stream delimited by the close (no chunks), and a head that grows past the limit over many small
    sends is still 431."""
    d = daemon("[program:a]\ncommand=sh -c 'echo hello-stream; exec sleep 300'\nstartsecs=0\n")
    d.wait_state("a", "RUNNING")
    call = (b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n"
            % len(GET_STATE) + GET_STATE)
    answer, _ = raw(d.sock, call + b"GET /ok.html HTTP/1.1\r\nHost: x\r\n\r\n" + call)
    answers = answer.split(b"HTTP/1.1 200 OK\r\n")
    assert len(answers) == 4
    assert answers[0] == b""
    assert b"<name>statename</name>" in answers[1]  # the RPC answer,
    assert answers[2].endswith(b"\r\n\r\nOK")  # then /ok.html's,
    assert b"<name>statename</name>" in answers[3]  # then the second RPC answer

    answer, _ = raw(d.sock, b"HEAD /ok.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Length: 2\r\n" in answer
    assert answer.endswith(b"\r\n\r\n")  # the head only

    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(d.sock)
        s.sendall(b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Type: text/xml\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(GET_STATE))
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(GET_STATE)
        answer = b""
        while b"</methodResponse>" not in answer:
            chunk = s.recv(65536)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")

    with socket.socket(socket.AF_UNIX) as s:  # tail -f as an HTTP/1.0 client: raw bytes, then the close
        s.settimeout(10)
        s.connect(d.sock)
        s.sendall(b"GET /logtail/a HTTP/1.0\r\n\r\n")
        answer = b""
        while b"hello-stream" not in answer:
            chunk = s.recv(65536)
            assert chunk, answer
            answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert b"Transfer-Encoding" not in head
        assert b"Connection: close" in head
        assert body.startswith(b"hello-stream")  # no chunk size line before the data

    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(d.sock)
        s.sendall(b"GET /ok.html HTTP/1.1\r\nHost: x\r\nX-Big: ")
        answer = b""
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(40):  # 40 sends of 1000 bytes, never ending the header line
                s.sendall(b"a" * 1000)
        while chunk := s.recv(65536):
            answer += chunk
        assert status_of(answer) == 431
    assert served(d)
