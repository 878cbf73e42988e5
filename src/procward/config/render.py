"""The effective configuration as INI text (``procward check``): every default made explicit."""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

from procward.config.model import Config, GroupConfig, HealthKind, LogConfig, ProcessConfig, Script


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value).upper() if value.value in ("auto", "none") else str(value.value)
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    if isinstance(value, set | frozenset):
        return ",".join(sorted(_value(v) for v in value))
    if isinstance(value, dict):
        return ",".join(f'{k}="{v}"' for k, v in value.items())
    return "" if value is None else str(value)


def _lines(key: str, value: Any) -> list[str]:
    """``key = value``, or for a nested setting (a health check, the alarms) one ``key.field`` line each;
    secrets are hidden."""
    if isinstance(value, Script):
        spec = value.target if value.kind != HealthKind.EXEC else f"exec {value.target}"
        return [f"{key} = {spec}" + "".join(f" -H '{n}: {v}'" for n, v in value.headers)
                + (" -d <data>" if value.data else "")]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        lines = []
        for field in dataclasses.fields(value):
            sub = getattr(value, field.name)
            if "password" in field.name and sub is not None:
                lines.append(f"{key}.{field.name} = <hidden>")
            else:
                lines.extend(_lines(f"{key}.{field.name}", sub))
        return lines
    return [f"{key} = {_value(value)}"]


def process_lines(cfg: ProcessConfig, *, hide_environment: bool = False) -> list[str]:
    """``option = value`` for every option of a process, defaults explicit; with ``hide_environment`` the
    environment's values are left out (the web page: they are where secrets live)."""
    lines = []
    for field in dataclasses.fields(cfg):
        value = getattr(cfg, field.name)
        if field.name in ("where", "program", "name", "uid", "gid"):
            continue
        if field.name == "environment" and hide_environment:
            lines.append(f"environment = {','.join(f'{k}=<hidden>' for k in value)}")
            continue
        if field.name == "sockets":
            lines.append(f"sockets = {', '.join(f'{sock.name}={sock.url}' for sock in value)}")
            if value:
                first = value[0]
                lines.append(f"sockets_backlog = {first.backlog or 'SOMAXCONN'}")
                lines.append(f"sockets_mode = {'' if first.mode is None else oct(first.mode)[2:]}")
            continue
        if isinstance(value, LogConfig):
            for sub in dataclasses.fields(value):
                key = f"{field.name}_logfile" if sub.name == "target" else f"{field.name}_{sub.name}"
                key = key.replace("_maxbytes", "_logfile_maxbytes").replace("_backups", "_logfile_backups")
                key = key.replace("capture_logfile_maxbytes", "capture_maxbytes")
                lines.append(f"{key} = {_value(getattr(value, sub.name))}")
            continue
        lines.extend(_lines(field.name, value))
    return lines


def _group(group: GroupConfig) -> list[str]:
    out = [f"; group {group.name!r} ({group.kind.value}, priority {group.priority})"
           + (f", from {group.where}" if group.where else "")]
    if group.listener is not None:
        out.append(f"; events = {','.join(group.listener.events)}, buffer_size = {group.listener.buffer_size}")
    if group.fcgi is not None:
        out.append(f"; socket = {group.fcgi.url}")
    for cfg in group.processes:
        out.append(f"[process:{group.name}:{cfg.name}]")
        out.extend(process_lines(cfg))
        out.append("")
    return out


def render(config: Config) -> str:
    """INI-like text of everything procward will run with."""
    out = [f"; effective configuration of {config.path}", f"; files read: {', '.join(config.files)}", "",
           "[supervisord]"]
    for field in dataclasses.fields(config.supervisord):
        out.extend(_lines(field.name, getattr(config.supervisord, field.name)))
    out.append("")
    for server in config.servers:
        out.append(f"[{server.section}]")
        for field in dataclasses.fields(server):
            if field.name == "section" or getattr(server, field.name) is None:
                continue
            value = "<hidden>" if field.name == "password" else _value(getattr(server, field.name))
            out.append(f"{field.name} = {value}")
        out.append("")
    for group in config.groups:
        out.extend(_group(group))
    return "\n".join(out) + "\n"
