"""The HTTP server on its own transport (http/transport.py), with a real event loop, a real unix socket and
raw clients: answers given in the callback that read the request, answers that wait (and what they wait
for failing, or the server closing under them), pipelining, a large answer to a slow reader, a client that
leaves in the middle of one."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from procward.http.server import AnswerNow, Request, Response, Server
from procward.http.transport import Listener

Handler = Callable[[Request], Awaitable[Response]]


@contextlib.asynccontextmanager
async def _serving(tmp_path: Path, handler: Handler, answer_now: AnswerNow | None = None
                   ) -> AsyncIterator[tuple[Server, str]]:
    """A server on a fresh unix socket; closed (connections dropped, tasks cancelled) on the way out."""
    path = str(tmp_path / "s.sock")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(path)
    sock.listen(64)
    server = Server(handler, lambda _request: 1 << 20, answer_now)
    listener = Listener(asyncio.get_running_loop(), sock, server.connection_handler(None))
    try:
        yield server, path
    finally:
        listener.close()
        await server.close()
        sock.close()


async def _exchange(path: str, data: bytes, *, until: bytes = b"", limit: float = 10) -> bytes:
    """Send ``data``, then read until ``until`` has been seen (or the server closes)."""
    reader, writer = await asyncio.open_unix_connection(path)
    try:
        writer.write(data)
        await writer.drain()
        got = b""
        async with asyncio.timeout(limit):
            while not until or until not in got:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                got += chunk
        return got
    finally:
        writer.close()


async def _read_big_slowly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, size: int, *,
                           chunk: int, pause: float) -> bytes:
    """GET /big on an open connection, read as a slow client reads (small reads, a pause after each: the
    answer waits in the server's transport meanwhile); its body, once ``size`` bytes came."""
    writer.write(_get("/big"))
    head = await reader.readuntil(b"\r\n\r\n")
    assert b"Content-Length: %d" % size in head
    got = b""
    async with asyncio.timeout(20):
        while len(got) < size:
            got += await reader.read(chunk)
            await asyncio.sleep(pause)
    return got


def _get(path: str = "/x") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()


def test_answers_that_wait_and_answers_that_do_not(tmp_path: Path) -> None:
    async def main() -> None:
        gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def handler(request: Request) -> Response:
            if request.path == "/wait":
                return Response(200, (await gate).encode())
            return Response(200, b"now:" + request.path.encode())

        async with _serving(tmp_path, handler) as (_server, path):
            waiting = asyncio.ensure_future(_exchange(path, _get("/wait"), until=b"opened"))
            for n in range(20):  # served while the other one waits
                assert (await _exchange(path, _get(f"/{n}"), until=f"now:/{n}".encode())).endswith(f"now:/{n}".encode())
            assert not waiting.done()
            gate.set_result("opened")
            answer = await waiting
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
            assert answer.endswith(b"opened")

    asyncio.run(main())


def test_a_failure_while_waiting_is_a_500_and_the_server_goes_on(tmp_path: Path) -> None:
    async def main() -> None:
        async def handler(request: Request) -> Response:
            if request.path == "/fail":
                await asyncio.sleep(0.01)
                failing: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                asyncio.get_running_loop().call_soon(failing.set_exception, RuntimeError("broken"))
                await failing
            return Response(200, b"fine")

        async with _serving(tmp_path, handler) as (_server, path):
            answer = await _exchange(path, _get("/fail"), until=b"internal error")
            assert answer.startswith(b"HTTP/1.1 500 ")
            assert (await _exchange(path, _get("/ok"), until=b"fine")).endswith(b"fine")

    asyncio.run(main())


def test_closing_the_server_cancels_an_answer_that_waits(tmp_path: Path) -> None:
    async def main() -> None:
        seen: list[str] = []
        entered = asyncio.Event()

        async def handler(request: Request) -> Response:
            entered.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise
            return Response(200, b"never")

        async with _serving(tmp_path, handler) as (_server, path):
            client = asyncio.ensure_future(_exchange(path, _get("/wait")))
            async with asyncio.timeout(10):
                await entered.wait()
        assert seen == ["cancelled"]
        assert await client == b""  # dropped without an answer

    asyncio.run(main())


def test_pipelined_requests_are_answered_in_order(tmp_path: Path) -> None:
    async def main() -> None:
        async def handler(request: Request) -> Response:
            if request.path.endswith("7"):
                await asyncio.sleep(0.01)  # one of them waits: those behind it wait their turn
            return Response(200, f"<{request.path}>".encode())

        async with _serving(tmp_path, handler) as (_server, path):
            paths = [f"/p{n}" for n in range(60)]
            answer = await _exchange(path, b"".join(_get(p) for p in paths), until=b"</p59>")
            assert answer.count(b"HTTP/1.1 200 OK") == 60
            positions = [answer.index(f"<{p}>".encode()) for p in paths]
            assert positions == sorted(positions)

    asyncio.run(main())


def test_a_large_answer_reaches_a_slow_reader_and_a_leaving_client_harms_nothing(tmp_path: Path) -> None:
    body = bytes(range(256)) * 16384  # 4 MiB: far past the socket's buffer and the transport's high water

    async def main() -> None:
        async def handler(request: Request) -> Response:
            if request.path == "/stream":
                async def chunks() -> AsyncIterator[bytes]:
                    for start in range(0, len(body), 65536):
                        yield body[start:start + 65536]
                return Response(200, stream=chunks())
            return Response(200, body)

        async with _serving(tmp_path, handler) as (_server, path):
            reader, writer = await asyncio.open_unix_connection(path)
            got = await _read_big_slowly(reader, writer, len(body), chunk=4096, pause=0)
            assert got == body
            writer.close()
            for wanted in ("/big", "/stream"):  # a client that leaves after the first bytes
                r2, w2 = await asyncio.open_unix_connection(path)
                w2.write(_get(wanted))
                await r2.read(1000)
                w2.transport.abort()
            closing = b"GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            answer = await _exchange(path, closing)  # to the end: the server closes after it
            assert answer.endswith(b"\r\n\r\n" + body)

    asyncio.run(main())


@pytest.mark.parametrize("stop_reading_first", [False, True])
def test_a_half_closed_client_still_gets_its_answer(tmp_path: Path, stop_reading_first: bool) -> None:
    """The client sends its request and shuts its side (EOF): the answer is still written, then the
    connection closes."""
    async def main() -> None:
        async def handler(request: Request) -> Response:
            await asyncio.sleep(0.01 if stop_reading_first else 0)
            return Response(200, b"after eof")

        async with _serving(tmp_path, handler) as (_server, path):
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(_get("/x"))
            writer.write_eof()
            async with asyncio.timeout(10):
                answer = await reader.read()  # to the end: the server closes after answering
            assert answer.startswith(b"HTTP/1.1 200 OK")
            assert answer.endswith(b"after eof")
            writer.close()

    asyncio.run(main())


def test_answers_given_at_once_big_or_pipelined(tmp_path: Path) -> None:
    """The handler's answer_now answers in the callback that read the request: a large answer to a slow
    reader is finished by a task (and the connection then takes its next request), and hundreds of
    pipelined requests, some of them for the handler, are answered in order without one nested call per
    request (400 nested calls would pass Python's recursion limit)."""
    body = b"0123456789abcdef" * 65536  # 1 MiB

    def answer_now(request: Request) -> Response | None:
        if request.path == "/big":
            return Response(200, body)
        if request.path.startswith("/now"):
            return Response(200, f"<{request.path}>".encode())
        return None

    async def handler(request: Request) -> Response:  # the same answers, after a wait (as App.handle's)
        await asyncio.sleep(0)
        return Response(200, f"<{request.path}>".encode())

    async def main() -> None:
        async with _serving(tmp_path, handler, answer_now) as (_server, path):
            reader, writer = await asyncio.open_unix_connection(path)
            got = await _read_big_slowly(reader, writer, len(body), chunk=8192, pause=0.0005)
            writer.write(_get("/now-after"))  # the same connection, once the big answer is taken
            async with asyncio.timeout(20):
                after = await reader.readuntil(b"</now-after>")
            assert got == body
            assert after.startswith(b"HTTP/1.1 200 OK")
            writer.close()

            paths = [*(f"/now{n}" for n in range(400)), "/task", "/now-last"]
            answer = await _exchange(path, b"".join(_get(p) for p in paths), until=b"</now-last>")
            assert answer.count(b"HTTP/1.1 200 OK") == 402
            positions = [answer.index(f"<{p}>".encode()) for p in paths]
            assert positions == sorted(positions)

    asyncio.run(main())


def test_idle_connections_are_closed_each_after_its_own_idle_timeout(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's one timer for idle connections: one that keeps sending requests is never closed; each
    idle one is closed IDLE_TIMEOUT after it went idle, not sooner and not all at once (one that went idle
    later stays open past the first one's close, and is closed with no other connection's help); once none
    is idle, no timer is left to wake the loop."""
    from procward.http import server as server_module

    timeout = 1.0
    monkeypatch.setattr(server_module, "IDLE_TIMEOUT", timeout)

    async def handler(request: Request) -> Response:
        return Response(200, f"<{request.path}>".encode())

    async def no_idle_timer(server: Server) -> None:
        """Until the server's idle timer is off: it fires once more at most, finds no idle connection."""
        async with asyncio.timeout(10):
            while server._idle_timer is not None:  # noqa: ASYNC110 - a poll with a deadline: no event says it
                await asyncio.sleep(0.05)

    async def closed_at(reader: asyncio.StreamReader) -> float:
        async with asyncio.timeout(15):
            while await reader.read(65536):
                pass
        return loop.time()

    async def main() -> None:
        async with _serving(tmp_path, handler) as (server, path):
            # A busy one: a request every tenth of the timeout, 15 on one connection, open all along.
            c_reader, c_writer = await asyncio.open_unix_connection(path)
            for n in range(15):
                c_writer.write(_get(f"/c{n}"))
                async with asyncio.timeout(10):
                    await c_reader.readuntil(f"</c{n}>".encode())
                await asyncio.sleep(timeout / 10)  # the client's pace
            assert not c_reader.at_eof()
            c_writer.close()
            await no_idle_timer(server)

            # A idle from its start (the timer armed for it); B asks once, half the timeout later, then is
            # idle: closed only if the timer, at A's close, is armed again for B.
            a_connected = loop.time()  # before the server saw it: its idle time began later
            a_reader, a_writer = await asyncio.open_unix_connection(path)
            a_closed = asyncio.create_task(closed_at(a_reader))
            await asyncio.sleep(timeout / 2)  # the client's pace
            b_asked = loop.time()
            b_reader, b_writer = await asyncio.open_unix_connection(path)
            b_writer.write(_get("/b"))
            async with asyncio.timeout(10):
                await b_reader.readuntil(b"</b>")
            b_closed = asyncio.create_task(closed_at(b_reader))

            a_end, b_end = await a_closed, await b_closed
            assert a_end - a_connected >= timeout
            assert b_end - b_asked >= timeout  # not closed with A, at A's deadline
            for writer in (a_writer, b_writer):
                writer.close()
            await no_idle_timer(server)

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
