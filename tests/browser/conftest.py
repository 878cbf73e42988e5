"""A real headless Chromium (Debian's ``chromium`` package) driven by Playwright, and a daemon on TCP."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import Daemon, free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
MISSING = "needs Debian's chromium package (apt-get install chromium fonts-dejavu-core) and playwright"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One browser per test module; skipped without one, except in CI where it must be there.

    Not session-wide: Playwright's sync API keeps an event loop running in this thread while it is open,
    and the unit tests run event loops of their own afterwards.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not os.path.exists(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run in CI: {MISSING}")
        pytest.skip(MISSING)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


class WebDaemon(Daemon):
    """A daemon with an [inet_http_server] on a free loopback port; ``url`` is its page."""

    def __init__(self, tmp: Path, programs: str, **extra: str) -> None:
        self.port = free_port()
        server = f"\n[inet_http_server]\nport=127.0.0.1:{self.port}\n{extra.pop('inet_extra', '')}\n"
        super().__init__(tmp, programs, supervisord_extra=extra.pop("supervisord_extra", "") + server, **extra)
        self.url = f"http://127.0.0.1:{self.port}/"


@pytest.fixture
def web_daemon(tmp_path: Path) -> Iterator[Callable[..., WebDaemon]]:
    started: list[WebDaemon] = []

    def make(programs: str, **extra: str) -> WebDaemon:
        d = WebDaemon(tmp_path, programs, **extra)
        started.append(d)
        d.start()
        return d

    yield make
    for d in started:
        d.stop()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh browser context and page; JavaScript errors fail the test."""
    context = chromium.new_context(viewport={"width": 1200, "height": 700})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(10_000)
    yield page
    context.close()
    assert not errors, errors
