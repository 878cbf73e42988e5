"""``sockets =``: listening sockets procward holds for a program, read and checked against this host.

The spelling is one option per program, like systemd's ``ListenStream=`` and circus's ``use_sockets``
together: ``sockets = web=tcp://0.0.0.0:8080, admin=unix:///run/app/admin.sock``. What can be known
before binding is checked here, so ``procward check`` names it (a missing directory, an address that is not
this host's, a privileged port for a daemon that cannot bind one); a port another program holds can only be
known at the bind, which the daemon reports in the program's ``spawnerr``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
from collections.abc import Iterable
from typing import Any

from procward.config import values as v
from procward.config.model import GroupConfig, HeldSocketConfig, SocketKind
from procward.config.reader import SectionReader
from procward.errors import ConfigError

OPTIONS = frozenset({"sockets", "sockets_backlog", "sockets_mode", "sockets_owner", "sockets_env"})
FIRST_FD = 3  # systemd's SD_LISTEN_FDS_START: the first socket is fd 3 in the child
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CAP_NET_BIND_SERVICE = 10


def read(r: SectionReader, program: str, *, host_checks: bool) -> dict[str, Any]:
    """The ProcessConfig fields for ``sockets`` and its companions (none when the option is absent)."""
    if r.raw("sockets") is None:
        for option in OPTIONS - {"sockets"}:
            if r.raw(option) is not None:
                raise r.error(option, "applies only with sockets = NAME=tcp://host:port (or unix:///path)")
        return {}
    backlog = r.get("sockets_backlog", lambda s: v.integer(s, minimum=1, maximum=65535), 0)
    mode = r.get("sockets_mode", v.octal, None)
    owner = r.get("sockets_owner", v.user_group, None) if host_checks else None
    items: tuple[str, ...] = r.get("sockets", v.list_of_strings, ())
    if not items:
        raise r.error("sockets", "expected NAME=tcp://host:port, NAME=udp://host:port or NAME=unix:///path")
    held: list[HeldSocketConfig] = []
    for item in items:
        try:
            sock = parse(item, program if len(items) == 1 else None, backlog=backlog, mode=mode, owner=owner)
        except ValueError as exc:
            raise r.error("sockets", str(exc)) from None
        if any(h.name == sock.name for h in held):
            raise r.error("sockets", f"names two sockets {sock.name!r}")
        if any(h.url == sock.url for h in held):
            raise r.error("sockets", f"lists {sock.url} twice")
        if host_checks and (problem := host_problem(sock)):
            raise r.error("sockets", f"{sock.url}: {problem}")
        held.append(sock)
    if (mode is not None or r.raw("sockets_owner") is not None) and all(h.kind != SocketKind.UNIX for h in held):
        raise r.error("sockets_mode" if mode is not None else "sockets_owner",
                      "applies only to unix:// sockets")
    return {"sockets": tuple(held), "sockets_env": r.get("sockets_env", v.boolean, True)}


def parse(item: str, default_name: str | None, *, backlog: int = 0, mode: int | None = None,
          owner: tuple[int, int] | None = None) -> HeldSocketConfig:
    """``[NAME=]URL`` -> a HeldSocketConfig (ValueError names what is wrong)."""
    name, sep, url = item.strip().partition("=")
    if not sep:
        name, url = default_name or "", name
        if not name:
            raise ValueError(f"give each socket a name when there are several: NAME={url}")
    name, url = name.strip(), url.strip()
    if not _NAME.match(name):
        raise ValueError(f"socket name {name!r} must be letters, digits and _ (it becomes %(socket_fd_{name})s)")
    scheme, sep, rest = url.partition("://")
    common: dict[str, Any] = {"name": name, "url": url, "backlog": backlog, "mode": mode, "owner": owner}
    if not sep or scheme not in ("tcp", "udp", "unix"):
        raise ValueError(f"expected tcp://host:port, udp://host:port or unix:///path, got {url!r}")
    if scheme == "unix":
        if not rest.startswith("/"):
            raise ValueError(f"expected an absolute path in {url!r}")
        return HeldSocketConfig(kind=SocketKind.UNIX, path=rest, **common)
    host, sep, port_text = rest.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"expected {scheme}://host:port with a port from 1 to 65535, got {url!r}")
    host = host.strip("[]") if host.startswith("[") else host
    if host == "*":
        host = ""
    return HeldSocketConfig(kind=SocketKind(scheme), host=host, port=int(port_text), **common)


def expansions(held: Iterable[HeldSocketConfig]) -> dict[str, int]:
    """``%(socket_fd)d`` (the first socket) and ``%(socket_fd_NAME)d``: the fd each has in the child."""
    out: dict[str, int] = {}
    for index, sock in enumerate(held):
        out.setdefault("socket_fd", FIRST_FD + index)
        out[f"socket_fd_{sock.name}"] = FIRST_FD + index
    return out


def host_problem(sock: HeldSocketConfig) -> str:
    """What makes ``sock`` impossible on this host whoever holds the port ('' when nothing does)."""
    if sock.kind == SocketKind.UNIX:
        directory = os.path.dirname(sock.path)
        if not os.path.isdir(directory):
            return f"the directory {directory} does not exist"
        return ""
    if sock.port < _unprivileged_port_start() and os.geteuid() != 0 and not _can_bind_privileged():
        return (f"port {sock.port} is privileged and procward runs as uid {os.geteuid()} without "
                "CAP_NET_BIND_SERVICE (start it as root: it binds before it drops privileges)")
    if not sock.host:
        return ""
    try:
        infos = socket.getaddrinfo(sock.host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot resolve {sock.host!r}: {exc.strerror}"
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_DGRAM if sock.kind == SocketKind.UDP else socket.SOCK_STREAM) as trial:
        try:
            trial.bind((address[0], 0))  # port 0: asks only whether the address is this host's
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                return f"{address[0]} is not an address of this host"
            return f"cannot bind {address[0]}: {exc.strerror}"
    return ""


def _unprivileged_port_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start", encoding="ascii") as handle:
            return int(handle.read())
    except (OSError, ValueError):
        return 1024


def _can_bind_privileged() -> bool:
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> _CAP_NET_BIND_SERVICE & 1)
    return False


def check_unshared(groups: Iterable[GroupConfig]) -> None:
    """Two programs asking for one address is a ConfigError naming both (the processes of one program
    share theirs: numprocs copies accept from one socket)."""
    owners: dict[str, tuple[str, str]] = {}
    for group in groups:
        for process in group.processes:
            for sock in process.sockets:
                here = (process.program, str(process.where) if process.where else "?")
                first = owners.setdefault(sock.url, here)
                if first[0] != here[0]:
                    raise ConfigError(f"sockets: {sock.url} is asked for by [program:{first[0]}] ({first[1]}) and "
                                      f"[program:{here[0]}] ({here[1]}); one socket has one program",
                                      file=process.where.file if process.where else None,
                                      line=process.where.line if process.where else None)
