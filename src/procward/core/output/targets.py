"""Extra places a child's output goes besides its log file (Go supervisord's ``stdout_logfile = a.log,
/dev/stdout, syslog @tcp:host:514``): other files or devices, and syslog, local or remote.

Nothing here can block a program or the loop: the local socket and UDP are non-blocking datagrams
(a message that does not fit is dropped), TCP keeps a bounded queue (the oldest messages go first when a
server is slow or down) and reconnects by itself with a growing pause. A failure is logged once a
minute at most; writing resumes by itself.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from procward.config.model import SyslogTarget
from procward.core.tasks import TaskSet

log = logging.getLogger(__name__)

QUEUE_BYTES = 1 << 20  # what a TCP target holds while its server is away, a UDP one while its name resolves
_ERROR_INTERVAL = 60.0
MAX_MESSAGE = 8192  # bytes of one syslog line; longer lines are cut (syslog servers cut at 1-8 KiB anyway)


def _datagram(family: int, address: tuple[Any, ...] | str) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
    try:
        sock.connect(address)
    except OSError:
        sock.close()
        raise
    return sock


def _literal_family(host: str) -> int | None:
    """AF_INET or AF_INET6 when ``host`` is an address written out (nothing to resolve), else None."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return family
    return None


class LineSplitter:
    """Feeds whole lines of a stream to ``send`` (a partial line waits for its end)."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self._send = send
        self._partial = b""

    def __call__(self, data: bytes) -> None:
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            self._send(line.removesuffix(b"\r"))


class Syslog:
    """One syslog destination of one stream: RFC 3164 messages, ``<PRI>TIME HOST TAG[PID]: line``."""

    def __init__(self, target: SyslogTarget, loop: asyncio.AbstractEventLoop, tasks: TaskSet, *,
                 stream: str, pid: int) -> None:
        self.target = target
        self._loop = loop
        self._tasks = tasks
        self._pri = target.facility * 8 + (target.stdout_priority if stream == "stdout" else target.stderr_priority)
        self._head = f" {socket.gethostname()} {target.tag}[{pid}]: "
        self._last_error = -_ERROR_INTERVAL
        self._sock: socket.socket | None = None
        self._queue: collections.deque[bytes] = collections.deque()
        self._queued = 0
        self._writer: asyncio.StreamWriter | None = None
        self._connector: asyncio.Task[None] | None = None  # the connection being made, if any

    def __call__(self, line: bytes) -> None:
        stamp = time.strftime("%b %e %H:%M:%S")  # RFC 3164: the day of month space-padded
        message = f"<{self._pri}>{stamp}{self._head}".encode() + line[:MAX_MESSAGE]
        if self.target.transport == "tcp":
            self._send_tcp(message)
        else:
            self._send_datagram(message)

    def _send_datagram(self, message: bytes) -> None:
        try:
            if self._sock is None:
                if self.target.transport == "local":
                    self._sock = _datagram(socket.AF_UNIX, self.target.address)
                elif (family := _literal_family(self.target.host)) is not None:
                    self._sock = _datagram(family, (self.target.host, self.target.port))
                else:
                    # A host name is resolved off the loop (getaddrinfo blocks); lines wait meanwhile.
                    self._hold(message)
                    if self._connector is None:
                        self._connector = self._tasks.start(self._resolve(), f"syslog {self.target.host}")
                    return
            self._sock.send(message)
        except BlockingIOError:
            pass  # the receiver is behind: this line is dropped, the program is not slowed
        except OSError as exc:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            self._report(exc)

    def _hold(self, message: bytes) -> None:
        """Keep ``message`` for later (a bounded queue: the oldest go first)."""
        self._queue.append(message)
        self._queued += len(message)
        while self._queued > QUEUE_BYTES:
            self._queued -= len(self._queue.popleft())

    async def _resolve(self) -> None:
        try:
            infos = await self._loop.getaddrinfo(self.target.host, self.target.port, type=socket.SOCK_DGRAM)
            family, _, _, _, address = infos[0]
            self._sock = _datagram(family, address)
        except OSError as exc:
            self._queue.clear()
            self._queued = 0
            self._report(exc)
            await asyncio.sleep(30)  # no new attempt for a while: each line would ask the resolver again
        else:
            held, self._queue = self._queue, collections.deque()
            self._queued = 0
            for message in held:
                self._send_datagram(message)
        finally:
            self._connector = None

    def _send_tcp(self, message: bytes) -> None:
        self._hold(b"%d %s" % (len(message), message))  # RFC 6587 octet counting
        if self._writer is not None:
            self._flush()
        else:
            self._reconnect()

    async def _connect(self) -> None:
        pause = 1.0
        try:
            while True:
                try:
                    _, self._writer = await asyncio.wait_for(
                        asyncio.open_connection(self.target.host, self.target.port), 5)
                except (OSError, TimeoutError) as exc:
                    self._report(exc if isinstance(exc, OSError) else OSError("no answer within 5s"))
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 30.0)
                    continue
                log.info("syslog %s:%d is written again", self.target.host, self.target.port)
                self._flush()
                return
        finally:
            self._connector = None

    def _flush(self) -> None:
        writer = self._writer
        assert writer is not None
        if writer.is_closing():
            self._writer = None
            self._reconnect()
            return
        while self._queue:
            writer.write(self._queue.popleft())
        self._queued = 0
        if writer.transport.get_write_buffer_size() > QUEUE_BYTES:
            writer.transport.abort()  # a server that stopped reading: drop and reconnect later
            self._writer = None

    def _reconnect(self) -> None:
        if self._connector is None:
            self._connector = self._tasks.start(self._connect(), f"syslog {self.target.host}:{self.target.port}")

    def _report(self, exc: OSError) -> None:
        now = time.monotonic()
        if now - self._last_error >= _ERROR_INTERVAL:
            self._last_error = now
            where = self.target.address or f"{self.target.transport}:{self.target.host}:{self.target.port}"
            log.error("cannot send output to syslog %s: %s (lines are dropped until it works again)", where,
                      exc.strerror or exc)

    def close(self) -> None:
        """Release the socket and stop connecting (the stream ended)."""
        if self._connector is not None:
            self._connector.cancel()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def syslog_forwarder(name: str) -> LineSplitter:
    """``*_syslog=true`` (Supervisor's option): each line of output also goes to the local syslog, prefixed
    by the process name."""
    import syslog

    def send(line: bytes) -> None:
        syslog.syslog(syslog.LOG_INFO, f"{name} {line.decode('utf-8', 'replace')}")

    return LineSplitter(send)
