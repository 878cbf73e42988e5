"""A small event listener for the tests: speaks Supervisor's protocol and records what it receives.

Usage: listener.py RECORD_FILE [--fail-first N] [--die-first] [--bad-result] [--slow-ready FILE]

Each event is appended to RECORD_FILE as one JSON line: the header fields, the payload, and what the
listener answered. --fail-first N answers FAIL to the first N events it sees (the same event comes back);
--die-first exits while holding its first event (a marker file beside RECORD_FILE makes the next instance
behave); --bad-result answers with a malformed result line; --slow-ready FILE sends READY only once FILE
exists (lets a test fill the buffer first).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

# A SIGTERM (the daemon stopping it, at a reload) ends the listener at once, unless it holds an event:
# then the event is recorded and answered first. Killed in between, it would record an event the daemon
# never saw acknowledged and rightly sends again (a test counting serials would see it twice).
_busy = False
_stopping = False


def _on_term(_signum: int, _frame: object) -> None:
    global _stopping
    if not _busy:
        raise SystemExit(0)
    _stopping = True


def main() -> int:
    global _busy
    signal.signal(signal.SIGTERM, _on_term)
    args = sys.argv[1:]
    record = args[0]
    fail_first = int(args[args.index("--fail-first") + 1]) if "--fail-first" in args else 0
    marker = record + ".died"
    die_first = "--die-first" in args and not os.path.exists(marker)
    gate = args[args.index("--slow-ready") + 1] if "--slow-ready" in args else None
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    seen = 0
    while True:
        while gate and not os.path.exists(gate):
            time.sleep(0.02)
        stdout.write(b"READY\n")
        stdout.flush()
        line = stdin.readline()
        if not line:
            return 0
        _busy = True
        headers = dict(token.split(":", 1) for token in line.decode().split())
        payload = stdin.read(int(headers["len"])).decode()  # ASCII payloads in these tests
        seen += 1
        if die_first:
            with open(marker, "w"):
                pass
            _record(record, headers, payload, "died")
            os._exit(1)
        if "--bad-result" in args:
            answer = b"RESULT x\nOK"
        elif seen <= fail_first:
            answer = b"RESULT 4\nFAIL"
        else:
            answer = b"RESULT 2\nOK"
        _record(record, headers, payload, answer.split(b"\n")[1].decode())
        stdout.write(answer)
        stdout.flush()
        _busy = False
        if _stopping:
            return 0


def _record(path: str, headers: dict[str, str], payload: str, answer: str) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps({**headers, "payload": payload, "answer": answer}) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
