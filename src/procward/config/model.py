"""The effective configuration: frozen dataclasses built from supervisord-format files."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from procward.config.values import Autorestart, LogTarget


class GroupKind(StrEnum):
    """Which kind of section a process group came from."""

    PROGRAM = "program"
    EVENTLISTENER = "eventlistener"
    FCGI = "fcgi-program"


@dataclass(frozen=True, slots=True, kw_only=True)
class Where:
    """The file and line a section starts at, for messages about it."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class LineFormat(StrEnum):
    """``stdout_log_format`` / ``stderr_log_format`` (procward's)."""

    RAW = "raw"  # the bytes as written (Supervisor's)
    TEXT = "text"  # TIME [NAME] LINE
    JSON = "json"  # one JSON object a line: time, name, group, pid, stream, message
    CONTAINER = "container"  # NAME | LINE (honcho/foreman style, for /dev/stdout)


class TimeFormat(StrEnum):
    """``stdout_log_time_format`` / ``stderr_log_time_format``."""

    RFC3339 = "rfc3339"  # 2026-11-30T02:15:00.123456+00:00
    LOCAL = "local"  # 2026-11-30 03:15:00,123 (as the daemon's own log)
    UNIX = "unix"  # 1796004900.123


@dataclass(frozen=True, slots=True, kw_only=True)
class LogRotation:
    """A log file's rotation beyond Supervisor's by size: every ``every`` seconds (0: never), backups named
    by date or by index, gzipped or not, their total size capped (0: no cap)."""

    every: int = 0
    by_date: bool = False
    compress: bool = False
    total_maxbytes: int = 0

    @property
    def plain(self) -> bool:
        """Supervisor's rotation only (the path that stays byte-for-byte its behaviour)."""
        return not (self.every or self.by_date or self.compress or self.total_maxbytes)


@dataclass(frozen=True, slots=True, kw_only=True)
class SyslogTarget:
    """``syslog`` or ``syslog @[udp:|tcp:]host[:port]`` in a ``*_logfile`` list (Go supervisord's)."""

    transport: str  # local (the /dev/log socket), udp or tcp
    address: str = ""  # the local socket's path
    host: str = ""
    port: int = 0
    facility: int = 16  # LOG_LOCAL0
    tag: str = ""
    stdout_priority: int = 5  # LOG_NOTICE
    stderr_priority: int = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class LogConfig:
    """One output channel (stdout or stderr) of a process."""

    target: LogTarget | str  # LogTarget.AUTO / NONE, or a path
    maxbytes: int = 50 * 1024 * 1024
    backups: int = 10
    capture_maxbytes: int = 0
    events_enabled: bool = False
    syslog: bool = False
    line_format: LineFormat = LineFormat.RAW
    time_format: TimeFormat = TimeFormat.RFC3339
    with_name: bool = False  # text format: the program's name after the time
    rotation: LogRotation = field(default_factory=LogRotation)
    extra_files: tuple[str, ...] = ()  # more files or devices (/dev/stdout) that get the same output
    syslog_targets: tuple[SyslogTarget, ...] = ()


class Backoff(StrEnum):
    """How the delay before the next start grows with consecutive failures."""

    LINEAR = "linear"  # Supervisor's: 1, 2, 3 ... seconds
    EXPONENTIAL = "exponential"  # 1, 2, 4, 8 ... seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartPolicy:
    """procward's restart options beyond autorestart/startretries (all off by default)."""

    forever: bool = False  # startretries=infinite: never FATAL for failing to start
    backoff: Backoff = Backoff.LINEAR
    backoff_max: int = 0  # cap on the delay in seconds (0: none)
    max_restarts: int = 0  # automatic restarts allowed within restart_window (0: no limit)
    restart_window: int = 0  # seconds (0: over the process's whole life)
    restartpause: int = 0  # seconds between an exit and the automatic restart
    max_cores: int = 0  # max_tries_if_coredumped: FATAL at the next core dump past this many in the window

    @property
    def delays_crashes(self) -> bool:
        """Whether a crash after RUNNING also waits out the backoff delay before restarting."""
        return self.backoff == Backoff.EXPONENTIAL


class HealthKind(StrEnum):
    """How a probe or a hook runs."""

    HTTP = "http"  # a request, passes on 2xx/3xx
    TCP = "tcp"  # connects
    EXEC = "exec"  # a shell command, passes on exit 0


class HealthAction(StrEnum):
    """What an unhealthy verdict does."""

    RESTART = "restart"
    STOP = "stop"
    REPORT = "report"


@dataclass(frozen=True, slots=True, kw_only=True)
class Script:
    """What a health probe or a hook runs. Go supervisord calls all three kinds "scripts"."""

    kind: HealthKind
    target: str  # the URL, host:port, or shell command
    headers: tuple[tuple[str, str], ...] = ()  # http: Go's curl-style -H
    data: str = ""  # http: Go's -d; sent as a POST body ("@path": the file's content at each run)


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthCheck:
    """``healthcheck = http://... | tcp://host:port | exec <command>`` (or Go's ``liveness_check_*``)
    and its timing."""

    probe: Script
    interval: float = 10.0
    timeout: float = 5.0
    retries: int = 3  # consecutive failures before unhealthy
    successes: int = 1  # consecutive passes before healthy (Go's liveness_check_success_threshold)
    start_period: float = 0.0  # failures in the first seconds after start do not count
    initial_delay: float = 0.0  # no probe in the first seconds after start (Go's liveness_check_initial_delay)
    action: HealthAction = HealthAction.RESTART
    on_healthy: Script | None = None  # run when the verdict turns healthy (Go's _success_action)
    on_unhealthy: Script | None = None  # run when it turns unhealthy (Go's _failure_action = <script>)


@dataclass(frozen=True, slots=True, kw_only=True)
class FileWatch:
    """Restart when the executable or watched files change (Go supervisord's option names)."""

    binary: bool = False  # restart_when_binary_changed
    directory: str | None = None  # restart_directory_monitor
    pattern: str = "*"  # restart_file_pattern
    # Instead of the restart (Go's restart_{signal,cmd}_when_{binary,file}_changed): a signal, else a command.
    binary_signal: int | None = None
    binary_cmd: str | None = None
    file_signal: int | None = None
    file_cmd: str | None = None


class SocketKind(StrEnum):
    """What a held socket is (the scheme of its ``sockets`` address)."""

    TCP = "tcp"
    UDP = "udp"
    UNIX = "unix"


@dataclass(frozen=True, slots=True, kw_only=True)
class HeldSocketConfig:
    """A listening socket procward binds, holds across the program's restarts and passes to it (``sockets``)."""

    name: str  # LISTEN_FDNAMES and %(socket_fd_NAME)s
    url: str  # tcp://host:port, udp://host:port or unix:///path, as written (the key two programs may not share)
    kind: SocketKind
    host: str = ""  # tcp/udp; '' is every IPv4 address
    port: int = 0
    path: str = ""  # unix
    backlog: int = 0  # 0: SOMAXCONN
    mode: int | None = None  # unix: chmod of the socket file
    owner: tuple[int, int] | None = None  # unix: chown of the socket file


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessConfig:
    """One OS process to supervise (a program with numprocs=3 gives three of these)."""

    name: str
    program: str
    command: str
    priority: int = 999
    autostart: bool = True
    autorestart: Autorestart = Autorestart.UNEXPECTED
    startsecs: int = 1
    startretries: int = 3
    exitcodes: tuple[int, ...] = (0,)
    stopsignal: int = 15
    stopwaitsecs: int = 10
    # Go supervisord: a stopsignal list; each later signal follows stopwaitsecs after the one before.
    later_stopsignals: tuple[int, ...] = ()
    cron: str | None = None  # Go supervisord: start at each matching time when not running
    killwaitsecs: int | None = None  # how long shutdown waits after SIGKILL (None: SHUTDOWN_KILL_GRACE)
    stopasgroup: bool = False
    killasgroup: bool = False
    user: str | None = None
    uid: int | None = None
    gid: int | None = None
    directory: str | None = None
    umask: int | None = None
    redirect_stderr: bool = False
    stdout: LogConfig
    stderr: LogConfig
    environment: dict[str, str] = field(default_factory=dict)
    serverurl: str | None = None
    # procward additions (an old supervisord.conf leaves them all at these defaults)
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    healthcheck: HealthCheck | None = None
    notify: bool = False  # sd_notify readiness on NOTIFY_SOCKET
    watchdog_sec: int = 0
    ready_timeout: int = 90  # seconds a notify program has to send READY=1
    depends_on: tuple[str, ...] = ()
    killdescendants: bool = True
    pidfile: str | None = None
    memory_limit: int = 0
    watch: FileWatch | None = None
    # Go supervisord's hooks, each bounded by hook_timeout: a failing pre-start hook fails the start; a
    # pre-stop hook that fails or hangs is logged and the stop goes ahead.
    alarm_events: frozenset[AlarmEvent] | None = None  # None: the daemon's alarm_events
    pre_start_hook: Script | None = None
    pre_stop_hook: Script | None = None
    hook_timeout: float = 60.0
    # Listening sockets held by procward (fds 3, 4, ... in the child), and whether the child is told of them
    # in systemd's LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES (false: the fd number on its command line only).
    sockets: tuple[HeldSocketConfig, ...] = ()
    sockets_env: bool = True
    where: Where | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenerConfig:
    """What an [eventlistener:x] pool adds to a group."""

    events: tuple[str, ...]
    buffer_size: int = 10
    result_handler: str = "supervisor.dispatchers:default_handler"


@dataclass(frozen=True, slots=True, kw_only=True)
class FcgiSocketConfig:
    """The socket an [fcgi-program:x] binds and passes to its processes as fd 0."""

    url: str
    backlog: int | None = None
    owner: tuple[int, int] | None = None
    mode: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupConfig:
    """A process group: a [program:x] (numprocs copies), a [group:x], a listener pool or fcgi program."""

    name: str
    priority: int = 999
    kind: GroupKind = GroupKind.PROGRAM
    processes: tuple[ProcessConfig, ...]
    listener: ListenerConfig | None = None
    fcgi: FcgiSocketConfig | None = None
    where: Where | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpServerConfig:
    """A [unix_http_server] or [inet_http_server] section."""

    section: str
    file: str | None = None  # unix socket path
    chmod: int = 0o700
    chown: tuple[int, int] | None = None
    host: str | None = None  # inet: '' means all interfaces
    port: int | None = None
    username: str | None = None
    password: str | None = None
    readonly: tuple[str, str] | None = None  # a user who may look at the web page and logs, never act
    legacy_actions: bool = True  # Supervisor's index.html?action= GETs (for scripts); false turns them off
    metrics_auth: bool = True  # false: /metrics alone is served without credentials (for a scraper)
    where: Where | None = field(default=None, compare=False)  # the file= / port= line, for bind errors

    @property
    def is_unix(self) -> bool:
        """True for a unix-socket server."""
        return self.file is not None


class AlarmEvent(StrEnum):
    """What can alarm."""

    FATAL = "fatal"  # gave up: FATAL
    EXIT = "exit"  # an unexpected exit
    FLAPPING = "flapping"  # restarted flap_restarts times within flap_window
    UNHEALTHY = "unhealthy"  # its health check failed
    MEMORY = "memory"  # memory_limit restarted it
    RECOVERED = "recovered"  # healthy or RUNNING again after one of the above (not after a plain exit)
    TEST = "test"  # ``procward ctl alarm test``


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmConfig:
    """``[supervisord] alarm_*``: where alarms go and how often (None in SupervisordConfig: no channel)."""

    events: frozenset[AlarmEvent] = frozenset(AlarmEvent) - {AlarmEvent.TEST}
    command: str | None = None  # the alarm as JSON on stdin, PROCWARD_ALARM_* in the environment
    webhook: str | None = None  # JSON POST (http or https)
    slack: bool = False  # the webhook body is Slack's {"text": ...}
    mail: tuple[str, ...] = ()  # recipients
    mail_from: str = ""
    sendmail: str = "/usr/sbin/sendmail -t -i"
    smtp: tuple[str, int] | None = None  # SMTP instead of sendmail
    smtp_starttls: bool = True
    smtp_user: str | None = None
    smtp_password: str | None = None
    interval: float = 60.0  # repeats of one program's event within this are counted, not sent
    batch: float = 2.0  # alarms arriving within this are sent as one message
    flap_restarts: int = 5
    flap_window: float = 60.0
    timeout: float = 10.0  # one delivery attempt
    queue: int = 100  # messages waiting for delivery; the oldest is dropped (and counted) past this
    alertmanager: tuple[str, ...] = ()  # Alertmanager base URLs: alarms become alerts (core/alarms/alertmanager.py)
    alertmanager_resend: float = 60.0  # seconds between posts of an alert that lasts


@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisordConfig:
    """The [supervisord] section."""

    logfile: str = "supervisord.log"
    logfile_maxbytes: int = 50 * 1024 * 1024
    logfile_backups: int = 10
    loglevel: int = 20
    pidfile: str = "supervisord.pid"
    umask: int = 0o022
    nodaemon: bool = False
    silent: bool = False
    minfds: int = 1024
    minprocs: int = 200
    nocleanup: bool = False
    childlogdir: str = "/tmp"  # noqa: S108 - supervisord's default, which configs rely on
    user: str | None = None
    directory: str | None = None
    strip_ansi: bool = False
    environment: dict[str, str] = field(default_factory=dict)
    identifier: str = "supervisor"
    supervise_dir: str | None = None  # procward: a daemontools-style status directory per process
    alarms: AlarmConfig | None = None
    exit_on_fatal: tuple[str, ...] = ()  # programs, groups or "*" whose FATAL stops the daemon with exit 1
    exit_when_all_stopped: bool = False  # a finished batch: the daemon exits with the worst run status


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConfig:
    """A ``[node:NAME]`` section: another daemon (procward or supervisord) the web page shows too."""

    name: str
    serverurl: str  # unix:///path or http://host:port
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CtlConfig:
    """The [supervisorctl] section."""

    serverurl: str = "http://localhost:9001"
    username: str | None = None
    password: str | None = None
    prompt: str = "supervisor"
    history_file: str | None = None
    nodes: tuple[NodeConfig, ...] = ()  # the other daemons ([node:x], Go's remotes), for ctl's fan-out


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Everything read from one main file and its includes."""

    path: str
    supervisord: SupervisordConfig
    groups: tuple[GroupConfig, ...]
    servers: tuple[HttpServerConfig, ...] = ()
    ctl: CtlConfig = field(default_factory=CtlConfig)
    nodes: tuple[NodeConfig, ...] = ()
    nodename: str = ""  # this daemon's name among the nodes (Go's [inet_http_server] nodename; "": the host's)
    rpcinterfaces: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def group(self, name: str) -> GroupConfig | None:
        """The group of that name, if configured."""
        return next((g for g in self.groups if g.name == name), None)
