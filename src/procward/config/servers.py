"""The sections about reaching the daemon: ``[unix_http_server]``, ``[inet_http_server]`` (with Go
supervisord's ``nodename`` and ``remotes``), procward's ``[node:x]`` and ``[supervisorctl]``."""

from __future__ import annotations

import os

from procward.config import values as v
from procward.config.ini import IniDocument
from procward.config.model import CtlConfig, HttpServerConfig, NodeConfig, Where
from procward.config.reader import SectionReader


def servers(doc: IniDocument, here: str, env: dict[str, str], *, host_checks: bool) -> tuple[HttpServerConfig, ...]:
    """Every ``[unix_http_server]`` and ``[inet_http_server]``, with its credentials."""
    servers = []
    for name in doc.sections:
        kind = name.split(":", 1)[0]
        if kind not in ("unix_http_server", "inet_http_server"):
            continue
        r = SectionReader(doc, name, {"here": here, **env}, kind)
        username, password = r.text("username"), r.text("password")
        if (username is None) != (password is None):
            raise r.error("password" if password is None else "username",
                          "username and password must be given together")
        readonly = _readonly_user(r, username)
        legacy = r.get("legacy_actions", v.boolean, True)
        metrics_auth = r.get("metrics_auth", v.boolean, True)
        if kind == "inet_http_server":
            host, port = r.required("port", v.inet_address, "host:port or :port")
            servers.append(HttpServerConfig(section=name, host=host, port=port, username=username,
                                            password=password, readonly=readonly, legacy_actions=legacy,
                                            metrics_auth=metrics_auth, where=_where_of(r, "port")))
            continue
        path = r.required("file", lambda s: os.path.abspath(os.path.expanduser(s.strip())), "a socket path")
        chown = r.get("chown", v.user_group, None) if host_checks else None
        servers.append(HttpServerConfig(section=name, file=path, chmod=r.get("chmod", v.octal, 0o700),
                                        chown=chown, username=username, password=password, readonly=readonly,
                                        legacy_actions=legacy, metrics_auth=metrics_auth,
                                        where=_where_of(r, "file")))
    return tuple(servers)


def _readonly_user(r: SectionReader, username: str | None) -> tuple[str, str] | None:
    """readonly_username/readonly_password: both or neither, and only beside the full credentials."""
    user, password = r.text("readonly_username"), r.text("readonly_password")
    if (user is None) != (password is None):
        raise r.error("readonly_password" if password is None else "readonly_username",
                      "readonly_username and readonly_password must be given together")
    if user is None or password is None:
        return None
    if username is None:
        raise r.error("readonly_username", "a read-only user needs username and password too (without "
                                           "them everyone may act)")
    if user == username:
        raise r.error("readonly_username", "must differ from username")
    return user, password


def _where_of(r: SectionReader, option: str) -> Where | None:
    opt = r.raw(option)
    return Where(file=opt.file, line=opt.line) if opt else None


def nodes(doc: IniDocument, here: str, env: dict[str, str]) -> tuple[NodeConfig, ...]:
    """[node:NAME] sections: other daemons for the web page (procward's own addition)."""
    nodes = []
    for section in doc.sections:
        kind, _, name = section.partition(":")
        if kind != "node":
            continue
        r = SectionReader(doc, section, {"here": here, **env}, "node")
        if not name:
            raise r.error(None, "expected [node:NAME]")
        username, password = r.text("username"), r.text("password")
        if (username is None) != (password is None):
            raise r.error("password" if password is None else "username",
                          "username and password must be given together")
        serverurl = r.required("serverurl", v.url, "unix:///path or http://host:port")
        if serverurl.startswith("https://"):
            raise r.error("serverurl", "https is not spoken to nodes (the daemon has no TLS): use unix:// or "
                                       "http:// through a local tunnel")
        if serverurl.startswith("unix://"):
            serverurl = "unix://" + os.path.abspath(os.path.expanduser(serverurl[len("unix://"):]))
        nodes.append(NodeConfig(name=r.name(name), serverurl=serverurl, username=username, password=password))
    return (*nodes, *_remotes(doc, {n.name for n in nodes}))


def _remotes(doc: IniDocument, taken: set[str]) -> list[NodeConfig]:
    """Go supervisord's ``[inet_http_server] remotes = name:host:port, ...``: more nodes, without
    credentials (Go sends none; a [node:NAME] section carries them)."""
    if "inet_http_server" not in doc.sections:
        return []
    r = SectionReader(doc, "inet_http_server", {}, "inet_http_server")
    nodes = []
    for entry in filter(None, (e.strip() for e in (r.text("remotes") or "").split(","))):
        try:
            name, _, address = entry.partition(":")
            name, (host, port) = v.process_name(name.strip()), v.inet_address(address)
        except ValueError:
            raise r.error("remotes", f"expected name:host:port, got {entry!r}") from None
        if name in taken:
            raise r.error("remotes", f"node {name!r} is named twice")
        taken.add(name)
        nodes.append(NodeConfig(name=name, serverurl=f"http://{host or '127.0.0.1'}:{port}"))
    return nodes


def nodename(doc: IniDocument) -> str:
    if "inet_http_server" not in doc.sections:
        return ""
    return (SectionReader(doc, "inet_http_server", {}, "inet_http_server").text("nodename") or "").strip()


def ctl(doc: IniDocument, here: str, env: dict[str, str]) -> CtlConfig:
    r = SectionReader(doc, "supervisorctl", {"here": here, **env}, "supervisorctl")
    history = r.text("history_file")
    return CtlConfig(
        serverurl=r.get("serverurl", v.url, "http://localhost:9001"),
        username=r.text("username"),
        password=r.text("password"),
        prompt=r.text("prompt", "supervisor") or "supervisor",
        history_file=os.path.abspath(os.path.expanduser(history)) if history else None,
    )
