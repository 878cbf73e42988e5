"""The structs the API answers with: getProcessInfo's (with its description text) and getAllConfigInfo's."""

from __future__ import annotations

import datetime
import time
from typing import Any

from procward.config.model import GroupConfig, LogConfig, ProcessConfig
from procward.config.sockets import FIRST_FD
from procward.config.values import LogTarget
from procward.core.daemon.group import ProcessGroup
from procward.core.daemon.usage import Usage
from procward.core.process.lifecycle import Process
from procward.core.states import ProcessState
from procward.protocol import ProcessInfo

S = ProcessState
_XMLRPC_MAXINT = 2**31 - 1


def _capped(value: float) -> int:
    return min(int(value), _XMLRPC_MAXINT)


def describe(process: Process, now: float) -> str:
    """The description column of ``status``, exactly as Supervisor words it."""
    state = process.state
    if state == S.RUNNING:
        # Supervisor subtracts the two times truncated to whole seconds.
        uptime = datetime.timedelta(seconds=max(int(now) - int(process.laststart), 0))
        text = f"pid {process.pid}, uptime {uptime}"
        return f"{text}, {process.status_text}" if process.status_text else text  # sd_notify STATUS=
    if state in (S.FATAL, S.BACKOFF):
        return process.spawnerr or f'unknown error (try "tail {process.name}")'
    if process.waiting:
        return process.waiting  # depends_on: what the start is waiting for
    if state in (S.STOPPED, S.EXITED):
        if process.laststart:
            return datetime.datetime(*time.localtime(process.laststop)[:7]).strftime("%b %d %I:%M %p")
        return "Not started"
    return ""


def process_info(process: Process, now: float, usage: Usage | None = None) -> ProcessInfo:
    """The getProcessInfo struct (every key and type Supervisor 4.3 sends)."""
    info: ProcessInfo = {
        "name": process.name,
        "group": process.group,
        "start": _capped(process.laststart),
        "stop": _capped(process.laststop),
        "now": _capped(now),
        "state": int(process.state),
        "statename": process.state.name,
        "spawnerr": process.spawnerr,
        "exitstatus": process.exitstatus,
        "logfile": process.output.paths["stdout"] or "",
        "stdout_logfile": process.output.paths["stdout"] or "",
        "stderr_logfile": process.output.paths["stderr"] or "",
        "pid": process.pid,
        "description": describe(process, now),
        # procward's additions; clients written for Supervisor ignore keys they do not know
        "health": process.health.value,  # a plain str: the encoder dispatches on the exact type
        "ready": process.ready,
        # the process tree's resource use at the last sample (zero until the first, or when stopped)
        "cpu_percent": usage.cpu_percent if usage and process.pid else 0.0,
        "rss_kb": usage.rss_bytes // 1024 if usage and process.pid else 0,
        "tree_processes": usage.processes if usage and process.pid else 0,
        "last_exit_code": process.counters.last_code,
        "last_exit_signal": process.counters.last_signal,
    }
    if process.config.sockets:
        held = process.rt.sockets
        info["sockets"] = [{"name": sock.name, "url": sock.url, "fd": FIRST_FD + index,
                            "listening": held.listening(sock), "error": held.error(sock)}
                           for index, sock in enumerate(process.config.sockets)]
    return info


def config_info(group: GroupConfig, cfg: ProcessConfig, active: ProcessGroup | None) -> dict[str, Any]:
    def logfile(channel: str, log_cfg: LogConfig) -> str:
        if active is not None and cfg.name in active.processes:
            path = active.processes[cfg.name].output.paths[channel]
            return path or "none"
        if log_cfg.target == LogTarget.AUTO:
            return "auto"
        return "none" if log_cfg.target == LogTarget.NONE else str(log_cfg.target)

    info: dict[str, Any] = {
        "autostart": cfg.autostart, "directory": cfg.directory or "none",
        "uid": cfg.uid if cfg.uid is not None else "none", "command": cfg.command,
        "exitcodes": list(cfg.exitcodes), "group": group.name, "group_prio": group.priority,
        "inuse": active is not None, "killasgroup": cfg.killasgroup, "name": cfg.name,
        "process_prio": cfg.priority, "redirect_stderr": cfg.redirect_stderr,
        "startretries": cfg.startretries, "startsecs": cfg.startsecs, "stopsignal": cfg.stopsignal,
        "stopwaitsecs": cfg.stopwaitsecs, "serverurl": cfg.serverurl or "none",
    }
    for channel, log_cfg in (("stdout", cfg.stdout), ("stderr", cfg.stderr)):
        info.update({
            f"{channel}_capture_maxbytes": log_cfg.capture_maxbytes,
            f"{channel}_events_enabled": log_cfg.events_enabled,
            f"{channel}_logfile": logfile(channel, log_cfg),
            f"{channel}_logfile_backups": log_cfg.backups,
            f"{channel}_logfile_maxbytes": log_cfg.maxbytes,
            f"{channel}_syslog": log_cfg.syslog,
        })
    return info


