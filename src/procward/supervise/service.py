"""One service under ``procward supervise``: the reference's main loop (doit) on asyncio, no polling.

Events (the child's exit through its pidfd, control bytes through the FIFO, signals) are handled one at
a time in arrival order by ``run``; each start is followed by the reference's one-second pause, during
which events wait, so a crash loop restarts about once a second. Where the reference has a defect this
one is fixed (docs/from-supervise.md): ``d`` escalates to SIGKILL after ``stop_grace`` seconds,
SIGTERM/SIGINT to the supervisor stop the child before exiting, and the child gets SIGHUP's default.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass

from procward.supervise import conf
from procward.supervise.options import Options
from procward.supervise.statusfiles import (
    DeletionWatch,
    Status,
    StatusDirError,
    fifo,
    open_fifo,
    read_commands,
    write_status,
)

START_PACE = 1.0  # the reference's deepsleep(1) after each start
_SIGNALS = {ord("a"): signal.SIGALRM, ord("h"): signal.SIGHUP, ord("i"): signal.SIGINT, ord("t"): signal.SIGTERM,
            ord("k"): signal.SIGKILL}
_LOG_LIMIT = 1_800_000_000  # the reference reopens its logs past this size (or when they are gone)


class Log:
    """supervise.log (NOTICE) and supervise.log.wf (WARNING, FATAL): ``[LEVEL] YYYY-mm-dd HH:MM:SS  msg``."""

    def __init__(self, directory: str) -> None:
        self._paths = {name: os.path.join(directory, name) for name in ("supervise.log", "supervise.log.wf")}
        self._fds = {name: self._open(path) for name, path in self._paths.items()}

    @staticmethod
    def _open(path: str) -> int:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def notice(self, message: str) -> None:
        """A NOTICE line."""
        self._write("supervise.log", self._line("NOTICE", message))

    def warning(self, message: str) -> None:
        """A WARNING line."""
        self._write("supervise.log.wf", self._line("WARNING", message))

    def fatal(self, message: str) -> None:
        """A FATAL line."""
        self._write("supervise.log.wf", self._line("FATAL", message))

    def raw(self, text: str) -> None:
        """Text with no level or time (the reference's configuration dump) in supervise.log."""
        self._write("supervise.log", text)

    @staticmethod
    def _line(level: str, message: str) -> str:
        return f"[{level}] {time.strftime('%Y-%m-%d %H:%M:%S')}  {message}\n"

    def _write(self, name: str, text: str) -> None:
        path = self._paths[name]
        try:
            size: int | None = os.stat(path).st_size
        except FileNotFoundError:
            size = None
        if size is None or size > _LOG_LIMIT:  # rotated away, or too big (removed): a new file, as the reference
            if size is not None:
                with contextlib.suppress(OSError):
                    os.unlink(path)
            os.close(self._fds[name])
            self._fds[name] = self._open(path)
        with contextlib.suppress(OSError):
            os.write(self._fds[name], text.encode("utf-8", "replace"))


@dataclass(slots=True)
class Counters:
    """The alarm window's counts (the reference's have_tried, have_coredumped)."""

    tried: int = 0
    coredumped: int = 0


class Service:
    """The child, its status file, and what each event does to them."""

    def __init__(self, opts: Options, log: Log, fifos: dict[str, tuple[int, int]]) -> None:
        self.opts = opts
        self.log = log
        self.fifos = fifos  # "control" and "ok": (read end, held write end)
        self.settings = conf.Settings()
        self.status = Status(changed=time.time())
        self.flag_exit = False
        self.counters = Counters()
        self._events: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        self._window: asyncio.TimerHandle | None = None
        self._kill_timer: asyncio.TimerHandle | None = None
        self._last_exit = 0.0
        self._script_n = 0

    # -- the loop ------------------------------------------------------------------------------------

    async def run(self) -> int:
        """Supervise until ``x``, a give-up, or a signal; the exit status of the supervisor."""
        loop = asyncio.get_running_loop()
        loop.add_reader(self.fifos["control"][0], self._control_ready)
        watch = None
        try:
            watch = DeletionWatch(self.opts.directory)
            loop.add_reader(watch.fd, self._fifos_deleted, watch)
        except OSError as exc:
            self.log.warning(f"cannot watch {self.opts.directory} for deleted FIFOs: {exc.strerror}")
        for sig, handler in ((signal.SIGTERM, self._terminate), (signal.SIGINT, self._terminate),
                             (signal.SIGALRM, self._reset_window), (signal.SIGHUP, lambda: None)):
            # A handled signal (not SIG_IGN) goes back to its default in the child at exec.
            loop.add_signal_handler(sig, handler)
        if self.opts.script is None:
            self.reload()
        self._write()
        await self._start()
        while True:
            kind, value = await self._events.get()
            done = await (self._on_exit(value) if kind == "exit" else self._on_control(value))
            if done or (self.flag_exit and not self.status.pid):  # x, and the service is down
                break
        self.status.pid = 0
        self._write()
        if watch is not None:
            loop.remove_reader(watch.fd)
            watch.close()
        return 0

    def _control_ready(self) -> None:
        for byte in read_commands(self.fifos["control"][0]):
            self._events.put_nowait(("control", byte))

    def _fifos_deleted(self, watch: DeletionWatch) -> None:
        """``control`` or ``ok`` deleted under the supervisor: made again and reopened."""
        for name in sorted(watch.deleted() & set(self.fifos)):
            self._reopen(name)

    def _reopen(self, name: str) -> None:
        loop = asyncio.get_running_loop()
        old = self.fifos[name]
        if name == "control":
            loop.remove_reader(old[0])
        try:
            new = open_fifo(fifo(self.opts.directory, name))
        except StatusDirError as exc:
            self.log.warning(f"{exc}: {name} stays gone")
            return
        for fd in old:
            os.close(fd)
        self.fifos[name] = new
        if name == "control":
            loop.add_reader(new[0], self._control_ready)
        self.log.warning(f"{self.opts.directory}/{name} was deleted: made again")

    def _write(self) -> None:
        try:
            write_status(self.opts.directory, self.status)
        except OSError as exc:
            self.log.warning(f"unable to write {self.opts.directory}/status: {exc.strerror}")

    # -- the child -----------------------------------------------------------------------------------

    async def _start(self) -> None:
        directory = self.opts.directory
        try:
            with open(os.path.join(directory, "__stdout"), "ab") as out, \
                    open(os.path.join(directory, "__stderr"), "ab") as err:
                child = subprocess.Popen(self.opts.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)  # noqa: ASYNC220 - fork+exec only
        except OSError:
            # The reference's child logs this and exits 1: the same exit path, retried after the pause.
            self.log.fatal(f"unable to start {self.opts.argv[0]}")  # the reference's line: no reason
            self.status.changed = time.time()
            self._write()
            await asyncio.sleep(START_PACE)
            self._events.put_nowait(("exit", 1 << 8))
            return
        child.returncode = 0  # reaped below through its pidfd; keep subprocess from reaping it too
        pidfd = os.pidfd_open(child.pid)
        loop = asyncio.get_running_loop()
        loop.add_reader(pidfd, self._reap, pidfd, child.pid)
        self.status.pid, self.status.changed = child.pid, time.time()
        self._write()
        await asyncio.sleep(START_PACE)

    def _reap(self, pidfd: int, pid: int) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        self._events.put_nowait(("exit", status))

    def _signal(self, sig: int) -> None:
        if self.status.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.status.pid, sig)

    def _stop(self) -> None:
        """SIGTERM and SIGCONT, as the reference; SIGKILL after stop_grace if it is still there."""
        if not self.status.pid:
            return
        self._signal(signal.SIGTERM)
        self._signal(signal.SIGCONT)
        self.status.paused = False
        pid = self.status.pid
        if self._kill_timer is not None:
            self._kill_timer.cancel()
        self._kill_timer = asyncio.get_running_loop().call_later(self.settings.stop_grace, self._kill_if, pid)

    def _kill_if(self, pid: int) -> None:
        if self.status.pid == pid:
            self.log.warning(f"service {self.opts.service} did not stop within {self.settings.stop_grace}s: SIGKILL")
            self._signal(signal.SIGKILL)

    # -- events --------------------------------------------------------------------------------------

    async def _on_exit(self, status: int) -> bool:
        self.status.pid, self.status.changed = 0, time.time()
        self._write()
        if self._kill_timer is not None:
            self._kill_timer.cancel()
            self._kill_timer = None
        if self.opts.script is not None:
            await self._run_script()
            return await self._restart_if_wanted(give_up=False)  # the reference skips every check with -r
        cored = os.WIFSIGNALED(status) and os.WCOREDUMP(status)
        self.counters.coredumped += cored
        self.log.notice(f"service exited{' with coredump' if cored else ''}!")
        s = self.settings
        if not self.status.silenced and s.alarm_interval > 0:
            if self.counters.tried == 0:
                self._window = asyncio.get_running_loop().call_later(s.alarm_interval, self._reset_window)
                await self._alarm(cored)
            self.counters.tried += 1
        give_up = self.flag_exit or (s.alarm_interval > 0 and (
            (s.max_tries > 0 and self.counters.tried > s.max_tries)
            or (s.max_tries_if_coredumped > 0 and self.counters.coredumped > s.max_tries_if_coredumped)))
        return await self._restart_if_wanted(give_up=give_up)

    async def _restart_if_wanted(self, *, give_up: bool) -> bool:
        if give_up:
            self.log.notice(f"supervise refused to restart {self.opts.service} any more and exited itself!")
            return True
        if self.status.want == "u":
            self.log.notice(f"supervise is trying to restart {self.opts.service}...")
            await self._start()
        return False

    async def _on_control(self, byte: int) -> bool:
        command = chr(byte)
        if command in "uo":
            self.status.want = "u" if command == "u" else ""
            self._write()
            if not self.status.pid:
                await self._start()
        elif command == "d":
            self.status.want = "d"
            self._stop()
            self._write()
        elif command in "pc":
            self.status.paused = command == "p"
            self._signal(signal.SIGSTOP if command == "p" else signal.SIGCONT)
            self._write()
        elif command == "x":
            self.flag_exit = True
            self._write()
            return not self.status.pid
        elif command in "sn":
            self.status.silenced = command == "s"
            self._write()
        elif command == "r":
            self.reload()
        else:
            self._signal(_SIGNALS[byte])
        return False

    def _terminate(self) -> None:
        """SIGTERM or SIGINT to the supervisor: stop the child, then exit (the reference orphans it)."""
        self.log.notice(f"supervise of {self.opts.service} was asked to exit: stopping the service")
        self.flag_exit = True
        self.status.want = "d"
        if self.status.pid:
            self._stop()
        else:
            self._events.put_nowait(("control", ord("x")))

    def _reset_window(self) -> None:
        self.counters = Counters()
        self._window = None

    # -- config, alarms, -r ------------------------------------------------------------------------------

    def reload(self) -> None:
        """Read supervise.conf; a file that cannot be read keeps the settings in force."""
        try:
            with open(self.opts.conf, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError:
            self.log.warning("Cannot open config file. Old configurations unchanged.")
            return
        self.settings = conf.parse(text, self.opts.service)
        self.log.notice("Finished loading configurations!")
        self.log.raw(self.settings.dump())

    async def _alarm(self, cored: bool) -> None:
        """Mail and gsm commands, one after the other, before the restart (the reference's system() calls:
        its log has each "sent" line before "trying to restart")."""
        host = socket.gethostname().removesuffix(".baidu.com")
        message = (f"{time.strftime('%Y-%m-%d %H:%M:%S')} [Alarm: {host}] Service {self.opts.service} "
                   f"exited{' with coredump' if cored else ''}!")
        commands = []
        if self.settings.alarm_mail:
            commands.append(("mail sent", f'echo "" | mail -s "{message}" {self.settings.alarm_mail}'))
        commands += [("gsm sent", f'gsmsend-script {number}@"{message}"') for number in self.settings.alarm_gsm]
        for what, command in commands:
            await self._shell(command, f"{what}: {command}")

    async def _run_script(self) -> None:
        now = time.time()
        if not self.opts.reset_after:
            self._script_n = 1
        else:
            if now - self._last_exit >= self.opts.reset_after:
                self._script_n = 0
            self._script_n += 1
        self._last_exit = now
        command = f"{self.opts.script} {self._script_n}"
        await self._shell(command, f"restart_cmd: {command} is called.")

    async def _shell(self, command: str, done: str | None) -> None:
        """Run ``command`` as system() does, bounded to 60 s; ``done`` is logged after it ran."""
        process = await asyncio.create_subprocess_shell(command, stdin=subprocess.DEVNULL)
        try:
            await asyncio.wait_for(process.wait(), 60)
        except TimeoutError:
            process.kill()
            await process.wait()
            self.log.warning(f"killed after 60 s: {command}")
        if done is not None:
            self.log.notice(done)
