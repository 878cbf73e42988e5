"""One command on several daemons at once (repeated ``-s``, or ``--nodes``): each runs in its own thread
with its own connection and credentials, so a daemon that does not answer costs its own timeout and the
others still answer. Each output line is prefixed with the server's label; with ``--json`` the lists are
merged and each entry carries ``node``. The exit status is the worst of them."""

from __future__ import annotations

import dataclasses
import io
import json
import threading
from collections.abc import Callable

from procward.config.model import CtlConfig
from procward.ctl.controller import BaseController, Exit
from procward.ctl.options import CtlOptions


def run(make: Callable[[CtlOptions, io.StringIO], BaseController], options: CtlOptions,
        write: Callable[[str], None]) -> int:
    """Run ``options.args`` on every server of ``options.fanout``; returns the worst exit status."""
    line = " ".join(options.args)
    results: dict[str, tuple[int, str]] = {}

    def one(label: str, server: CtlConfig) -> None:
        out = io.StringIO()
        try:
            controller = make(dataclasses.replace(options, server=server, fanout=[]), out)
            controller.onecmd(line)
            results[label] = (controller.exitstatus, out.getvalue())
        except Exception as exc:  # noqa: BLE001 - one server's failure is reported, the others still answer
            results[label] = (Exit.GENERIC, out.getvalue() + f"ERROR ({type(exc).__name__}: {exc})\n")

    threads = [threading.Thread(target=one, args=(label, server)) for label, server in options.fanout]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if "--json" in options.args:
        write(json.dumps(_merged(results), indent=2, sort_keys=True))
    else:
        for label, _server in options.fanout:
            for text in results[label][1].splitlines():
                write(f"{label}: {text}")
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
