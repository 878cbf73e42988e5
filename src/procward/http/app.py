"""The daemon's HTTP face: /RPC2, the log tails and /ok.html, on every configured unix and TCP site.

Credentials are per site (each [unix_http_server] / [inet_http_server] has its own), checked before any
route, in constant time. The core knows nothing of this module; it is started as a core Service.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from procward.config.model import Config, HttpServerConfig
from procward.core.daemon.supervisor import Supervisor
from procward.http import logtail
from procward.http.auth import credentials_ok
from procward.http.listen import Listeners
from procward.http.server import HttpError, Request, Response, Server
from procward.http.transport import Listener
from procward.rpc import api
from procward.rpc.codec import BadRequest, decode_request, encode_fault, encode_response
from procward.rpc.faults import Faults, RPCError
from procward.rpc.registry import Registry

if TYPE_CHECKING:
    from procward.http.metrics import Metrics
    from procward.http.rest import Rest
    from procward.http.web.routes import Web

log = logging.getLogger(__name__)

MAX_BODY = 2 * 1024 * 1024  # larger XML-RPC bodies get 413 before they are read
MAX_FORM = 64 * 1024  # the web page's and the REST routes' bodies
_REST = ("/program/", "/supervisor/", "/conf/")  # Go supervisord's REST routes (rest.py)
_XML = "text/xml; charset=utf-8"
_CHALLENGE = [("WWW-Authenticate", 'Basic realm="default"')]


class App:
    """Routes a request to its handler after checking the site's credentials.

    The web page, the REST routes and /metrics are imported at their first request: a daemon that is
    only driven over XML-RPC (most of them) starts ~7 ms sooner without them.
    """

    def __init__(self, supervisor: Supervisor, rpc_calls: Counter[tuple[str, str]] | None = None) -> None:
        self.supervisor = supervisor
        self.registry: Registry = api.build(supervisor)
        self.rpc_calls: Counter[tuple[str, str]] = Counter() if rpc_calls is None else rpc_calls  # (method, result)

    @functools.cached_property
    def web(self) -> Web:
        from procward.http.web.routes import Web

        return Web(self.supervisor, self.registry)

    @functools.cached_property
    def rest(self) -> Rest:
        from procward.http.rest import Rest

        return Rest(self.supervisor, self.registry)

    @functools.cached_property
    def metrics(self) -> Metrics:
        from procward.http.metrics import Metrics

        return Metrics(self.supervisor, self.rpc_calls)

    @functools.cached_property
    def _web_routes(self) -> dict[str, Callable[[Request, str, bool], Awaitable[Response]]]:
        return self.web.routes()

    async def handle(self, request: Request) -> Response:
        self.supervisor.exits.catch_up()  # every answer (API, web page, REST) tells of the exits announced
        path, query = _path_and_query(request.path)
        if path == "/metrics" and request.method in ("GET", "HEAD"):
            if request.site.metrics_auth:
                _authorize(request)
            return await self.metrics.handle(request)
        writable = _authorize(request)
        if path == "/RPC2" or path.startswith("/RPC2/"):
            if not writable:
                raise HttpError(403, "this user may look at the web page, not call the API")
            return await self.rpc(request)
        if path.startswith(_REST):
            answer = await self.rest.handle(request, path, writable)
            if answer is not None:
                return answer
        web = self._web_routes.get(path)
        if web is not None and (request.method in ("GET", "HEAD") or path in ("/action", "/", "/index.html")):
            return await web(request, query, writable)
        if request.method not in ("GET", "HEAD"):
            raise HttpError(405 if path in ("/mainlogtail", "/ok.html") else 404, "not found")
        if path == "/ok.html":
            return Response(200, b"OK", content_type="text/html")
        if path == "/mainlogtail":
            return logtail.main_tail(self.supervisor, request)
        parts = path.split("/")
        if len(parts) in (3, 4) and parts[1] == "logtail" and parts[2]:
            return logtail.process_tail(self.supervisor, request, parts[2], parts[3] if len(parts) == 4 else "stdout")
        raise HttpError(404, "not found")

    def answer_now(self, request: Request) -> Response | None:
        """The answer to an XML-RPC call of a method that never waits (``Method.waits``), made in the
        callback that read it: the server then needs no task (server.py). None for anything else, which
        ``handle`` answers."""
        if request.path != "/RPC2" or request.method != "POST" or not _authorize(request):
            return None  # and the read-only user's 403 comes from handle
        try:
            name, params = decode_request(request.body)
        except BadRequest:
            return None  # handle answers 400 and logs it
        method = self.registry.methods.get(name)
        if method is None or method.waits:
            request.decoded = (name, params)  # for rpc(): a multicall's body is not parsed again
            return None
        self.supervisor.exits.catch_up()
        try:
            return self._reply(name, self.registry.call_now(method, params))
        except Exception as exc:  # noqa: BLE001 - a fault for the client, as rpc gives
            return self._reply(name, failure=exc)

    async def rpc(self, request: Request) -> Response:
        """POST /RPC2: one XML-RPC call; faults for bad calls, 400 for bodies that are not XML-RPC."""
        if request.method != "POST":
            raise HttpError(400, "XML-RPC requests must be POSTed")
        try:
            method, params = request.decoded or decode_request(request.body)
        except BadRequest as exc:
            log.error("XML-RPC request data %r is invalid: %s", request.body[:80], exc)  # noqa: TRY400 - a bad client, not a bug: no traceback
            raise HttpError(400, str(exc)) from None
        try:
            value = await self.registry.call(method, params)
        except Exception as exc:  # noqa: BLE001 - a fault for the client (_reply)
            return self._reply(method, failure=exc)
        return self._reply(method, value)

    def _reply(self, method: str, value: object = None, failure: Exception | None = None) -> Response:
        """The methodResponse for a call's value, or the fault for its failure."""
        # Counted by method for the metrics; names that are no method count as one label value, so a
        # client cannot grow the series without bound.
        label = method if method in self.registry.methods else "unknown"
        try:
            try:
                if failure is not None:
                    raise failure
                payload = encode_response(value)
                result = "ok"
            except RPCError as exc:
                payload = encode_fault(exc.code, exc.text)
                result = exc.code.name
        except Exception as exc:  # a boundary: the daemon answers a fault and keeps serving
            log.exception("XML-RPC method %s failed", method)
            payload = encode_fault(Faults.FAILED, f"FAILED: {type(exc).__name__}: {exc}")
            result = "error"
        self.rpc_calls[label, result] += 1
        return Response(200, payload, content_type=_XML)


def _path_and_query(target: str) -> tuple[str, str]:
    """The decoded path and the query of a request target. The targets clients send (/RPC2, /logtail/web)
    are split here; urllib.parse (with ipaddress: ~0.4 MB and 2 ms of every start) is imported for the
    others (percent-escapes, fragments, an absolute URL)."""
    if target.startswith("/") and not target.startswith("//") and "%" not in target and "#" not in target:
        path, _, query = target.partition("?")
        return path, query
    import urllib.parse

    split = urllib.parse.urlsplit(target)
    return urllib.parse.unquote(split.path), split.query


def _authorize(request: Request) -> bool:
    """Check the site's credentials (401 otherwise); True when the caller may act, False for the
    read-only user, who may look and follow logs."""
    site: HttpServerConfig = request.site
    if site.username is None or site.password is None:
        return True
    header = request.headers.get("authorization")
    if credentials_ok(header, site.username, site.password):
        return True
    if site.readonly is not None and credentials_ok(header, *site.readonly):
        return False
    raise HttpError(401, "unauthorized", _CHALLENGE)


def body_limit(request: Request) -> int:
    """/RPC2, the web page's POSTs and the REST routes' POSTs and PUTs take a body; nothing else does."""
    if request.path.startswith("/RPC2"):
        return MAX_BODY
    return MAX_FORM if request.method in ("POST", "PUT") else 0


def _warn_exposure(server: HttpServerConfig) -> None:
    if server.username is not None and not server.metrics_auth:
        log.warning("%s serves /metrics without credentials (metrics_auth = false): anyone who reaches it "
                    "sees what runs here", server.file or f"{server.host or '*'}:{server.port}")
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
    import ipaddress  # here: only at the start of an inet server without credentials

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpService:
    """Serves every configured site; a core Service.

    The listening sockets are opened by ``bind`` before the daemon says it has started (see listen.py);
    ``start`` serves them for one run of the Supervisor, ``stop`` drops the connections of that run and
    keeps the sockets for the next one, ``close`` closes them at exit.
    """

    def __init__(self) -> None:
        self._listeners = Listeners()
        self._rpc_calls: Counter[tuple[str, str]] = Counter()  # kept across restarts: a counter never resets
        self._accepting: list[Listener] = []
        self._http: Server | None = None

    def bind(self, config: Config) -> list[str]:
        """Open the configured sockets (raises BindError at the first start; errors listed later)."""
        return self._listeners.bind_all(config.servers)

    async def start(self, supervisor: Supervisor) -> None:
        app = App(supervisor, self._rpc_calls)
        self._http = Server(app.handle, body_limit, app.answer_now)
        for server, sock in self._listeners.sockets():
            _warn_exposure(server)
            # The listening socket itself, never closed by the Listener: it survives a restart.
            self._accepting.append(Listener(asyncio.get_running_loop(), sock, self._http.connection_handler(server)))

    async def stop(self) -> None:
        for listener in self._accepting:
            listener.close()
        self._accepting = []
        if self._http is not None:
            await self._http.close()

    def close(self) -> None:
        self._listeners.close_all()

    def handover(self) -> dict[str, int]:
        """The listening sockets for the next daemon (a reexec)."""
        return self._listeners.handover()

    def adopt(self, fds: dict[str, int]) -> None:
        """The previous daemon's listening sockets, bound by ``bind``."""
        self._listeners.adopt(fds)
