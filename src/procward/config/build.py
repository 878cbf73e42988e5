"""Sections -> validated model, with Supervisor 4.3's defaults, expansions and cross-checks."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from procward.config import alarms, beyond, dialect, logconf
from procward.config import servers as sections
from procward.config import sockets as held_sockets
from procward.config import values as v
from procward.config.eventnames import EVENT_TYPES
from procward.config.expand import environ_expansions, expand, host_node_name
from procward.config.ini import IniDocument, read
from procward.config.model import (
    Config,
    CtlConfig,
    FcgiSocketConfig,
    GroupConfig,
    GroupKind,
    ListenerConfig,
    LogConfig,
    ProcessConfig,
    SupervisordConfig,
)
from procward.config.reader import SectionReader
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
}) | beyond.OPTIONS | held_sockets.OPTIONS
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
        supervisord = SupervisordConfig(childlogdir=v.default_childlogdir())
    else:
        warnings.extend(dialect.go_spellings(doc))
        supervisord = _supervisord(SectionReader(doc, "supervisord", {"here": here, **env}, "supervisord"), opts)
    env.update({f"ENV_{k}": val for k, val in supervisord.environment.items()})
    dialect.program_defaults(doc)
    groups = _groups(doc, opts, here, env, supervisord, warnings)
    servers = sections.servers(doc, here, env, host_checks=opts.host_checks)
    ctl = sections.ctl(doc, here, env) if "supervisorctl" in doc.sections else CtlConfig()
    rpcinterfaces = _rpcinterfaces(doc, warnings)
    for name in doc.sections:
        kind = name.split(":", 1)[0]
        if kind in ("rpcinterface", "ctlplugin", "program-default"):
            continue
        if kind not in _KNOWN_OPTIONS:
            sec = doc.sections[name]
            warnings.append(f"{sec.file}:{sec.line}: unknown section [{name}] ignored")
            continue
        warnings.extend(SectionReader(doc, name, {}, kind).unknown_options(_KNOWN_OPTIONS[kind]))
    return Config(path=doc.main_file, supervisord=supervisord, groups=groups, servers=servers, ctl=ctl,
                  nodes=sections.nodes(doc, here, env), nodename=sections.nodename(doc), rpcinterfaces=rpcinterfaces,
                  files=tuple(doc.files), warnings=tuple(warnings))


def _existing_dirpath(r: SectionReader, option: str, path: str, opts: BuildOptions) -> str:
    path = os.path.expanduser(path)
    directory = os.path.dirname(path)
    if opts.host_checks and directory and not os.path.isdir(directory):
        raise r.error(option, f"directory {directory!r} of {path!r} does not exist")
    return path


def _existing_directory(r: SectionReader, option: str, path: str, opts: BuildOptions) -> str:
    path = os.path.expanduser(path)
    if opts.host_checks and not os.path.isdir(path):
        raise r.error(option, f"expected an existing directory, got {path!r}")
    return path


def _supervisord(r: SectionReader, opts: BuildOptions) -> SupervisordConfig:
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
        childlogdir=_existing_directory(r, "childlogdir", r.text("childlogdir") or v.default_childlogdir(), opts),
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


def _optional_path(r: SectionReader, option: str) -> str | None:
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
        r = SectionReader(doc, name, {"here": here, **env}, kind)
        program = r.name(program)
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
    held_sockets.check_unshared(groups)
    return tuple(groups)


def _heterogeneous_group(doc: IniDocument, section: str, opts: BuildOptions, here: str,
                         env: dict[str, str], supervisord: SupervisordConfig,
                         claimed: dict[str, str]) -> GroupConfig:
    r = SectionReader(doc, section, {"here": here, **env}, "group")
    group_name = r.name(section.split(":", 1)[1])
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


def _listener_group(r: SectionReader, pool: str, opts: BuildOptions, here: str, env: dict[str, str],
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


def _fcgi_socket(r: SectionReader, program: str, opts: BuildOptions) -> FcgiSocketConfig:
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
    r = SectionReader(doc, section, common, kind)
    program = r.name(raw_program)
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
        held = held_sockets.read(r, program, host_checks=opts.host_checks)
        per.update(held_sockets.expansions(held.get("sockets", ())))
        name = expand(template, per, where=r.raw("process_name"), section=section, option="process_name")
        try:
            name = v.process_name(name)
        except ValueError as exc:
            raise r.error("process_name", str(exc)) from None
        if name in names:
            raise r.error("process_name", f"gives the same name {name!r} to two processes")
        names.add(name)
        processes.append(_process(r, name, program, opts, supervisord, own_env, held,
                                  stopasgroup=stopasgroup, killasgroup=killasgroup))
    return tuple(sorted(processes, key=lambda p: (p.priority, p.name)))


def _process(r: SectionReader, name: str, program: str, opts: BuildOptions, supervisord: SupervisordConfig,
             own_env: dict[str, str], held: dict[str, Any], *, stopasgroup: bool, killasgroup: bool
             ) -> ProcessConfig:
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
        **held,
        where=r.where,
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
    ctl = sections.ctl(doc, here, env) if "supervisorctl" in doc.sections else CtlConfig()
    ctl = replace(ctl, nodes=sections.nodes(doc, here, env))
    if has_url:
        return ctl
    servers = sorted(sections.servers(doc, here, env, host_checks=opts.host_checks), key=lambda s: not s.is_unix)
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
