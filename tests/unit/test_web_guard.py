"""Who may change state through the web (procward.http.web.guard), header by header."""

from __future__ import annotations

import pytest

from procward.http.web.guard import Caller, classify_get, post_allowed

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"
HOST = {"host": "box:9001"}


@pytest.mark.parametrize(("headers", "caller"), [
    ({"user-agent": "curl/8.5.0", "accept": "*/*"}, Caller.SCRIPT),
    ({"user-agent": "python-requests/2.32"}, Caller.SCRIPT),
    ({"user-agent": "Wget/1.21"}, Caller.SCRIPT),
    ({}, Caller.SCRIPT),
    ({"user-agent": "curl/8", "referer": "http://evil.example/"}, Caller.FOREIGN),  # a foreign page sent it
    ({"user-agent": CHROME, "sec-fetch-site": "same-origin", "sec-fetch-mode": "cors"}, Caller.SAME_ORIGIN),
    ({"user-agent": CHROME, "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate",
      "accept": "text/html"}, Caller.NAVIGATION),
    ({"user-agent": CHROME, "accept": "text/html,application/xhtml+xml"}, Caller.NAVIGATION),  # plain http: no Sec-Fetch
    ({"user-agent": CHROME, "sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors",
      "sec-fetch-dest": "image", "accept": "image/avif,image/webp,*/*"}, Caller.FOREIGN),
    ({"user-agent": CHROME, "accept": "image/avif,image/webp,*/*"}, Caller.FOREIGN),  # <img> over plain http
    ({"user-agent": "curl/8", "sec-fetch-site": "same-site"}, Caller.FOREIGN),  # fetch() from a sibling port
], ids=lambda value: str(value)[:60])
def test_classify_get(headers: dict[str, str], caller: Caller) -> None:
    """Scripts act, a browser on the daemon's own page acts, a followed link confirms, the rest is refused."""
    assert classify_get({**HOST, **headers}) == caller


def test_post_needs_the_token() -> None:
    """No token or a stale one: refused, whatever else the request carries."""
    assert post_allowed({**HOST, "origin": "http://box:9001"}, "", "t0k") != ""
    assert post_allowed({**HOST, "origin": "http://box:9001"}, "old", "t0k") != ""


@pytest.mark.parametrize(("headers", "allowed"), [
    ({"origin": "http://box:9001"}, True),
    ({}, True),  # a script with the token (no browser sends a POST without Origin)
    ({"origin": "http://evil.example"}, False),
    ({"origin": "null"}, False),  # a sandboxed frame or a file:// page
    ({"origin": "http://box:9001", "sec-fetch-site": "same-site"}, False),
])
def test_post_origin(headers: dict[str, str], allowed: bool) -> None:
    """With the token, the Origin (and Sec-Fetch-Site) must be the daemon's own."""
    assert (post_allowed({**HOST, **headers}, "t0k", "t0k") == "") is allowed
