"""Go supervisord's REST routes, so its users' scripts and dashboards keep working.

The routes, methods, JSON shapes and status codes are Go's (its rest-rpc.go and confApi.go): a start or
stop answers 200 with ``{"success": bool}`` whatever happened, a list call answers a sentence, a body
that is not a JSON list of names gets 400 "not a valid request". Every action goes through the XML-RPC
methods (the registry), so it has the same effect, events and log lines as ``supervisorctl``.

Where Go differs on purpose here: a state-changing route refuses a request a foreign web page caused
(an Origin or Sec-Fetch-Site of another site: Go has no such check), ``/conf/{program}`` needs the
writable user (the file may hold the server's password), ``/supervisor/reload`` answers whether the
reload worked (Go always answers false), and ``/program/log/{name}/stdout`` returns the log's tail (Go's
handler is empty).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from procward.core.supervisor import Supervisor
from procward.http.server import HttpError, Request, Response
from procward.http.web import guard
from procward.protocol import Faults
from procward.rpc.faults import RPCError
from procward.rpc.info import process_info
from procward.rpc.registry import Registry

log = logging.getLogger(__name__)

PREFIXES = ("/program/", "/supervisor/", "/conf/")
_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"
_LOG_BYTES = 64 * 1024  # what /program/log/{name}/stdout returns: the tail, as the web page shows it
# Go's ProcessInfo JSON fields (Supervisor's getProcessInfo keys).
_GO_FIELDS = ("name", "group", "description", "start", "stop", "now", "state", "statename", "spawnerr",
              "exitstatus", "logfile", "stdout_logfile", "stderr_logfile", "pid")
_ACTIONS = {"start", "stop", "restart"}
_WRITE_METHODS = ("POST", "PUT")


class Rest:
    """Go supervisord's REST API on one daemon."""

    def __init__(self, supervisor: Supervisor, registry: Registry) -> None:
        self._sup = supervisor
        self._registry = registry

    async def handle(self, request: Request, path: str, writable: bool) -> Response | None:
        """The answer for a REST path, or None when ``path`` is none of Go's routes."""
        parts = path.split("/")[1:]
        route = self._route(parts)
        if route is None:
            return None
        methods, handler, changes = route
        if request.method not in methods:
            raise HttpError(405, "method not allowed", [("Allow", ", ".join(methods))])
        if changes or parts[0] == "conf":
            if not writable:
                raise HttpError(403, "this user may look, not act")
            # A browser names the page's origin on every POST and PUT (a PUT from another site also needs a
            # CORS answer this server never gives): what another site's page caused is refused.
            if changes and (why := guard.foreign(request.headers)):
                raise HttpError(403, why)
        return await handler(request, parts)

    def _route(self, parts: list[str]) -> tuple[tuple[str, ...], Callable[[Request, list[str]],
                                                                       Awaitable[Response]], bool] | None:
        read = ("GET", "HEAD")
        match parts:
            case ["program", "list"]:
                return read, self._list, False
            case ["program", action, name] if action in _ACTIONS and name:
                return _WRITE_METHODS, self._one, True
            case ["program", "startPrograms" | "stopPrograms"]:
                return _WRITE_METHODS, self._many, True
            case ["program", "log", name, "stdout" | "stderr"] if name:
                return read, self._log, False
            case ["supervisor", "shutdown" | "reload"]:
                return _WRITE_METHODS, self._supervisor, True
            case ["conf", name] if name:
                return read, self._conf, False
        return None

    async def _list(self, request: Request, parts: list[str]) -> Response:
        now = time.time()
        infos: list[dict[str, Any]] = [dict(process_info(p, now)) for p in self._sup.all_processes()]
        return _json([{key: info[key] for key in _GO_FIELDS} for info in infos])

    async def _one(self, request: Request, parts: list[str]) -> Response:
        return _json({"success": await self._act(parts[1], parts[2])})

    async def _many(self, request: Request, parts: list[str]) -> Response:
        try:
            names = json.loads(request.body)
        except ValueError:
            names = None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return Response(400, b"not a valid request", content_type=_TEXT)
        verb = "start" if parts[1] == "startPrograms" else "stop"
        for name in names:
            await self._act(verb, name)
        return Response(200, f"Success to {verb} the programs".encode(), content_type=_TEXT)

    async def _act(self, verb: str, name: str) -> bool:
        """Start, stop or restart a process or a group (a program with numprocs > 1); False on any fault."""
        kind = "Process" if ":" in name or self._is_process(name) else "ProcessGroup"
        try:
            if verb in ("stop", "restart"):
                try:
                    await self._registry.call(f"supervisor.stop{kind}", (name, True))
                except RPCError as exc:
                    if verb == "stop" or exc.code != Faults.NOT_RUNNING:
                        raise
            if verb in ("start", "restart"):
                await self._registry.call(f"supervisor.start{kind}", (name, True))
        except RPCError as exc:
            log.info("REST %s %s: %s", verb, name, exc.text)
            return False
        return True

    def _is_process(self, name: str) -> bool:
        group = self._sup.groups.get(name)
        return group is not None and name in group.processes

    async def _log(self, request: Request, parts: list[str]) -> Response:
        method = "supervisor.tailProcessStdoutLog" if parts[3] == "stdout" else "supervisor.tailProcessStderrLog"
        try:
            text, _, _ = await self._registry.call(method, (parts[2], 0, _LOG_BYTES))
        except RPCError as exc:
            raise HttpError(404, exc.text) from None
        return Response(200, text.encode("utf-8", "replace"), content_type=_TEXT)

    async def _supervisor(self, request: Request, parts: list[str]) -> Response:
        if parts[1] == "shutdown":
            await self._registry.call("supervisor.shutdown", ())
            return Response(200, b"Shutdown...", content_type=_TEXT)
        return _json({"success": await self._update()})

    async def _update(self) -> bool:
        """Go's reload: read the configuration again and apply it as ``supervisorctl update`` does."""
        call = self._registry.call
        try:
            [[added, changed, removed]] = await call("supervisor.reloadConfig", ())
        except RPCError as exc:
            log.error("REST reload: %s", exc.text)  # noqa: TRY400 - a bad config, not a bug: no traceback
            return False
        for name in [*removed, *changed]:
            try:
                await call("supervisor.stopProcessGroup", (name, True))
            except RPCError as exc:
                log.info("REST reload: stopping %s: %s", name, exc.text)
            await call("supervisor.removeProcessGroup", (name,))
        for name in [*changed, *added]:
            await call("supervisor.addProcessGroup", (name,))
        return True

    async def _conf(self, request: Request, parts: list[str]) -> Response:
        where = next((p.config.where for p in self._sup.all_processes() if p.config.program == parts[1]), None)
        if where is None:
            raise HttpError(404, "no such program")
        try:
            with open(where.file, "rb") as handle:
                return Response(200, handle.read(), content_type=_TEXT)
        except OSError:
            raise HttpError(404, "its configuration file cannot be read") from None


def _json(value: Any) -> Response:
    return Response(200, json.dumps(value).encode() + b"\n", content_type=_JSON)
