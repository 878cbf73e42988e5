"""Who may change state through the web, decided from a request's headers.

Basic auth gives no session to bind a token to, and browsers attach cached credentials to any request
to the daemon's origin: an ``<img src=".../index.html?action=stopall">`` on any page an operator opens
would stop everything (Supervisor's SV#19). The page's own actions are POSTs carrying the daemon's token
from the same origin. Supervisor's GET actions (``index.html?processname=x&action=stop``) keep working
for scripts, which are told from browsers by their headers: a page cannot change the User-Agent of the
requests it makes, and over plain http to a LAN name Chromium sends no Sec-Fetch-* at all.
"""

from __future__ import annotations

import enum
import urllib.parse
from collections.abc import Mapping


class Caller(enum.Enum):
    """What kind of client sent a state-changing GET."""

    SCRIPT = "script"  # curl, wget, requests: act as Supervisor does
    SAME_ORIGIN = "same-origin"  # a browser on the daemon's own page (Sec-Fetch-Site: same-origin): act
    NAVIGATION = "navigation"  # a browser following a link: ask for confirmation, do not act
    FOREIGN = "foreign"  # an image, script, frame or fetch another page caused: refuse (403)


def classify_get(headers: Mapping[str, str]) -> Caller:
    """Classify a GET that asks for an action (headers lower-cased)."""
    fetch_site = headers.get("sec-fetch-site")
    browser = (headers.get("user-agent", "").startswith("Mozilla/") or "origin" in headers
               or any(name.startswith("sec-fetch-") for name in headers)
               or _foreign_referer(headers))
    if not browser:
        return Caller.SCRIPT
    if fetch_site == "same-origin":
        return Caller.SAME_ORIGIN
    if headers.get("sec-fetch-mode") == "navigate" or "text/html" in headers.get("accept", ""):
        return Caller.NAVIGATION
    return Caller.FOREIGN


def _foreign_referer(headers: Mapping[str, str]) -> bool:
    referer = headers.get("referer")
    return referer is not None and not same_origin(referer, headers)


def same_origin(url: str, headers: Mapping[str, str]) -> bool:
    """True when ``url`` (an Origin or Referer) names the host this request was sent to."""
    parts = urllib.parse.urlsplit(url)
    host = headers.get("host", "")
    return bool(parts.netloc) and parts.netloc.lower() == host.lower()


def post_allowed(headers: Mapping[str, str], token: str, expected: str) -> str:
    """'' when a POST may act, else why not: the daemon's token, and a same-origin Origin when one is sent
    (browsers send it on every POST)."""
    import hmac  # here: hmac loads OpenSSL's libcrypto (~1 MB), needed only when a POST comes

    if not hmac.compare_digest(token.encode(), expected.encode()):
        return "missing or stale token: reload the page"
    return foreign(headers)


def foreign(headers: Mapping[str, str]) -> str:
    """'' unless a browser says another site caused the request (its Origin, or Sec-Fetch-Site), then why."""
    origin = headers.get("origin")
    if origin is not None and not same_origin(origin, headers):
        return "cross-origin request refused"
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return "cross-site request refused"
    return ""
