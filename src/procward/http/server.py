"""A small HTTP/1.1 server on asyncio streams, with httptools (llhttp, Node.js's C parser) parsing requests.

Why not a framework: the daemon serves four routes to local tools, and what matters is what happens
to bad clients. Here every limit is explicit: a request head must arrive within HEAD_TIMEOUT and fit in
MAX_HEAD bytes (431 otherwise), a body announced larger than the handler allows is refused with 413
before it is read, a body must arrive within BODY_TIMEOUT, an idle keep-alive connection is closed after
IDLE_TIMEOUT, and past MAX_CONNECTIONS the oldest idle connection is closed so a flood of idle clients
cannot lock others out. httptools keeps the parsing out of our hands (it was h11 until 2026-12: a
request cycle cost ~40-85 us of pure-Python state machine, httptools ~2 us); responses are simple
enough to write here: Content-Length for a whole body, chunked for a stream to an HTTP/1.1 client,
close-delimited for an HTTP/1.0 one, no body for HEAD.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import httptools

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


class _Parsed:
    """What httptools' callbacks report, as a queue of events the connection takes one at a time (as
    with h11's next_event): a request head, body data, the end of a request. A client that pipelines
    requests gets them answered in order."""

    __slots__ = ("events", "head_bytes", "headers", "parser", "url")

    def __init__(self) -> None:
        self.events: collections.deque[tuple[int, Any]] = collections.deque()
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_bytes = 0
        self.parser = httptools.HttpRequestParser(self)

    # httptools' callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        self.events.append((_HEAD, (parser.get_method(), self.url, self.headers, parser.get_http_version(),
                                    parser.should_keep_alive())))

    def on_body(self, body: bytes) -> None:
        self.events.append((_DATA, body))

    def on_message_complete(self) -> None:
        self.events.append((_END, None))


_HEAD, _DATA, _END = 0, 1, 2


class _Connection:
    def __init__(self, server: Server, site: Any, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.site = site
        self.reader = reader
        self.writer = writer
        self.parsed = _Parsed()
        self.keep_alive = True
        self.chunked = False  # the response under way is sent chunked (an HTTP/1.1 stream)
        self.responding = False  # a status line was written for the request under way
        self.head_only = False  # the request under way is a HEAD: the response has no body
        self.closed = False  # the client closed its side (EOF) or broke the protocol

    async def run(self) -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                try:
                    request = await self._read_head()
                except _Closed:
                    return
                except HttpError as exc:
                    await self._send_error(exc)
                    return
                if not await self._respond(request) or not self.keep_alive:
                    return

    def _feed(self, data: bytes) -> None:
        if not data:
            self.closed = True
            with contextlib.suppress(httptools.HttpParserError):
                self.parsed.parser.feed_data(b"")  # ends a body delimited by the close, if any
            return
        try:
            self.parsed.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # No protocol is upgraded to here: the request is answered as a plain one, then closed.
            self.keep_alive = False
        except httptools.HttpParserError as exc:
            self.closed = True
            raise HttpError(400, f"bad request: {exc}") from None

    async def _next_event(self, timeout: float, phase: str) -> tuple[int, Any]:  # noqa: ASYNC109 - one deadline over many reads
        events = self.parsed.events
        if events:
            return events.popleft()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not events:
            if self.closed:
                raise HttpError(400, f"{phase} incomplete: the client closed the connection")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise HttpError(408, f"{phase} not received within {timeout:g}s")
            try:
                async with asyncio.timeout(remaining):  # unlike wait_for, no task per read
                    data = await self.reader.read(_READ)
            except TimeoutError:
                raise HttpError(408, f"{phase} not received within {timeout:g}s") from None
            if phase == "request head":
                # httptools buffers an unfinished head line without bound: count what it was given.
                self.parsed.head_bytes += len(data)
                if self.parsed.head_bytes > MAX_HEAD and not events:
                    raise HttpError(431, f"request head over {MAX_HEAD} bytes")
            self._feed(data)
        return events.popleft()

    async def _read_head(self) -> Request:
        self.responding = self.chunked = self.head_only = False
        self.parsed.head_bytes = 0
        if not self.parsed.events:
            # Waiting for the first byte of a request is "idle"; after that the head has HEAD_TIMEOUT.
            if self.closed:
                raise _Closed
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
            self.parsed.head_bytes = len(first)
            self._feed(first)
        kind, head = await self._next_event(HEAD_TIMEOUT, "request head")
        if kind != _HEAD:
            raise HttpError(400, "expected a request")
        method, target, raw_headers, version, keep_alive = head
        self.keep_alive = self.keep_alive and keep_alive
        self.chunked = version == "1.1"
        self.head_only = method == b"HEAD"
        size = len(method) + len(target) + sum(len(k) + len(v) + 4 for k, v in raw_headers)
        if size > MAX_HEAD:
            raise HttpError(431, f"request head over {MAX_HEAD} bytes")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw_headers}
        return Request(method=method.decode("ascii", "replace"), path=target.decode("latin-1"),
                       headers=headers, site=self.site)

    async def _read_body(self, request: Request) -> None:
        limit = self.server._body_limit(request)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise HttpError(413, f"request body over {limit} bytes")
        if request.headers.get("expect", "").lower() == "100-continue" and not self.parsed.events:
            # curl asks before sending a body over 1 KB; without this it waits a second.
            self.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        chunks, size = [], 0
        while True:
            kind, data = await self._next_event(BODY_TIMEOUT, "request body")
            if kind == _DATA:
                size += len(data)
                if size > limit:
                    raise HttpError(413, f"request body over {limit} bytes")
                chunks.append(data)
            elif kind == _END:
                request.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
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
            head = self._head(response.status, headers)
            self.writer.write(head if self.head_only else head + response.body)
        else:
            if self.head_only:
                self.writer.write(self._head(response.status, headers))
            else:
                if self.chunked:
                    headers.append(("Transfer-Encoding", "chunked"))
                else:  # an HTTP/1.0 client: the end of the body is the end of the connection
                    self.keep_alive = False
                self.writer.write(self._head(response.status, headers))
                await self._stream(response.stream, request)
                if self.chunked:
                    self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()

    def _head(self, status: int, headers: list[tuple[str, str]]) -> bytes:
        self.responding = True
        if not self.keep_alive:
            headers.append(("Connection", "close"))
        lines = [f"HTTP/1.1 {status} {_reason(status)}"]
        lines += [f"{name}: {value}" for name, value in headers]
        lines.append("\r\n")
        return "\r\n".join(lines).encode("latin-1")

    async def _stream(self, chunks: AsyncIterator[bytes], request: Request) -> None:
        # The client ends a follow by closing its side: watch for that while the stream waits for data.
        watcher = asyncio.create_task(self._watch_disconnect(request), name="watch disconnect")
        try:
            async for chunk in chunks:
                if chunk:
                    self.writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if self.chunked else chunk)
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
        if self.responding:
            return  # a response is already under way: all that is left is closing
        self.keep_alive = False
        body = f"{exc}\n".encode()
        headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), *exc.headers]
        with contextlib.suppress(ConnectionError):
            self.writer.write(self._head(exc.status, headers) + body)
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


@functools.cache
def _reason(status: int) -> str:
    # Supervisor's own HTTP client (supervisorctl tail -f, fg) splits the status line in three: an
    # empty reason phrase breaks it.
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class _Closed(Exception):
    """The client went away (or stayed idle too long) between requests."""
