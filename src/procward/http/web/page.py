"""The pages, rendered on the server: the process table (complete and usable without JavaScript), the
confirmation page for a browser's legacy GET action, and the log view.

Everything interpolated is escaped; nothing from the URL is shown back as a message. Links are relative,
so the page works behind a reverse proxy on a sub-path.
"""

from __future__ import annotations

import html
import json
import os
import signal as signal_module
import time
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
    local: bool = True  # this daemon's (a node's rows link to nothing here)

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

    def grouped(self, rows: Iterable[Row]) -> list[tuple[str, list[Row]]]:
        """Rows by group in the asked order: members ordered within their group, groups by their first
        member (sorted by memory, the group of the biggest process comes first). A program that is its
        own group is a group of one without a header ('' as its name)."""
        out: list[tuple[str, list[Row]]] = []
        where: dict[str, int] = {}
        for row in self.order(rows):
            group = row.info["group"]
            if group == row.info["name"]:
                out.append(("", [row]))
                continue
            if group not in where:
                where[group] = len(out)
                out.append((group, []))
            out[where[group]][1].append(row)
        return out

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


SIGNALS = ("HUP", "USR1", "USR2", "INT", "TERM", "QUIT", "KILL")
COLUMNS = 12  # of the process table, for a group header's cell


def _signal_select(name: str, label: str) -> str:
    """The signal chooser of a row or group (``name`` and ``label`` escaped already: a row has them)."""
    return f'<select name="signal.{name}" aria-label="{label}">{_SIGNAL_OPTIONS}</select>'


def _primary(state: str) -> tuple[str, str]:
    """The one action a row shows: Stop while it runs or tries to, Start otherwise."""
    return ("stop", "Stop") if state in ("RUNNING", "STARTING", "BACKOFF") else ("start", "Start")


def log_link(spec: str, channel: str = "stdout") -> str:
    return f"log.html?processname={_q(spec)}&channel={channel}"


def process_link(spec: str) -> str:
    return f"process?name={_q(spec)}"


def _q(spec: str) -> str:
    # quote, not urlencode: a thousand rows each link three times (urlencode was a third of a render)
    return urllib.parse.quote(spec, safe=":")


def has_stderr(info: ProcessInfo) -> bool:
    return bool(info.get("stderr_logfile"))


def error_channel(info: ProcessInfo) -> str:
    """Where a failed process's error most likely is: stderr when it has a log with something in it."""
    path = info.get("stderr_logfile") or ""
    try:
        return "stderr" if path and os.path.getsize(path) > 0 else "stdout"
    except OSError:
        return "stdout"


_SIGNAL_OPTIONS = "".join(f"<option>{s}</option>" for s in SIGNALS)


def actions(spec: str, state: str, *, stderr: bool, local: bool = True) -> str:
    """A process's actions: the primary one, and a menu (a <details>, so it works without JavaScript)."""
    verb, label = _primary(state)
    e = _e(spec)
    links = ""
    if local:
        q = _q(spec)
        links = (f'<a href="log.html?processname={q}&amp;channel=stdout">stdout</a>'
                 + (f'<a href="log.html?processname={q}&amp;channel=stderr">stderr</a>' if stderr else "")
                 + f'<a href="process?name={q}">process page</a>')
    return (f'<button type="submit" name="do" value="{verb}:{e}" class="{verb} primary">{label}</button>'
            f'<details class="menu"><summary aria-label="more actions for {e}" title="more actions">&#8943;</summary>'
            f'<div class="menu-items"><button type="submit" name="do" value="restart:{e}" class="restart">Restart'
            f'</button><span class="signal">{_signal_select(e, f"signal to send to {e}")}'
            f'<button type="submit" name="do" value="signal:{e}" class="signal">Send signal</button></span>'
            f'<button type="submit" name="do" value="clearlog:{e}" class="clearlog">Clear log</button>'
            f'{links}</div></details>')


def _row(row: Row, writable: bool) -> str:
    info = row.info
    spec, state = row.spec, info["statename"]
    e = _e(spec)
    stderr = has_stderr(info)
    where = ""
    if state in ("FATAL", "BACKOFF") and row.local:
        channel = error_channel(info)
        where = f' <a class="errlink" href="{_e(log_link(spec, channel))}">see {channel}</a>'
    name = f'<a href="process?name={_q(spec)}">{e}</a>' if row.local else e
    check = (f'<input type="checkbox" name="names" value="{e}" aria-label="select {e}">' if writable else "")
    pid = info["pid"]
    return (f'<tr data-name="{e}" data-group="{_e(info["group"])}" data-state="{state}" '
            f'data-start="{info["start"]}" data-now="{info["now"]}" data-pid="{pid}" '
            f'data-exit="{exit_code(info)}" data-cpu="{info.get("cpu_percent", 0.0) if pid else 0}" '
            f'data-rss="{info.get("rss_kb", 0) if pid else 0}" data-stderr="{"1" if stderr else ""}">'
            f'<td class="select">{check}</td><th scope="row" class="name">{name}</th>'
            f'<td class="state"><span class="badge {_STATE_CLASS.get(state, "off")}">{state}</span></td>'
            f'<td class="desc"><span class="text">{_e(info["description"])}</span>{where}</td>'
            f'<td class="restarts">{"&ndash;" if row.restarts is None else row.restarts}</td>'
            f'<td class="exit">{_e(exit_text(info))}</td>'
            f'<td class="health">{_e(info.get("health", ""))}{" ready" if info.get("ready") else ""}</td>'
            f'<td class="cpu">{_cpu(info)}</td><td class="mem">{_memory(info)}</td>'
            f'<td class="spark" aria-hidden="true"></td><td class="output">{_e(row.output)}</td>'
            f'<td class="actions">{actions(spec, state, stderr=stderr, local=row.local) if writable else ""}</td></tr>')


def _counts(rows: Sequence[Row]) -> str:
    """'3 running, 1 fatal' for a group's header (text, not colour alone)."""
    per: dict[str, int] = {}
    for row in rows:
        per[row.info["statename"]] = per.get(row.info["statename"], 0) + 1
    return ", ".join(f"{n} {state.lower()}" for state, n in sorted(per.items(), key=lambda i: STATES.index(i[0])
                                                                   if i[0] in STATES else 99))


def _group_head(group: str, members: Sequence[Row], writable: bool) -> str:
    tools = ""
    if writable:
        tools = (f'<span class="gactions"><button type="submit" name="do" value="startgroup:{_e(group)}">Start group'
                 f'</button><button type="submit" name="do" value="stopgroup:{_e(group)}" '
                 f'data-confirm="Stop group {_e(group)}?">Stop group</button>'
                 f'<details class="menu"><summary aria-label="more actions for group {_e(group)}" '
                 f'title="more actions">&#8943;</summary><div class="menu-items">'
                 f'<button type="submit" name="do" value="restartgroup:{_e(group)}" '
                 f'data-confirm="Restart group {_e(group)}?">Restart group</button>'
                 f'<span class="signal">{_signal_select(_e(group), f"signal to send to group {_e(group)}")}'
                 f'<button type="submit" name="do" value="signalgroup:{_e(group)}">Signal group</button></span>'
                 f'<button type="submit" name="do" value="clearloggroup:{_e(group)}">Clear logs</button>'
                 f'</div></details></span>')
    return (f'<tr class="group-head"><th colspan="{COLUMNS}" scope="rowgroup">'
            f'<button type="button" class="fold" aria-expanded="true" aria-label="fold group {_e(group)}" '
            f'hidden>&#9662;</button> <span class="gname">{_e(group)}</span> '
            f'<span class="counts">{len(members)} process{"es" if len(members) != 1 else ""}: '
            f'{_counts(members)}</span>{tools}</th></tr>')


def _cpu(info: ProcessInfo) -> str:
    return f'{info["cpu_percent"]:.1f} %' if info.get("pid") and "cpu_percent" in info else ""


def _memory(info: ProcessInfo) -> str:
    kb = info.get("rss_kb", 0) if info.get("pid") else 0
    return "" if not kb else f"{kb / 1024:.1f} MB" if kb < 1024 * 1024 else f"{kb / 1024 / 1024:.2f} GB"


def _sort_link(view: View, key: str, label: str, css: str) -> str:
    flip = "-" if view.sort == key and not view.descending else ""
    query = urllib.parse.urlencode({k: v for k, v in (("q", view.text), ("state", view.state),
                                                       ("sort", flip + key)) if v})
    current = ""
    if view.sort == key:
        current = f' aria-sort="{"descending" if view.descending else "ascending"}"'
    return f'<th scope="col" class="{css}"{current}><a href="./?{_e(query)}" data-sort="{key}">{label}</a></th>'


def summary(rows: Sequence[Row]) -> str:
    """The daemon at a glance: counts by state as a bar (inline SVG: no inline style under the CSP) with
    the same counts as text."""
    per = {state: 0 for state in STATES}
    for row in rows:
        per[row.info["statename"]] = per.get(row.info["statename"], 0) + 1
    total = max(1, len(rows))
    x, bars = 0.0, []
    for state, count in per.items():
        if count:
            width = 1000 * count / total
            bars.append(f'<rect class="{_STATE_CLASS.get(state, "off")}" x="{x:.1f}" width="{width:.1f}" '
                        f'height="12"><title>{count} {state.lower()}</title></rect>')
            x += width
    text = ", ".join(f'<span class="{_STATE_CLASS.get(s, "off")}">{n} {s.lower()}</span>'
                     for s, n in per.items() if n) or "no processes"
    return (f'<div class="summary"><svg viewBox="0 0 1000 12" preserveAspectRatio="none" role="img" '
            f'aria-label="processes by state">{"".join(bars)}</svg><p id="summary-text">{text}</p></div>')


def index(rows: Sequence[Row], view: View, *, token: str, writable: bool, identity: str,
          results: Sequence[tuple[str, bool, str]] = (), nodes: Sequence[Node] = ()) -> bytes:
    """The process table: every process in ``rows`` by group (filtered and sorted by ``view``), with actions."""
    shown = [r for r in rows if view.shows(r)]
    choices = [("", "any state"), ("DOWN", "not running"), *((s, s.lower()) for s in STATES)]
    options = "".join(f'<option value="{value}"{" selected" if view.state == value else ""}>{label}</option>'
                      for value, label in choices)
    banner = ""
    if results:
        items = "".join(f'<li class="{"ok" if ok else "bad"}">{_e(name)}: {_e(text)}</li>'
                        for name, ok, text in results)
        banner = f'<ul class="results" role="status">{items}</ul>'
    toolbar = ""
    if writable:
        toolbar = ('<div class="toolbar" role="toolbar" aria-label="actions on the selected processes">'
                   '<span class="label">Selected:</span>'
                   '<button type="submit" name="do" value="start:selected">Start</button>'
                   '<button type="submit" name="do" value="stop:selected" data-confirm="Stop the selected '
                   'processes?">Stop</button>'
                   '<button type="submit" name="do" value="restart:selected" data-confirm="Restart the '
                   'selected processes?">Restart</button>'
                   '<span class="label">All:</span>'
                   '<button type="submit" name="do" value="startall:">Start all</button>'
                   '<button type="submit" name="do" value="stopall:" data-confirm="Stop every process?">'
                   'Stop all</button>'
                   '<button type="submit" name="do" value="restartall:" data-confirm="Restart every process?">'
                   'Restart all</button></div>')
    bodies = []
    for group, members in view.grouped(shown):
        head = _group_head(group, members, writable) if group else ""
        cls = "group" if group else "single"
        bodies.append(f'<tbody class="{cls}" data-group="{_e(group or members[0].info["group"])}">{head}'
                      + "".join(_row(r, writable) for r in members) + "</tbody>")
    heads = (_sort_link(view, "name", "Name", "name") + _sort_link(view, "state", "State", "state")
             + _sort_link(view, "description", "Description", "desc")
             + _sort_link(view, "restarts", "Restarts", "restarts") + _sort_link(view, "exit", "Exit", "exit")
             + _sort_link(view, "health", "Health", "health") + _sort_link(view, "cpu", "CPU", "cpu")
             + _sort_link(view, "memory", "Memory", "mem")
             + '<th scope="col" class="spark">Trend</th><th scope="col" class="output">Last output</th>'
             + '<th scope="col" class="actions">Actions</th>')
    select_all = ('<input type="checkbox" id="select-all" aria-label="select all shown">' if writable else "")
    page = (
        f'{_head(f"procward: {identity}")}<body data-token="{_e(token)}">'
        f'<header><h1>procward</h1><p class="who">{_e(identity)} · procward {__version__} · '
        f'<span id="count">{len(shown)} of {len(rows)}</span> processes · '
        f'<a href="log.html?main=1">main log</a></p>'
        f'<p id="live" class="live" role="status">live updates off (no JavaScript)</p></header>'
        f'<main>{summary(rows)}'
        f'<form class="filter" method="get" action="./" role="search">'
        f'<label>Filter <input type="search" name="q" value="{_e(view.text)}" id="filter" '
        f'placeholder="name or group:name" accesskey="f"></label>'
        f'<label>State <select name="state" id="state-filter">{options}</select></label>'
        f'<input type="hidden" name="sort" value="{"-" if view.descending else ""}{view.sort}">'
        f'<button type="submit">Apply</button></form>'
        f'<div id="announce" class="sr-only" aria-live="polite"></div>{banner}'
        f'<form method="post" action="action" id="actions">'
        f'<input type="hidden" name="token" value="{_e(token)}">{toolbar}'
        f'<table id="processes"><caption class="sr-only">Processes by group</caption><thead><tr>'
        f'<th scope="col" class="select">{select_all}</th>{heads}</tr></thead>{"".join(bodies)}</table></form>'
        + "".join(node_section(n, token=token, writable=writable) for n in nodes)
        + '</main><footer><p>Keys: <kbd>/</kbd> filter · <kbd>j</kbd>/<kbd>k</kbd> move · <kbd>x</kbd> select · '
        '<kbd>s</kbd> start · <kbd>t</kbd> stop · <kbd>r</kbd> restart · <kbd>l</kbd> logs · '
        '<kbd>Enter</kbd> process page</p></footer></body></html>')
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
    heads = "".join(f'<th scope="col" class="{css}">{label}</th>' for css, label in (
        ("select", ""), ("name", "Name"), ("state", "State"), ("desc", "Description"), ("restarts", "Restarts"),
        ("exit", "Exit"), ("health", "Health"), ("cpu", "CPU"), ("mem", "Memory"), ("spark", "Trend"),
        ("output", "Last output"), ("actions", "Actions")))
    return (f'{head}<form method="post" action="action" class="node-actions">'
            f'<input type="hidden" name="token" value="{_e(token)}"><input type="hidden" name="node" '
            f'value="{_e(node.name)}"><table class="node-table"><caption class="sr-only">Processes of '
            f'{_e(node.name)}</caption><thead><tr>{heads}</tr></thead><tbody>{body}</tbody>'
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


def log_view(title: str, text: str, *, follow_url: str, download_url: str, size: int,
             tabs: Sequence[tuple[str, str, bool]] = ()) -> bytes:
    """A log: its last part rendered here, then followed live by the page's script from ``size``; ``tabs``
    (label, link, current) are the process's other logs and the main log."""
    nav = ""
    if tabs:
        nav = ('<nav class="tabs" aria-label="logs">' + "".join(
            f'<a href="{_e(link)}"{" aria-current=page" if current else ""}>{_e(label)}</a>'
            for label, link, current in tabs) + "</nav>")
    return (f'{_head(f"procward: {title}")}<body class="logpage">'
            f'<header><h1>{_e(title)}</h1><p><a href="./">processes</a> · '
            f'<a href="{_e(download_url)}" download>download the whole file</a></p>{nav}'
            f'<div class="logtools"><label>Search <input type="search" id="log-search" accesskey="f"></label>'
            f'<button type="button" id="pause" aria-pressed="false">Pause</button>'
            f'<span id="live" class="live" role="status">not following (no JavaScript)</span></div></header>'
            f'<main><pre id="log" data-follow="{_e(follow_url)}" data-offset="{size}" tabindex="0" '
            f'aria-label="{_e(title)}">{_e(text)}</pre></main></body></html>').encode()


@dataclass(frozen=True, slots=True)
class ProcessView:
    """What the process page shows of one process."""

    row: Row
    states: Sequence[tuple[float, str]]  # (Unix time, state), oldest first
    exits: Sequence[tuple[float, int, int, float]]  # (Unix time, code, signal, seconds it ran)
    probes: Sequence[tuple[float, str]]  # (Unix time, '' or why it failed)
    samples: Sequence[tuple[float, float, int]]  # (Unix time, CPU %, resident KiB)
    config: Sequence[str]  # "option = value" lines, secrets hidden


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _exit_words(code: int, sig: int) -> str:
    if sig:
        try:
            return signal_module.Signals(sig).name
        except ValueError:
            return f"signal {sig}"
    return f"exit {code}"


def process_page(view: ProcessView, *, token: str, writable: bool, identity: str,
                 results: Sequence[tuple[str, bool, str]] = ()) -> bytes:
    """One process: its state and actions, charts, state changes, exits, health checks, configuration."""
    row, info = view.row, view.row.info
    spec, state = row.spec, info["statename"]
    banner = ""
    if results:
        banner = '<ul class="results" role="status">' + "".join(
            f'<li class="{"ok" if ok else "bad"}">{_e(name)}: {_e(text)}</li>' for name, ok, text in results) + "</ul>"
    tools = ""
    if writable:
        tools = (f'<form method="post" action="action" class="process-actions">'
                 f'<input type="hidden" name="token" value="{_e(token)}">'
                 f'<input type="hidden" name="back" value="{_e(spec)}">'
                 f'{actions(spec, state, stderr=has_stderr(info))}</form>')
    logs = f'<a href="{_e(log_link(spec))}">stdout</a>'
    if has_stderr(info):
        logs += f' · <a href="{_e(log_link(spec, "stderr"))}">stderr</a>'
    def table(caption: str, heads: Sequence[str], body: Iterable[Sequence[str]], empty: str) -> str:
        rows_html = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>" for cells in body)
        if not rows_html:
            return f"<p>{_e(empty)}</p>"
        head = "".join(f'<th scope="col">{_e(h)}</th>' for h in heads)
        return (f"<table><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead>"
                f"<tbody>{rows_html}</tbody></table>")
    states = table("Last state changes, newest first", ("time", "state"),
                   ((_when(t), s) for t, s in reversed(view.states)), "No state change yet.")
    exits = table("Last exits, newest first", ("time", "how it ended", "it ran"),
                  ((_when(t), _exit_words(c, sg), _duration(ran)) for t, c, sg, ran in reversed(view.exits)),
                  "It has not exited yet.")
    probes = table("Last health checks, newest first", ("time", "result"),
                   ((_when(t), why or "passed") for t, why in reversed(view.probes)),
                   "No health check." if not info.get("health") else "No probe yet.")
    # whole seconds truncated, as getProcessInfo's "start" (the page marks a start between two samples)
    chart_data = json.dumps({"t": [int(t) for t, _, _ in view.samples], "cpu": [c for _, c, _ in view.samples],
                             "rss": [r for _, _, r in view.samples],
                             "starts": [int(t) for t, s in view.states if s == "STARTING"]},
                            separators=(",", ":")).replace("</", "<\\/")
    latest = (f"CPU {_cpu(info) or '0 %'}, memory {_memory(info) or '0 MB'}" if info.get("pid") else "not running")
    sockets = ""
    if info.get("sockets"):
        sockets = ("<h2>Held sockets</h2><ul>" + "".join(
            f"<li>{_e(s['name'])}={_e(s['url'])} (fd {s['fd']})"
            f"{'' if s['listening'] else ' not held: ' + _e(s['error'])}</li>" for s in info["sockets"]) + "</ul>")
    page = (
        f'{_head(f"procward: {spec}")}<body class="processpage" data-token="{_e(token)}" '
        f'data-name="{_e(spec)}">'
        f'<header><h1>{_e(spec)}</h1><p class="who"><a href="./">processes</a> · {_e(identity)} · logs: {logs}</p>'
        f'<p id="live" class="live" role="status">live updates off (no JavaScript)</p></header><main>'
        f'<div id="announce" class="sr-only" aria-live="polite"></div>{banner}'
        f'<section class="now" aria-label="state"><p><span class="badge {_STATE_CLASS.get(state, "off")}" '
        f'id="state">{state}</span> <span id="desc">{_e(info["description"])}</span></p>'
        f'<p>Health: <span id="health">{_e(info.get("health") or "no check")}</span> · '
        f'Restarts: {"&ndash;" if row.restarts is None else row.restarts} · Last exit: {_e(exit_text(info))} · '
        f'<span id="usage">{_e(latest)}</span></p>{tools}</section>'
        f'<section aria-labelledby="charts-h"><h2 id="charts-h">CPU and memory</h2>'
        f'<p class="hint">The last {len(view.samples)} samples (one every few seconds while a page is open); '
        f'dashed lines are starts.</p>'
        f'<div class="chart" id="cpu-chart" role="img" aria-label="CPU % over time"></div>'
        f'<div class="chart" id="mem-chart" role="img" aria-label="resident memory over time"></div>'
        f'<script type="application/json" id="chart-data">{chart_data}</script></section>'
        f'<section aria-labelledby="hist-h"><h2 id="hist-h">History</h2>{states}{exits}</section>'
        f'<section aria-labelledby="health-h"><h2 id="health-h">Health checks</h2>{probes}</section>'
        f'{sockets}'
        f'<section aria-labelledby="config-h"><h2 id="config-h">Configuration</h2>'
        f'<p class="hint">As procward runs it (procward check), environment values hidden.</p>'
        f'<pre class="config" tabindex="0">{_e(chr(10).join(view.config))}</pre></section>'
        f'</main></body></html>')
    return page.encode()


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
