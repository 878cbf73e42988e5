"""``procward ctl update --dry-run`` and ``update --precise``: procward's own update (one RPC call,
``procward.update``), which restarts only the processes whose own options changed, and can say so
without doing it. Plain ``update`` keeps supervisorctl's meaning and output. ``reexec``: the daemon
re-executes its code keeping every program running (core/daemon/handover.py)."""

from __future__ import annotations

import json
import xmlrpc.client
from typing import Any

from procward.ctl.controller import BaseController
from procward.protocol import Faults


class UpdateCommands(BaseController):
    """procward's update modes, and reexec."""

    def do_reexec(self, arg: str) -> None:
        if arg.split():
            self._usage("reexec accepts no arguments", self.help_reexec)
            return
        if not self.upcheck():
            return
        try:
            self.server().procward.reexec()
        except xmlrpc.client.Fault as exc:
            self._fail_with(f"ERROR: {exc.faultString}")
            return
        self.output("reexec: the daemon is switching to its new code; every program keeps running")

    def help_reexec(self) -> None:
        self.output("reexec\t\t\tRestart the daemon's own code (upgraded or not); programs keep running")

    def procward_update(self, args: list[str]) -> None:
        dry_run = "--dry-run" in args
        try:
            result = self.server().procward.update(dry_run, "--rolling" in args)
        except xmlrpc.client.Fault as exc:
            if exc.faultCode == Faults.UNKNOWN_METHOD:
                self._fail_with("ERROR: this daemon has no procward.update (use update without options)")
            else:
                self._fail_with(f"ERROR: {exc.faultString}")
            return
        if "--json" in args:
            self.output(json.dumps(result, indent=2, sort_keys=True))
            return
        for line in diff_lines(result):
            self.output(line)
        if not (result["added"] or result["removed"] or result["changed"]):
            self.output("no changes")


def diff_lines(result: dict[str, Any]) -> list[str]:
    """The plan as a diff: ``+`` added, ``-`` removed, ``~`` changed (with the options that differ)."""
    lines = [f"+ {name} (group added)" for name in result["added"]]
    lines += [f"- {name} (group removed)" for name in result["removed"]]
    for change in result["changed"]:
        group = change["name"]
        if change["whole"]:
            lines.append(f"~ {group} (group replaced: {', '.join(change['whole'])})")
            continue
        why = change.get("why", {})  # a daemon before this field sends none
        lines += [f"+ {group}:{name}" + (f" ({why[name]})" if name in why else "") for name in change["added"]]
        lines += [f"- {group}:{name}" + (f" ({why[name]})" if name in why else "") for name in change["removed"]]
        lines += [f"~ {group}:{name} ({', '.join(options)})" for name, options in change["changed"].items()]
    return lines
