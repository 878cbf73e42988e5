"""A bounded HTTP load generator for the held-socket tests: workers send requests back to back, one
connection each, and count what failed and how (refused, reset, timed out, a bad answer)."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from typing import Any


class Load:
    """``with Load(port) as load: ...`` sends requests to 127.0.0.1:port until the block ends (or
    ``limit`` requests / ``seconds``, whichever first); ``load.ok`` and ``load.failed`` count them."""

    def __init__(self, port: int, *, workers: int = 4, limit: int = 100_000, seconds: float = 120.0,
                 unix: str | None = None) -> None:
        self.port, self.unix = port, unix
        self.workers, self.limit, self.seconds = workers, limit, seconds
        self.results: Counter[str] = Counter()
        self.answers: Counter[bytes] = Counter()  # the body of each answer (the servers say their pid)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Load:
        deadline = time.monotonic() + self.seconds
        self._threads = [threading.Thread(target=self._work, args=(deadline,), daemon=True)
                         for _ in range(self.workers)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        assert not any(t.is_alive() for t in self._threads), "a load worker is stuck"

    @property
    def ok(self) -> int:
        return self.results["ok"]

    @property
    def failed(self) -> dict[str, int]:
        return {kind: n for kind, n in self.results.items() if kind != "ok"}

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        """Block until ``count`` more requests have succeeded (the load is flowing)."""
        target = self.ok + count
        deadline = time.monotonic() + timeout
        while self.ok < target:
            assert time.monotonic() < deadline, f"load not flowing: {dict(self.results)}"
            time.sleep(0.01)

    def _work(self, deadline: float) -> None:
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                if sum(self.results.values()) >= self.limit:
                    return
            kind, body = request(self.port, self.unix)
            with self._lock:
                self.results[kind] += 1
                if body:
                    self.answers[body] += 1


def request(port: int, unix: str | None = None) -> tuple[str, bytes]:
    """One GET on a fresh connection to 127.0.0.1:port (or the unix socket): ("ok", the answer's first
    word), or how it failed: refused, reset, timeout, closed (no answer at all), bad answer, another OSError."""
    try:
        if unix:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(10)
            conn.connect(unix)
        else:
            conn = socket.create_connection(("127.0.0.1", port), timeout=10)
        with conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
    except ConnectionRefusedError:
        return "refused", b""
    except ConnectionResetError:
        return "reset", b""
    except TimeoutError:
        return "timeout", b""
    except OSError as exc:
        return type(exc).__name__, b""
    if not data:
        return "closed", b""  # the server closed the connection without answering
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return "bad answer", b""
    return "ok", body.split()[0] if body.split() else b""
