"""One aiohttp application serving /RPC2 and the log tails on every configured unix and TCP site."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
from typing import Any

from aiohttp import web

from procward.config.model import HttpServerConfig
from procward.core.supervisor import Supervisor
from procward.http import logtail
from procward.http.auth import credentials_ok
from procward.http.keys import REGISTRY, SERVERS, SUPERVISOR
from procward.rpc import api
from procward.rpc.codec import BadRequest, decode_request, encode_fault, encode_response
from procward.rpc.faults import Faults, RPCError

log = logging.getLogger(__name__)

MAX_BODY = 2 * 1024 * 1024  # larger XML-RPC bodies get 413 before they are read
_XML = "text/xml"


class AddressInUse(Exception):
    """Another program answers on a configured socket."""


def _server_for(request: web.Request) -> HttpServerConfig | None:
    """Which configured server the request arrived on (each may have its own credentials)."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    for server in request.app[SERVERS]:
        if server.file is not None and sockname == server.file:
            return server  # type: ignore[no-any-return]
        if server.port is not None and isinstance(sockname, tuple) and sockname[1] == server.port:
            return server  # type: ignore[no-any-return]
    return None


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every route answers 401 without the server's credentials, when it has credentials."""
    server = _server_for(request)
    if server is None and any(s.username for s in request.app[SERVERS]):
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Basic realm="default"'})
    if server is not None and server.username is not None and server.password is not None and \
            not credentials_ok(request.headers.get("Authorization"), server.username, server.password):
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Basic realm="default"'})
    return await handler(request)  # type: ignore[no-any-return]


async def rpc(request: web.Request) -> web.Response:
    """POST /RPC2: one XML-RPC call; faults for bad calls, 400 for bodies that are not XML-RPC."""
    if request.method != "POST":
        raise web.HTTPBadRequest(text="XML-RPC requests must be POSTed\n")
    if request.content_length is not None and request.content_length > MAX_BODY:
        # Refuse from the header: reading 2 MiB first would let a slow client hold the request open.
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
    body = await request.read()
    try:
        method, params = decode_request(body)
    except BadRequest as exc:
        log.error("XML-RPC request data %r is invalid: %s", body[:80], exc)
        raise web.HTTPBadRequest(text=f"{exc}\n") from None
    try:
        try:
            payload = encode_response(await request.app[REGISTRY].call(method, params))
        except RPCError as exc:
            payload = encode_fault(exc.code, exc.text)
    except Exception as exc:  # a boundary: the daemon answers a fault and keeps serving
        log.exception("XML-RPC method %s failed", method)
        payload = encode_fault(Faults.FAILED, f"FAILED: {type(exc).__name__}: {exc}")
    return web.Response(body=payload, content_type=_XML, charset="utf-8")


async def ok(request: web.Request) -> web.Response:
    """GET /ok.html: a liveness probe for load balancers (as Supervisor's)."""
    return web.Response(text="OK", content_type="text/html")


def make_app(supervisor: Supervisor, servers: tuple[HttpServerConfig, ...]) -> web.Application:
    """The application: routes, auth, body limit."""
    app = web.Application(middlewares=[auth_middleware], client_max_size=MAX_BODY)
    app[SUPERVISOR] = supervisor
    app[REGISTRY] = api.build(supervisor)
    app[SERVERS] = servers
    app.router.add_route("*", "/RPC2", rpc)
    app.router.add_route("*", "/RPC2/{tail:.*}", rpc)
    app.router.add_get("/logtail/{name}", logtail.process_tail)
    app.router.add_get("/logtail/{name}/{channel}", logtail.process_tail)
    app.router.add_get("/mainlogtail", logtail.main_tail)
    app.router.add_get("/ok.html", ok)
    return app


def _check_unix_socket(path: str) -> None:
    """Remove a stale socket file; refuse to take over one that another program answers on."""
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody listening: a leftover from a killed daemon
    else:
        raise AddressInUse(f"another program is already listening on {path}; shut it down first")
    finally:
        probe.close()


def _warn_exposure(server: HttpServerConfig) -> None:
    if server.username is not None:
        return
    where = server.file or f"{server.host or '*'}:{server.port}"
    log.critical("Server '%s' running without any HTTP authentication checking", server.section)
    if server.file is None and not _is_loopback(server.host or ""):
        log.critical("%s accepts connections from the network without a username/password: anyone who can "
                     "reach it can stop, start and run programs. Set username and password in [%s].",
                     where, server.section)


def _is_loopback(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpService:
    """Starts and stops the sites; a core Service."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor
        self._servers = supervisor.config.servers
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        if not self._servers:
            return
        runner = web.AppRunner(make_app(self._supervisor, self._servers), access_log=None,
                               handle_signals=False)
        await runner.setup()
        self._runner = runner
        for server in self._servers:
            _warn_exposure(server)
            if server.file is not None:
                _check_unix_socket(server.file)
                site: web.BaseSite = web.UnixSite(runner, server.file)
                await site.start()
                os.chmod(server.file, server.chmod)
                if server.chown is not None:
                    os.chown(server.file, *server.chown)
            else:
                site = web.TCPSite(runner, server.host or None, server.port, reuse_address=True)
                await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for server in self._servers:
            if server.file is not None:
                with contextlib.suppress(OSError):
                    os.unlink(server.file)
