"""Process-level set-up of the daemon: rlimits, user, umask, daemonizing, pidfile, main log, event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import gc
import logging
import os
import pwd
import resource
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from procward import __version__
from procward.config.model import Config, ProcessConfig
from procward.config.values import LogTarget
from procward.core import mainlog, tree
from procward.core.daemon.supervisor import SIGNALS, ConfigLoader, Service, Supervisor
from procward.core.exits import become_subreaper
from procward.core.heldsockets import HeldSockets
from procward.core.output.tails import remove_old_autologs
from procward.errors import ProcwardError

log = logging.getLogger(__name__)


class StartupError(ProcwardError):
    """The daemon cannot start (limits, user, pidfile); the message says why."""


LEFTOVER_GRACE = 10.0  # seconds processes of a killed daemon get between SIGTERM and SIGKILL


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    """Command-line choices that override [supervisord]."""

    nodaemon: bool
    daemonize: bool = False  # Go supervisord's -d: detach even when the file says nodaemon=true
    handover: str | None = None  # a reexec: the previous daemon's state file (it was this very process)
    argv: tuple[str, ...] = ()  # the command line, for the next reexec


def _raise_limit(which: int, minimum: int, name: str, option: str) -> None:
    soft, hard = resource.getrlimit(which)
    if soft == resource.RLIM_INFINITY or soft >= minimum:
        return
    new_hard = hard if hard == resource.RLIM_INFINITY or hard >= minimum else minimum
    try:
        resource.setrlimit(which, (minimum, new_hard))
    except (ValueError, OSError) as exc:
        raise StartupError(f"cannot raise {name} to {option}={minimum} (soft {soft}, hard {hard}): {exc}; "
                           f"lower {option} or raise the hard limit") from None


def _open_files_to_hard_limit() -> None:
    """Each program holds up to five descriptors (three pipes, two log files): 1024 runs out near 200.

    Raising the soft limit to the hard one is always allowed. Children inherit it, as supervisord's
    inherit minfds.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, 1 << 20) if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


FDS_SPARE = 64  # the daemon's own: logs, sockets, clients


def _descriptors(process: ProcessConfig) -> int:
    """What the daemon holds for one running process: its pipes (stdin, stdout, and stderr unless
    redirected; its exit comes by SIGCHLD, no pidfd) and its open log files."""
    channels = [process.stdout] if process.redirect_stderr else [process.stdout, process.stderr]
    files = sum(len(c.extra_files) + (c.target not in (LogTarget.NONE, LogTarget.SYSLOG)) for c in channels)
    return 1 + len(channels) + files


def _warn_descriptors(config: Config) -> None:
    """Say at start when the open-files limit cannot hold every program running at once (each start past
    it fails with "Too many open files"), rather than leave the operator to find FATAL programs."""
    each = [_descriptors(process) for group in config.groups for process in group.processes]
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = sum(each) + FDS_SPARE
    if soft != resource.RLIM_INFINITY and needed > soft:
        log.warning("%d processes need about %d open files at once and the limit is %d (the hard limit too): "
                    "about %d can run; raise the hard limit (LimitNOFILE=, ulimit -Hn) to start them all",
                    len(each), needed, soft, max(0, (soft - FDS_SPARE) * len(each) // sum(each)))


def _drop_privileges(user: str) -> None:
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        raise StartupError(f"[supervisord] user: no such user {user!r}") from None
    if entry.pw_uid == os.geteuid():
        return
    if os.geteuid() != 0:
        raise StartupError(f"[supervisord] user={user}: can't drop privilege as nonroot user")
    os.setgroups(os.getgrouplist(entry.pw_name, entry.pw_gid))
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)


def _daemonize() -> None:
    """Detach: fork, setsid, fork again, stdio to /dev/null (supervisord's default without -n)."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _lock_pidfile(path: str) -> int:
    """Open and lock the pidfile; refuse when another daemon holds it.

    A second daemon with the same pidfile would otherwise take the first one's spawn record for the
    leftovers of a killed daemon and stop the first one's programs. The lock (flock, released by the
    kernel when the daemon dies, however it dies) is taken before daemonizing, so the refusal reaches
    the caller's terminal; the forked daemon inherits it.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StartupError(f"cannot write pidfile {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = _pid_text(fd)
        os.close(fd)
        raise StartupError(f"another procward (pid {other}) is running with pidfile {path}; stop it first, "
                           "or give this one another pidfile") from None
    except OSError:
        pass  # a filesystem without locks: run as supervisord does, unguarded
    return fd


def pidfile_holder(path: str) -> str | None:
    """The pid (as the pidfile says it) of the procward holding ``path``'s lock, None when none does: the
    same lock that refuses a second daemon, released by the kernel however the daemon ends (a zombie holds
    none). OSError when the file cannot be opened or locks cannot be tested there."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _pid_text(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _pid_text(fd: int) -> str:
    return os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"


def _write_pid(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


def prepare(config: Config, opts: DaemonOptions, services: Sequence[Service], held: HeldSockets
            ) -> tuple[list[logging.Handler], int, dict[str, Any] | None]:
    """Everything done before the event loop exists: limits, user, sockets, daemonizing, pidfile, logging.

    The order is supervisord's: the sockets are listening before the daemon detaches and before the
    "started with pid" line, so a client that waits for that line can connect at once.
    """
    sd = config.supervisord
    _raise_limit(resource.RLIMIT_NOFILE, sd.minfds, "the open-files limit", "minfds")
    _open_files_to_hard_limit()
    _raise_limit(resource.RLIMIT_NPROC, sd.minprocs, "the process limit", "minprocs")
    state = _read_handover(opts.handover) if opts.handover else None
    # The programs' sockets before the daemon drops privileges (port 80 for a program run as a user);
    # what cannot be bound is logged when its group is added, once logging is set up.
    held.adopt(state.get("sockets", {}) if state else {})
    held.bind(sock for group in config.groups for process in group.processes for sock in process.sockets)
    if sd.user is not None:
        _drop_privileges(sd.user)
    pidfile = _lock_pidfile(sd.pidfile) if state is None else _inherit(state["pidfile"])
    try:
        for service, fds in zip(services, state["services"] if state else [{}] * len(services), strict=True):
            service.adopt(fds)
            service.bind(config)
        nodaemon = state["nodaemon"] if state else not opts.daemonize and (opts.nodaemon or sd.nodaemon)
        if not nodaemon and state is None:
            _daemonize()
        if sd.directory:
            os.chdir(sd.directory)
        os.umask(sd.umask)
        handlers = mainlog.setup(sd.logfile, sd.loglevel, sd.logfile_maxbytes, sd.logfile_backups,
                                 echo=nodaemon and not sd.silent)
        if not sd.nocleanup and state is None:  # after a reexec the AUTO logs are the running programs'
            remove_old_autologs(sd.childlogdir, sd.identifier)
        _write_pid(pidfile)
    except BaseException:
        if state is not None:
            raise  # a failed takeover: the fds stay as they are, for the spawn record's next daemon
        for service in services:
            service.close()  # no socket file or pidfile is left behind by a start that did not happen
        held.close()
        with contextlib.suppress(OSError):
            os.unlink(sd.pidfile)
        os.close(pidfile)
        raise
    return handlers, pidfile, state


def _read_handover(path: str) -> dict[str, Any]:
    import json  # here and in _reexec: only a reexec needs it (a daemon's start does without)

    try:
        with open(path, encoding="utf-8") as handle:
            state: dict[str, Any] = json.load(handle)
    except (OSError, ValueError) as exc:
        raise StartupError(f"cannot read the reexec state {path}: {exc}") from None
    with contextlib.suppress(OSError):
        os.unlink(path)
    return state


def _inherit(fd: int) -> int:
    os.set_inheritable(fd, False)
    return fd


def _reexec(state: dict[str, Any], opts: DaemonOptions, pidfile: int, services: Sequence[Service],
            held: HeldSockets, nodaemon: bool, path: str) -> None:
    """Become the next daemon: the same pid, every handed-over fd still open (core/daemon/handover.py)."""
    import json

    os.set_inheritable(pidfile, True)
    state.update(pidfile=pidfile, nodaemon=nodaemon, services=[service.handover() for service in services],
                 sockets=held.handover())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(state, handle)
    argv = [a for i, a in enumerate(opts.argv) if a != "--handover" and (i == 0 or opts.argv[i - 1] != "--handover")]
    log.warning("reexec: executing %s -m procward %s", sys.executable, " ".join(argv))
    logging.shutdown()
    os.execv(sys.executable, [sys.executable, "-m", "procward", *argv, "--handover", path])  # noqa: S606 - itself


def run(config: Config, opts: DaemonOptions, loader: ConfigLoader, services: Sequence[Service]) -> int:
    """Run the daemon until shutdown (or until it re-executes itself); return the exit status."""
    held = HeldSockets()
    handlers, pidfile, adopting = prepare(config, opts, services, held)
    status, state = 0, None
    try:
        for warning in config.warnings:
            log.warning("%s", warning)
        if os.geteuid() == 0 and config.supervisord.user is None:
            log.critical("Supervisor is running as root.  Privileges were not dropped because no user is "
                         "specified in the config file.  If you intend to run as root, you can set user=root "
                         "in the config file to avoid this message.")
        if not become_subreaper() and os.getpid() != 1:
            log.warning("could not become a child subreaper; orphans of programs will not be reaped by procward")
        _warn_descriptors(config)
        log.info("procward %s (supervisord-compatible) started with pid %s", __version__, os.getpid())
        log.info("supervisord started with pid %s", os.getpid())
        gc.freeze()  # the modules and the configuration: never garbage, not walked by every full collection
        status, state = asyncio.run(_main(config, loader, services, handlers, adopting, held))
    finally:
        if state is None:
            for service in services:
                service.close()
            held.close()
            with contextlib.suppress(OSError):
                os.unlink(config.supervisord.pidfile)
            os.close(pidfile)
            log.info("procward stopped")
    if state is not None:
        nodaemon = not opts.daemonize and (opts.nodaemon or config.supervisord.nodaemon)
        _reexec(state, opts, pidfile, services, held, nodaemon, config.supervisord.pidfile + ".reexec")
    return status


def _block_signals() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, (signal.SIGCHLD, *SIGNALS))


async def _main(config: Config, loader: ConfigLoader, services: Sequence[Service],
                handlers: list[logging.Handler], adopting: dict[str, Any] | None, held: HeldSockets
                ) -> tuple[int, dict[str, Any] | None]:
    # The loop's worker threads (log compression, resource samples, alarm deliveries) block the signals the
    # daemon handles, so the kernel gives each to the loop's own thread: one given to a worker that was
    # not running yet reached the loop late (a SIGCHLD after the answer it should have come before).
    asyncio.get_running_loop().set_default_executor(
        concurrent.futures.ThreadPoolExecutor(thread_name_prefix="procward", initializer=_block_signals))
    record = tree.SpawnRecord(config.supervisord.pidfile + ".procs")
    left = [] if adopting is not None else record.leftovers()  # after a reexec they are ours to adopt
    if left:
        log.warning("found %d process(es) left by a procward that did not shut down (pids %s); stopping them "
                    "before starting programs", len(left), ", ".join(map(str, left)))
        killed = await tree.terminate(left, signal.SIGTERM, LEFTOVER_GRACE)
        if killed:
            log.warning("killed with SIGKILL: %s", ", ".join(map(str, killed)))
    record.open()
    supervisor = Supervisor(config, asyncio.get_running_loop(), loader, record, held)
    supervisor.on_reopen_logs.append(lambda: mainlog.reopen(handlers))
    supervisor.adopting = adopting
    try:
        await supervisor.serve(services)
    finally:
        record.close(remove=supervisor.handover is None)
    return supervisor.exit_status, supervisor.handover
