"""One command on several daemons at once (repeated ``-s``, or ``--nodes``): each runs in its own thread
with its own connection and credentials. Answers are printed as they come, each line prefixed with the
server's label; a server that has not answered within ``--timeout`` is one line saying so, and is left
behind (its thread is a daemon thread: the command exits without it). With ``--json`` the lists are
merged and each entry carries ``node``. The exit status is the worst of them."""

from __future__ import annotations

import dataclasses
import io
import json
import queue
import threading
import time
from collections.abc import Callable

from procward.config.model import CtlConfig
from procward.ctl.controller import BaseController, Exit
from procward.ctl.options import CtlOptions


def run(make: Callable[[CtlOptions, io.StringIO], BaseController], options: CtlOptions,
        write: Callable[[str], None]) -> int:
    """Run ``options.args`` on every server of ``options.fanout``; returns the worst exit status."""
    line = " ".join(options.args)
    results: dict[str, tuple[int, str]] = {}
    answers: queue.SimpleQueue[tuple[str, int, str]] = queue.SimpleQueue()

    def one(label: str, server: CtlConfig) -> None:
        out = io.StringIO()
        try:
            controller = make(dataclasses.replace(options, server=server, fanout=[]), out)
            controller.onecmd(line)
            answers.put((label, controller.exitstatus, out.getvalue()))
        except Exception as exc:  # noqa: BLE001 - one server's failure is reported, the others still answer
            answers.put((label, Exit.GENERIC, out.getvalue() + f"ERROR ({type(exc).__name__}: {exc})\n"))

    for label, server in options.fanout:
        threading.Thread(target=one, args=(label, server), name=f"ctl {label}", daemon=True).start()
    as_json = "--json" in options.args
    deadline = time.monotonic() + options.timeout
    while len(results) < len(options.fanout):
        try:
            label, status, text = answers.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        results[label] = (status, text)
        if not as_json:
            for text_line in text.splitlines():
                write(f"{label}: {text_line}")
    silence = f"ERROR: no answer within {options.timeout:g}s"
    for label, _server in options.fanout:
        if label not in results:
            results[label] = (Exit.INSUFFICIENT_PRIVILEGES, silence + "\n")
            if not as_json:
                write(f"{label}: {silence}")
    if as_json:
        ordered = {label: results[label] for label, _ in options.fanout}
        write(json.dumps(_merged(ordered), indent=2, sort_keys=True))
    return max((status for status, _ in results.values()), default=Exit.SUCCESS)


def _merged(results: dict[str, tuple[int, str]]) -> list[object]:
    merged: list[object] = []
    for label, (_status, text) in results.items():
        try:
            value = json.loads(text)
        except ValueError:
            merged.append({"node": label, "error": text.strip()})
            continue
        items = value if isinstance(value, list) else [value]
        merged += [{"node": label, **item} if isinstance(item, dict) else {"node": label, "value": item}
                   for item in items]
    return merged
