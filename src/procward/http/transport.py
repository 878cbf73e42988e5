"""Accepting connections and moving their bytes: asyncio's selector transport, cut to what the HTTP server
uses.

Why not ``loop.create_server``: it accepts each connection in a task of its own, and its transport asks
the kernel for both addresses, then starts reading two turns of the loop later. Most clients open a
connection per call (supervisorctl, xmlrpc.client, monitoring scripts), so that was ~25 us of the
daemon's ~170 us per call (measured: an echo server on asyncio's transports 64-72 us of CPU a call, on
this module's way 44 us). A connection is read as soon as it is accepted: the request is usually there.

What is kept of asyncio's behaviour, since the server's protocol (server.py) relies on it: the protocol's
callbacks (``connection_made`` at once, ``data_received``, ``eof_received`` whose true answer keeps the
connection open for writing, ``connection_lost`` from a later turn of the loop, never from inside a call
the protocol made), writes that go straight to the socket and are buffered only for what the kernel does
not take, ``pause_writing`` above 64 KiB buffered and ``resume_writing`` at 16 KiB, ``close`` after the
buffer is sent, ``abort`` at once, ``write_eof`` after the buffer, TCP_NODELAY on TCP connections, and
an accept loop that backs off for a second when the daemon runs out of descriptors.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)

MAX_READ = 256 * 1024
HIGH_WATER = 64 * 1024  # asyncio's defaults
LOW_WATER = 16 * 1024
ACCEPT_BATCH = 128  # connections taken per wake-up of a listening socket
ACCEPT_RETRY = 1.0  # seconds without accepting after running out of descriptors (as asyncio)
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class Listener:
    """Accepts on one listening socket (which it never closes) and gives each connection a transport and
    the protocol ``factory`` makes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 factory: Callable[[], asyncio.Protocol]) -> None:
        self._loop, self._sock, self._factory = loop, sock, factory
        self._fd = sock.fileno()
        self._retry: asyncio.TimerHandle | None = None
        sock.setblocking(False)
        loop.add_reader(self._fd, self._accept)

    def close(self) -> None:
        """Stop accepting (the socket stays open, for the next run or a reexec)."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._loop.remove_reader(self._fd)

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:
                    log.warning("accepting a connection failed: %s", exc)
                    return
                # The connection waits in the backlog; retrying at once would spin the loop.
                log.error("out of file descriptors: not accepting connections for %gs (%s)", ACCEPT_RETRY, exc)  # noqa: TRY400 - no traceback: a limit, not a bug
                self._loop.remove_reader(self._fd)
                self._retry = self._loop.call_later(ACCEPT_RETRY, self._resume)
                return
            try:
                conn.setblocking(False)
                if conn.family in (socket.AF_INET, socket.AF_INET6):
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # the client is gone already
                conn.close()
                continue
            SocketTransport(self._loop, conn, self._factory())

    def _resume(self) -> None:
        self._retry = None
        self._loop.add_reader(self._fd, self._accept)


class SocketTransport(asyncio.Transport):
    """One accepted connection (see the module's docstring for what it does as asyncio's does)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: asyncio.Protocol) -> None:
        super().__init__()
        self._loop, self._sock, self._fd = loop, sock, sock.fileno()
        self._protocol: asyncio.Protocol | None = protocol
        self._buffer = bytearray()  # what the kernel has not taken yet
        self._closing = False  # close() or abort(): nothing more is read; the socket closes once sent
        self._lost = False  # connection_lost is delivered, or due
        self._paused = False  # reading paused by the protocol
        self._at_eof = False  # the client closed its side: nothing more to read
        self._eof_due = False  # write_eof: shut our side once the buffer is sent
        self._writing_paused = False
        protocol.connection_made(self)
        if not (self._closing or self._paused):
            loop.add_reader(self._fd, self._read_ready)
            # Most clients send their request right after connecting: it is often there already, and
            # is then answered in this turn of the loop, not the next (~9 us of a ~140 us call).
            self._read_ready()

    # -- reading -----------------------------------------------------------------------------------------

    def _read_ready(self) -> None:
        try:
            data = self._sock.recv(MAX_READ)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._force_close(exc)
            return
        if self._protocol is None:
            return
        if data:
            self._protocol.data_received(data)
            return
        self._at_eof = True
        self._loop.remove_reader(self._fd)
        if not self._protocol.eof_received():
            self.close()

    def pause_reading(self) -> None:
        if self._closing or self._paused:
            return
        self._paused = True
        self._loop.remove_reader(self._fd)

    def resume_reading(self) -> None:
        if self._closing or not self._paused:
            return
        self._paused = False
        if not self._at_eof:
            self._loop.add_reader(self._fd, self._read_ready)

    # -- writing -----------------------------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._eof_due:
            raise RuntimeError("write() after write_eof()")  # as asyncio's
        if not data or self._closing:
            return  # as asyncio's, a write to a closing transport goes nowhere (the protocol checks first)
        if not self._buffer:
            try:
                sent = self._sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._force_close(exc)
                return
            if sent == len(data):
                return
            data = memoryview(data)[sent:]
            self._loop.add_writer(self._fd, self._write_ready)
        self._buffer += data
        if not self._writing_paused and len(self._buffer) > HIGH_WATER and self._protocol is not None:
            self._writing_paused = True
            self._protocol.pause_writing()

    def _write_ready(self) -> None:
        try:
            sent = self._sock.send(self._buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._force_close(exc)
            return
        del self._buffer[:sent]
        if self._writing_paused and len(self._buffer) <= LOW_WATER and self._protocol is not None:
            self._writing_paused = False
            self._protocol.resume_writing()
        if self._buffer:
            return
        self._loop.remove_writer(self._fd)
        if self._closing:
            self._connection_lost_soon(None)
        elif self._eof_due:
            self._shut_write()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._closing or self._eof_due:
            return
        self._eof_due = True
        if not self._buffer:
            self._shut_write()

    def _shut_write(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._force_close(exc)

    # -- closing -----------------------------------------------------------------------------------------

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._fd)
        if not self._buffer:
            self._connection_lost_soon(None)

    def abort(self) -> None:
        self._force_close(None)

    def _force_close(self, exc: Exception | None) -> None:
        if self._lost:
            return
        if self._buffer:
            self._buffer.clear()
            self._loop.remove_writer(self._fd)
        if not self._closing:
            self._closing = True
            self._loop.remove_reader(self._fd)
        self._connection_lost_soon(exc)

    def _connection_lost_soon(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._loop.call_soon(self._connection_lost, exc)

    def _connection_lost(self, exc: Exception | None) -> None:
        protocol, self._protocol = self._protocol, None
        try:
            if protocol is not None:
                protocol.connection_lost(exc)
        finally:
            self._sock.close()
