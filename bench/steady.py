"""A steady HTTP load for the benchmark (S11): requests at a fixed rate from 127.0.0.1, one connection
each, made and judged by tests/load.py's ``request`` (the tests' load generator counts the same way)."""

from __future__ import annotations

import concurrent.futures
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from load import request


class SteadyLoad:
    """Requests at a fixed rate (open loop: a slow answer does not slow the sender), one connection each,
    from a pool of threads; bounded by ``limit`` requests. Counts failures by kind and keeps latencies."""

    def __init__(self, port: int, rate: float, limit: int = 200_000) -> None:
        self.port, self.interval, self.limit = port, 1.0 / rate, limit
        self.failed: dict[str, int] = {}
        self.latencies: list[float] = []
        self._pool = concurrent.futures.ThreadPoolExecutor(64)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sender = threading.Thread(target=self._send, daemon=True)

    def __enter__(self) -> SteadyLoad:
        self._sender.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sender.join()
        self._pool.shutdown(wait=True)

    def _send(self) -> None:
        next_at, sent = time.monotonic(), 0
        while not self._stop.is_set() and sent < self.limit:
            self._pool.submit(self._one)
            sent += 1
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)

    def _one(self) -> None:
        t0 = time.monotonic()
        kind, _ = request(self.port)
        with self._lock:
            if kind != "ok":
                self.failed[kind] = self.failed.get(kind, 0) + 1
            else:
                self.latencies.append(time.monotonic() - t0)
