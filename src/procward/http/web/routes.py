"""The web UI's routes: the page, its POST actions, Supervisor's legacy GET URLs, logs, the live stream.

Actions go through the same XML-RPC methods a client calls (the registry), so a click has the same
effect, events and log lines as ``supervisorctl``. Every answer carries a Content-Security-Policy without
inline script, refuses framing, and sets nosniff and a same-origin Referrer-Policy.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import os
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from procward.config import render
from procward.config.model import NodeConfig
from procward.core.daemon.supervisor import Supervisor
from procward.errors import ProcwardError
from procward.http import logtail
from procward.http.server import HttpError, Request, Response
from procward.http.web import guard, nodes, page
from procward.http.web.live import LiveHub
from procward.protocol import namespec
from procward.rpc.faults import RPCError
from procward.rpc.info import process_info
from procward.rpc.registry import Registry

log = logging.getLogger(__name__)

SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
]
_HTML = "text/html; charset=utf-8"
_STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
_LEGACY_ACTIONS = ("start", "stop", "restart", "clearlog", "stopall", "restartall")
_LOG_VIEW_BYTES = 64 * 1024


class Web:
    """The web UI of one daemon."""

    def __init__(self, supervisor: Supervisor, registry: Registry) -> None:
        self._sup = supervisor
        self._registry = registry
        # One token per daemon run: basic auth has no session to bind one to. It proves the POST comes
        # from a page this daemon served (another site cannot read it).
        self.token = base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")  # not secrets: it loads libcrypto
        self.live = LiveHub(supervisor)

    def routes(self) -> dict[str, Callable[[Request, str, bool], Awaitable[Response]]]:
        """Path -> handler(request, query, writable)."""
        return {"/": self.index, "/index.html": self.index, "/action": self.action, "/tail.html": self.tail,
                "/log.html": self.log_page, "/follow": self.follow, "/download": self.download,
                "/events": self.events, "/static/app.js": self.static, "/static/app.css": self.static,
                "/favicon.ico": self.favicon, "/node": self.node, "/process": self.process_page}

    # -- pages ----------------------------------------------------------------------------------------

    def _rows(self) -> list[page.Row]:
        now = time.time()
        usage = self._sup.usage.latest()
        return [page.Row(process_info(p, now, usage.get(p.namespec)), max(0, p.starts - 1), p.output.last_line)
                for p in self._sup.all_processes()]

    def _process_view(self, spec: str) -> page.ProcessView:
        try:
            _, process = self._sup.lookup(spec)
        except ProcwardError:
            process = None
        if process is None:
            raise HttpError(404, "no such process")
        now = time.time()
        usage = self._sup.usage.latest()
        row = page.Row(process_info(process, now, usage.get(process.namespec)), max(0, process.starts - 1),
                       process.output.last_line)
        monitor = process.health_monitor
        return page.ProcessView(row, list(process.history.states), list(process.history.exits),
                                list(monitor.results) if monitor is not None else [],
                                self._sup.usage.history(process.namespec),
                                render.process_lines(process.config, hide_environment=True))

    async def process_page(self, request: Request, query: str, writable: bool) -> Response:
        """One process: state, actions, charts, history, health checks, configuration."""
        spec = urllib.parse.parse_qs(query).get("name", [""])[0]
        view = self._process_view(spec)
        return self._page(page.process_page(view, token=self.token, writable=writable, identity=self._identity()))

    def _identity(self) -> str:
        return f"{self._sup.config.nodename or os.uname().nodename} (pid {os.getpid()})"

    def _page(self, body: bytes, status: int = 200) -> Response:
        return Response(status, body, content_type=_HTML, headers=list(SECURITY_HEADERS))

    async def index(self, request: Request, query: str, writable: bool) -> Response:
        """The process table; Supervisor's ``?action=`` GETs are handled by ``legacy``."""
        if request.method not in ("GET", "HEAD", "POST"):
            raise HttpError(405, "GET or POST only", [("Allow", "GET, HEAD, POST")])
        if request.method == "POST":
            return await self.action(request, query, writable)
        args = urllib.parse.parse_qs(query)
        if "action" in args and args["action"][0] != "refresh":
            return await self._legacy(request, args, writable)
        body = page.index(self._rows(), page.View.from_query(query), token=self.token, writable=writable,
                          identity=self._identity(), nodes=await self._nodes())
        return self._page(body)

    async def _nodes(self) -> list[page.Node]:
        """Every [node:x], asked at once (each call bounded)."""
        return list(await asyncio.gather(*(self._node(n) for n in self._sup.config.nodes)))

    async def _node(self, node: NodeConfig) -> page.Node:
        where = node.serverurl
        try:
            infos = await nodes.call(node, "supervisor.getAllProcessInfo")
        except (nodes.NodeError, nodes.NodeFault) as exc:
            why = exc.text if isinstance(exc, nodes.NodeFault) else str(exc)
            return page.Node(node.name, where, error=why)
        return page.Node(node.name, where, rows=[page.Row(info, None, local=False) for info in infos])

    async def node(self, request: Request, query: str, writable: bool) -> Response:
        """One node's section, for the page to refresh it."""
        name = urllib.parse.parse_qs(query).get("name", [""])[0]
        config = next((n for n in self._sup.config.nodes if n.name == name), None)
        if config is None:
            raise HttpError(404, "no such node")
        section = page.node_section(await self._node(config), token=self.token, writable=writable)
        return self._page(section.encode())

    async def _legacy(self, request: Request, args: dict[str, list[str]], writable: bool) -> Response:
        action = args["action"][0]
        name = args.get("processname", [""])[0]
        if action not in _LEGACY_ACTIONS:
            raise HttpError(400, f"unknown action {action[:40]!r}")
        if not writable:
            raise HttpError(403, "this user may look, not act")
        if not request.site.legacy_actions:
            raise HttpError(403, "GET actions are turned off here (legacy_actions = false): use the page")
        caller = guard.classify_get(request.headers)
        if caller == guard.Caller.FOREIGN:
            raise HttpError(403, "refused: a state-changing request caused by another page", SECURITY_HEADERS)
        if caller == guard.Caller.NAVIGATION:
            return self._page(page.confirm(action, name, self.token))
        results = await self._do(action, [name] if name else [], {}, None)
        message = "; ".join(f"{n}: {t}" if n else t for n, _, t in results)
        log.info("web: %s %s by %s (%s)", action, name or "", caller.value, request.headers.get("user-agent", "?"))
        # Supervisor answers 301 to ?message=; the Location is relative here (Supervisor builds it from the
        # Host header: an open redirect, and wrong behind a proxy). The page never shows ?message=.
        location = "./?" + urllib.parse.urlencode({"message": message})
        return Response(301, b"", content_type=_HTML, headers=[("Location", location), *SECURITY_HEADERS])

    async def action(self, request: Request, query: str, writable: bool) -> Response:
        """POST action: the page's forms (token + same origin), one action on some targets."""
        if request.method != "POST":
            raise HttpError(405, "POST only", [("Allow", "POST")])
        if not writable:
            raise HttpError(403, "this user may look, not act")
        form = urllib.parse.parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        why = guard.post_allowed(request.headers, form.get("token", [""])[0], self.token)
        if why:
            raise HttpError(403, why)
        verb, _, target = form.get("do", [":"])[0].partition(":")
        names = form.get("names", []) if target == "selected" else [target] if target else []
        node_name = form.get("node", [""])[0]
        node = next((n for n in self._sup.config.nodes if n.name == node_name), None)
        if node_name and node is None:
            raise HttpError(400, "no such node")
        chosen = form.get(f"signal.{target}", form.get("signal", ["HUP"]))[0]  # the row's chooser
        results = await self._do(verb, names, {"signal": chosen}, node)
        log.info("web: %s %s from %s", verb, ", ".join(names) or "", request.headers.get("origin", "a form"))
        if "application/json" in request.headers.get("accept", ""):
            import json

            body = json.dumps([{"name": n, "ok": ok, "message": t} for n, ok, t in results]).encode()
            return Response(200, body, content_type="application/json", headers=list(SECURITY_HEADERS))
        back = form.get("back", [""])[0]
        if back:  # the process page's form: back to it, with the results
            return self._page(page.process_page(self._process_view(back), token=self.token, writable=writable,
                                                identity=self._identity(), results=results))
        view = page.View.from_query(urllib.parse.urlsplit(request.headers.get("referer", "")).query)
        return self._page(page.index(self._rows(), view, token=self.token, writable=writable,
                                     identity=self._identity(), results=results))

    async def _do(self, verb: str, names: list[str], extra: dict[str, str],
                  node: NodeConfig | None) -> list[tuple[str, bool, str]]:
        """Run one action on each name through the API (this daemon's, or a node's); (name, ok, message)."""
        call = functools.partial(self._call, node)
        single = {"start": ("supervisor.startProcess", "started"), "stop": ("supervisor.stopProcess", "stopped"),
                  "clearlog": ("supervisor.clearProcessLogs", "log cleared"),
                  "startgroup": ("supervisor.startProcessGroup", "started"),
                  "stopgroup": ("supervisor.stopProcessGroup", "stopped")}
        every = {"startall": "supervisor.startAllProcesses", "stopall": "supervisor.stopAllProcesses"}
        results: list[tuple[str, bool, str]] = []
        if verb in every or verb == "restartall":
            for method in (["supervisor.stopAllProcesses", "supervisor.startAllProcesses"] if verb == "restartall"
                           else [every[verb]]):
                ok, answer = await call(method, (True,))
                if not ok:
                    return [("", False, answer)]
                results += [(namespec(r["group"], r["name"]), r["status"] == 80, r["description"]) for r in answer]
            return results or [("", True, "nothing to do")]
        if not names:
            return [("", False, "no process selected")]
        for name in names:
            if verb in single:
                method, done = single[verb]
                args: tuple[Any, ...] = (name,) if verb == "clearlog" else (name, True)
                ok, answer = await call(method, args)
                if not ok and verb == "start" and node is None and (why := self._spawn_error(name)):
                    answer = f"{answer}: {why}"
                results.append((name, ok, done if ok and not isinstance(answer, list) else
                                _group_text(answer) if ok else answer))
            elif verb in ("restart", "restartgroup"):
                stop, start = (("supervisor.stopProcess", "supervisor.startProcess") if verb == "restart"
                               else ("supervisor.stopProcessGroup", "supervisor.startProcessGroup"))
                await call(stop, (name, True))  # NOT_RUNNING is fine: restart starts it
                ok, answer = await call(start, (name, True))
                results.append((name, ok, "restarted" if ok and not isinstance(answer, list) else
                                _group_text(answer) if ok else answer))
            elif verb in ("signal", "signalgroup"):
                method = "supervisor.signalProcess" if verb == "signal" else "supervisor.signalProcessGroup"
                ok, answer = await call(method, (name, extra["signal"]))
                results.append((name, ok, (f"signalled {extra['signal']}" if not isinstance(answer, list)
                                           else _group_text(answer)) if ok else answer))
            elif verb == "clearloggroup":  # the API has no group form of it: each member, as listed
                ok, infos = await call("supervisor.getAllProcessInfo", ())
                members = [namespec(i["group"], i["name"]) for i in infos if i["group"] == name] if ok else []
                if not members:
                    results.append((name, False, infos if not ok else "ERROR (BAD_NAME: no such group)"))
                for member in members:
                    ok, answer = await call("supervisor.clearProcessLogs", (member,))
                    results.append((member, ok, "log cleared" if ok else answer))
            else:
                raise HttpError(400, f"unknown action {verb[:40]!r}")
        return results

    def _spawn_error(self, name: str) -> str:
        """Why a local process failed to start (its spawnerr), for the message shown in place."""
        try:
            _, process = self._sup.lookup(name)
        except ProcwardError:
            return ""
        return process.spawnerr if process is not None else ""

    async def _call(self, node: NodeConfig | None, method: str, args: tuple[Any, ...]) -> tuple[bool, Any]:
        try:
            if node is None:
                return True, await self._registry.call(method, args)
            return True, await nodes.call(node, method, *args)
        except RPCError as exc:
            return False, f"ERROR ({exc.text})"
        except nodes.NodeFault as fault:
            return False, f"ERROR ({fault.text})"
        except nodes.NodeError as exc:
            return False, f"ERROR (node {node.name if node else ''}: {exc})"

    async def tail(self, request: Request, query: str, writable: bool) -> Response:
        """Supervisor's tail.html: the last ``limit`` (>= 1024) bytes of stdout, plain."""
        args = urllib.parse.parse_qs(query)
        name = args.get("processname", [""])[0]
        try:  # Supervisor's floor of 1 KiB; a ceiling of 1 MiB so a URL cannot make the daemon read a whole log
            limit = min(max(1024, int(args.get("limit", ["1024"])[0])), 1 << 20)
        except ValueError:
            limit = 1024
        path, _ = logtail.process_log(self._sup, name, "stdout")
        text, _ = page.log_text(path, limit)
        return self._page(page.log_view(f"{name} stdout", text, follow_url="", download_url="", size=0))

    async def log_page(self, request: Request, query: str, writable: bool) -> Response:
        """A log, its last 64 KiB here and the rest followed live: a process's stdout/stderr, or the main log."""
        args = urllib.parse.parse_qs(query)
        if args.get("main"):
            path: str | None = self._sup.config.supervisord.logfile
            title, source = "main log", "main=1"
            tabs: list[tuple[str, str, bool]] = []
        else:
            name = args.get("processname", [""])[0]
            channel = args.get("channel", ["stdout"])[0]
            path, _ = logtail.process_log(self._sup, name, channel)
            title = f"{name} {channel}"
            source = urllib.parse.urlencode({"processname": name, "channel": channel})
            tabs = [("stdout", page.log_link(name), channel == "stdout")]
            if logtail.process_log(self._sup, name, "stderr")[0] is not None:
                tabs.append(("stderr", page.log_link(name, "stderr"), channel == "stderr"))
            tabs += [("main log", "log.html?main=1", False), ("process page", page.process_link(name), False)]
        text, size = page.log_text(path, _LOG_VIEW_BYTES)
        if path is None:
            text = "(this process has no log file: its output is not kept)"
        return self._page(page.log_view(title, text, follow_url=f"follow?{source}", size=size,
                                        download_url=f"download?{source}", tabs=tabs))

    async def follow(self, request: Request, query: str, writable: bool) -> Response:
        """A log from a byte offset on, streamed as it grows (the log page's live part)."""
        args = urllib.parse.parse_qs(query)
        try:
            offset = int(args.get("offset", ["0"])[0])
        except ValueError:
            raise HttpError(400, "offset must be a number") from None
        if args.get("main"):
            return logtail.main_tail(self._sup, request, offset)
        return logtail.process_tail(self._sup, request, args.get("processname", [""])[0],
                                    args.get("channel", ["stdout"])[0], offset)

    async def download(self, request: Request, query: str, writable: bool) -> Response:
        """The whole current log file, as an attachment."""
        args = urllib.parse.parse_qs(query)
        if args.get("main"):
            path: str | None = self._sup.config.supervisord.logfile
            filename = "main.log"
        else:
            name = args.get("processname", [""])[0]
            channel = args.get("channel", ["stdout"])[0]
            path, _ = logtail.process_log(self._sup, name, channel)
            filename = f"{name.replace(':', '_')}-{channel}.log"
        if path is None or not os.path.isfile(path):
            raise HttpError(404, "no log file")
        # Streamed in blocks up to the size it has now: a log of gigabytes never sits in the daemon's memory.
        return Response(200, content_type="text/plain; charset=utf-8", stream=_file_blocks(path),
                        headers=[("Content-Disposition", f'attachment; filename="{filename}"'),
                                 *SECURITY_HEADERS])

    async def events(self, request: Request, query: str, writable: bool) -> Response:
        """The live stream of state changes and samples (text/event-stream); ``?only=NAME``: one process."""
        only = urllib.parse.parse_qs(query).get("only", [""])[0]
        return Response(200, content_type="text/event-stream", stream=self.live.stream(request, only),
                        headers=[("X-Accel-Buffering", "no"), *SECURITY_HEADERS])

    async def favicon(self, request: Request, query: str, writable: bool) -> Response:
        """No icon: an empty answer instead of a 404 in every browser's console."""
        return Response(204, b"", headers=list(SECURITY_HEADERS))

    async def static(self, request: Request, query: str, writable: bool) -> Response:
        """app.js and app.css, shipped inside the package (no CDN, no build step)."""
        name = urllib.parse.urlsplit(request.path).path.rsplit("/", 1)[1]
        import importlib.resources  # here: only a browser needs it, and it costs the daemon memory

        body = importlib.resources.files("procward.http.web").joinpath("static", name).read_bytes()
        return Response(200, body, content_type=_STATIC[name],
                        headers=[*SECURITY_HEADERS[:-1], ("Cache-Control", "no-cache")])


async def _file_blocks(path: str, block: int = 1 << 16) -> AsyncIterator[bytes]:
    with open(path, "rb") as handle:
        left = os.fstat(handle.fileno()).st_size
        while left > 0 and (data := handle.read(min(block, left))):
            left -= len(data)
            yield data


def _group_text(results: Any) -> str:
    """A group call's per-process results in one line."""
    if not results:
        return "nothing to do"
    return ", ".join(f"{namespec(r['group'], r['name'])} {r['description']}" for r in results)
