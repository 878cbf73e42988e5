"""supervisorctl's commands, with its output lines and exit statuses, plus ``--json`` on read commands."""

from __future__ import annotations

import dataclasses
import json
import urllib.parse
import xmlrpc.client
from collections.abc import Iterable
from typing import Any

from procward.ctl.alarms import AlarmCommands
from procward.ctl.controller import Exit, StatusExit
from procward.ctl.follow import LogCommands
from procward.ctl.updates import UpdateCommands
from procward.protocol import STOPPED_STATES, Faults, ProcessInfo, namespec, sockets_text, split_namespec

_START_ERRORS: dict[int, str] = {
    Faults.BAD_NAME: "no such process",
    Faults.NO_FILE: "no such file",
    Faults.NOT_EXECUTABLE: "file is not executable",
    Faults.ALREADY_STARTED: "already started",
    Faults.SPAWN_ERROR: "spawn error",
    Faults.ABNORMAL_TERMINATION: "abnormal termination",
}
_SIGNAL_ERRORS: dict[int, str] = {
    Faults.BAD_NAME: "no such process",
    Faults.BAD_SIGNAL: "bad signal name",
    Faults.NOT_RUNNING: "not running",
}
_CLEAR_ERRORS: dict[int, str] = {Faults.BAD_NAME: "no such process", Faults.FAILED: "failed"}
_UNLISTED = frozenset({"alarm", "reexec", "logtail"})


def _take_json(args: list[str]) -> tuple[list[str], bool]:
    return [a for a in args if a != "--json"], "--json" in args


class Commands(LogCommands, AlarmCommands, UpdateCommands):
    """Every supervisorctl 4.3 command (``do_*``) and its help (``help_*``)."""

    # -- status, pid, avail, version -----------------------------------------------------------------

    def do_status(self, arg: str) -> None:
        if not self.upcheck():
            self.exitstatus = StatusExit.UNKNOWN  # status reports an unreachable server as UNKNOWN
            return
        names, as_json = _take_json(arg.split())
        health, usage, sockets = "--health" in names, "--usage" in names, "--sockets" in names
        names = [n for n in names if n not in ("--health", "--usage", "--sockets")]
        infos: list[ProcessInfo] = self.supervisor().getAllProcessInfo()
        matching = infos if not names or "all" in names else self._select(infos, names)
        if as_json:
            self.output(json.dumps([{"namespec": namespec(i["group"], i["name"]), **i} for i in matching],
                                   indent=2, sort_keys=True))
        else:
            self._show_statuses(matching, health=health, usage=usage, sockets=sockets)
        if any(info["state"] in STOPPED_STATES for info in matching):
            self.exitstatus = StatusExit.NOT_RUNNING

    def _select(self, infos: list[ProcessInfo], names: list[str]) -> list[ProcessInfo]:
        chosen = []
        for name in names:
            group, process = split_namespec(name)
            found = [i for i in infos if i["group"] == group and (process is None or i["name"] == process)]
            if not found:
                self.output(f"{group}: ERROR (no such group)" if process is None
                            else f"{name}: ERROR (no such process)")
                self.exitstatus = StatusExit.UNKNOWN
            chosen.extend(found)
        return chosen

    def _show_statuses(self, infos: list[ProcessInfo], *, health: bool = False, usage: bool = False,
                       sockets: bool = False) -> None:
        specs = [namespec(i["group"], i["name"]) for i in infos]
        width = max([30, *map(len, specs)]) + 3
        for spec, info in zip(specs, infos, strict=True):
            column = f"{info.get('health') or '-':<10}" if health else ""  # absent against supervisord
            if usage:  # the process tree's CPU and resident memory (absent against supervisord: '-')
                cpu = f"{info['cpu_percent']:.1f}%" if "cpu_percent" in info else "-"
                memory = f"{info['rss_kb'] / 1024:.1f}M" if "rss_kb" in info else "-"
                column += f"{cpu:>7} {memory:>9}  "
            held = f"  sockets: {sockets_text(info)}" if sockets else ""
            self.output(f"{spec:<{width}}{info['statename']:<10}{column}{info['description']}{held}")

    def help_status(self) -> None:
        self.output("status <name>\t\tGet status for a single process")
        self.output("status <gname>:*\tGet status for all processes in a group")
        self.output("status <name> <name>\tGet status for multiple named processes")
        self.output("status\t\t\tGet all process status info")
        self.output("status --json ...\tThe same, as JSON (every getProcessInfo key)")
        self.output("status --health ...\tAdd a health column (starting, healthy, unhealthy, - for none)")
        self.output("status --usage ...\tAdd CPU % and resident memory of each process tree")
        self.output("status --sockets ...\tAdd the listening sockets procward holds for each process")

    def do_pid(self, arg: str) -> None:
        if not self.upcheck():
            return
        names, as_json = _take_json(arg.split())
        sup = self.supervisor()
        if not names:
            pid = sup.getPID()
            self.output(json.dumps({"pid": pid}) if as_json else str(pid))
            return
        infos = sup.getAllProcessInfo() if "all" in names else self._infos_by_name(sup, names)
        if as_json:
            self.output(json.dumps({namespec(i["group"], i["name"]): i["pid"] for i in infos}, indent=2))
            return
        for info in infos:
            self.output(str(info["pid"]))

    def _infos_by_name(self, sup: Any, names: list[str]) -> list[ProcessInfo]:
        infos: list[ProcessInfo] = []
        for name in names:
            try:
                info = sup.getProcessInfo(name)
            except xmlrpc.client.Fault as exc:
                self.exitstatus = Exit.GENERIC
                if exc.faultCode != Faults.BAD_NAME:
                    raise
                self.output(f"No such process {name}")
                continue
            if info["pid"] == 0:
                self.exitstatus = Exit.NOT_RUNNING
            infos.append(info)
        return infos

    def help_pid(self) -> None:
        self.output("pid\t\t\tGet the PID of supervisord.")
        self.output("pid <name>\t\tGet the PID of a single child process by name.")
        self.output("pid all\t\t\tGet the PID of every child process, one per line.")

    def do_avail(self, arg: str) -> None:
        args, as_json = _take_json(arg.split())
        if args:
            self._usage("avail accepts no arguments", self.help_avail)
            return
        try:
            infos = self.supervisor().getAllConfigInfo()
        except xmlrpc.client.Fault as exc:
            self._shutting_down_or_raise(exc, "ERROR: supervisor shutting down")
            return
        if as_json:
            self.output(json.dumps(infos, indent=2, sort_keys=True))
            return
        for info in infos:
            inuse = "in use" if info["inuse"] else "avail"
            auto = "auto" if info["autostart"] else "manual"
            prio = f"{info['group_prio']}:{info['process_prio']}"
            self.output(f"{namespec(info['group'], info['name']):<32} {inuse:<9} {auto:<9} {prio}")

    def help_avail(self) -> None:
        self.output("avail\t\t\tDisplay all configured processes")

    def do_version(self, arg: str) -> None:
        args, as_json = _take_json(arg.split())
        if args:
            self._usage("version accepts no arguments", self.help_version)
            return
        if not self.upcheck():
            return
        version = self.supervisor().getSupervisorVersion()
        self.output(json.dumps({"version": version}) if as_json else version)

    def help_version(self) -> None:
        self.output("version\t\t\tShow the version of the remote supervisord process")

    # -- start, stop, restart, signal, clear ---------------------------------------------------------

    def do_start(self, arg: str) -> None:
        if not self.upcheck():
            return
        names = arg.split()
        if not names:
            self.output("Error: start requires a process name")
            self.exitstatus = Exit.INVALID_ARGS
            self.help_start()
            return
        self._apply(names, "start", "started", _START_ERRORS, Faults.ALREADY_STARTED, Exit.INVALID_ARGS)

    def help_start(self) -> None:
        self.output("start <name>\t\tStart a process")
        self.output("start <gname>:*\t\tStart all processes in a group")
        self.output("start <name> <name>\tStart multiple processes or groups")
        self.output("start all\t\tStart all processes")

    def do_stop(self, arg: str) -> None:
        if not self.upcheck():
            return
        names = arg.split()
        if not names:
            self._usage("stop requires a process name", self.help_stop)
            return
        self._apply(names, "stop", "stopped", _SIGNAL_ERRORS, Faults.NOT_RUNNING, Exit.GENERIC)

    def help_stop(self) -> None:
        self.output("stop <name>\t\tStop a process")
        self.output("stop <gname>:*\t\tStop all processes in a group")
        self.output("stop <name> <name>\tStop multiple processes or groups")
        self.output("stop all\t\tStop all processes")

    def do_restart(self, arg: str) -> None:
        if not self.upcheck():
            return
        names = [a for a in arg.split() if a != "--rolling"]
        if not names:
            self._usage("restart requires a process name", self.help_restart)
            return
        if "--rolling" in arg.split():
            self._rolling(names)
            return
        self.do_stop(arg)
        self.do_start(arg)

    def _rolling(self, names: list[str]) -> None:
        """procward's rolling restart: one process at a time, each ready before the next."""
        for name in names:
            try:
                done = self.server().procward.rollingRestart(name)
            except xmlrpc.client.Fault as exc:
                self.output(f"{name}: ERROR ({exc.faultString})")
                self.exitstatus = Exit.GENERIC
                continue
            for spec in done:
                self.output(f"{spec}: restarted")

    def help_restart(self) -> None:
        self.output("restart <name>\t\tRestart a process")
        self.output("restart <gname>:*\tRestart all processes in a group")
        self.output("restart <name> <name>\tRestart multiple processes or groups")
        self.output("restart all\t\tRestart all processes")
        self.output("Note: restart does not reread config files. For that, see reread and update.")

    def do_signal(self, arg: str) -> None:
        if not self.upcheck():
            return
        args = arg.split()
        if len(args) < 2:
            self.output("Error: signal requires a signal name and a process name")
            self.help_signal()
            self.exitstatus = Exit.GENERIC
            return
        self._apply(args[1:], "signal", "signalled", _SIGNAL_ERRORS, None, Exit.GENERIC, sig=args[0])

    def help_signal(self) -> None:
        self.output("signal <signal name> <name>\t\tSignal a process")
        self.output("signal <signal name> <gname>:*\t\tSignal all processes in a group")
        self.output("signal <signal name> <name> <name>\tSignal multiple processes or groups")
        self.output("signal <signal name> all\t\tSignal all processes")

    def do_clear(self, arg: str) -> None:
        if not self.upcheck():
            return
        names = arg.split()
        if not names:
            self._usage("clear requires a process name", self.help_clear)
            return
        sup = self.supervisor()
        if "all" in names:
            self._report(sup.clearAllProcessLogs(), "cleared", _CLEAR_ERRORS, None)
            return
        for name in names:
            group, process = split_namespec(name)
            try:
                sup.clearProcessLogs(name)
            except xmlrpc.client.Fault as exc:
                self._report([_fault_result(exc, group, process)], "cleared", _CLEAR_ERRORS, None)
            else:
                self.output(f"{namespec(group, process or '')}: cleared")

    def help_clear(self) -> None:
        self.output("clear <name>\t\tClear a process' log files.")
        self.output("clear <name> <name>\tClear multiple process' log files")
        self.output("clear all\t\tClear all process' log files")

    def _apply(self, names: list[str], verb: str, done: str, errors: dict[int, str], ignored: int | None,
               bad_group_exit: int, sig: str | None = None) -> None:
        """start/stop/signal over names, groups (``g:*``) or ``all``, reporting as supervisorctl does."""
        sup = self.supervisor()
        extra = () if sig is None else (sig,)
        if "all" in names:
            self._report(getattr(sup, f"{verb}AllProcesses")(*extra), done, errors, ignored)
            return
        for name in names:
            group, process = split_namespec(name)
            if process is None:
                try:
                    results = getattr(sup, f"{verb}ProcessGroup")(group, *extra)
                except xmlrpc.client.Fault as exc:
                    if exc.faultCode != Faults.BAD_NAME:
                        self.exitstatus = Exit.GENERIC
                        raise
                    self.output(f"{group}: ERROR (no such group)")
                    self.exitstatus = bad_group_exit
                    continue
                self._report(results, done, errors, ignored)
                continue
            try:
                getattr(sup, f"{verb}Process")(name, *extra)
            except xmlrpc.client.Fault as exc:
                self._report([_fault_result(exc, group, process)], done, errors, ignored)
            else:
                self.output(f"{namespec(group, process)}: {done}")

    def _report(self, results: Iterable[dict[str, Any]], done: str, errors: dict[int, str],
                ignored: int | None) -> None:
        for result in results:
            name = namespec(result["group"], result["name"])
            code = result["status"]
            if code == Faults.SUCCESS:
                self.output(f"{name}: {done}")
            elif code in errors:
                self.output(f"{name}: ERROR ({errors[code]})")
            else:  # FAILED and anything new: the daemon's own words
                self.output(result.get("description") or f"{name}: ERROR (fault {code})")
            self.set_exitstatus_from_fault(code, ignored)

    # -- configuration: reread, update, add, remove ------------------------------------------------------

    def do_reread(self, arg: str) -> None:
        if arg.strip():
            self._usage("reread accepts no arguments", self.help_reread)
            return
        try:
            added, changed, removed = self.supervisor().reloadConfig()[0]
        except xmlrpc.client.Fault as exc:
            if exc.faultCode == Faults.CANT_REREAD:
                self._fail_with(f"ERROR: {exc.faultString}")
                return
            self._shutting_down_or_raise(exc, "ERROR: supervisor shutting down")
            return
        changes = {**dict.fromkeys(added, "available"), **dict.fromkeys(changed, "changed"),
                   **dict.fromkeys(removed, "disappeared")}
        for name in sorted(changes):
            self.output(f"{name}: {changes[name]}")
        if not changes:
            self.output("No config updates to processes")

    def help_reread(self) -> None:
        self.output("reread \t\t\tReload the daemon's configuration files without add/remove")

    def do_update(self, arg: str) -> None:
        if {"--dry-run", "--precise", "--rolling"} & set(arg.split()):  # procward's own update
            self.procward_update(arg.split())
            return
        sup = self.supervisor()
        try:
            added, changed, removed = sup.reloadConfig()[0]
        except xmlrpc.client.Fault as exc:
            if exc.faultCode == Faults.CANT_REREAD:
                self._fail_with(f"ERROR: {exc.faultString}")
                return
            self._shutting_down_or_raise(exc, "ERROR: already shutting down")
            return
        wanted = set(arg.split()) - {"all"} if "all" not in arg.split() else set()
        if wanted:
            known = {info["group"] for info in sup.getAllProcessInfo()} | set(added)
            for name in sorted(wanted - known):
                self._fail_with(f"ERROR: no such group: {name}")
        for name in removed:
            if wanted and name not in wanted:
                continue
            results = sup.stopProcessGroup(name)
            self.output(f"{name}: stopped")
            if any(r["status"] == Faults.FAILED for r in results):
                self._fail_with(f"{name}: has problems; not removing")
                continue
            sup.removeProcessGroup(name)
            self.output(f"{name}: removed process group")
        for name in changed:
            if wanted and name not in wanted:
                continue
            sup.stopProcessGroup(name)
            self.output(f"{name}: stopped")
            sup.removeProcessGroup(name)
            sup.addProcessGroup(name)
            self.output(f"{name}: updated process group")
        for name in added:
            if wanted and name not in wanted:
                continue
            sup.addProcessGroup(name)
            self.output(f"{name}: added process group")

    def help_update(self) -> None:
        self.output("update\t\t\tReload config and add/remove as necessary, and will restart affected programs")
        self.output("update all\t\tReload config and add/remove as necessary, and will restart affected programs")
        self.output("update <gname> [...]\tUpdate specific groups")
        self.output("update --dry-run\tSay what update --precise would do (+ added, - removed, ~ changed, with\n"
                    "\t\t\tthe options that differ), and do nothing")
        self.output("update --precise\tRestart only the processes whose own options changed (procward)")
        self.output("update --rolling\tThe same, one changed process at a time, each ready before the next")

    def do_add(self, arg: str) -> None:
        sup = self.supervisor()
        for name in arg.split():
            try:
                sup.addProcessGroup(name)
            except xmlrpc.client.Fault as exc:
                if exc.faultCode == Faults.ALREADY_ADDED:
                    self.output("ERROR: process group already active")
                elif exc.faultCode == Faults.BAD_NAME:
                    self._fail_with(f"ERROR: no such process/group: {name}")
                else:
                    self._shutting_down_or_raise(exc, "ERROR: shutting down")
            else:
                self.output(f"{name}: added process group")

    def help_add(self) -> None:
        self.output("add <name> [...]\tActivates any updates in config for process/group")

    def do_remove(self, arg: str) -> None:
        sup = self.supervisor()
        for name in arg.split():
            try:
                sup.removeProcessGroup(name)
            except xmlrpc.client.Fault as exc:
                self.exitstatus = Exit.GENERIC
                if exc.faultCode == Faults.STILL_RUNNING:
                    self.output(f"ERROR: process/group still running: {name}")
                elif exc.faultCode == Faults.BAD_NAME:
                    self.output(f"ERROR: no such process/group: {name}")
                else:
                    raise
            else:
                self.output(f"{name}: removed process group")

    def help_remove(self) -> None:
        self.output("remove <name> [...]\tRemoves process/group from active config")

    # -- the daemon itself -----------------------------------------------------------------------------

    def do_reload(self, arg: str) -> None:
        if arg.strip():
            self._usage("reload accepts no arguments", self.help_reload)
            return
        if not self._confirm("Really restart the remote supervisord process y/N? "):
            return
        try:
            self.supervisor().restart()
        except xmlrpc.client.Fault as exc:
            self.exitstatus = Exit.GENERIC
            self._shutting_down_or_raise(exc, "ERROR: already shutting down")
        else:
            self.output("Restarted supervisord")

    def help_reload(self) -> None:
        self.output("reload \t\tRestart the remote supervisord.")

    def do_shutdown(self, arg: str) -> None:
        if arg.strip():
            self._usage("shutdown accepts no arguments", self.help_shutdown)
            return
        if not self._confirm("Really shut the remote supervisord process down y/N? "):
            return
        try:
            self.supervisor().shutdown()
        except xmlrpc.client.Fault as exc:
            if exc.faultCode != Faults.SHUTDOWN_STATE:
                self.exitstatus = Exit.GENERIC
                raise
            self.output("ERROR: already shutting down")
        except (ConnectionRefusedError, FileNotFoundError) as exc:
            why = "refused connection" if isinstance(exc, ConnectionRefusedError) else "no such file"
            self._fail_with(f"ERROR: {self.options.server.serverurl} {why} (already shut down?)")
        else:
            self.output("Shut down")

    def help_shutdown(self) -> None:
        self.output("shutdown \tShut the remote supervisord down.")

    def do_open(self, arg: str) -> None:
        url = arg.strip()
        if urllib.parse.urlsplit(url).scheme not in ("unix", "http"):
            self._fail_with("ERROR: url must be http:// or unix://")
            return
        self.options.server = dataclasses.replace(self.options.server, serverurl=url)
        before = self.exitstatus
        self.do_status("")
        self.exitstatus = before

    def help_open(self) -> None:
        self.output("open <url>\tConnect to a remote supervisord process.")
        self.output("\t\t(for UNIX domain socket, use unix:///socket/path)")

    # -- shell ------------------------------------------------------------------------------------------

    def do_quit(self, arg: str) -> bool:
        return self.do_EOF(arg)

    def help_quit(self) -> None:
        self.output("quit\tExit the supervisor shell.")

    do_exit = do_quit

    def help_exit(self) -> None:
        self.output("exit\tExit the supervisor shell.")

    def do_help(self, arg: str) -> None:
        topic = arg.strip()
        if topic == "help":
            self.output("help\t\tPrint a list of available actions")
            self.output("help <action>\tPrint help for <action>")
            return
        if topic:
            helper = getattr(self, "help_" + topic, None)
            if helper is None:
                self.output(self.nohelp % (topic,))
                return
            helper()
            return
        self.output("")
        # The list stays supervisorctl's, byte for byte (scripts compare it); procward's own commands
        # have their ``help <command>``.
        listed = [c for c in self.commands() if c not in _UNLISTED]
        self.print_topics(self.doc_header, listed, 15, 80)

    # -- helpers ----------------------------------------------------------------------------------------

    def _shutting_down_or_raise(self, exc: xmlrpc.client.Fault, message: str) -> None:
        self.exitstatus = Exit.GENERIC
        if exc.faultCode != Faults.SHUTDOWN_STATE:
            raise exc
        self.output(message)

    def _confirm(self, question: str) -> bool:
        if not self.options.interactive:
            return True
        return input(question).lower().startswith("y")


def _fault_result(exc: xmlrpc.client.Fault, group: str, process: str | None) -> dict[str, Any]:
    return {"status": exc.faultCode, "group": group, "name": process or "", "description": exc.faultString}
