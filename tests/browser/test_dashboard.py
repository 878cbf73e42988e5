"""The page as a dashboard (issue 29), in a real headless Chromium against the real daemon: groups as
groups, calm rows with a menu, the error one click from a FATAL row, the process page, sparklines fed by
the daemon's samples, phones and tablets, the keyboard, JavaScript off, and axe-core's audit."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from support import wait_until
from test_webui import LIVE, live, rows, wait_row

PY = sys.executable
DOCS = Path(__file__).resolve().parents[2] / "docs"
# Grows by 4 MB every 0.3 s up to 160 MB, then holds: a memory curve that rises between two samples.
GROWER = f"{PY} -c \"import time; x=[]; [(x.append(bytearray(4 << 20)), time.sleep(0.3)) for _ in range(40)]; time.sleep(3600)\""
SIGNALLED = "sh -c 'trap \"echo got USR1\" USR1; echo ready; while true; do sleep 0.2; done'"
PROGRAMS = f"""
    [program:broken]
    command=sh -c 'echo "boom: missing DATABASE_URL" >&2; exit 2'
    startsecs=5
    startretries=0
    [program:idle]
    command=sleep 300
    autostart=false
    startsecs=0
    [program:trapper]
    command={SIGNALLED}
    startsecs=0
    [group:workers]
    programs=w
    [program:w]
    command=sleep 300
    numprocs=3
    process_name=w%(process_num)d
    startsecs=0
    """

AXE_VERSION = "4.14.1"
AXE_INTEGRITY = "FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="  # sha512


def axe_source() -> str:
    """axe-core from the npm registry (the tarball checked against its pinned sha512), cached under ~/.cache."""
    cache = Path.home() / ".cache" / "procward-tests" / f"axe-core-{AXE_VERSION}.min.js"
    if cache.exists():
        return cache.read_text()
    url = f"https://registry.npmjs.org/axe-core/-/axe-core-{AXE_VERSION}.tgz"
    try:
        with urllib.request.urlopen(url, timeout=60) as answer:
            tarball = answer.read()
    except OSError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"axe-core could not be fetched from the npm registry: {exc}")
        pytest.skip(f"axe-core could not be fetched from the npm registry: {exc}")
    assert base64.b64encode(hashlib.sha512(tarball).digest()).decode() == AXE_INTEGRITY, "axe-core integrity"
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        member = archive.extractfile("package/axe.min.js")
        assert member is not None
        source = member.read().decode()
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(source)
    return source


def serious(page: Any, source: str) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.add_script_tag(content=source)
    found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                          ".filter(v => ['serious', 'critical'].includes(v.impact))"
                          ".map(v => `${v.id}: ${v.help} (${v.nodes.length}): ${v.nodes[0].html.slice(0, 160)}`)")
    return list(found)


def test_groups_are_groups_with_counts_actions_and_a_fold_kept(web_daemon, page) -> None:
    d = web_daemon(PROGRAMS)
    for n in range(3):
        d.wait_state(f"workers:w{n}", "RUNNING")
    live(page, d.url)
    head = page.locator("tbody.group[data-group=workers] tr.group-head")
    assert head.locator(".gname").text_content() == "workers"
    assert head.locator(".counts").text_content() == "3 processes: 3 running"
    # full names, copyable, in the group's body; a program that is its own group has no header
    names = page.eval_on_selector_all("tbody.group[data-group=workers] tr[data-name] th.name",
                                      "cells => cells.map(c => c.textContent)")
    assert names == ["workers:w0", "workers:w1", "workers:w2"]
    assert page.locator("tbody.single[data-group=idle] tr.group-head").count() == 0
    page.on("dialog", lambda dialog: dialog.accept())
    head.locator("button[value='stopgroup:workers']").click()
    for n in range(3):
        wait_row(page, f"workers:w{n}", "STOPPED")
    assert {d.state(f"workers:w{n}") for n in range(3)} == {"STOPPED"}
    page.wait_for_function("() => document.querySelector('tbody[data-group=workers] .counts').textContent"
                           " === '3 processes: 3 stopped'")
    head.locator("button.fold").click()  # folded: the rows hide, the header stays, and a reload keeps it
    assert head.locator("button.fold").get_attribute("aria-expanded") == "false"
    assert page.locator("tr[data-name='workers:w0']").is_hidden()
    page.reload()
    page.wait_for_function(LIVE)
    assert page.locator("tr[data-name='workers:w0']").is_hidden()
    assert head.is_visible()
    head.locator("button.fold").click()
    assert page.locator("tr[data-name='workers:w0']").is_visible()
    # sorted by state, descending: groups move as a whole, members sorted within
    page.click("thead a[data-sort=state]")
    page.click("thead a[data-sort=state]")
    order = page.eval_on_selector_all("#processes > tbody", "bs => bs.map(b => b.dataset.group)")
    assert order.index("workers") < order.index("broken")  # STOPPED sorts after FATAL, so descending first


def test_stderr_is_one_click_from_a_fatal_row(web_daemon, page) -> None:
    d = web_daemon(PROGRAMS)
    d.wait_state("broken", "FATAL")
    live(page, d.url)
    row = page.locator("tr[data-name=broken]")
    assert row.locator(".exit").text_content() == "2"  # the exit procward saw, not getProcessInfo's 0
    assert "Exited too quickly" in row.locator(".desc").text_content()
    row.locator("a.errlink").click()
    page.wait_for_function("() => document.body.classList.contains('logpage')")
    page.wait_for_function("() => document.getElementById('log').textContent.includes('boom: missing DATABASE_URL')")
    assert page.locator("nav.tabs a[aria-current=page]").text_content() == "stderr"
    tabs = page.eval_on_selector_all("nav.tabs a", "as => as.map(a => a.textContent)")
    assert tabs == ["stdout", "stderr", "main log", "process page"]


def test_the_row_menu_sends_the_signal_chosen_in_it_with_the_keyboard(web_daemon, page) -> None:
    d = web_daemon(PROGRAMS)
    d.wait_state("trapper", "RUNNING")
    wait_until(lambda: "ready" in d.rpc().supervisor.readProcessStdoutLog("trapper", 0, 0), what="trap set")
    live(page, d.url)
    summary = page.locator("tr[data-name=trapper] details.menu summary")
    summary.focus()
    page.keyboard.press("Enter")  # opens the menu: a <details>, keyboard-reachable as it is
    page.locator("tr[data-name=trapper] select[name='signal.trapper']").select_option("USR1")
    page.locator("tr[data-name=trapper] button.signal").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("ul.results li.ok")
    assert "trapper: signalled USR1" in page.text_content("ul.results")
    wait_until(lambda: "got USR1" in d.rpc().supervisor.readProcessStdoutLog("trapper", 0, 0), what="USR1 caught")
    assert not page.locator("tr[data-name=trapper] details.menu").get_attribute("open")  # closed after
    page.locator("tr[data-name=idle] th.name a").focus()  # keyboard shortcuts: s starts the focused row
    page.keyboard.press("s")
    wait_row(page, "idle", "RUNNING")
    page.keyboard.press("t")
    wait_row(page, "idle", "STOPPED")


@pytest.mark.parametrize(("width", "height"), [(390, 844), (768, 1024)])
def test_phones_and_tablets_scroll_nothing_sideways(web_daemon, chromium, width: int, height: int) -> None:
    d = web_daemon(PROGRAMS)
    d.wait_state("broken", "FATAL")
    context = chromium.new_context(viewport={"width": width, "height": height}, has_touch=True)
    try:
        page = context.new_page()
        live(page, d.url)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        # every row's primary action and menu, the group's and the bulk actions are on screen, 44 px or more
        targets = page.eval_on_selector_all(
            "tr[data-name] button.primary, tr[data-name] details.menu > summary, tr.group-head button, "
            ".toolbar button", "es => es.filter(e => e.checkVisibility()).map(e => { "
            "const r = e.getBoundingClientRect(); return [e.textContent, r.width, r.height, r.right]; })")
        assert len(targets) >= 6 * 2 + 3 + 6
        small = [t for t in targets if t[1] < 44 or t[2] < 44 or t[3] > width]
        assert small == [], small
        page.locator("tr[data-name=idle] button.primary").tap()
        wait_row(page, "idle", "RUNNING")
        page.locator("tbody[data-group=workers] tr.group-head summary").tap()  # an open menu stays on screen
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert page.locator("button[value='restartgroup:workers']").is_visible()
        if width == 390 and os.environ.get("UPDATE_SCREENSHOT") == "1":
            page.screenshot(path=str(DOCS / "webui-phone.png"), full_page=True)
    finally:
        context.close()


def test_sparklines_follow_the_memory_the_daemon_samples(web_daemon, page) -> None:
    d = web_daemon(f"""
        [program:grower]
        command={GROWER}
        startsecs=0
        """)
    d.wait_state("grower", "RUNNING")
    live(page, d.url)
    # one sample every 5 s while the page is open: the first, then one that shows more memory
    first = page.wait_for_function(
        "() => document.querySelector('tr[data-name=grower] svg.sparkline')?.dataset.rss", timeout=20_000
    ).json_value()
    page.wait_for_function(
        "(before) => Number(document.querySelector('tr[data-name=grower] svg.sparkline').dataset.rss) "
        "> Number(before) + 4096", arg=first, timeout=20_000)
    assert page.locator("tr[data-name=grower] svg.sparkline polygon.mem").count() == 1


def test_the_process_page_tells_its_story(web_daemon, page) -> None:
    d = web_daemon("""
        [program:api]
        command=sleep 300
        startsecs=0
        environment=API_TOKEN="hunter2-secret",MODE="prod"
        healthcheck=tcp://127.0.0.1:9
        healthcheck_interval=0.2
        healthcheck_retries=100
        healthcheck_action=report
        """)
    pid = d.wait_state("api", "RUNNING")["pid"]
    page.goto(d.url + "process?name=api")
    page.wait_for_function(LIVE)
    # the charts come from the daemon's samples (one every 5 s while a page is open): one before the kill
    page.wait_for_selector("#mem-chart svg.bigchart polyline.series", state="attached", timeout=20_000)
    marks = page.locator("#mem-chart svg.bigchart line.start").count()  # the first start, if a sample is in its second
    os.kill(pid, 9)
    wait_until(lambda: d.rpc().supervisor.getProcessInfo("api")["pid"] not in (0, pid), what="restarted")
    # the restart arrives live and is marked once a sample after it is drawn, even within a second of
    # the first start (starts are whole seconds)
    page.wait_for_function("(n) => document.querySelectorAll('#mem-chart svg.bigchart line.start').length > n",
                           arg=marks, timeout=20_000)
    page.reload()  # the tables are rendered by the server
    page.wait_for_function(LIVE)
    text = page.text_content("main")
    assert "hunter2" not in text  # environment values are hidden
    assert "API_TOKEN=<hidden>" in text
    assert "healthcheck" in text  # the effective configuration, as procward check prints it
    exits = page.eval_on_selector_all("section:has(#hist-h) table:nth-of-type(2) tbody tr",
                                      "rs => rs.map(r => r.cells[1].textContent)")
    assert exits[0] == "SIGKILL"
    states = page.eval_on_selector_all("section:has(#hist-h) table:nth-of-type(1) tbody tr",
                                       "rs => rs.map(r => r.cells[1].textContent)")
    assert states[:3] == ["RUNNING", "STARTING", "EXITED"]
    probes = page.eval_on_selector_all("section:has(#health-h) tbody tr", "rs => rs.map(r => r.cells[1].textContent)")
    assert probes
    assert all("refused" in p.lower() or "connect" in p.lower() for p in probes), probes
    page.click("form.process-actions button.stop")  # its actions, in place
    page.wait_for_function("() => document.getElementById('state').textContent === 'STOPPED'")
    assert d.state("api") == "STOPPED"


def test_without_javascript_every_action_works(web_daemon, chromium) -> None:
    d = web_daemon(PROGRAMS)
    for n in range(3):
        d.wait_state(f"workers:w{n}", "RUNNING")
    context = chromium.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(d.url)
        assert set(rows(page)) == {"broken", "idle", "trapper", "workers:w0", "workers:w1", "workers:w2"}

        def act(selector: str, menu: str = "") -> str:
            if menu:
                page.click(f"{menu} details.menu summary")
            page.click(selector)
            page.wait_for_selector("ul.results")
            return page.text_content("ul.results")

        assert "idle: started" in act("tr[data-name=idle] button.start")
        first = d.rpc().supervisor.getProcessInfo("idle")["pid"]
        assert "idle: restarted" in act("tr[data-name=idle] button.restart", "tr[data-name=idle]")
        assert d.rpc().supervisor.getProcessInfo("idle")["pid"] != first
        page.click("tr[data-name=trapper] details.menu summary")
        page.select_option("select[name='signal.trapper']", "USR1")
        page.click("tr[data-name=trapper] button.signal")
        assert "trapper: signalled USR1" in page.text_content("ul.results")
        assert "workers:w0 OK" in act("tr.group-head button[value='stopgroup:workers']")
        assert d.state("workers:w2") == "STOPPED"
        page.check("tr[data-name='workers:w1'] input[type=checkbox]")
        assert "workers:w1: started" in act("button[value='start:selected']")
        assert "idle: stopped" in act("tr[data-name=idle] button.stop")
        page.goto(d.url + "process?name=idle")  # the process page's form, without JavaScript too
        page.click("form.process-actions button.start")
        page.wait_for_selector("ul.results li.ok")
        assert d.state("idle") == "RUNNING"
    finally:
        context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_nothing_serious(web_daemon, chromium, scheme: str) -> None:
    source = axe_source()
    d = web_daemon(PROGRAMS)
    d.wait_state("broken", "FATAL")
    d.wait_state("trapper", "RUNNING")
    context = chromium.new_context(bypass_csp=True, color_scheme=scheme, viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        for url in ("", "process?name=trapper", "log.html?processname=broken&channel=stderr", "log.html?main=1"):
            page.goto(d.url + url)
            page.wait_for_function("() => ['live', 'following'].includes(document.getElementById('live').textContent)")
            found = serious(page, source)
            assert found == [], (url, found)
        page.goto(d.url)
        page.wait_for_function(LIVE)
        page.click("tr[data-name=trapper] details.menu summary")  # an open menu too
        assert serious(page, source) == []
        if scheme == "light" and os.environ.get("UPDATE_SCREENSHOT") == "1":
            page.click("tr[data-name=trapper] details.menu summary")
            page.screenshot(path=str(DOCS / "webui.png"))
    finally:
        context.close()


def test_a_hidden_tab_lets_go_of_its_stream_and_comes_back_live(web_daemon, page) -> None:
    """A dashboard left in a background tab costs the daemon nothing: the page closes its stream when
    hidden (the daemon's sampler stops with the last stream) and reconnects with a snapshot when shown."""
    d = web_daemon(PROGRAMS)
    d.wait_state("trapper", "RUNNING")
    live(page, d.url)
    page.evaluate("() => { Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});"
                  " document.dispatchEvent(new Event('visibilitychange')); }")
    assert page.text_content("#live") == "paused (tab hidden)"
    d.rpc().supervisor.stopProcess("trapper")  # a change while hidden is not seen ...
    assert page.text_content("tr[data-name=trapper] .state") == "RUNNING"
    page.evaluate("() => { Object.defineProperty(document, 'visibilityState', {value: 'visible', configurable: true});"
                  " document.dispatchEvent(new Event('visibilitychange')); }")
    page.wait_for_function(LIVE)  # ... and the snapshot on return shows it
    wait_row(page, "trapper", "STOPPED")
