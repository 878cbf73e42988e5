"""supervise.conf as the reference reads it (parse_conf): ``[global]`` then ``[<service>]``, ``key : value``.

Faithful to the code rather than its README: an existing file starts from alarm_interval 2 (raised to
60 only when given), max_tries 20, max_tries_if_coredumped 5; keys are matched by prefix at column 0;
``key = v`` and comments are ignored; a service section after [global] may only raise numbers and
appends mail and gsm recipients. A file that cannot be read keeps the settings in force. procward adds
one key, ``stop_grace`` (seconds before ``d`` sends SIGKILL; 10), which the reference would ignore.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NUMBER = re.compile(r"\s*:\s*(\d+)")


@dataclass(slots=True)
class Settings:
    """The alarm and give-up settings (all 0 before any file was read: no alarms, unlimited restarts)."""

    alarm_interval: int = 0
    alarm_mail: str = ""
    alarm_gsm: list[str] = field(default_factory=list)
    max_tries: int = 0
    max_tries_if_coredumped: int = 0
    stop_grace: int = 10  # procward's own key: seconds from the SIGTERM of "d" to a SIGKILL

    def dump(self) -> str:
        """The reference's raw dump after loading (show_config): its keys, order and spacing, one line per
        gsm number; ``stop_grace`` is procward's own and not in it."""
        return (f"alarm_interval: {self.alarm_interval}\nmax_tries: {self.max_tries}\n"
                f"max_tries_if_coredumped: {self.max_tries_if_coredumped}\nalarm_mail : {self.alarm_mail}\n"
                f"gsm_list_len: {len(self.alarm_gsm)}\n"
                + "".join(f"alarm_gsm[{i}]: {number}\n" for i, number in enumerate(self.alarm_gsm)))


def parse(text: str, service: str) -> Settings:
    """Settings for ``service`` from a file's text."""
    settings = Settings(alarm_interval=2, max_tries=20, max_tries_if_coredumped=5)
    lines = [line.rstrip() for line in text.splitlines()]
    start = next((i for i, line in enumerate(lines) if line.startswith(("[global]", f"[{service}]"))), None)
    if start is None:
        return settings
    section = _section(lines, start + 1)
    for line in section:
        _apply(settings, line, override=False)
    if lines[start].startswith("[global]"):
        own = next((i for i in range(start + 1 + len(section), len(lines)) if lines[i].startswith(f"[{service}]")),
                   None)
        if own is not None:
            for line in _section(lines, own + 1):
                _apply(settings, line, override=True)
    return settings


def _section(lines: list[str], first: int) -> list[str]:
    end = next((i for i in range(first, len(lines)) if lines[i].startswith("[")), len(lines))
    return lines[first:end]


def _number(rest: str) -> int | None:
    found = _NUMBER.match(rest)
    return int(found.group(1)) if found else None


def _apply(settings: Settings, line: str, *, override: bool) -> None:
    for key in ("max_tries_if_coredumped", "max_tries", "alarm_interval", "stop_grace"):  # longer prefix first
        if line.startswith(key):
            value = _number(line[len(key):])
            if value is None or (override and value == 0):
                return
            if key == "alarm_interval":
                value = max(value, 60) if value else 0
            setattr(settings, key, value)
            return
    for key in ("alarm_mail", "alarm_gsm"):
        found = re.match(r"\s*:\s*(.*)", line[len(key):]) if line.startswith(key) else None
        if found is None or not found.group(1).strip():
            continue
        text = found.group(1).strip()
        if key == "alarm_mail":
            settings.alarm_mail = f"{settings.alarm_mail} {text}".strip() if override else text[:1024]
        else:
            settings.alarm_gsm = ([*settings.alarm_gsm, *text.split()] if override else text.split())[:10]
