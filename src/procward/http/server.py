"""A small HTTP/1.1 server on asyncio protocols, with httptools (llhttp, Node.js's C parser) parsing requests.

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
MAX_WAITING = 64 * 1024  # bytes of pipelined requests held while one is answered; then reading pauses
_JOIN_UP_TO = 64 * 1024  # a body up to this size is sent in one piece with its head (one send)
# After an early answer (413, 431, 400) the client may still be sending its body: the server keeps reading
# and discarding it for a while, so that closing does not reset the connection before the client has read
# the answer (Apache's and nginx's lingering close). Bounded in time and bytes.
LINGER_TIME = 5.0
LINGER_IDLE = 1.0
LINGER_BYTES = 256 * 1024 * 1024


@dataclass(slots=True)
class Request:
    """One request as the handler sees it."""

    method: str
    path: str
    headers: dict[str, str]
    site: Any  # what the listening socket was opened for (its credentials)
    body: bytes = b""
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)  # set when the client goes away
    # What the handler's ``answer_now`` made of the body when it left the answer to ``handle`` (an
    # XML-RPC call of a method that waits: decoded once, not twice).
    decoded: Any = None


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
AnswerNow = Callable[[Request], Response | None]  # an answer without waiting, or None


class Server:
    """Connections for every listening socket of the daemon; one handler for all."""

    def __init__(self, handler: Handler, body_limit: BodyLimit, answer_now: AnswerNow | None = None) -> None:
        self._handler = handler
        self._body_limit = body_limit
        self._answer_now = answer_now  # the handler's answers that need no waiting (None: use the handler)
        # Idle connections -> since when (the loop's clock); insertion order = oldest idle first.
        self._idle: dict[_Connection, float] = {}
        self._connections: set[_Connection] = set()
        # One timer for every idle connection, at the oldest one's IDLE_TIMEOUT (_close_idle): armed and
        # cancelled per connection, a timer was ~14 us of a ~130 us getProcessInfo call's CPU (each
        # connection goes idle after its answer until the client closes). None: no idle connection.
        self._idle_timer: asyncio.TimerHandle | None = None

    def connection_handler(self, site: Any) -> Callable[[], asyncio.Protocol]:
        """The protocol factory of one site's listener (transport.Listener)."""
        loop = asyncio.get_running_loop()  # asked once: each call makes a getpid() system call
        return lambda: _Connection(self, site, loop)

    async def close(self) -> None:
        """Drop every connection (shutdown)."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        tasks = []
        for connection in list(self._connections):
            if connection.task is not None:
                connection.task.cancel()
                tasks.append(connection.task)
            connection.transport.abort()
        await asyncio.gather(*tasks, return_exceptions=True)

    def idle(self, connection: _Connection, waiting: bool) -> None:
        """``connection`` waits for a request (closed after IDLE_TIMEOUT, or sooner when the connections
        are too many), or no longer does."""
        self._idle.pop(connection, None)  # a connection idle again goes last: the dict stays in time order
        if not waiting:
            return
        loop = connection.loop
        self._idle[connection] = loop.time()
        while len(self._connections) > MAX_CONNECTIONS and self._idle:
            oldest = next(iter(self._idle))
            self._idle.pop(oldest)
            oldest.transport.close()
        if self._idle_timer is None and self._idle:
            self._idle_timer = loop.call_later(IDLE_TIMEOUT, self._close_idle, loop)

    def _close_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close the connections idle for IDLE_TIMEOUT, oldest first; then wait for the next one's turn."""
        self._idle_timer = None
        now = loop.time()
        while self._idle:
            oldest, since = next(iter(self._idle.items()))
            if since + IDLE_TIMEOUT > now:
                self._idle_timer = loop.call_at(since + IDLE_TIMEOUT, self._close_idle, loop)
                return
            del self._idle[oldest]
            oldest.transport.close()


class _Parsed:
    """What httptools' callbacks report, as a queue of events the connection takes in order: a request
    head, body data, the end of a request. A client that pipelines requests gets them answered in order."""

    __slots__ = ("events", "headers", "in_head", "parser", "url")

    def __init__(self) -> None:
        self.events: collections.deque[tuple[int, Any]] = collections.deque()
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.in_head = False  # a request has begun and its head is not complete
        self.parser = httptools.HttpRequestParser(self)

    # httptools' callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.in_head = True

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        parser = self.parser
        self.events.append((_HEAD, (parser.get_method(), self.url, self.headers, parser.get_http_version(),
                                    parser.should_keep_alive())))

    def on_body(self, body: bytes) -> None:
        self.events.append((_DATA, body))

    def on_message_complete(self) -> None:
        self.events.append((_END, None))


_HEAD, _DATA, _END = 0, 1, 2
# What a connection is doing, which decides what its timer means and what received bytes are.
_IDLE, _READING_HEAD, _READING_BODY, _ANSWERING, _STREAMING, _LINGERING, _CLOSED = range(7)


class _Connection(asyncio.Protocol):
    """One client connection, driven by the event loop's callbacks.

    A request that arrives whole is parsed in the callback that received it and answered by one task;
    there is no reader task or future per read. One timer at a time bounds the phase the connection is
    in: the head, the body, the lingering close; idle between requests, the server's one timer for every
    idle connection does (Server.idle).
    """

    def __init__(self, server: Server, site: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.site = site
        self.loop = loop
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by connection_made
        self.parsed = _Parsed()
        self.state = _IDLE
        self.timer: asyncio.TimerHandle | None = None
        self.timer_phase = -1  # _READING_HEAD or _READING_BODY when the timer is that phase's (_arm_reading)
        self.task: asyncio.Task[None] | None = None
        self.request: Request | None = None
        self.body: list[bytes] = []
        self.body_size = 0
        self.body_limit = 0
        self.head_bytes = 0  # bytes received while a head is incomplete (httptools buffers it unbounded)
        self.lingered = 0
        self.deadline: asyncio.TimerHandle | None = None  # the end of a lingering close, at the latest
        self.eof = False  # the client closed its side
        self.keep_alive = True
        self.chunked = False  # the response under way is sent chunked (an HTTP/1.1 stream)
        self.head_only = False  # the request under way is a HEAD: the response has no body
        self.responding = False  # a status line was written for the request under way
        self._drained: asyncio.Future[None] | None = None  # set while the transport's buffer is full
        # Bytes of pipelined requests received while one is answered, taken after it (reading pauses
        # only when they pass MAX_WAITING: no epoll_ctl pair per request).
        self.waiting: list[bytes] = []
        self.waiting_size = 0
        self.answering_now = False  # inside an answer given at once (_start_answer)

    # -- the event loop's callbacks --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server._connections.add(self)
        self._wait_for_request()

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state == _LINGERING:
            self.lingered += len(data)
            if self.lingered >= LINGER_BYTES:
                self._finish()
            else:
                self._arm(LINGER_IDLE, self._finish)
            return
        if state == _ANSWERING:
            self.waiting.append(data)
            self.waiting_size += len(data)
            if self.waiting_size > MAX_WAITING:
                self.transport.pause_reading()  # the rest waits in the socket
            return
        if state in (_STREAMING, _CLOSED):
            return  # a follow's client sends nothing more; the end of its connection is what counts
        if state == _IDLE:
            self.server.idle(self, False)
            self.state = _READING_HEAD
            self.head_bytes = 0
            self._cancel_timer()
        try:
            self._feed(data)
            self._advance()
        except HttpError as exc:
            self._fail(exc)
        self._arm_reading()

    def eof_received(self) -> bool:
        self.eof = True
        if self.request is not None:
            self.request.disconnected.set()
        if self.state in (_ANSWERING, _STREAMING):
            return True  # the answer is still written; the connection closes after it
        if self.state in (_READING_HEAD, _READING_BODY):
            self._fail(HttpError(400, "incomplete request: the client closed the connection"))
            return True
        return False  # idle or lingering: close

    def connection_lost(self, exc: Exception | None) -> None:
        self.state = _CLOSED
        self._cancel_timer()
        if self.deadline is not None:
            self.deadline.cancel()
        self.server._connections.discard(self)
        self.server.idle(self, False)
        if self.request is not None:
            self.request.disconnected.set()
        if self._drained is not None and not self._drained.done():
            self._drained.set_exception(ConnectionResetError("the client went away"))

    def pause_writing(self) -> None:
        if self._drained is None or self._drained.done():
            self._drained = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # -- requests --------------------------------------------------------------------------------------

    def _wait_for_request(self) -> None:
        """Between requests: idle, or reading the head of one the client already began."""
        self.request, self.body, self.body_size = None, [], 0
        self.responding = self.chunked = self.head_only = False
        if self.parsed.in_head or self.parsed.events:  # pipelined: the next request has begun
            self.state = _READING_HEAD
            try:
                self._advance()
                if self.eof and self.state in (_READING_HEAD, _READING_BODY):  # nothing more will come
                    raise HttpError(400, "incomplete request: the client closed the connection")  # noqa: TRY301
            except HttpError as exc:
                self._fail(exc)
            self._arm_reading()
        elif self.eof:
            self.state = _CLOSED
            self.transport.close()
        else:
            self.state = _IDLE  # the server closes it after IDLE_TIMEOUT (Server.idle)
            self.server.idle(self, True)

    def _feed(self, data: bytes) -> None:
        try:
            self.parsed.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # No protocol is upgraded to here: the request is answered as a plain one, then closed.
            self.keep_alive = False
        except httptools.HttpParserError as exc:
            raise HttpError(400, f"bad request: {exc}") from None
        if self.parsed.in_head:
            self.head_bytes += len(data)
            if self.head_bytes > MAX_HEAD:
                raise HttpError(431, f"request head over {MAX_HEAD} bytes")

    def _advance(self) -> None:
        """Take the parsed events in order until a request is complete (then answer it)."""
        events = self.parsed.events
        while events and self.state in (_IDLE, _READING_HEAD, _READING_BODY):
            kind, value = events.popleft()
            if kind == _HEAD:
                self._head(*value)
            elif kind == _DATA:
                self.body_size += len(value)
                if self.body_size > self.body_limit:
                    raise HttpError(413, f"request body over {self.body_limit} bytes")
                self.body.append(value)
            else:
                request = self.request
                if request is None:
                    raise HttpError(400, "expected a request")
                request.body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
                self.state = _ANSWERING
                self._cancel_timer()
                self._start_answer(request)

    def _head(self, method: bytes, target: bytes, raw_headers: list[tuple[bytes, bytes]], version: str,
              keep_alive: bool) -> None:
        self.keep_alive = self.keep_alive and keep_alive
        self.chunked = version == "1.1"
        self.head_only = method == b"HEAD"
        size = len(method) + len(target) + sum(len(k) + len(v) + 4 for k, v in raw_headers)
        if size > MAX_HEAD:
            raise HttpError(431, f"request head over {MAX_HEAD} bytes")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw_headers}
        request = Request(method=method.decode("ascii", "replace"), path=target.decode("latin-1"),
                          headers=headers, site=self.site)
        self.request = request
        self.body_limit = self.server._body_limit(request)
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.body_limit:
            raise HttpError(413, f"request body over {self.body_limit} bytes")
        if headers.get("expect", "").lower() == "100-continue" and not self.parsed.events:
            # curl asks before sending a body over 1 KB; without this it waits a second.
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.state = _READING_BODY

    def _start_answer(self, request: Request) -> None:
        """Answer at once what the handler's ``answer_now`` answers (XML-RPC calls of methods that never
        wait: getProcessInfo, getState, readLog...), with no task and no further turn of the loop (~17 us
        of a ~190 us call); anything else in a task. A pipelined request reached from inside an answer
        given at once goes to a task: no recursion per request."""
        if self.server._answer_now is not None and not self.answering_now:
            self.answering_now = True
            try:
                response = self.server._answer_now(request)
                if response is not None:
                    self._send_now(response)
                    if self._drained is not None and not self._drained.done():
                        self.task = self.loop.create_task(self._answer(None))  # a large answer, a slow reader
                    else:
                        self._answered()
                    return
            except HttpError as exc:
                self._fail(exc)
                return
            except ConnectionError:
                self._abort()
                return
            except Exception:  # a boundary, as in _answer
                log.exception("HTTP handler failed on %s %s", request.method, request.path)
                self._fail(HttpError(500, "internal error"))
                return
            finally:
                self.answering_now = False
        self.task = self.loop.create_task(self._answer(request))

    async def _answer(self, request: Request | None) -> None:
        """Answer ``request`` in a task; None: its answer is written already (_start_answer) and waits in
        the transport for a slow reader."""
        try:
            if request is None:
                await self._drain()
            else:
                try:
                    response = await self.server._handler(request)
                except HttpError as exc:
                    self._fail(exc)
                    return
                except Exception:  # a boundary: one broken request must not take the server down
                    log.exception("HTTP handler failed on %s %s", request.method, request.path)
                    self._fail(HttpError(500, "internal error"))
                    return
                await self._send(response, request)
        except ConnectionError:
            self._abort()
            return
        finally:
            self.task = None
        self._answered()

    def _answered(self) -> None:
        """After an answer is written: close, or take the next request."""
        if self.state == _CLOSED:
            return
        if not self.keep_alive:
            self.state = _CLOSED
            self.transport.close()
            return
        # A client that closed its side after pipelining requests still gets every answer: the
        # connection closes once no request is left (_wait_for_request).
        self.transport.resume_reading()
        if self.waiting:
            data, self.waiting, self.waiting_size = b"".join(self.waiting), [], 0
            if not self.parsed.in_head:
                self.head_bytes = 0
            try:
                self._feed(data)
            except HttpError as exc:
                self._fail(exc)
                return
        self._wait_for_request()

    # -- responses -------------------------------------------------------------------------------------

    def _send_now(self, response: Response) -> None:
        """A whole body (no stream), written at once; what the socket does not take waits in the transport."""
        headers = [("Content-Type", response.content_type), *response.headers,
                   ("Content-Length", str(len(response.body)))]
        head = self._status(response.status, headers)
        if self.head_only:
            self._write(head)
        elif len(response.body) > _JOIN_UP_TO:
            self._write(head)  # a large body is not copied behind its head: a send more, a copy less
            self._write(response.body)
        else:
            self._write(head + response.body)

    async def _send(self, response: Response, request: Request) -> None:
        if response.stream is None:
            self._send_now(response)
            await self._drain()
            return
        headers = [("Content-Type", response.content_type), *response.headers]
        if self.head_only:
            self._write(self._status(response.status, headers))
        else:
            if self.chunked:
                headers.append(("Transfer-Encoding", "chunked"))
            else:  # an HTTP/1.0 client: the end of the body is the end of the connection
                self.keep_alive = False
            self._write(self._status(response.status, headers))
            # The client ends a follow by closing its side: reading goes on while the stream waits
            # for data, so that its end is seen (what it sends meanwhile is discarded).
            self.state = _STREAMING
            self.transport.resume_reading()
            async for chunk in response.stream:
                if chunk:
                    self._write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if self.chunked else chunk)
                    await self._drain()
            if self.chunked:
                self._write(b"0\r\n\r\n")
        await self._drain()

    def _status(self, status: int, headers: list[tuple[str, str]]) -> bytes:
        self.responding = True
        if not self.keep_alive:
            headers.append(("Connection", "close"))
        lines = [f"HTTP/1.1 {status} {_reason(status)}"]
        lines += [f"{name}: {value}" for name, value in headers]
        lines.append("\r\n")
        return "\r\n".join(lines).encode("latin-1")

    def _write(self, data: bytes) -> None:
        if self.transport.is_closing():
            raise ConnectionResetError("the client went away")
        self.transport.write(data)

    async def _drain(self) -> None:
        if self._drained is not None and not self._drained.done():
            await self._drained

    def _fail(self, exc: HttpError) -> None:
        """Answer with an error (unless a response is under way), then close, lingering first."""
        self.keep_alive = False
        self._cancel_timer()
        if self.responding or self.transport.is_closing():
            self._abort()
            return
        body = f"{exc}\n".encode()
        headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), *exc.headers]
        self.transport.write(self._status(exc.status, headers) + body)
        # A client too slow to send a head gets no more time; one that closed its side sends nothing more.
        if exc.status == 408 or self.eof or not self.transport.can_write_eof():
            self._finish()
            return
        # Half-close, then read and discard what the client still sends, so that closing does not
        # reset the connection before the client has read the answer.
        self.transport.write_eof()
        self.transport.resume_reading()
        self.state, self.lingered = _LINGERING, 0
        self._arm(LINGER_IDLE, self._finish)
        self.deadline = self.loop.call_later(LINGER_TIME, self._finish)

    def _finish(self) -> None:
        """Close once what was written is sent; abort if the client does not take it in LINGER_TIME."""
        self.state = _CLOSED
        self._cancel_timer()
        self.transport.close()
        if self.deadline is not None:
            self.deadline.cancel()
        self.deadline = self.loop.call_later(LINGER_TIME, self.transport.abort)

    def _timed_out(self, phase: str, timeout: float) -> None:
        self.timer, self.timer_phase = None, -1
        self._fail(HttpError(408, f"{phase} not received within {timeout:g}s"))

    def _abort(self) -> None:
        self.state = _CLOSED
        self._cancel_timer()
        self.transport.abort()

    # -- the one timer ---------------------------------------------------------------------------------

    def _arm(self, delay: float, callback: Callable[..., None], *args: Any) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_later(delay, callback, *args)
        self.timer_phase = -1

    def _arm_reading(self) -> None:
        """The timer of the part of a request still to come (its head, then its body), armed once a
        callback's bytes are taken rather than at each step: a request that arrives whole, as most do,
        arms and cancels no timer of its own (two call_later and two cancels a request, ~5 us)."""
        state = self.state
        if state == self.timer_phase or state not in (_READING_HEAD, _READING_BODY):
            return
        if state == _READING_HEAD:
            self._arm(HEAD_TIMEOUT, self._timed_out, "request head", HEAD_TIMEOUT)
        else:
            self._arm(BODY_TIMEOUT, self._timed_out, "request body", BODY_TIMEOUT)
        self.timer_phase = state

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.timer_phase = -1


@functools.cache
def _reason(status: int) -> str:
    # Supervisor's own HTTP client (supervisorctl tail -f, fg) splits the status line in three: an
    # empty reason phrase breaks it.
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
