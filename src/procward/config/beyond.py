"""procward's options beyond Supervisor's: restart policies, health checks, readiness, dependencies,
process trees, resource limits, file watching and environment files. Each is an addition: a file
without them means what it meant to supervisord.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from procward.config import alarms, probes
from procward.config import values as v
from procward.config.model import (
    Backoff,
    FileWatch,
    GroupConfig,
    RestartPolicy,
)
from procward.config.reader import SectionReader
from procward.errors import ConfigError

OPTIONS = frozenset({
    "backoff", "backoff_max", "max_restarts", "restart_window", "restartpause",
    "notify", "watchdog_sec", "ready_timeout",
    "depends_on", "killdescendants", "pidfile", "memory_limit", "environment_file", "envfiles",
    "restart_when_binary_changed", "restart_directory_monitor", "restart_file_pattern", "killwaitsecs",
    "restart_signal_when_binary_changed", "restart_cmd_when_binary_changed", "restart_signal_when_file_changed",
    "restart_cmd_when_file_changed", "cron",
}) | probes.OPTIONS | alarms.PROGRAM_OPTIONS
FOREVER = ("infinite", "forever", "unlimited")


def startretries(text: str) -> int:
    """Supervisor's integer, or ``infinite`` (-1: never give up)."""
    if text.strip().lower() in FOREVER:
        return -1
    return v.integer(text, minimum=0)


def read(r: SectionReader, *, forever: bool) -> dict[str, Any]:
    """The ProcessConfig fields for procward's options of one process section."""
    seconds = lambda s: v.integer(s, minimum=0)  # noqa: E731 - a tiny local parser
    policy = RestartPolicy(
        forever=forever,
        backoff=r.get("backoff", v.choice(Backoff), Backoff.LINEAR),
        backoff_max=r.get("backoff_max", seconds, 0),
        max_restarts=r.get("max_restarts", seconds, 0),
        restart_window=r.get("restart_window", seconds, 0),
        restartpause=r.get("restartpause", seconds, 0),
        max_cores=r.get("max_tries_if_coredumped", seconds, 0),
    )
    pidfile = r.text("pidfile")
    return {
        "policy": policy,
        **probes.read(r),
        "alarm_events": r.get("alarm_events", alarms.events, None),
        "notify": r.get("notify", v.boolean, False),
        "watchdog_sec": r.get("watchdog_sec", seconds, 0),
        "ready_timeout": r.get("ready_timeout", lambda s: v.integer(s, minimum=1), 90),
        "depends_on": r.get("depends_on", v.list_of_strings, v.NONE),
        "killdescendants": r.get("killdescendants", v.boolean, True),
        "pidfile": os.path.abspath(os.path.expanduser(pidfile.strip())) if pidfile else None,
        "memory_limit": r.get("memory_limit", v.byte_size, 0),
        "watch": _watch(r),
    }


def _watch(r: SectionReader) -> FileWatch | None:
    binary = r.get("restart_when_binary_changed", v.boolean, False)
    directory = r.text("restart_directory_monitor")
    if not binary and not directory:
        return None
    return FileWatch(binary=binary, directory=os.path.abspath(directory.strip()) if directory else None,
                     pattern=(r.text("restart_file_pattern", "*") or "*").strip(),
                     binary_signal=r.get("restart_signal_when_binary_changed", v.signal_number, None),
                     binary_cmd=_command(r, "restart_cmd_when_binary_changed"),
                     file_signal=r.get("restart_signal_when_file_changed", v.signal_number, None),
                     file_cmd=_command(r, "restart_cmd_when_file_changed"))


def _command(r: SectionReader, option: str) -> str | None:
    text = r.text(option)
    return text.strip() if text and text.strip() else None


def cron(text: str) -> str | None:
    """``cron=``: the expression, checked now so a typo is a config error rather than a silent no-op."""
    if not text.strip():
        return None
    v.cron_schedule(text, datetime.now().astimezone())
    return text.strip()


def environment_file(r: SectionReader) -> dict[str, str]:
    """Variables of ``environment_file = path`` and Go supervisord's ``envFiles = a.env,b.env``.

    Files are read in order, a later file's value winning; ``environment_file`` comes last. A missing
    or malformed file refuses the configuration with a located error: the program would otherwise
    start quietly without the variables it was given.
    """
    found: dict[str, str] = {}
    for option in ("envfiles", "environment_file"):
        value = r.text(option)
        paths = [] if value is None else value.split(",") if option == "envfiles" else [value]
        for path in (p.strip() for p in paths):
            if not path:
                continue
            try:
                found.update(read_env_file(os.path.expanduser(path)))
            except ValueError as exc:
                raise r.error(option, str(exc)) from None
    return found


def read_env_file(path: str) -> dict[str, str]:
    """A dotenv file's variables; ValueError naming the file and line for a missing file or bad line."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ValueError(f"cannot read environment file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"environment file {path} is not UTF-8 text") from None
    from dotenv.parser import parse_stream  # imported on first use: most configurations have no env files

    found: dict[str, str] = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            lines = binding.original.string.strip().splitlines()
            raise ValueError(f"{path}:{binding.original.line}: not a KEY=value line: {lines[0] if lines else ''!r}")
        if binding.key is not None:
            found[binding.key] = binding.value or ""
    return found


def dependency_targets(name: str, groups: Iterable[GroupConfig]) -> list[str]:
    """The namespecs ``name`` stands for: a group's processes, a program's processes, or one ``g:p``."""
    found = []
    for group in groups:
        for process in group.processes:
            spec = f"{group.name}:{process.name}"
            if name in (group.name, process.program, process.name, spec):
                found.append(spec)
    return found


def check_dependencies(groups: Iterable[GroupConfig]) -> None:
    """Every depends_on name exists (a program, a process namespec, or a group) and there is no cycle."""
    groups = list(groups)
    edges: dict[str, list[str]] = {}
    where: dict[str, str] = {}
    for group in groups:
        for process in group.processes:
            spec = f"{group.name}:{process.name}"
            where[spec] = f"[program:{process.program}] at {process.where}" if process.where else spec
            for dep in process.depends_on:
                targets = dependency_targets(dep, groups)
                if not targets:
                    raise ConfigError(f"names {dep!r}, which is no program, process or group",
                                      file=process.where.file if process.where else None,
                                      line=process.where.line if process.where else None,
                                      section=f"program:{process.program}", option="depends_on")
                edges.setdefault(spec, []).extend(t for t in targets if t != spec)
    _no_cycle(edges, where)


def _no_cycle(edges: dict[str, list[str]], where: dict[str, str]) -> None:
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            cycle = [*path[path.index(node):], node]
            raise ConfigError(f"depends_on cycle: {' -> '.join(cycle)} ({where[cycle[0]]} and "
                              f"{where[cycle[-2]]})")
        state[node] = 1
        for nxt in edges.get(node, []):
            visit(nxt, [*path, node])
        state[node] = 2

    for node in list(edges):
        visit(node, [])
