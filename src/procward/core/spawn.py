"""The only code that starts OS processes: command resolution, environment, pipes, Popen."""

from __future__ import annotations

import fcntl
import functools
import os
import pwd
import shlex
import stat
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypedDict

from procward.config.model import ProcessConfig
from procward.errors import ProcwardError


class SpawnFailure(StrEnum):
    """Why a spawn failed, in Supervisor's fault vocabulary."""

    NO_FILE = "NO_FILE"
    NOT_EXECUTABLE = "NOT_EXECUTABLE"
    FAILED = "FAILED"


class SpawnError(ProcwardError):
    """The process could not be started; ``str()`` is the spawnerr text shown to operators."""

    def __init__(self, message: str, kind: SpawnFailure = SpawnFailure.FAILED) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(slots=True)
class Spawned:
    """A started child and the parent's ends of its pipes."""

    pid: int
    popen: subprocess.Popen[bytes] | None  # None for a child adopted across a reexec
    stdin: int | None
    stdout: int
    stderr: int | None


@functools.lru_cache(maxsize=4096)
def _split(command: str) -> tuple[str, ...]:
    # shlex is pure Python (~40 us a command); a command string always splits the same way.
    return tuple(shlex.split(command))


def resolve(config: ProcessConfig, daemon_path: str | None = None, *, recent: bool = False) -> tuple[str, list[str]]:
    """(filename, argv) for the command, checked as Supervisor checks it before forking.

    Supervisor searches the PATH at every spawn (a command installed since is found). With ``recent``
    (the spawn itself) a search less than RESOLVED_FOR old is used again: a mass start of one command
    stats it once instead of once a directory of PATH a program, and a file that went away meanwhile
    fails at exec with the same message. The checks an operator's start makes first always search.
    """
    try:
        argv = list(_split(config.command))
    except ValueError as exc:
        raise SpawnError(f"can't parse command {config.command!r}: {exc}", SpawnFailure.NOT_EXECUTABLE) from None
    if not argv:
        raise SpawnError("command is empty", SpawnFailure.NOT_EXECUTABLE)
    program = argv[0]
    path = "" if "/" in program else config.environment.get("PATH", daemon_path or os.environ.get("PATH", os.defpath))
    now = time.monotonic()
    found = _found.get((program, path)) if recent else None
    if found is not None and found[1] > now:
        return found[0], argv
    filename = _check(program, path)
    if len(_found) >= 4096:
        _found.clear()
    _found[(program, path)] = (filename, now + RESOLVED_FOR)
    return filename, argv


RESOLVED_FOR = 1.0  # seconds a command's resolution is used again without a search
_found: dict[tuple[str, str], tuple[str, float]] = {}  # (argv[0], PATH) -> (file, good until)


def _search_again(config: ProcessConfig, env: Mapping[str, str]) -> None:
    """After an exec that failed: forget the command's recent resolution and search now, so a file
    that went away or lost its x bit since gets the message a search before the fork gives."""
    program = _split(config.command)[0]
    for key in [key for key in _found if key[0] == program]:
        del _found[key]
    resolve(config, env.get("PATH"))


def _check(program: str, path: str) -> str:
    """The file ``program`` runs, found and checked as Supervisor does; SpawnError if none will run."""
    filename, st = program, None
    if not path:
        st = _stat(program)
    else:
        for directory in path.split(os.pathsep):
            candidate = os.path.join(directory, program)
            st = _stat(candidate)
            if st is not None:
                filename = candidate
                break
    if st is None:
        raise SpawnError(f"can't find command {filename!r}", SpawnFailure.NO_FILE)
    if stat.S_ISDIR(st.st_mode):
        raise SpawnError(f"command at {filename!r} is a directory", SpawnFailure.NOT_EXECUTABLE)
    if not stat.S_IMODE(st.st_mode) & 0o111:
        raise SpawnError(f"command at {filename!r} is not executable", SpawnFailure.NOT_EXECUTABLE)
    if not os.access(filename, os.X_OK):
        raise SpawnError(f"no permission to run command {filename!r}", SpawnFailure.NOT_EXECUTABLE)
    return filename


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def child_environment(config: ProcessConfig, group: str, serverurl: str | None,
                      extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The daemon's environment, Supervisor's SUPERVISOR_* variables, then the program's own."""
    env = _daemon_environment().copy()
    env["SUPERVISOR_ENABLED"] = "1"
    url = config.serverurl or serverurl
    if url:
        env["SUPERVISOR_SERVER_URL"] = url
    env["SUPERVISOR_PROCESS_NAME"] = config.name
    env["SUPERVISOR_GROUP_NAME"] = group
    if extra:
        env.update(extra)
    env.update(config.environment)
    return env


@functools.cache
def _daemon_environment() -> dict[str, str]:
    """os.environ as a plain dict, read at the first spawn: the daemon's environment is final by then (env
    files applied, NOTIFY_SOCKET taken out) and nothing changes it later. ``dict(os.environ)`` decodes every
    name and value again (~50 us at each spawn)."""
    return dict(os.environ)


class SpawnFunction(Protocol):
    """What starts a process (``spawn`` below; the unit tests give a fake)."""

    def __call__(self, config: ProcessConfig, env: dict[str, str], *, stdin_fd: int | None = None,
                 sockets: Sequence[int] = ()) -> Spawned: ...


def spawn(config: ProcessConfig, env: dict[str, str], *, stdin_fd: int | None = None,
          sockets: Sequence[int] = ()) -> Spawned:
    """Start the process in its own process group with piped stdout/stderr (and stdin unless given), and
    the held ``sockets`` as its fds 3, 4, ... (systemd's socket activation).

    No preexec_fn unless there are sockets: subprocess then uses its fast path (vfork where it can,
    close_range for fds).
    """
    pipes = Pipes.make(config, stdin_fd)
    try:
        popen = launch(config, env, pipes, sockets)
    except SpawnError:
        pipes.close_ours()
        raise
    return pipes.spawned(popen.pid, popen)


@dataclass(slots=True)
class Pipes:
    """A child's pipes made before it is spawned: the daemon's ends and the child's."""

    stdout: int
    stderr: int | None  # None with redirect_stderr
    stdin: int | None  # None when the child's stdin is given (an fcgi socket)
    child_stdout: int
    child_stderr: int | None
    child_stdin: int
    own_child_stdin: bool  # made here (closed here); not a given descriptor

    @classmethod
    def make(cls, config: ProcessConfig, stdin_fd: int | None = None) -> Pipes:
        """The pipes (SpawnError when the daemon is out of descriptors)."""
        made: list[int] = []
        try:
            out_r, out_w = _pipe(made)
            err_r, err_w = (None, None) if config.redirect_stderr else _pipe(made)
            in_r, in_w = (stdin_fd, None) if stdin_fd is not None else _pipe(made)
        except OSError as exc:
            _close(*made)
            raise SpawnError(f"couldn't make pipes: {exc.strerror}") from None
        return cls(out_r, err_r, in_w, out_w, err_w, in_r, stdin_fd is None)

    def child_ends(self) -> tuple[int, ...]:
        """The descriptors the child gets (closed in the daemon once it is spawned)."""
        ends = (self.child_stdout, self.child_stderr, self.child_stdin if self.own_child_stdin else None)
        return tuple(fd for fd in ends if fd is not None)

    def close_children(self) -> None:
        _close(*self.child_ends())

    def close_ours(self) -> None:
        _close(self.stdout, self.stderr, self.stdin)

    def spawned(self, pid: int, popen: subprocess.Popen[bytes] | None) -> Spawned:
        """The child ``pid`` has the child's ends: ours, made non-blocking, are its Spawned."""
        for fd in (self.stdout, self.stderr, self.stdin):
            if fd is not None:
                # Not os.set_blocking (F_GETFL, then F_SETFL): a new pipe end has no other flag to keep.
                fcntl.fcntl(fd, fcntl.F_SETFL, os.O_NONBLOCK)
        return Spawned(pid=pid, popen=popen, stdin=self.stdin, stdout=self.stdout, stderr=self.stderr)


def _pipe(made: list[int]) -> tuple[int, int]:
    r, w = os.pipe2(os.O_CLOEXEC)
    made += (r, w)
    return r, w


def launch(config: ProcessConfig, env: dict[str, str], pipes: Pipes,
           sockets: Sequence[int] = ()) -> subprocess.Popen[bytes]:
    """Fork and exec the command with the child's ends of ``pipes`` (closed here, spawned or not)."""
    placeholders: list[int] = []
    try:
        filename, argv = resolve(config, env.get("PATH"), recent=True)
        placeholders = _occupy(FIRST_SOCKET_FD + len(sockets)) if sockets else []
        return subprocess.Popen(
            argv, executable=filename, stdin=pipes.child_stdin, stdout=pipes.child_stdout,
            stderr=subprocess.STDOUT if pipes.child_stderr is None else pipes.child_stderr,
            cwd=config.directory, close_fds=True, process_group=0,
            umask=config.umask if config.umask is not None else -1,
            **_credentials(config), **_socket_handover(config, env, sockets),
        )
    except FileNotFoundError as exc:
        if config.directory and exc.filename == config.directory:
            raise SpawnError(f"couldn't chdir to {config.directory}: ENOENT") from None
        _search_again(config, env)
        raise SpawnError(f"can't find command {filename!r}", SpawnFailure.NO_FILE) from None
    except NotADirectoryError:
        raise SpawnError(f"couldn't chdir to {config.directory}: ENOTDIR") from None
    except PermissionError as exc:
        _search_again(config, env)
        raise SpawnError(f"couldn't exec {filename}: EACCES ({exc.strerror})", SpawnFailure.NOT_EXECUTABLE) from None
    except OSError as exc:
        raise SpawnError(f"couldn't exec {filename}: {exc.strerror}") from None
    except subprocess.SubprocessError as exc:  # only the sockets' preexec step raises this
        raise SpawnError(f"couldn't hand the sockets over: {exc}") from None
    finally:
        pipes.close_children()
        _close(*placeholders)


FIRST_SOCKET_FD = 3  # systemd's SD_LISTEN_FDS_START


class _Handover(TypedDict, total=False):
    env: dict[str, str] | None
    pass_fds: tuple[int, ...]
    preexec_fn: Callable[[], None]


def _socket_handover(config: ProcessConfig, env: dict[str, str], sockets: Sequence[int]) -> _Handover:
    """Popen's arguments that put ``sockets`` at fds 3, 4, ... in the child, with systemd's variables.

    LISTEN_PID must be the child's own pid, known only after the fork: the step that runs there sets it in
    the C environment (which exec uses when Popen is given no env) with the rest of the child's
    environment, encoded beforehand so the child only makes system calls.
    """
    if not sockets:
        return {"env": env}
    targets = tuple(range(FIRST_SOCKET_FD, FIRST_SOCKET_FD + len(sockets)))
    with_env = config.sockets_env
    if with_env:
        env = {**env, "LISTEN_FDS": str(len(sockets)), "LISTEN_FDNAMES": ":".join(s.name for s in config.sockets)}
    wanted = [(os.fsencode(k), os.fsencode(v)) for k, v in env.items()]
    current = list(os.environb) if with_env else []

    def place() -> None:  # in the child, between fork and exec
        # Moved above the targets first: a socket may sit where another one must go.
        moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, targets[-1] + 1) for fd in sockets]
        for target, fd in zip(targets, moved, strict=True):
            os.dup2(fd, target)  # inheritable: exec keeps it
        if with_env:
            for key in current:
                os.unsetenv(key)
            for key, value in wanted:
                os.putenv(key, value)
            os.putenv(b"LISTEN_PID", str(os.getpid()).encode())

    return {"env": None if with_env else env, "pass_fds": targets, "preexec_fn": place}


def _occupy(limit: int) -> list[int]:
    """Fill every free descriptor below ``limit`` with a placeholder, so the pipe Popen makes to report a
    failed exec cannot be given a number the sockets will be placed at (the child would overwrite it)."""
    taken: list[int] = []
    while True:
        fd = fcntl.fcntl(_devnull(), fcntl.F_DUPFD_CLOEXEC, FIRST_SOCKET_FD)
        if fd >= limit:
            os.close(fd)
            return taken
        taken.append(fd)


@functools.cache
def _devnull() -> int:
    return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)


class _Credentials(TypedDict, total=False):
    user: int
    group: int | None
    extra_groups: list[int]


def _credentials(config: ProcessConfig) -> _Credentials:
    """user=/group=/extra_groups= for Popen, only when the uid actually changes."""
    if config.uid is None or config.uid == os.geteuid():
        return {}
    if os.geteuid() != 0:
        raise SpawnError(f"couldn't setuid to {config.uid}: can't drop privilege as nonroot user")
    groups: list[int] = []
    try:
        name = pwd.getpwuid(config.uid).pw_name
        groups = os.getgrouplist(name, config.gid or 0)
    except KeyError:
        pass
    return {"user": config.uid, "group": config.gid, "extra_groups": groups}


def _close(*fds: int | None) -> None:
    for fd in fds:
        if fd is not None:
            os.close(fd)
