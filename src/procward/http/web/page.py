"""The pages, rendered on the server: the process table (complete and usable without JavaScript), the
confirmation page for a browser's legacy GET action, and the log view.

Everything interpolated is escaped; nothing from the URL is shown back as a message. Links are relative,
so the page works behind a reverse proxy on a sub-path.
"""

from __future__ import annotations

import html
import os
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from procward import __version__
from procward.protocol import ProcessInfo, exit_code, exit_text, namespec

_STATE_CLASS = {"RUNNING": "ok", "STARTING": "busy", "STOPPING": "busy", "BACKOFF": "bad", "FATAL": "bad",
                "EXITED": "off", "STOPPED": "off", "UNKNOWN": "bad"}
STATES = ("RUNNING", "STARTING", "BACKOFF", "STOPPING", "EXITED", "FATAL", "STOPPED", "UNKNOWN")
# Declared inline: without an icon, browsers ask for /favicon.ico at the host's root, outside the page's
# prefix behind a reverse proxy on a sub-path. A green dot in a ring (a supervised process, up).
ICON = ("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Ccircle cx='8' "
        "cy='8' r='6.5' fill='none' stroke='%23555' stroke-width='2'/%3E%3Ccircle cx='8' cy='8' r='3.5' "
        "fill='%232e9e4f'/%3E%3C/svg%3E")
SORT_KEYS = ("name", "group", "state", "description", "restarts", "exit", "health", "cpu", "memory")


@dataclass(frozen=True, slots=True)
class Row:
    """One process as the table shows it."""

    info: ProcessInfo
    restarts: int | None  # None where the daemon does not say (a supervisord node)
    output: str = ""  # the latest line the process wrote

    @property
    def spec(self) -> str:
        return namespec(self.info["group"], self.info["name"])


@dataclass(frozen=True, slots=True)
class View:
    """What the visitor asked to see: a filter and a sort, kept in the URL."""

    text: str = ""
    state: str = ""
    sort: str = "name"
    descending: bool = False

    @classmethod
    def from_query(cls, query: str) -> View:
        """Read ?q=&state=&sort= (unknown values fall back to the defaults)."""
        args = urllib.parse.parse_qs(query)
        sort = args.get("sort", ["name"])[0]
        descending = sort.startswith("-")
        sort = sort.lstrip("-")
        state = args.get("state", [""])[0].upper()
        return cls(text=args.get("q", [""])[0][:200], state=state if state in (*STATES, "DOWN") else "",
                   sort=sort if sort in SORT_KEYS else "name", descending=descending)

    def shows(self, row: Row) -> bool:
        """Whether the filter keeps ``row``."""
        if self.text and self.text.lower() not in row.spec.lower():
            return False
        if self.state == "DOWN":
            return row.info["statename"] != "RUNNING"
        return not self.state or row.info["statename"] == self.state

    def order(self, rows: Iterable[Row]) -> list[Row]:
        """Rows in the asked order."""
        def key(row: Row) -> tuple[object, str]:
            info = row.info
            value: object = {
                "name": info["name"], "group": info["group"], "state": info["statename"],
                "description": info["description"], "restarts": row.restarts or 0,
                "exit": exit_code(info),
                "health": info.get("health", ""), "cpu": info.get("cpu_percent", 0.0),
                "memory": info.get("rss_kb", 0),
            }[self.sort]
            return value, row.spec
        return sorted(rows, key=key, reverse=self.descending)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _head(title: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{_e(title)}</title><link rel="icon" href="{ICON}">'
            f'<link rel="stylesheet" href="static/app.css">'
            f'<script src="static/app.js" defer></script></head>')


def _actions(row: Row, writable: bool) -> str:
    if not writable:
        return ""
    state = row.info["statename"]
    running = state in ("RUNNING", "STARTING", "BACKOFF")
    buttons = [("stop", "Stop"), ("restart", "Restart")] if running else [("start", "Start")]
    if state == "RUNNING":
        buttons.append(("signal", "Signal"))
    buttons.append(("clearlog", "Clear log"))
    return "".join(f'<button type="submit" name="do" value="{verb}:{_e(row.spec)}" class="{verb}">{label}</button>'
                   for verb, label in buttons)


def _row(row: Row, writable: bool) -> str:
    info = row.info
    spec, state = row.spec, info["statename"]
    health = info.get("health", "")
    ready = "ready" if info.get("ready") else ""
    log = f'log.html?processname={urllib.parse.quote(spec)}'
    return (f'<tr data-name="{_e(spec)}" data-group="{_e(info["group"])}" data-state="{state}" '
            f'data-start="{info["start"]}" data-now="{info["now"]}" data-pid="{info["pid"]}" '
            f'data-exit="{exit_code(info)}" '
            f'data-cpu="{info.get("cpu_percent", 0.0) if info["pid"] else 0}" '
            f'data-rss="{info.get("rss_kb", 0) if info["pid"] else 0}">'
            f'<td><input type="checkbox" name="names" value="{_e(spec)}" aria-label="select {_e(spec)}"></td>'
            f'<th scope="row" class="name"><a href="{_e(log)}">{_e(info["name"])}</a></th>'
            f'<td class="group">{_e(info["group"])}</td>'
            f'<td class="state"><span class="badge {_STATE_CLASS.get(state, "off")}">{state}</span></td>'
            f'<td class="desc">{_e(info["description"])}</td>'
            f'<td class="restarts">{"&ndash;" if row.restarts is None else row.restarts}</td>'
            f'<td class="exit">{_e(exit_text(info))}</td>'
            f'<td class="health">{_e(health)} {ready}</td>'
            f'<td class="cpu">{_cpu(info)}</td><td class="mem">{_memory(info)}</td>'
            f'<td class="output">{_e(row.output)}</td>'
            f'<td class="actions">{_actions(row, writable)}</td></tr>')


def _cpu(info: ProcessInfo) -> str:
    return f'{info["cpu_percent"]:.1f} %' if info.get("pid") and "cpu_percent" in info else ""


def _memory(info: ProcessInfo) -> str:
    kb = info.get("rss_kb", 0) if info.get("pid") else 0
    return "" if not kb else f"{kb / 1024:.1f} MB" if kb < 1024 * 1024 else f"{kb / 1024 / 1024:.2f} GB"


def _sort_link(view: View, key: str, label: str) -> str:
    flip = "-" if view.sort == key and not view.descending else ""
    query = urllib.parse.urlencode({k: v for k, v in (("q", view.text), ("state", view.state),
                                                       ("sort", flip + key)) if v})
    current = ""
    if view.sort == key:
        current = f' aria-sort="{"descending" if view.descending else "ascending"}"'
    return f'<th scope="col"{current}><a href="./?{_e(query)}" data-sort="{key}">{label}</a></th>'


def index(rows: Sequence[Row], view: View, *, token: str, writable: bool, identity: str,
          results: Sequence[tuple[str, bool, str]] = (), nodes: Sequence[Node] = ()) -> bytes:
    """The process table: every process in ``rows`` (filtered and sorted by ``view``), with actions."""
    shown = view.order(r for r in rows if view.shows(r))
    choices = [("", "any state"), ("DOWN", "not running"), *((s, s.lower()) for s in STATES)]
    options = "".join(f'<option value="{value}"{" selected" if view.state == value else ""}>{label}</option>'
                      for value, label in choices)
    banner = ""
    if results:
        items = "".join(f'<li class="{"ok" if ok else "bad"}">{_e(name)}: {_e(text)}</li>'
                        for name, ok, text in results)
        banner = f'<ul class="results">{items}</ul>'
    toolbar = ""
    if writable:
        toolbar = ('<div class="toolbar" role="toolbar" aria-label="actions on the selected processes">'
                   '<button type="submit" name="do" value="start:selected">Start selected</button>'
                   '<button type="submit" name="do" value="stop:selected" data-confirm="Stop the selected '
                   'processes?">Stop selected</button>'
                   '<button type="submit" name="do" value="restart:selected" data-confirm="Restart the '
                   'selected processes?">Restart selected</button>'
                   '<span class="sep"></span>'
                   '<button type="submit" name="do" value="startall:">Start all</button>'
                   '<button type="submit" name="do" value="stopall:" data-confirm="Stop every process?">'
                   'Stop all</button>'
                   '<button type="submit" name="do" value="restartall:" data-confirm="Restart every process?">'
                   'Restart all</button></div>')
    groups = sorted({r.info["group"] for r in rows if r.info["group"] != r.info["name"]})
    group_forms = ""
    if writable and groups:
        group_forms = '<div class="groups" aria-label="groups">' + "".join(
            f'<span class="group">{_e(g)} '
            f'<button type="submit" name="do" value="startgroup:{_e(g)}">start</button>'
            f'<button type="submit" name="do" value="stopgroup:{_e(g)}" data-confirm="Stop group {_e(g)}?">'
            f'stop</button>'
            f'<button type="submit" name="do" value="restartgroup:{_e(g)}" '
            f'data-confirm="Restart group {_e(g)}?">restart</button>'
            f'<button type="submit" name="do" value="signalgroup:{_e(g)}">signal</button>'
            f'<button type="submit" name="do" value="clearloggroup:{_e(g)}">clear logs</button></span>'
            for g in groups) + "</div>"
    body = "".join(_row(r, writable) for r in shown)
    heads = "".join(_sort_link(view, key, label) for key, label in (
        ("name", "Name"), ("group", "Group"), ("state", "State"), ("description", "Description"),
        ("restarts", "Restarts"), ("exit", "Exit"), ("health", "Health"), ("cpu", "CPU"), ("memory", "Memory")))
    heads += '<th scope="col">Last output</th>'
    page = (
        f'{_head(f"procward: {identity}")}<body data-token="{_e(token)}">'
        f'<header><h1>procward</h1><p class="who">{_e(identity)} · procward {__version__} · '
        f'<span id="count">{len(shown)} of {len(rows)}</span> processes · '
        f'<a href="log.html?main=1">main log</a></p>'
        f'<p id="live" class="live" role="status">live updates off (no JavaScript)</p></header>'
        f'<form class="filter" method="get" action="./" role="search">'
        f'<label>Filter <input type="search" name="q" value="{_e(view.text)}" id="filter" '
        f'placeholder="name or group:name" accesskey="f"></label>'
        f'<label>State <select name="state" id="state-filter">{options}</select></label>'
        f'<input type="hidden" name="sort" value="{"-" if view.descending else ""}{view.sort}">'
        f'<button type="submit">Apply</button></form>'
        f'<div id="announce" class="sr-only" aria-live="polite"></div>{banner}'
        f'<form method="post" action="action" id="actions">'
        f'<input type="hidden" name="token" value="{_e(token)}">{toolbar}{group_forms}'
        f'<table id="processes"><caption class="sr-only">Processes</caption><thead><tr>'
        f'<th scope="col"><input type="checkbox" id="select-all" aria-label="select all shown"></th>{heads}'
        f'<th scope="col">Actions</th></tr></thead><tbody>{body}</tbody></table>'
        f'<p class="signal-choice">Signal for “Signal”: <select name="signal">'
        + "".join(f'<option>{s}</option>' for s in ("HUP", "USR1", "USR2", "INT", "TERM", "KILL"))
        + '</select></p></form>'
        + "".join(node_section(n, token=token, writable=writable) for n in nodes)
        + '<footer><p>Keys: <kbd>/</kbd> filter · <kbd>j</kbd>/<kbd>k</kbd> move · <kbd>x</kbd> select · '
        '<kbd>s</kbd> start · <kbd>t</kbd> stop · <kbd>r</kbd> restart · <kbd>l</kbd> logs</p></footer>'
        '</body></html>')
    return page.encode()


@dataclass(frozen=True, slots=True)
class Node:
    """Another daemon's section of the page: its rows, or why it did not answer."""

    name: str
    where: str
    rows: Sequence[Row] = ()
    error: str = ""


def node_section(node: Node, *, token: str, writable: bool) -> str:
    """One other daemon: a table of its processes with their actions, or a line saying it is down."""
    head = (f'<section class="node" data-node="{_e(node.name)}" aria-labelledby="node-{_e(node.name)}">'
            f'<h2 id="node-{_e(node.name)}">{_e(node.name)} <small>{_e(node.where)}</small></h2>')
    if node.error:
        return f'{head}<p class="down" role="status">not answering: {_e(node.error)}</p></section>'
    body = "".join(_row(r, writable) for r in sorted(node.rows, key=lambda r: r.spec))
    return (f'{head}<form method="post" action="action" class="node-actions">'
            f'<input type="hidden" name="token" value="{_e(token)}"><input type="hidden" name="node" '
            f'value="{_e(node.name)}"><table class="node-table"><thead><tr><th scope="col"></th>'
            f'<th scope="col">Name</th><th scope="col">Group</th><th scope="col">State</th>'
            f'<th scope="col">Description</th><th scope="col">Restarts</th><th scope="col">Exit</th>'
            f'<th scope="col">Health</th><th scope="col">CPU</th><th scope="col">Memory</th>'
            f'<th scope="col">Last output</th><th scope="col">Actions</th></tr>'
            f'</thead><tbody>{body}</tbody>'
            f'</table></form></section>')


def confirm(action: str, name: str, token: str) -> bytes:
    """A legacy GET action that a browser followed: one button that POSTs it with the token."""
    what = f"{action} {name}" if name else action
    verb, target = {"stopall": ("stopall", ""), "restartall": ("restartall", "")}.get(action, (action, name))
    return (f'{_head("procward: confirm")}<body><main><h1>Confirm</h1>'
            f'<p>A link asked procward to <strong>{_e(what)}</strong>. Do it?</p>'
            f'<form method="post" action="action"><input type="hidden" name="token" value="{_e(token)}">'
            f'<button type="submit" name="do" value="{_e(verb)}:{_e(target)}">Yes, {_e(what)}</button> '
            f'<a href="./">No, back to the processes</a></form></main></body></html>').encode()


def log_view(title: str, text: str, *, follow_url: str, download_url: str, size: int) -> bytes:
    """A log: its last part rendered here, then followed live by the page's script from ``size``."""
    return (f'{_head(f"procward: {title}")}<body class="logpage">'
            f'<header><h1>{_e(title)}</h1><p><a href="./">processes</a> · '
            f'<a href="{_e(download_url)}" download>download the whole file</a></p>'
            f'<div class="logtools"><label>Search <input type="search" id="log-search" accesskey="f"></label>'
            f'<button type="button" id="pause" aria-pressed="false">Pause</button>'
            f'<span id="live" class="live" role="status">not following (no JavaScript)</span></div></header>'
            f'<pre id="log" data-follow="{_e(follow_url)}" data-offset="{size}" tabindex="0">{_e(text)}</pre>'
            f'</body></html>').encode()


def log_text(path: str | None, limit: int) -> tuple[str, int]:
    """The last ``limit`` bytes of a log file (from a line start when it can) and the file's size."""
    if path is None or not os.path.isfile(path):
        return "", 0
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        start = max(0, size - limit)
        handle.seek(start)
        data = handle.read(size - start)
    if start and b"\n" in data:
        data = data[data.index(b"\n") + 1:]
    return data.decode("utf-8", "replace"), size
