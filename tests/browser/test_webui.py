"""The web UI in a real headless Chromium against the real daemon and real processes."""

from __future__ import annotations

import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from support import Daemon, free_port, wait_until

TALKER = Path(__file__).resolve().parents[1] / "programs" / "talker.py"
PROGRAMS = f"""
    [program:talk]
    command={sys.executable} {TALKER}
    startsecs=0
    [program:idle]
    command=sleep 300
    autostart=false
    startsecs=0
    [group:workers]
    programs=w
    [program:w]
    command=sleep 300
    numprocs=2
    process_name=w%(process_num)d
    startsecs=0
    """


def rows(page: Any) -> dict[str, str]:
    """Process name -> state as the page shows them."""
    return page.eval_on_selector_all(
        "#processes tr[data-name]", "rs => Object.fromEntries(rs.map(r => [r.dataset.name, "
                               "r.querySelector('.state').textContent]))")


def wait_row(page: Any, name: str, state: str) -> None:
    page.wait_for_function(
        "([n, s]) => [...document.querySelectorAll('#processes tr[data-name]')].some("
        "r => r.dataset.name === n && r.querySelector('.state').textContent === s)", arg=[name, state])


LIVE = "() => document.getElementById('live').textContent === 'live'"


def live(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_function(LIVE)


def test_table_matches_getallprocessinfo(web_daemon, page) -> None:
    """Every process of getAllProcessInfo is a row with its state, and the page loads only local files."""
    d = web_daemon(PROGRAMS)
    d.wait_state("workers:w1", "RUNNING")
    live(page, d.url)
    infos = d.rpc().supervisor.getAllProcessInfo()
    expected = {(i["name"] if i["group"] == i["name"] else f"{i['group']}:{i['name']}"): i["statename"]
                for i in infos}
    assert rows(page) == expected
    resources = page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
    assert resources, "the page should load its script and style"
    assert all(url.startswith(d.url) for url in resources), resources
    assert page.screenshot().startswith(b"\x89PNG")  # docs/webui.png comes from test_dashboard.py


def test_clicks_change_the_real_processes(web_daemon, page) -> None:
    """Start, stop and restart buttons act on the real process; the row follows without a reload."""
    d = web_daemon(PROGRAMS)
    live(page, d.url)
    page.click("tr[data-name=idle] button.start")
    wait_row(page, "idle", "RUNNING")
    first = d.wait_state("idle", "RUNNING")["pid"]
    page.click("tr[data-name=idle] details.menu summary")  # restart is in the row's menu
    page.click("tr[data-name=idle] button.restart")
    wait_until(lambda: d.rpc().supervisor.getProcessInfo("idle")["pid"] not in (0, first), what="new pid")
    wait_row(page, "idle", "RUNNING")
    page.click("tr[data-name=idle] button.stop")
    wait_row(page, "idle", "STOPPED")
    assert d.state("idle") == "STOPPED"
    assert page.url == d.url  # no navigation happened


def test_group_and_bulk_actions(web_daemon, page) -> None:
    """A group's stop button, then selecting rows and 'Start selected' (destructive ones ask first)."""
    d = web_daemon(PROGRAMS)
    d.wait_state("workers:w1", "RUNNING")
    live(page, d.url)
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("button[value='stopgroup:workers']")
    wait_row(page, "workers:w0", "STOPPED")
    wait_row(page, "workers:w1", "STOPPED")
    page.check("tr[data-name='workers:w0'] input[type=checkbox]")
    page.check("tr[data-name=idle] input[type=checkbox]")
    page.click("button[value='start:selected']")
    wait_row(page, "workers:w0", "RUNNING")
    wait_row(page, "idle", "RUNNING")
    assert d.state("workers:w1") == "STOPPED"
    page.click("button[value='stopall:']")
    for name in ("talk", "idle", "workers:w0"):
        wait_row(page, name, "STOPPED")


def test_a_process_killed_from_outside_changes_its_row(web_daemon, page) -> None:
    """SIGKILL from outside: the row shows the restart (new pid) with no reload and no polling."""
    d = web_daemon(PROGRAMS)
    pid = d.wait_state("talk", "RUNNING")["pid"]
    live(page, d.url)
    os.kill(pid, signal.SIGKILL)
    page.wait_for_function(
        "pid => { const r = document.querySelector('tr[data-name=talk]');"
        " return r.dataset.state === 'RUNNING' && r.dataset.pid !== String(pid) && r.dataset.pid !== '0'; }",
        arg=pid, timeout=5000)
    assert page.text_content("tr[data-name=talk] .restarts") == "1"


def test_the_page_reconnects_after_a_sighup_reload(web_daemon, page) -> None:
    """A reload closes every connection; the page says so, reconnects by itself and follows changes made
    after it (a process stopped once the reload is done)."""
    d = web_daemon(PROGRAMS)
    old = d.wait_state("talk", "RUNNING")["pid"]
    live(page, d.url)
    assert d.proc is not None
    d.proc.send_signal(signal.SIGHUP)
    new = wait_until(lambda: (i := d.rpc().supervisor.getProcessInfo("talk"))["statename"] == "RUNNING"
                     and i["pid"] != old and i["pid"], what="talk started again by the reload", timeout=15)
    page.wait_for_function("pid => document.querySelector('tr[data-name=talk]').dataset.pid === String(pid)",
                           arg=new, timeout=10_000)
    page.wait_for_function(LIVE)
    d.rpc().supervisor.stopProcess("talk")
    wait_row(page, "talk", "STOPPED")


def test_log_view_follows_new_lines(web_daemon, page) -> None:
    """The log page shows the file's end, then lines written after it opened; stderr and the main log too."""
    d = web_daemon(PROGRAMS)
    d.wait_state("talk", "RUNNING")
    # RUNNING comes at the spawn (startsecs=0), the first line a moment later: the page opens on a log that has one.
    wait_until(lambda: "out é" in d.rpc().supervisor.tailProcessStdoutLog("talk", 0, 100)[0], what="talk's first line")
    page.goto(d.url + "log.html?processname=talk")
    # the last whole line (the page may already be appending the next one, in pieces)
    first = int(re.findall(r"out é (\d+)\n", page.text_content("#log"))[-1])
    page.wait_for_function("(text) => document.getElementById('log').textContent.includes(text)",
                           arg=f"out é {first + 5}\n")
    page.goto(d.url + "log.html?processname=talk&channel=stderr")
    page.wait_for_function("(text) => document.getElementById('log').textContent.includes(text)", arg="err ü")
    page.goto(d.url + "log.html?main=1")
    assert "spawned: 'talk'" in page.text_content("#log")


def test_filter_and_sort_survive_a_reload(web_daemon, page) -> None:
    """Filter text, state and sort are in the URL: a reload (or a bookmark) shows the same view."""
    d = web_daemon(PROGRAMS)
    d.wait_state("workers:w1", "RUNNING")
    live(page, d.url)
    page.fill("#filter", "workers")
    page.click("thead a[data-sort=name]")  # name descending
    assert "q=workers" in page.url
    assert "sort=-name" in page.url
    page.reload()
    page.wait_for_function(LIVE)
    visible = page.eval_on_selector_all("#processes tbody:not([hidden]) tr[data-name]:not([hidden])", "rs => rs.map(r => r.dataset.name)")
    assert visible == ["workers:w1", "workers:w0"]
    page.select_option("#state-filter", "DOWN")
    assert page.eval_on_selector_all("#processes tbody:not([hidden]) tr[data-name]:not([hidden])", "rs => rs.length") == 0


class ForeignSite:
    """A page on another origin (another loopback port) that embeds a legacy action URL."""

    def __init__(self, target: str) -> None:
        body = f'<!doctype html><img src="{target}" referrerpolicy="no-referrer"><p>cats</p>'.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def foreign() -> Iterator[Any]:
    sites: list[ForeignSite] = []

    def make(target: str) -> ForeignSite:
        sites.append(ForeignSite(target))
        return sites[-1]

    yield make
    for site in sites:
        site.close()


def test_a_foreign_pages_image_changes_nothing_but_scripts_still_work(web_daemon, page, foreign) -> None:
    """<img src=".../index.html?processname=idle&action=start"> on another site: refused (403). The same URL
    from a script (urllib) acts as in Supervisor, answering 301 with a relative Location."""
    d = web_daemon(PROGRAMS)
    legacy = d.url + "index.html?processname=idle&action=start"
    site = foreign(legacy)
    outcome: list[object] = []  # the image's answer: a status, or Chromium's block of the 403 text
    page.on("response", lambda r: outcome.append(r.status) if "action=start" in r.url else None)
    page.on("requestfailed", lambda r: outcome.append(r.failure) if "action=start" in r.url else None)
    page.goto(site.url)
    page.wait_for_function("() => document.images[0].complete")
    wait_until(lambda: outcome, what="the image request's answer")
    assert outcome in ([403], ["net::ERR_BLOCKED_BY_ORB"])  # ORB hides a text answer from an <img>
    assert d.state("idle") == "STOPPED"

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as answer:
        opener.open(legacy, timeout=30)
    answer.value.close()
    assert answer.value.code == 301
    assert answer.value.headers["Location"].startswith("./?message=")
    assert d.state("idle") == "RUNNING"


def test_a_followed_legacy_link_asks_before_acting(web_daemon, page) -> None:
    """Opening a legacy action URL in the browser (a link in a chat) shows a confirmation; its button acts."""
    d = web_daemon(PROGRAMS)
    d.wait_state("talk", "RUNNING")
    page.goto(d.url + "index.html?processname=talk&action=stop")
    assert "Confirm" in page.text_content("h1")
    assert d.state("talk") == "RUNNING"
    page.click("button[value='stop:talk']")
    page.wait_for_selector("ul.results li.ok")
    assert d.state("talk") == "STOPPED"


def test_without_javascript_the_page_lists_everything_and_its_forms_work(web_daemon, chromium) -> None:
    """JavaScript off: every process is in the HTML, and a Start button (a plain form POST) starts it."""
    d = web_daemon(PROGRAMS)
    d.wait_state("workers:w1", "RUNNING")
    context = chromium.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(d.url)
        assert set(rows(page)) == {"talk", "idle", "workers:w0", "workers:w1"}
        assert "live updates off" in page.text_content("#live")
        page.click("tr[data-name=idle] button.start")
        page.wait_for_selector("ul.results li.ok")
        assert "idle: started" in page.text_content("ul.results")
        assert d.state("idle") == "RUNNING"
    finally:
        context.close()


def test_a_read_only_user_sees_but_cannot_act(web_daemon, chromium) -> None:
    """readonly_username: the page without buttons, POSTs and /RPC2 refused with 403."""
    d = web_daemon(PROGRAMS, inet_extra="username=admin\npassword=secret\nreadonly_username=viewer\n"
                                        "readonly_password=look")
    context = chromium.new_context(http_credentials={"username": "viewer", "password": "look"})
    try:
        page = context.new_page()
        page.goto(d.url)
        page.wait_for_function(LIVE)
        assert "talk" in rows(page)
        assert page.query_selector_all("td.actions button") == []
        token = page.get_attribute("body", "data-token")
        answer = page.request.post(d.url + "action", form={"token": token, "do": "stop:talk"})
        assert answer.status == 403
        rpc = page.request.post(d.url + "RPC2", data="<methodCall><methodName>supervisor.stopProcess"
                                "</methodName></methodCall>", headers={"Content-Type": "text/xml"})
        assert rpc.status == 403
        assert d.state("talk") == "RUNNING"
    finally:
        context.close()


def test_a_post_without_the_token_or_from_another_origin_is_refused(web_daemon, page) -> None:
    """The action endpoint wants the page's token and a same-origin Origin."""
    d = web_daemon(PROGRAMS)
    d.wait_state("talk", "RUNNING")
    page.goto(d.url)
    token = page.get_attribute("body", "data-token")
    no_token = page.request.post(d.url + "action", form={"do": "stop:talk"})
    assert no_token.status == 403
    foreign_origin = page.request.post(d.url + "action", form={"token": token, "do": "stop:talk"},
                                       headers={"Origin": "http://evil.example"})
    assert foreign_origin.status == 403
    assert d.state("talk") == "RUNNING"
    same = page.request.post(d.url + "action", form={"token": token, "do": "stop:talk"},
                             headers={"Origin": d.url.rstrip("/"), "Accept": "application/json"})
    assert same.status == 200
    assert same.json() == [{"name": "talk", "ok": True, "message": "stopped"}]


class ClassicSupervisord:
    """A real supervisord 4.3 from PyPI on TCP with credentials: a node the page must show and drive."""

    def __init__(self, tmp: Path, port: int) -> None:
        conf = tmp / "supervisord.conf"
        conf.write_text(f"""[supervisord]
logfile={tmp}/supervisord.log
pidfile={tmp}/supervisord.pid
childlogdir={tmp}
[inet_http_server]
port=127.0.0.1:{port}
username=ops
password=classic
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:classic_prog]
command=sleep 300
startsecs=0
""")
        self.proc = subprocess.Popen([sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.rpc = xmlrpc.client.ServerProxy(f"http://ops:classic@127.0.0.1:{port}/RPC2")
        wait_until(lambda: self.rpc.supervisor.getProcessInfo("classic_prog")["statename"] == "RUNNING",
                   what="supervisord's program running", timeout=30)

    def close(self) -> None:
        self.rpc("close")()
        self.proc.terminate()
        self.proc.wait(timeout=60)


def test_other_daemons_appear_as_sections_of_the_page(web_daemon, page, tmp_path_factory) -> None:
    """[node:x]: a second procward on a unix socket and a real supervisord 4.3 on TCP with credentials
    show as sections and can be acted on; a node that does not answer is shown as such."""
    other = Daemon(tmp_path_factory.mktemp("other"), "[program:remote]\ncommand=sleep 300\nstartsecs=0\n")
    other.start()
    port = free_port()
    classic = ClassicSupervisord(tmp_path_factory.mktemp("classic"), port)
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)  # accepts (the kernel does) and never answers
    try:
        d = web_daemon(PROGRAMS, supervisord_extra=(
            f"\n[node:other]\nserverurl=unix://{other.sock}\n"
            f"[node:classic]\nserverurl=http://127.0.0.1:{port}\nusername=ops\npassword=classic\n"
            f"[node:gone]\nserverurl=unix://{tmp_path_factory.mktemp('gone')}/nobody.sock\n"
            f"[node:hung]\nserverurl=http://127.0.0.1:{hung.getsockname()[1]}\n"))
        other.wait_state("remote", "RUNNING")
        live(page, d.url)
        assert page.text_content("section[data-node=other] tr[data-name=remote] .state") == "RUNNING"
        assert page.text_content("section[data-node=classic] tr[data-name=classic_prog] .state") == "RUNNING"
        assert "not answering" in page.text_content("section[data-node=gone]")
        assert "no answer within" in page.text_content("section[data-node=hung]")
        assert rows(page)["talk"]  # this daemon's own table is intact
        page.click("section[data-node=classic] tr[data-name=classic_prog] button.stop")
        page.wait_for_function(
            "() => document.querySelector('section[data-node=classic] tr[data-name=classic_prog] .state')"
            "?.textContent === 'STOPPED'")
        assert classic.rpc.supervisor.getProcessInfo("classic_prog")["statename"] == "STOPPED"
        page.click("section[data-node=other] tr[data-name=remote] button.stop")
        page.wait_for_function(
            "() => document.querySelector('section[data-node=other] tr[data-name=remote] .state')"
            "?.textContent === 'STOPPED'")
        assert other.state("remote") == "STOPPED"
    finally:
        hung.close()
        classic.close()
        other.stop()


def test_rows_show_the_last_line_of_output(web_daemon, page) -> None:
    """The Last output column holds the latest line a process wrote (talker writes numbered lines)."""
    d = web_daemon(PROGRAMS)
    d.wait_state("talk", "RUNNING")
    wait_until(lambda: d.rpc().supervisor.tailProcessStdoutLog("talk", 0, 100)[0], what="talk's first line")
    live(page, d.url)
    try:
        page.wait_for_function("() => /^(out é|err ü) \\d+$/.test("
                               "document.querySelector('tr[data-name=talk] .output').textContent)")
    except PlaywrightTimeout:
        # Seen once in a clean-clone run, not reproduced since: say what the page and the daemon had.
        shown = page.eval_on_selector("tr[data-name=talk] .output", "e => e.textContent")
        tail = d.rpc().supervisor.tailProcessStdoutLog("talk", 0, 100)[0]
        raise AssertionError(f"the talk row shows {shown!r}; its log ends {tail[-60:]!r}") from None


def test_the_exit_column_shows_the_exit_procward_saw(web_daemon, page) -> None:
    """A program that exits 2 before startsecs goes FATAL with getProcessInfo's exitstatus 0 (supervisord's
    value); the page shows 2. A process ended by SIGKILL shows the signal, live and after a reload."""
    d = web_daemon("""
        [program:broken]
        command=sh -c 'exit 2'
        startsecs=5
        startretries=0
        [program:victim]
        command=sleep 300
        startsecs=0
        autorestart=false
        """)
    assert d.wait_state("broken", "FATAL")["exitstatus"] == 0
    pid = d.wait_state("victim", "RUNNING")["pid"]
    live(page, d.url)
    assert page.text_content("tr[data-name=broken] .exit") == "2"
    os.kill(pid, signal.SIGKILL)
    wait_row(page, "victim", "EXITED")
    assert page.text_content("tr[data-name=victim] .exit") == "SIGKILL"
    page.reload()
    page.wait_for_function(LIVE)
    assert page.text_content("tr[data-name=victim] .exit") == "SIGKILL"
    assert page.text_content("tr[data-name=broken] .exit") == "2"


class PrefixProxy:
    """A reverse proxy on loopback serving the daemon's page under /ops/ (as nginx's ``location /ops/``
    would); every request outside the prefix is recorded and answered 404."""

    def __init__(self, upstream: str) -> None:
        self.outside: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def _forward(self) -> None:
                if not self.path.startswith("/ops/"):
                    proxy.outside.append(self.path)
                    self.send_error(404)
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                request = urllib.request.Request(  # noqa: S310 - http to the test's own daemon
                    upstream + self.path[len("/ops/"):], data=body, headers=headers, method=self.command)
                try:
                    answer = urllib.request.urlopen(request, timeout=30)  # noqa: S310 - the test's own daemon
                except urllib.error.HTTPError as exc:
                    answer = exc
                with answer:
                    self.send_response(answer.status)
                    for key, value in answer.headers.items():
                        if key.lower() not in ("connection", "transfer-encoding", "content-length"):
                            self.send_header(key, value)
                    self.end_headers()
                    while chunk := answer.read1(65536):
                        self.wfile.write(chunk)
                        self.wfile.flush()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ops/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_behind_a_proxy_on_a_sub_path_every_request_stays_under_it(web_daemon, page) -> None:
    """The page declares its icon inline: nothing (not /favicon.ico) is asked for outside the prefix, on
    the index and the log view."""
    d = web_daemon(PROGRAMS)
    d.wait_state("talk", "RUNNING")
    proxy = PrefixProxy(d.url)
    try:
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(proxy.url)
        page.wait_for_function(LIVE)
        page.click("tr[data-name=talk] th.name a")
        page.wait_for_function("() => document.body.classList.contains('processpage')")
        page.click("header a[href^='log.html']")
        page.wait_for_function("() => document.body.classList.contains('logpage')")
        page.goto(proxy.url)  # and back, as a person would
        page.wait_for_function(LIVE)
        assert page.evaluate("document.querySelector('link[rel=icon]').href").startswith("data:image/svg+xml,")
        assert proxy.outside == []
        assert all(url.startswith((proxy.url, "data:")) for url in requested), requested
    finally:
        proxy.close()
