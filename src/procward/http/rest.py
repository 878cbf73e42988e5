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

Nodes: Go's newer routes name a node (``/program/start/{node}/{name}``, ``/program/info/{node}/{name}``,
``/supervisor/{node}/ping``, ``/supervisor/listNodes``). This daemon is the node of ``[inet_http_server]
nodename`` (the host name without it); the others are the ``[node:NAME]`` sections and Go's ``remotes=``,
reached over XML-RPC as the web page reaches them, so a stock supervisord works as a node too. A node
that does not answer gets 502 (Go answers success false); an unknown node 404.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from procward.config.model import NodeConfig
from procward.core.daemon.supervisor import Supervisor
from procward.http.server import HttpError, Request, Response
from procward.http.web import guard, nodes
from procward.protocol import Faults
from procward.rpc.faults import RPCError
from procward.rpc.info import process_info
from procward.rpc.registry import Registry

log = logging.getLogger(__name__)

_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"
_LOG_BYTES = 64 * 1024  # what /program/log/{name}/stdout returns: the tail, as the web page shows it
# Go's ProcessInfo JSON fields (Supervisor's getProcessInfo keys).
_GO_FIELDS = ("node", "name", "group", "description", "start", "stop", "now", "state", "statename", "spawnerr",
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
            case ["program", "info", _node, name] if name:
                return read, self._info, False
            case ["program", action, *where] if action in _ACTIONS and len(where) in (1, 2) and where[-1]:
                return _WRITE_METHODS, self._one, True
            case ["program", "startPrograms" | "stopPrograms"]:
                return _WRITE_METHODS, self._many, True
            case ["program", "log", *where, "stdout" | "stderr"] if len(where) in (1, 2) and where[-1]:
                return read, self._log, False
            case ["supervisor", "listNodes"]:
                return read, self._list_nodes, False
            case ["supervisor", _node, "ping"]:
                return read, self._ping, False
            case ["supervisor", *_node, "shutdown" | "reload"] if len(parts) <= 3:
                return _WRITE_METHODS, self._supervisor, True
            case ["conf", name] if name:
                return read, self._conf, False
        return None

    # -- nodes: this daemon, or another one over XML-RPC -----------------------------------------------

    def nodename(self) -> str:
        """This daemon's name among the nodes."""
        return self._sup.config.nodename or os.uname().nodename

    def _caller(self, node: str) -> Callable[..., Awaitable[Any]]:
        """``call(method, params)`` on the named node; RPCError for its faults."""
        if node in ("", self.nodename()):
            return self._registry.call
        config = next((n for n in self._sup.config.nodes if n.name == node), None)
        if config is None:
            raise HttpError(404, f"no such node: {node[:80]}")

        async def call(method: str, params: tuple[Any, ...]) -> Any:
            try:
                return await nodes.call(config, method, *params)
            except nodes.NodeFault as exc:
                fault = _fault(exc.code)  # its text is "NAME: extra" already: keep the extra only
                raise RPCError(fault, exc.text.removeprefix(f"{fault.name}: ") if fault.name != exc.text else None
                               ) from None
            except nodes.NodeError as exc:
                raise HttpError(502, f"node {node} does not answer: {exc}") from None
        return call

    async def _remote_list(self, node: NodeConfig) -> list[dict[str, Any]]:
        try:
            infos = await nodes.call(node, "supervisor.getAllProcessInfo")
        except (nodes.NodeError, nodes.NodeFault) as exc:
            log.info("REST /program/list: node %s: %s", node.name, exc)
            return []
        return [{"node": node.name, **{k: info.get(k) for k in _GO_FIELDS[1:]}} for info in infos]

    # -- routes -------------------------------------------------------------------------------------------

    async def _list(self, request: Request, parts: list[str]) -> Response:
        now, here = time.time(), self.nodename()
        rows = [{"node": here, **{k: info[k] for k in _GO_FIELDS[1:]}}
                for info in (dict(process_info(p, now)) for p in self._sup.all_processes())]
        for remote in await asyncio.gather(*(self._remote_list(n) for n in self._sup.config.nodes)):
            rows += remote
        return _json(rows)

    async def _info(self, request: Request, parts: list[str]) -> Response:
        node, name = parts[2], parts[3]
        try:
            info = await self._caller(node)("supervisor.getProcessInfo", (name,))
        except RPCError as exc:
            return _json({"error": exc.text}, 404)
        return _json({"node": node or self.nodename(), **{k: info.get(k) for k in _GO_FIELDS[1:]}})

    async def _one(self, request: Request, parts: list[str]) -> Response:
        node = parts[2] if len(parts) == 4 else ""
        return _json({"success": await self._act(parts[1], parts[-1], self._caller(node))})

    async def _many(self, request: Request, parts: list[str]) -> Response:
        """A list of names (Go's older body), or of ``{"node": ..., "program": ...}`` (its newer one, where
        the node may be another daemon's; a missing or empty node is this one)."""
        try:
            body = json.loads(request.body)
        except ValueError:
            body = None
        if not isinstance(body, list) or not all(_program_entry(item) for item in body):
            return Response(400, b"not a valid request", content_type=_TEXT)
        verb = "start" if parts[1] == "startPrograms" else "stop"
        for item in body:
            node, name = ("", item) if isinstance(item, str) else (item.get("node") or "", item["program"])
            try:
                await self._act(verb, name, self._caller(node))
            except HttpError as exc:  # an unknown or dead node: that entry fails, the others go ahead
                log.info("REST %s %s on node %s: %s", verb, name, node, exc)
        return Response(200, f"Success to {verb} the programs".encode(), content_type=_TEXT)

    async def _list_nodes(self, request: Request, parts: list[str]) -> Response:
        """Go's NodeInfo list: this daemon with the host's CPU and memory, the others ONLINE or OFFLINE."""
        import psutil  # imported on first use, as for the usage figures

        memory = psutil.virtual_memory()
        rows = [{"name": self.nodename(), "status": "ONLINE", "cpu_percent": psutil.cpu_percent(None),
                 "mem_total": memory.total, "mem_used": memory.used, "mem_used_percent": memory.percent}]
        answers = await asyncio.gather(*(self._up(n.name) for n in self._sup.config.nodes))
        rows += [{"name": n.name, "status": "ONLINE" if up else "OFFLINE", "cpu_percent": 0, "mem_total": 0,
                  "mem_used": 0, "mem_used_percent": 0} for n, up in zip(self._sup.config.nodes, answers, strict=True)]
        return _json(sorted(rows, key=lambda row: str(row["name"])))

    async def _up(self, node: str) -> bool:
        try:
            await self._caller(node)("supervisor.getState", ())
        except (RPCError, HttpError):
            return False
        return True

    async def _ping(self, request: Request, parts: list[str]) -> Response:
        node = parts[1]
        if node not in ("", self.nodename()) and not any(n.name == node for n in self._sup.config.nodes):
            return _json({"success": False})  # Go: an unknown node does not answer the ping
        return _json({"success": await self._up(node)})

    async def _act(self, verb: str, name: str, call: Callable[..., Awaitable[Any]]) -> bool:
        """Start, stop or restart a process or a group (a program with numprocs > 1); False on any fault."""
        kind = "Process" if ":" in name or self._is_process(name) else "ProcessGroup"
        if call != self._registry.call:
            kind = "Process"  # another daemon: ``name`` works for a single-process program or "group:*"
        try:
            if verb in ("stop", "restart"):
                try:
                    await call(f"supervisor.stop{kind}", (name, True))
                except RPCError as exc:
                    if verb == "stop" or exc.code != Faults.NOT_RUNNING:
                        raise
            if verb in ("start", "restart"):
                await call(f"supervisor.start{kind}", (name, True))
        except RPCError as exc:
            log.info("REST %s %s: %s", verb, name, exc.text)
            return False
        return True

    def _is_process(self, name: str) -> bool:
        group = self._sup.groups.get(name)
        return group is not None and name in group.processes

    async def _log(self, request: Request, parts: list[str]) -> Response:
        method = "supervisor.tailProcessStdoutLog" if parts[-1] == "stdout" else "supervisor.tailProcessStderrLog"
        call = self._caller(parts[2] if len(parts) == 5 else "")
        try:
            text, _, _ = await call(method, (parts[-2], 0, _LOG_BYTES))
        except RPCError as exc:
            raise HttpError(404, exc.text) from None
        return Response(200, text.encode("utf-8", "replace"), content_type=_TEXT)

    async def _supervisor(self, request: Request, parts: list[str]) -> Response:
        call = self._caller(parts[1] if len(parts) == 3 else "")
        if parts[-1] == "shutdown":
            await call("supervisor.shutdown", ())
            return _json({"success": True})  # Go's newer answer (its older one was the text "Shutdown...")
        return _json({"success": await self._update(call)})

    async def _update(self, call: Callable[..., Awaitable[Any]]) -> bool:
        """Go's reload: read the configuration again and apply it as ``supervisorctl update`` does."""
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


def _fault(code: int) -> Faults:
    """Another daemon's fault code, as one of ours (FAILED for a code Supervisor does not have)."""
    try:
        return Faults(code)
    except ValueError:
        return Faults.FAILED


def _json(value: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(value).encode() + b"\n", content_type=_JSON)


def _program_entry(item: object) -> bool:
    """A startPrograms/stopPrograms entry: a name, or Go's ``{"node": ..., "program": ...}``."""
    if isinstance(item, str):
        return True
    return (isinstance(item, dict) and isinstance(item.get("program"), str)
            and isinstance(item.get("node", ""), str | None))
