"""A small HTTP/1.1 server on asyncio streams, with h11 doing the protocol.

Why not a framework: the daemon serves four routes to local tools, and what matters is what happens
to bad clients. Here every limit is explicit: a request head must arrive within HEAD_TIMEOUT and fit in
MAX_HEAD bytes (431 otherwise), a body announced larger than the handler allows is refused with 413
before it is read, a body must arrive within BODY_TIMEOUT, an idle keep-alive connection is closed after
IDLE_TIMEOUT, and past MAX_CONNECTIONS the oldest idle connection is closed so a flood of idle clients
cannot lock others out. h11 (a protocol state machine, no I/O) keeps the parsing out of our hands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import h11

log = logging.getLogger(__name__)

MAX_HEAD = 16 * 1024
HEAD_TIMEOUT = 10.0
BODY_TIMEOUT = 30.0
IDLE_TIMEOUT = 60.0
MAX_CONNECTIONS = 256
# After an early answer (413, 431, 400) the client may still be sending its body: the server keeps reading
# and discarding it for a while, so that closing does not reset the connection before the client has read
# the answer (Apache's and nginx's lingering close). Bounded in time and bytes.
LINGER_TIME = 5.0
LINGER_IDLE = 1.0
LINGER_BYTES = 256 * 1024 * 1024
_READ = 65536


@dataclass(slots=True)
class Request:
    """One request as the handler sees it."""

    method: str
    path: str
    headers: dict[str, str]
    site: Any  # what the listening socket was opened for (its credentials)
    body: bytes = b""
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)  # set when the client goes away


@dataclass(slots=True)
class Response:
    """A whole body, or a stream of chunks (sent chunked) when ``stream`` is set."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    stream: AsyncIterator[bytes] | None = None


class HttpError(Exception):
    """Raised by a handler (or the server) to answer with a status and a short text."""

    def __init__(self, status: int, text: str, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.headers = headers or []


Handler = Callable[[Request], Awaitable[Response]]
BodyLimit = Callable[[Request], int]


class Server:
    """Connections for every listening socket of the daemon; one handler for all."""

    def __init__(self, handler: Handler, body_limit: BodyLimit) -> None:
        self._handler = handler
        self._body_limit = body_limit
        self._idle: dict[asyncio.StreamWriter, None] = {}  # insertion order = oldest idle first
        self._connections: set[asyncio.Task[None]] = set()

    def connection_handler(self, site: Any) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                                          Awaitable[None]]:
        """The callback for asyncio.start_server / start_unix_server of one site."""
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._connections.add(task)
            try:
                await _Connection(self, site, reader, writer).run()
            finally:
                self._connections.discard(task)
                self._idle.pop(writer, None)
                writer.close()
        return serve

    async def close(self) -> None:
        """Drop every connection (shutdown)."""
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    def idle(self, writer: asyncio.StreamWriter, waiting: bool) -> None:
        if not waiting:
            self._idle.pop(writer, None)
            return
        self._idle[writer] = None
        while len(self._connections) > MAX_CONNECTIONS and self._idle:
            oldest = next(iter(self._idle))
            self._idle.pop(oldest)
            oldest.close()  # its read returns EOF and its task ends


class _Connection:
    def __init__(self, server: Server, site: Any, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.site = site
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)

    async def run(self) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                try:
                    request = await self._read_head()
                except _Closed:
                    return
                except HttpError as exc:
                    await self._send_error(exc)
                    return
                if request is None:
                    return
                if not await self._respond(request):
                    return
                if self.h11.our_state is not h11.DONE or self.h11.their_state is not h11.DONE:
                    return
                self.h11.start_next_cycle()

    async def _next_event(self, timeout: float, phase: str) -> Any:  # noqa: ASYNC109 - one deadline over many reads
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint if exc.error_status_hint != 400 else 400
                raise HttpError(status, f"bad request: {exc}") from None
            if event is not h11.NEED_DATA:
                return event
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise HttpError(408, f"{phase} not received within {timeout:g}s")
            try:
                async with asyncio.timeout(remaining):  # unlike wait_for, no task per read
                    data = await self.reader.read(_READ)
            except TimeoutError:
                raise HttpError(408, f"{phase} not received within {timeout:g}s") from None
            self.h11.receive_data(data)

    async def _read_head(self) -> Request | None:
        # Waiting for the first byte of a request is "idle"; after that the head has HEAD_TIMEOUT.
        self.server.idle(self.writer, True)
        try:
            async with asyncio.timeout(IDLE_TIMEOUT):
                first = await self.reader.read(_READ)
        except TimeoutError:
            raise _Closed from None
        finally:
            self.server.idle(self.writer, False)
        if not first:
            raise _Closed
        self.h11.receive_data(first)
        event = await self._next_event(HEAD_TIMEOUT, "request head")
        if isinstance(event, h11.ConnectionClosed):
            return None
        if not isinstance(event, h11.Request):
            raise HttpError(400, "expected a request")
        # h11 bounds only a head still incomplete; one that arrived whole in a read is measured here.
        size = len(event.method) + len(event.target) + sum(len(k) + len(v) + 4 for k, v in event.headers)
        if size > MAX_HEAD:
            raise HttpError(431, f"request head over {MAX_HEAD} bytes")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
        return Request(method=event.method.decode("ascii", "replace"),
                       path=event.target.decode("latin-1"), headers=headers, site=self.site)

    async def _read_body(self, request: Request) -> None:
        limit = self.server._body_limit(request)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise HttpError(413, f"request body over {limit} bytes")
        chunks, size = [], 0
        while True:
            event = await self._next_event(BODY_TIMEOUT, "request body")
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    raise HttpError(413, f"request body over {limit} bytes")
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                request.body = b"".join(chunks)
                return
            else:
                raise HttpError(400, "incomplete request body")

    async def _respond(self, request: Request) -> bool:
        try:
            await self._read_body(request)
            response = await self.server._handler(request)
        except HttpError as exc:
            await self._send_error(exc)
            return False
        except Exception:  # a boundary: one broken request must not take the server down
            log.exception("HTTP handler failed on %s %s", request.method, request.path)
            await self._send_error(HttpError(500, "internal error"))
            return False
        await self._send(response, request)
        return True

    async def _send(self, response: Response, request: Request) -> None:
        headers = [("Content-Type", response.content_type), *response.headers]
        if response.stream is None:
            headers.append(("Content-Length", str(len(response.body))))
        self._write(_response(response.status, headers))
        if response.stream is None:
            self._write(h11.Data(data=response.body))
        else:
            await self._stream(response.stream, request)
        self._write(h11.EndOfMessage())
        await self.writer.drain()

    async def _stream(self, chunks: AsyncIterator[bytes], request: Request) -> None:
        # The client ends a follow by closing its side: watch for that while the stream waits for data.
        watcher = asyncio.create_task(self._watch_disconnect(request), name="watch disconnect")
        try:
            async for chunk in chunks:
                if chunk:
                    self._write(h11.Data(data=chunk))
                    await self.writer.drain()
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    async def _watch_disconnect(self, request: Request) -> None:
        with contextlib.suppress(ConnectionError):
            while await self.reader.read(_READ):
                pass
        request.disconnected.set()

    async def _send_error(self, exc: HttpError) -> None:
        if self.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return  # a response is already under way: all that is left is closing
        body = f"{exc}\n".encode()
        headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
                   ("Connection", "close"), *exc.headers]
        with contextlib.suppress(h11.LocalProtocolError, ConnectionError):
            self._write(_response(exc.status, headers))
            self._write(h11.Data(data=body))
            self._write(h11.EndOfMessage())
            await self.writer.drain()
            if exc.status != 408:  # a client too slow to send a head gets no more time
                await self._linger()

    async def _linger(self) -> None:
        """Half-close, then read and discard what the client still sends, so it can read the answer."""
        if self.writer.can_write_eof():
            self.writer.write_eof()
        discarded = 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LINGER_TIME):
                while discarded < LINGER_BYTES:
                    async with asyncio.timeout(LINGER_IDLE):
                        data = await self.reader.read(_READ)
                    if not data:
                        return
                    discarded += len(data)

    def _write(self, event: Any) -> None:
        data = self.h11.send(event)
        if data:
            self.writer.write(data)


def _response(status: int, headers: list[tuple[str, str]]) -> h11.Response:
    # Supervisor's own HTTP client (supervisorctl tail -f, fg) splits the status line in three: an
    # empty reason phrase breaks it.
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    return h11.Response(status_code=status, headers=headers, reason=reason.encode("ascii"))


class _Closed(Exception):
    """The client went away (or stayed idle too long) between requests."""
