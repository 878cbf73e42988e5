"""Value parsers for supervisord options. Each raises ``ValueError("expected ...")`` on bad input."""

from __future__ import annotations

import datetime
import grp
import pwd
import re
import shlex
import signal
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

_TRUE = frozenset({"yes", "true", "on", "1"})
_FALSE = frozenset({"no", "false", "off", "0"})
_SUFFIXES = {"kb": 1024, "mb": 1024**2, "gb": 1024**3}
_SIGNUMS = frozenset(int(s) for s in signal.Signals)


class Autorestart(StrEnum):
    """When a process that exited from RUNNING is started again."""

    TRUE = "true"
    FALSE = "false"
    UNEXPECTED = "unexpected"


class LogTarget(StrEnum):
    """The special values of ``*_logfile``; anything else is a path."""

    AUTO = "auto"
    NONE = "none"
    SYSLOG = "syslog"


def default_childlogdir() -> str:
    """supervisord's childlogdir when none is set: the system's temporary directory. tempfile (with shutil,
    random, bz2 and lzma: ~0.7 MB and ~3 ms of a start) is imported only for it, or for AUTO log files."""
    import tempfile

    return tempfile.gettempdir()


def boolean(value: str) -> bool:
    """yes/true/on/1 or no/false/off/0, any case."""
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected a boolean (true/false, yes/no, on/off, 1/0), got {value!r}")


def integer(value: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """A decimal integer, optionally bounded."""
    try:
        number = int(value.strip())
    except ValueError:
        raise ValueError(f"expected an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ValueError(f"expected an integer >= {minimum}, got {value!r}")
    if maximum is not None and number > maximum:
        raise ValueError(f"expected an integer <= {maximum}, got {value!r}")
    return number


def byte_size(value: str) -> int:
    """An integer with an optional KB/MB/GB suffix (powers of 1024); 0 means unlimited."""
    text = value.strip().lower()
    multiplier = 1
    if text[-2:] in _SUFFIXES:
        multiplier, text = _SUFFIXES[text[-2:]], text[:-2]
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"expected a byte size such as 50MB, 1GB, 1024 or 0, got {value!r}") from None
    if number < 0:
        raise ValueError(f"expected a byte size >= 0, got {value!r}")
    return number * multiplier


def octal(value: str) -> int:
    """An octal number such as 022 or 0700."""
    try:
        return int(value.strip(), 8)
    except ValueError:
        raise ValueError(f"expected an octal number such as 022, got {value!r}") from None


E = TypeVar("E", bound=StrEnum)


def choice(kind: type[E]) -> Callable[[str], E]:
    """A parser for one of an enum's values (case-insensitive), naming them all when the text is none."""
    def parse(text: str) -> E:
        try:
            return kind(text.strip().lower())
        except ValueError:
            raise ValueError(f"expected one of {', '.join(k.value for k in kind)}, got {text!r}") from None
    return parse


# Go supervisord's cron (robfig/cron) descriptors, as the expressions they stand for.
_CRON_DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
                     "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


def cron_schedule(value: str, after: datetime.datetime) -> datetime.datetime:
    """The first time after ``after`` that a cron expression matches: five fields (minute first), six
    (seconds first, as Go supervisord reads them) or a descriptor such as @daily; ValueError otherwise."""
    from cronsim import CronSim, CronSimError  # imported on first use: few configurations have cron=

    text = _CRON_DESCRIPTORS.get(value.strip().lower(), value.strip())
    try:
        return next(CronSim(text, after))
    except (CronSimError, StopIteration):
        raise ValueError(f"expected a cron expression such as '*/5 * * * *' or @daily, got {value!r}") from None


def signal_numbers(value: str) -> tuple[int, ...]:
    """One signal, or Go supervisord's list sent in turn (``TERM INT``; commas are read as spaces)."""
    names = value.replace(",", " ").split()
    if not names:
        raise ValueError("expected a signal name such as TERM, HUP, INT or a number, got ''")
    return tuple(signal_number(name) for name in names)


def signal_number(value: str) -> int:
    """A signal name with or without SIG (TERM, sigterm) or a number."""
    text = value.strip()
    try:
        number = int(text)
    except ValueError:
        name = text.upper()
        if not name.startswith("SIG"):
            name = "SIG" + name
        sig = getattr(signal.Signals, name, None)
        if sig is None:
            raise ValueError(f"expected a signal name such as TERM, HUP, INT or a number, got {value!r}") from None
        number = int(sig)
    if number not in _SIGNUMS:
        raise ValueError(f"expected a valid signal number, got {value!r}")
    return number


def signal_name(number: int) -> str:
    """SIGTERM -> 'TERM', as supervisorctl and logs print it."""
    try:
        return signal.Signals(number).name.removeprefix("SIG")
    except ValueError:
        return str(number)


def exitcodes(value: str) -> tuple[int, ...]:
    """A comma-separated list of exit codes 0..255."""
    try:
        codes = tuple(int(part) for part in value.split(","))
    except ValueError:
        raise ValueError(f"expected a comma-separated list of exit codes (0-255), got {value!r}") from None
    if any(code < 0 or code > 255 for code in codes):
        raise ValueError(f"expected exit codes between 0 and 255, got {value!r}")
    return codes


def autorestart(value: str) -> Autorestart:
    """true / false / unexpected (Supervisor also accepts every boolean spelling)."""
    lowered = value.strip().lower()
    if lowered == "unexpected":
        return Autorestart.UNEXPECTED
    try:
        return Autorestart.TRUE if boolean(value) else Autorestart.FALSE
    except ValueError:
        raise ValueError(f"expected true, false or unexpected, got {value!r}") from None


NONE: tuple[str, ...] = ()  # an empty list option's default, typed (a bare () is a tuple of nothing)


def list_of_strings(value: str) -> tuple[str, ...]:
    """Comma-separated names, blanks dropped."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


def key_value_pairs(value: str) -> dict[str, str]:
    """``KEY=val,KEY2="v,2"`` as Supervisor 4.3 parses it (shlex, legacy mode, quotes stripped)."""
    lexer = shlex.shlex(value)
    lexer.wordchars += "/.+-():"
    try:
        tokens = list(lexer)
    except ValueError as exc:
        raise ValueError(f"expected KEY=value pairs separated by commas: {exc} in {value!r}") from None
    pairs: dict[str, str] = {}
    for i in range(0, len(tokens), 4):
        chunk = tokens[i:i + 3]
        # Like Supervisor, the separator token after each pair is not checked.
        if len(chunk) != 3 or chunk[1] != "=":
            raise ValueError(f"expected KEY=value pairs separated by commas, got {value!r}")
        pairs[chunk[0]] = chunk[2].strip("'\"")
    return pairs


# A name becomes part of file names (AUTO logs: NAME-stdout---IDENTIFIER-XXXXXXXX.log), which the kernel
# caps at 255 bytes; 200 leaves room for the rest with the default identifier.
MAX_NAME = 200


def process_name(value: str) -> str:
    """A program or group name: no space, colon or slash (they break namespecs and URLs), at most MAX_NAME."""
    name = value.strip()
    if not name:
        raise ValueError("expected a non-empty name")
    if len(name) > MAX_NAME:
        raise ValueError(f"expected a name of at most {MAX_NAME} characters, got {len(name)} ({name[:20]!r}...)")
    for char in " :/":
        if char in name:
            raise ValueError(f"expected a name without spaces, ':' or '/', got {value!r}")
    return name


def log_target(value: str) -> LogTarget | str:
    """AUTO, NONE/OFF, syslog, or a path."""
    lowered = value.strip().lower()
    if lowered == "auto":
        return LogTarget.AUTO
    if lowered in ("none", "off"):
        return LogTarget.NONE
    if lowered == "syslog":
        return LogTarget.SYSLOG
    return value.strip()


def inet_address(value: str) -> tuple[str, int]:
    """``host:port``, ``:port``, ``*:port`` or ``port``; empty host and ``*`` mean all interfaces."""
    text = value.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    if host == "*":
        host = ""
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"expected host:port or :port, got {value!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"expected a port between 1 and 65535, got {value!r}")
    return host, port


def user_name(value: str) -> tuple[int, int]:
    """A user name or uid that exists on this machine -> (uid, primary gid)."""
    text = value.strip()
    try:
        entry = pwd.getpwuid(int(text)) if text.isdigit() else pwd.getpwnam(text)
    except KeyError:
        raise ValueError(f"expected an existing user name or uid, got {value!r} (no such user)") from None
    return entry.pw_uid, entry.pw_gid


def user_group(value: str) -> tuple[int, int]:
    """``user`` or ``user:group`` -> (uid, gid)."""
    user, _, group = value.partition(":")
    uid, gid = user_name(user)
    if group:
        try:
            gid = grp.getgrgid(int(group)).gr_gid if group.isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            raise ValueError(f"expected an existing group name, got {group!r}") from None
    return uid, gid


_LEVELS = {"critical": 50, "error": 40, "warn": 30, "warning": 30, "info": 20, "debug": 10,
           "trace": 5, "blather": 3,
           "fatal": 50, "panic": 50}  # Go supervisord's names, as their nearest Supervisor level


def log_level(value: str) -> int:
    """critical, error, warn, info, debug, trace or blather."""
    level = _LEVELS.get(value.strip().lower())
    if level is None:
        raise ValueError(f"expected one of critical, error, warn, info, debug, trace, blather (or Go's fatal, "
                         f"panic), got {value!r}")
    return level


def url(value: str) -> str:
    """A unix:// or http(s):// URL."""
    text = value.strip()
    if re.match(r"^(unix://.+|https?://.+)$", text):
        return text
    raise ValueError(f"expected a unix:///path or http://host:port URL, got {value!r}")


_PERIODS = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400}


def period(text: str) -> int:
    """``hourly``, ``daily``, ``weekly``, or a number with s/m/h/d, in seconds (0 for ``never``/``0``)."""
    value = text.strip().lower()
    if value in _PERIODS:
        return _PERIODS[value]
    if value in ("", "0", "never", "none"):
        return 0
    match = re.fullmatch(r"(\d+)\s*([smhd]?)", value)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"expected hourly, daily, weekly, never or a period like 30m, 12h, 2d, got {text!r}")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


_FACILITIES = {name: code for code, name in enumerate(
    ["kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp"])}
_FACILITIES.update({f"local{n}": 16 + n for n in range(8)})
_PRIORITIES = {name: code for code, name in enumerate(
    ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"])}
_PRIORITIES.update({"error": 3, "warn": 4, "critical": 2, "emergency": 0})


def syslog_facility(value: str) -> int:
    """A facility name (``local0``, ``daemon``, ``user`` ...; ``LOG_`` prefix allowed)."""
    name = value.strip().lower().removeprefix("log_")
    if name not in _FACILITIES:
        raise ValueError(f"expected a syslog facility such as local0..local7, daemon or user, got {value!r}")
    return _FACILITIES[name]


def syslog_priority(value: str) -> int:
    """A priority (severity) name: ``emerg`` .. ``debug`` (``LOG_`` prefix allowed)."""
    name = value.strip().lower().removeprefix("log_")
    if name not in _PRIORITIES:
        raise ValueError(f"expected a syslog priority: emerg, alert, crit, err, warning, notice, info or debug, "
                         f"got {value!r}")
    return _PRIORITIES[name]


def syslog_destination(value: str) -> tuple[str, str, int]:
    """``syslog`` -> ('local', '', 0); ``syslog @[udp:|tcp:]host[:port]`` -> (transport, host, port);
    the default ports are Go supervisord's: 514 for udp, 6514 for tcp."""
    text = value.strip()
    if text.lower() == "syslog":
        return "local", "", 0
    match = re.fullmatch(r"syslog\s+@(?:(udp|tcp):)?(\[[^\]]+\]|[^:\s]+)(?::(\S+))?", text, flags=re.IGNORECASE)
    if not match:
        raise ValueError(f"expected syslog or syslog @[udp:|tcp:]host[:port], got {value!r}")
    transport = (match.group(1) or "udp").lower()
    port_text = match.group(3)
    if port_text is None:
        return transport, match.group(2).strip("[]"), 514 if transport == "udp" else 6514
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"expected a port between 1 and 65535 in {value!r}, got {port_text!r}")
    return transport, match.group(2).strip("[]"), int(port_text)
