"""Sections -> validated model, with Supervisor 4.3's defaults, expansions and cross-checks."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from procward.config import alarms, beyond, dialect, logconf
from procward.config import values as v
from procward.config.eventnames import EVENT_TYPES
from procward.config.expand import environ_expansions, expand, host_node_name
from procward.config.ini import IniDocument, Option, read
from procward.config.model import (
    Config,
    CtlConfig,
    FcgiSocketConfig,
    GroupConfig,
    GroupKind,
    HttpServerConfig,
    ListenerConfig,
    LogConfig,
    NodeConfig,
    ProcessConfig,
    SupervisordConfig,
    Where,
)
from procward.errors import ConfigError

T = TypeVar("T")

DEFAULT_RESULT_HANDLER = "supervisor.dispatchers:default_handler"
STANDARD_RPCINTERFACE = "supervisor.rpcinterface:make_main_rpcinterface"

_PROGRAM_OPTIONS = frozenset({
    "command", "process_name", "numprocs", "numprocs_start", "priority", "autostart", "autorestart",
    "startsecs", "startretries", "exitcodes", "stopsignal", "stopwaitsecs", "stopasgroup", "killasgroup",
    "user", "redirect_stderr", "stdout_logfile", "stdout_logfile_maxbytes", "stdout_logfile_backups",
    "stdout_capture_maxbytes", "stdout_events_enabled", "stdout_syslog", "stderr_logfile",
    "stderr_logfile_maxbytes", "stderr_logfile_backups", "stderr_capture_maxbytes", "stderr_events_enabled",
    "stderr_syslog", "environment", "directory", "umask", "serverurl",
    "stdout_log_format", "stdout_log_time_format", "stdout_log_name",
    "stderr_log_format", "stderr_log_time_format", "stderr_log_name",
    "stdout_logfile_rotate_every", "stdout_logfile_rotate_naming", "stdout_logfile_compress",
    "stdout_logfile_total_maxbytes", "stderr_logfile_rotate_every", "stderr_logfile_rotate_naming",
    "stderr_logfile_compress", "stderr_logfile_total_maxbytes",
    "syslog_facility", "syslog_tag", "syslog_stdout_priority", "syslog_stderr_priority",
}) | beyond.OPTIONS
_KNOWN_OPTIONS: dict[str, frozenset[str]] = {
    "supervisord": frozenset({
        "logfile", "logfile_maxbytes", "logfile_backups", "loglevel", "pidfile", "umask", "nodaemon", "silent",
        "minfds", "minprocs", "nocleanup", "childlogdir", "user", "directory", "strip_ansi", "environment",
        "identifier", "supervise_dir", "exit_on_fatal", "exit_when_all_stopped"}) | alarms.SUPERVISORD_OPTIONS,
    "program": _PROGRAM_OPTIONS,
    "eventlistener": _PROGRAM_OPTIONS | {"events", "buffer_size", "result_handler"},
    "fcgi-program": _PROGRAM_OPTIONS | {"socket", "socket_backlog", "socket_owner", "socket_mode"},
    "group": frozenset({"programs", "priority"}),
    "unix_http_server": frozenset({"file", "chmod", "chown", "username", "password", "readonly_username",
                                   "readonly_password", "legacy_actions", "metrics_auth"}),
    "inet_http_server": frozenset({"port", "username", "password", "readonly_username", "readonly_password",
                                   "legacy_actions", "metrics_auth", "nodename", "remotes"}),
    "supervisorctl": frozenset({"serverurl", "username", "password", "prompt", "history_file"}),
    "include": frozenset({"files"}),
    "node": frozenset({"serverurl", "username", "password"}),
}


@dataclass(slots=True)
class BuildOptions:
    """How strictly to check things that depend on this host (users, directories)."""

    # Off only to compare parsers on configs written for other machines (the corpus test).
    host_checks: bool = True
    require_supervisord: bool = True
    environ: Mapping[str, str] | None = None


@dataclass(slots=True)
class _Reader:
    """Reads one section's options: expand, parse, and locate every error."""

    doc: IniDocument
    section: str
    expansions: dict[str, object]
    kind: str
    # The section's options over [DEFAULT]'s (configparser's fallback), merged once: a process
    # section is asked for ~50 options, most of them absent.
    options: dict[str, Option] = field(init=False)

    def __post_init__(self) -> None:
        own = self.doc.sections[self.section].options
        self.options = {**self.doc.defaults, **own} if self.doc.defaults else own

    @property
    def where(self) -> Where:
        sec = self.doc.sections[self.section]
        return Where(file=sec.file, line=sec.line)

    def raw(self, option: str) -> Option | None:
        return self.options.get(option)

    def error(self, option: str | None, message: str, opt: Option | None = None) -> ConfigError:
        opt = opt or (self.raw(option) if option else None)
        line = opt.line if opt else self.where.line
        file = opt.file if opt else self.where.file
        return ConfigError(message, file=file, line=line, section=self.section, option=option)

    def text(self, option: str, default: str | None = None, *, do_expand: bool = True,
             extra: Mapping[str, object] | None = None) -> str | None:
        opt = self.options.get(option)
        if opt is None:
            return default
        value = opt.value.replace("%(here)s", os.path.dirname(opt.file)) if "%(here)s" in opt.value else opt.value
        if not do_expand:
            return value
        expansions = dict(self.expansions, **extra) if extra else self.expansions
        return expand(value, expansions, where=opt, section=self.section, option=option)

    def get(self, option: str, parse: Callable[[str], T], default: T, **kw: Mapping[str, object]) -> T:
        if option not in self.options:  # most are absent; answering here is 15% of reading 1000 programs
            return default
        text = self.text(option, **kw)  # type: ignore[arg-type]
        assert text is not None  # present, so text() returns its value
        try:
            return parse(text)
        except ValueError as exc:
            raise self.error(option, str(exc)) from None

    def required(self, option: str, parse: Callable[[str], T], what: str,
                 extra: Mapping[str, object] | None = None) -> T:
        text = self.text(option, extra=extra)
        if text is None or not text.strip():
            raise self.error(option, f"missing required option (expected {what})")
        try:
            return parse(text)
        except ValueError as exc:
            raise self.error(option, str(exc)) from None

    def unknown_options(self) -> list[str]:
        known = _KNOWN_OPTIONS.get(self.kind, frozenset())
        sec = self.doc.sections[self.section]
        return [f"{opt.file}:{opt.line}: [{self.section}] unknown option {name!r} ignored"
                for name, opt in sec.options.items() if name not in known]


def load(path: str, options: BuildOptions | None = None) -> Config:
    """Read ``path`` and its includes and build the validated configuration."""
    opts = options or BuildOptions()
    env = environ_expansions(opts.environ)
    base: dict[str, object] = {"host_node_name": host_node_name(), **env}
    doc = read(path, dict(base))  # type: ignore[arg-type]
    return build(doc, opts)


def build(doc: IniDocument, opts: BuildOptions) -> Config:
    """Build the model from a read document."""
    env = environ_expansions(opts.environ)
    here = os.path.dirname(doc.main_file)
    warnings = list(doc.warnings)
    if "supervisord" not in doc.sections:
        if opts.require_supervisord:
            raise ConfigError("no [supervisord] section (every supervisord.conf needs one)", file=doc.main_file)
        supervisord = SupervisordConfig(childlogdir=tempfile.gettempdir())
    else:
        warnings.extend(dialect.go_spellings(doc))
        supervisord = _supervisord(_Reader(doc, "supervisord", {"here": here, **env}, "supervisord"), opts)
    env.update({f"ENV_{k}": val for k, val in supervisord.environment.items()})
    dialect.program_defaults(doc)
    groups = _groups(doc, opts, here, env, supervisord, warnings)
    servers = _servers(doc, opts, here, env)
    ctl = _ctl(doc, here, env) if "supervisorctl" in doc.sections else CtlConfig()
    rpcinterfaces = _rpcinterfaces(doc, warnings)
    for name in doc.sections:
        kind = name.split(":", 1)[0]
        if kind in ("rpcinterface", "ctlplugin", "program-default"):
            continue
        if kind not in _KNOWN_OPTIONS:
            sec = doc.sections[name]
            warnings.append(f"{sec.file}:{sec.line}: unknown section [{name}] ignored")
            continue
        warnings.extend(_Reader(doc, name, {}, kind).unknown_options())
    return Config(path=doc.main_file, supervisord=supervisord, groups=groups, servers=servers, ctl=ctl,
                  nodes=_nodes(doc, here, env), nodename=_nodename(doc), rpcinterfaces=rpcinterfaces,
                  files=tuple(doc.files), warnings=tuple(warnings))


def _existing_dirpath(r: _Reader, option: str, path: str, opts: BuildOptions) -> str:
    path = os.path.expanduser(path)
    directory = os.path.dirname(path)
    if opts.host_checks and directory and not os.path.isdir(directory):
        raise r.error(option, f"directory {directory!r} of {path!r} does not exist")
    return path


def _existing_directory(r: _Reader, option: str, path: str, opts: BuildOptions) -> str:
    path = os.path.expanduser(path)
    if opts.host_checks and not os.path.isdir(path):
        raise r.error(option, f"expected an existing directory, got {path!r}")
    return path


def _supervisord(r: _Reader, opts: BuildOptions) -> SupervisordConfig:
    user = r.text("user")
    if user is not None and opts.host_checks:
        r.get("user", v.user_name, (0, 0))
    directory = r.text("directory")
    return SupervisordConfig(
        logfile=_existing_dirpath(r, "logfile", r.text("logfile", "supervisord.log") or "", opts),
        logfile_maxbytes=r.get("logfile_maxbytes", v.byte_size, 50 * 1024 * 1024),
        logfile_backups=r.get("logfile_backups", lambda s: v.integer(s, minimum=0), 10),
        loglevel=r.get("loglevel", v.log_level, 20),
        pidfile=_existing_dirpath(r, "pidfile", r.text("pidfile", "supervisord.pid") or "", opts),
        umask=r.get("umask", v.octal, 0o022),
        nodaemon=r.get("nodaemon", v.boolean, False),
        silent=r.get("silent", v.boolean, False),
        minfds=r.get("minfds", lambda s: v.integer(s, minimum=0), 1024),
        minprocs=r.get("minprocs", lambda s: v.integer(s, minimum=0), 200),
        nocleanup=r.get("nocleanup", v.boolean, False),
        childlogdir=_existing_directory(r, "childlogdir", r.text("childlogdir") or tempfile.gettempdir(), opts),
        user=user,
        directory=None if directory is None else _existing_directory(r, "directory", directory, opts),
        strip_ansi=r.get("strip_ansi", v.boolean, False),
        environment=r.get("environment", v.key_value_pairs, {}),
        identifier=r.text("identifier", "supervisor") or "supervisor",
        supervise_dir=_optional_path(r, "supervise_dir"),
        alarms=alarms.read(r),
        exit_on_fatal=r.get("exit_on_fatal", v.list_of_strings, ()),
        exit_when_all_stopped=r.get("exit_when_all_stopped", v.boolean, False),
    )


def _optional_path(r: _Reader, option: str) -> str | None:
    text = r.text(option)
    return os.path.abspath(os.path.expanduser(text.strip())) if text and text.strip() else None


def _groups(doc: IniDocument, opts: BuildOptions, here: str, env: dict[str, str],
            supervisord: SupervisordConfig, warnings: list[str]) -> tuple[GroupConfig, ...]:
    groups: list[GroupConfig] = []
    claimed: dict[str, str] = {}
    for name in doc.sections:
        if name.startswith("group:"):
            groups.append(_heterogeneous_group(doc, name, opts, here, env, supervisord, claimed))
    for name in doc.sections:
        kind, _, program = name.partition(":")
        if kind not in ("program", "fcgi-program", "eventlistener") or name in claimed:
            continue
        r = _Reader(doc, name, {"here": here, **env}, kind)
        program = _name(r, program)
        if kind == "eventlistener":
            groups.append(_listener_group(r, program, opts, here, env, supervisord, warnings))
            continue
        priority = r.get("priority", v.integer, 999)
        fcgi = _fcgi_socket(r, program, opts) if kind == "fcgi-program" else None
        processes = _processes(doc, name, program, opts, here, env, supervisord)
        groups.append(GroupConfig(name=program, priority=priority, processes=processes,
                                  kind=GroupKind(kind), fcgi=fcgi, where=r.where))
    seen: dict[str, GroupConfig] = {}
    for group in groups:
        if group.name in seen:
            first = seen[group.name]
            raise ConfigError(f"group name {group.name!r} is used twice (first at {first.where})",
                              file=group.where.file if group.where else None,
                              line=group.where.line if group.where else None)
        seen[group.name] = group
    groups.sort(key=lambda g: (g.priority, g.name))
    beyond.check_dependencies(groups)
    return tuple(groups)


def _name(r: _Reader, raw: str) -> str:
    try:
        return v.process_name(raw)
    except ValueError as exc:
        raise r.error(None, f"bad section name: {exc}") from None


def _heterogeneous_group(doc: IniDocument, section: str, opts: BuildOptions, here: str,
                         env: dict[str, str], supervisord: SupervisordConfig,
                         claimed: dict[str, str]) -> GroupConfig:
    r = _Reader(doc, section, {"here": here, **env}, "group")
    group_name = _name(r, section.split(":", 1)[1])
    programs = r.required("programs", v.list_of_strings, "a comma-separated list of program names")
    priority = r.get("priority", v.integer, 999)
    processes: list[ProcessConfig] = []
    for program in programs:
        candidates = [s for s in (f"program:{program}", f"fcgi-program:{program}") if s in doc.sections]
        if not candidates:
            raise r.error("programs", f"names unknown program {program!r} (no [program:{program}] section)")
        if len(candidates) > 1:
            raise r.error("programs", f"name {program!r} is ambiguous (both program and fcgi-program)")
        # Supervisor lets one program sit in two [group:x] sections (it runs in both); so do we.
        claimed[candidates[0]] = section
        processes.extend(_processes(doc, candidates[0], group_name, opts, here, env, supervisord))
    return GroupConfig(name=group_name, priority=priority, processes=tuple(processes), where=r.where)


def _listener_group(r: _Reader, pool: str, opts: BuildOptions, here: str, env: dict[str, str],
                    supervisord: SupervisordConfig, warnings: list[str]) -> GroupConfig:
    priority = r.get("priority", v.integer, -1)
    buffer_size = r.get("buffer_size", lambda s: v.integer(s, minimum=1), 10)
    handler = r.text("result_handler", DEFAULT_RESULT_HANDLER) or DEFAULT_RESULT_HANDLER
    if handler != DEFAULT_RESULT_HANDLER:
        opt = r.raw("result_handler")
        where = f"{opt.file}:{opt.line}: " if opt else ""
        warnings.append(f"{where}[{r.section}] result_handler {handler!r} is not supported; "
                        "the default handler (RESULT OK = processed) is used")
    names = r.required("events", v.list_of_strings, "a comma-separated list of event types")
    events = tuple(sorted({name.upper() for name in names}))
    for event in events:
        if event not in EVENT_TYPES:
            raise r.error("events", f"unknown event type {event!r} (expected e.g. PROCESS_STATE, TICK_60)")
    if r.get("redirect_stderr", v.boolean, False):
        raise r.error("redirect_stderr", "must be false in an eventlistener (stdout carries the protocol)")
    processes = _processes(r.doc, r.section, pool, opts, here, env, supervisord)
    return GroupConfig(name=pool, priority=priority, kind=GroupKind.EVENTLISTENER, processes=processes,
                       listener=ListenerConfig(events=events, buffer_size=buffer_size, result_handler=handler),
                       where=r.where)


def _fcgi_socket(r: _Reader, program: str, opts: BuildOptions) -> FcgiSocketConfig:
    url = r.required("socket", str, "tcp://host:port or unix:///path", extra={"program_name": program})
    if url.startswith("unix://"):
        if not os.path.isabs(url[7:]):
            raise r.error("socket", f"expected an absolute unix socket path, got {url!r}")
    elif not url.startswith("tcp://") or not url[6:].rpartition(":")[2].isdigit():
        raise r.error("socket", f"expected tcp://host:port or unix:///path, got {url!r}")
    backlog = r.get("socket_backlog", lambda s: v.integer(s, minimum=1, maximum=65535), None)
    owner = r.get("socket_owner", v.user_group, None) if opts.host_checks else None
    mode = r.get("socket_mode", v.octal, None)
    if url.startswith("tcp://") and (r.raw("socket_owner") or mode is not None):
        raise r.error("socket_mode", "socket_owner and socket_mode apply only to unix:// sockets")
    return FcgiSocketConfig(url=url, backlog=backlog, owner=owner, mode=mode)


def _processes(doc: IniDocument, section: str, group_name: str, opts: BuildOptions, here: str,
               env: dict[str, str], supervisord: SupervisordConfig) -> tuple[ProcessConfig, ...]:
    kind, _, raw_program = section.partition(":")
    common: dict[str, object] = {"here": here, "program_name": raw_program.strip(),
                                 "host_node_name": host_node_name(), "group_name": group_name, **env}
    r = _Reader(doc, section, common, kind)
    program = _name(r, raw_program)
    numprocs = r.get("numprocs", lambda s: v.integer(s, minimum=1), 1)
    numprocs_start = r.get("numprocs_start", lambda s: v.integer(s, minimum=0), 0)
    template = r.text("process_name", "%(program_name)s", do_expand=False) or ""
    if numprocs > 1 and "%(process_num)" not in template:
        raise r.error("process_name", f"must contain %(process_num)s when numprocs > 1 (numprocs={numprocs})")
    stopasgroup = r.get("stopasgroup", v.boolean, False)
    killasgroup = r.get("killasgroup", v.boolean, stopasgroup)
    if stopasgroup and not killasgroup:
        raise r.error("killasgroup", "cannot be false when stopasgroup is true")
    processes = []
    names: set[str] = set()
    for num in range(numprocs_start, numprocs_start + numprocs):
        per: dict[str, object] = dict(common, process_num=num, numprocs=numprocs)
        r.expansions = per
        no_env: dict[str, str] = {}
        own_env = {**beyond.environment_file(r), **r.get("environment", v.key_value_pairs, no_env)}
        per.update({f"ENV_{k}": val for k, val in own_env.items()})
        name = expand(template, per, where=r.raw("process_name"), section=section, option="process_name")
        try:
            name = v.process_name(name)
        except ValueError as exc:
            raise r.error("process_name", str(exc)) from None
        if name in names:
            raise r.error("process_name", f"gives the same name {name!r} to two processes")
        names.add(name)
        processes.append(_process(r, name, program, opts, supervisord, own_env,
                                  stopasgroup=stopasgroup, killasgroup=killasgroup))
    return tuple(sorted(processes, key=lambda p: (p.priority, p.name)))


def _process(r: _Reader, name: str, program: str, opts: BuildOptions, supervisord: SupervisordConfig,
             own_env: dict[str, str], *, stopasgroup: bool, killasgroup: bool) -> ProcessConfig:
    user = r.text("user")
    uid = gid = None
    if user is not None:
        if opts.host_checks:
            uid, gid = r.get("user", v.user_name, (0, 0))
        else:
            try:
                uid, gid = v.user_name(user)
            except ValueError:
                uid, gid = 0, 0
    redirect = r.get("redirect_stderr", v.boolean, False)
    def dirpath(option: str, path: str) -> str:
        return _existing_dirpath(r, option, path, opts)

    stdout = logconf.read_log(r, "stdout", dirpath)
    stderr = logconf.read_log(r, "stderr", dirpath)
    if redirect:
        stderr = LogConfig(target=v.LogTarget.NONE, maxbytes=stderr.maxbytes, backups=stderr.backups,
                           capture_maxbytes=stderr.capture_maxbytes, events_enabled=stderr.events_enabled,
                           syslog=stderr.syslog)
    serverurl = r.text("serverurl")
    if serverurl is not None and serverurl.strip().upper() == "AUTO":
        serverurl = None
    umask_text = r.text("umask")
    retries = r.get("startretries", beyond.startretries, 3)
    stopsignals: tuple[int, ...] = r.get("stopsignal", v.signal_numbers, (15,))
    return ProcessConfig(
        name=name,
        program=program,
        command=r.required("command", str, "the command line to run"),
        priority=r.get("priority", v.integer, 999),
        autostart=r.get("autostart", v.boolean, True),
        autorestart=r.get("autorestart", v.autorestart, v.Autorestart.UNEXPECTED),
        startsecs=r.get("startsecs", lambda s: v.integer(s, minimum=0), 1),
        startretries=max(0, retries),
        exitcodes=r.get("exitcodes", v.exitcodes, (0,)),
        stopsignal=stopsignals[0],
        later_stopsignals=stopsignals[1:],
        killwaitsecs=r.get("killwaitsecs", lambda s: v.integer(s, minimum=0), None),
        cron=r.get("cron", beyond.cron, None),
        stopwaitsecs=r.get("stopwaitsecs", lambda s: v.integer(s, minimum=0), 10),
        stopasgroup=stopasgroup,
        killasgroup=killasgroup,
        user=user,
        uid=uid,
        gid=gid,
        directory=r.text("directory"),
        umask=None if umask_text is None else r.get("umask", v.octal, 0),
        redirect_stderr=redirect,
        stdout=stdout,
        stderr=stderr,
        environment={**supervisord.environment, **own_env},
        serverurl=serverurl,
        **beyond.read(r, forever=retries < 0),
        where=r.where,
    )


def _servers(doc: IniDocument, opts: BuildOptions, here: str, env: dict[str, str]) -> tuple[HttpServerConfig, ...]:
    servers = []
    for name in doc.sections:
        kind = name.split(":", 1)[0]
        if kind not in ("unix_http_server", "inet_http_server"):
            continue
        r = _Reader(doc, name, {"here": here, **env}, kind)
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
        chown = r.get("chown", v.user_group, None) if opts.host_checks else None
        servers.append(HttpServerConfig(section=name, file=path, chmod=r.get("chmod", v.octal, 0o700),
                                        chown=chown, username=username, password=password, readonly=readonly,
                                        legacy_actions=legacy, metrics_auth=metrics_auth,
                                        where=_where_of(r, "file")))
    return tuple(servers)


def _readonly_user(r: _Reader, username: str | None) -> tuple[str, str] | None:
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


def _where_of(r: _Reader, option: str) -> Where | None:
    opt = r.raw(option)
    return Where(file=opt.file, line=opt.line) if opt else None


def _nodes(doc: IniDocument, here: str, env: dict[str, str]) -> tuple[NodeConfig, ...]:
    """[node:NAME] sections: other daemons for the web page (procward's own addition)."""
    nodes = []
    for section in doc.sections:
        kind, _, name = section.partition(":")
        if kind != "node":
            continue
        r = _Reader(doc, section, {"here": here, **env}, "node")
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
        nodes.append(NodeConfig(name=_name(r, name), serverurl=serverurl, username=username, password=password))
    return (*nodes, *_remotes(doc, {n.name for n in nodes}))


def _remotes(doc: IniDocument, taken: set[str]) -> list[NodeConfig]:
    """Go supervisord's ``[inet_http_server] remotes = name:host:port, ...``: more nodes, without
    credentials (Go sends none; a [node:NAME] section carries them)."""
    if "inet_http_server" not in doc.sections:
        return []
    r = _Reader(doc, "inet_http_server", {}, "inet_http_server")
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


def _nodename(doc: IniDocument) -> str:
    if "inet_http_server" not in doc.sections:
        return ""
    return (_Reader(doc, "inet_http_server", {}, "inet_http_server").text("nodename") or "").strip()


def _ctl(doc: IniDocument, here: str, env: dict[str, str]) -> CtlConfig:
    r = _Reader(doc, "supervisorctl", {"here": here, **env}, "supervisorctl")
    history = r.text("history_file")
    return CtlConfig(
        serverurl=r.get("serverurl", v.url, "http://localhost:9001"),
        username=r.text("username"),
        password=r.text("password"),
        prompt=r.text("prompt", "supervisor") or "supervisor",
        history_file=os.path.abspath(os.path.expanduser(history)) if history else None,
    )


def load_ctl(path: str, environ: Mapping[str, str] | None = None) -> CtlConfig:
    """The client's view of ``path``: [supervisorctl], else the server sections it would talk to.

    Only what the client needs is read, so a broken [program:x] does not stop an operator from
    inspecting the daemon. Unlike supervisorctl, a file without [supervisorctl] (or without its
    serverurl) falls back to the daemon's own unix socket or TCP port and their credentials.
    """
    env = environ_expansions(environ)
    doc = read(path, {"host_node_name": host_node_name(), **env})
    here = os.path.dirname(doc.main_file)
    opts = BuildOptions(host_checks=False, environ=environ)
    has_url = "supervisorctl" in doc.sections and doc.get("supervisorctl", "serverurl") is not None
    ctl = _ctl(doc, here, env) if "supervisorctl" in doc.sections else CtlConfig()
    ctl = replace(ctl, nodes=_nodes(doc, here, env))
    if has_url:
        return ctl
    servers = sorted(_servers(doc, opts, here, env), key=lambda s: not s.is_unix)
    if not servers:
        return ctl
    server = servers[0]
    url = f"unix://{server.file}" if server.is_unix else f"http://{server.host or 'localhost'}:{server.port}"
    username = ctl.username if ctl.username is not None else server.username
    password = ctl.password if ctl.password is not None else server.password
    return CtlConfig(serverurl=url, username=username, password=password, prompt=ctl.prompt,
                     history_file=ctl.history_file, nodes=ctl.nodes)


def _rpcinterfaces(doc: IniDocument, warnings: list[str]) -> tuple[str, ...]:
    names = []
    for name, sec in doc.sections.items():
        if not name.startswith(("rpcinterface:", "ctlplugin:")):
            continue
        factory_key = "supervisor.rpcinterface_factory" if name.startswith("rpc") else "supervisor.ctl_factory"
        factory = sec.options.get(factory_key)
        if factory is None:
            raise ConfigError(f"missing required option {factory_key!r}", file=sec.file, line=sec.line,
                              section=name)
        if name.startswith("rpcinterface:") and factory.value.strip() == STANDARD_RPCINTERFACE:
            names.append(name.split(":", 1)[1])
            continue
        warnings.append(f"{factory.file}:{factory.line}: [{name}] {factory.value.strip()} is a Supervisor plugin; "
                        "procward does not load Python plugins, so this section is ignored")
    return tuple(names)
