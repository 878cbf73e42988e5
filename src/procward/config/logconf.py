"""A program's ``stdout_*`` / ``stderr_*`` options: Supervisor's log file, Go supervisord's list of targets
(files, ``syslog``, ``syslog @host``), and procward's line formats and rotation."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

from procward.config import values as v
from procward.config.model import LineFormat, LogConfig, LogRotation, SyslogTarget, TimeFormat
from procward.config.reader import SectionReader

T = TypeVar("T")


def read_log(r: SectionReader, channel: str, dirpath: Callable[[str, str], str]) -> LogConfig:
    """The ``{channel}_*`` options of a program; ``dirpath(option, path)`` checks a log file's directory."""
    auto: v.LogTarget | str = v.LogTarget.AUTO
    option = f"{channel}_logfile"
    raw = r.text(option)
    extra_files: list[str] = []
    syslogs: list[SyslogTarget] = []
    if raw is not None and ("," in raw or raw.strip().lower().startswith("syslog @")):
        # Go supervisord's list of targets: the first file is the log (tail and readProcess*Log read it).
        target: v.LogTarget | str = v.LogTarget.NONE
        for position, token in enumerate(t.strip() for t in raw.split(",")):
            if token.lower().startswith("syslog"):
                syslogs.append(_syslog_target(r, option, token))
            elif position == 0 or target == v.LogTarget.NONE:
                target = _parse(r, option, v.log_target, token)
            else:
                extra_files.append(dirpath(option, token))
        if target == v.LogTarget.SYSLOG:
            target = v.LogTarget.NONE
    else:
        target = r.get(option, v.log_target, auto)
    syslog = r.get(f"{channel}_syslog", v.boolean, False)
    if target == v.LogTarget.SYSLOG:  # deprecated magic name, as Supervisor rewrites it
        target, syslog = v.LogTarget.NONE, True
    elif isinstance(target, str) and not isinstance(target, v.LogTarget):
        target = dirpath(option, target)
    return LogConfig(
        target=target,
        maxbytes=r.get(f"{channel}_logfile_maxbytes", v.byte_size, 50 * 1024 * 1024),
        backups=r.get(f"{channel}_logfile_backups", lambda s: v.integer(s, minimum=0), 10),
        capture_maxbytes=r.get(f"{channel}_capture_maxbytes", v.byte_size, 0),
        events_enabled=r.get(f"{channel}_events_enabled", v.boolean, False),
        syslog=syslog,
        line_format=r.get(f"{channel}_log_format", v.choice(LineFormat), LineFormat.RAW),
        time_format=r.get(f"{channel}_log_time_format", v.choice(TimeFormat), TimeFormat.RFC3339),
        with_name=r.get(f"{channel}_log_name", v.boolean, False),
        rotation=LogRotation(
            every=r.get(f"{channel}_logfile_rotate_every", v.period, 0),
            by_date=r.get(f"{channel}_logfile_rotate_naming", v.choice(_Naming), _Naming.INDEX) == _Naming.DATE,
            compress=r.get(f"{channel}_logfile_compress", v.boolean, False),
            total_maxbytes=r.get(f"{channel}_logfile_total_maxbytes", v.byte_size, 0)),
        extra_files=tuple(extra_files),
        syslog_targets=tuple(syslogs),
    )


def _parse(r: SectionReader, option: str, parser: Callable[[str], T], text: str) -> T:
    try:
        return parser(text)
    except ValueError as exc:
        raise r.error(option, str(exc)) from None


def _syslog_target(r: SectionReader, option: str, token: str) -> SyslogTarget:
    """One syslog entry of a target list, with the program's syslog_* options (Go's names and defaults)."""
    transport, host, port = _parse(r, option, v.syslog_destination, token)
    return SyslogTarget(
        transport=transport, address="/dev/log" if transport == "local" else "", host=host, port=port,
        facility=r.get("syslog_facility", v.syslog_facility, 16),
        tag=r.text("syslog_tag") or str(r.expansions.get("program_name", "")),
        stdout_priority=r.get("syslog_stdout_priority", v.syslog_priority, 5),
        stderr_priority=r.get("syslog_stderr_priority", v.syslog_priority, 5))


class _Naming(StrEnum):
    INDEX = "index"  # Supervisor's .1 (newest) .. .N
    DATE = "date"  # app.log.2026-11-30
