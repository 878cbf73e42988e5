"""``%(name)s`` expansions, as Supervisor applies them with Python's ``%`` operator."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Protocol

from procward.errors import ConfigError


class Located(Protocol):
    """Anything that knows the file and line it was read from."""

    file: str
    line: int


def environ_expansions(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``ENV_X`` for every variable of the daemon's environment."""
    env = os.environ if environ is None else environ
    return {f"ENV_{key}": value for key, value in env.items()}


def host_node_name() -> str:
    """What ``%(host_node_name)s`` expands to (Supervisor's platform.node(), which is this on Linux)."""
    return os.uname().nodename


def expand(value: str, expansions: Mapping[str, object], *, where: Located | None = None,
           section: str | None = None, option: str | None = None) -> str:
    """Expand ``%(name)s`` references; an unknown name or a stray ``%`` is a located ConfigError."""
    if "%" not in value:
        return value
    try:
        return value % expansions
    except KeyError as exc:
        name = exc.args[0]
        hint = " (environment variable not set)" if str(name).startswith("ENV_") else ""
        message = f"%({name})s cannot be expanded{hint} in {value!r}"
    except (ValueError, TypeError) as exc:
        message = f"badly formatted %-expansion in {value!r}: {exc} (write %% for a literal %)"
    raise ConfigError(message, file=where.file if where else None, line=where.line if where else None,
                      section=section, option=option)
