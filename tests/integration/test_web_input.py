"""The web UI's answers to bad input, over the unix socket with a plain HTTP client."""

from __future__ import annotations

import base64
import http.client
import json
import re
import urllib.parse

from support import UnixHTTPConnection, wait_until

PROGRAMS = """
    [program:web]
    command=sh -c 'printf "caf\\351 latin-1\\n"; echo fine; exec sleep 300'
    startsecs=0
    [program:quiet]
    command=sleep 300
    startsecs=0
    stdout_logfile=NONE
    """


def get(d, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, http.client.HTTPMessage]:
    conn = UnixHTTPConnection(d.sock, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(), response.headers
    finally:
        conn.close()


def post(d, form: dict[str, str], headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = UnixHTTPConnection(d.sock, timeout=30)
    try:
        conn.request("POST", "/action", body=urllib.parse.urlencode(form),
                     headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def token(d) -> str:
    status, body, _ = get(d, "/")
    assert status == 200
    found = re.search(rb'data-token="([^"]+)"', body)
    assert found
    return found.group(1).decode()


def test_page_works_on_the_unix_socket_with_security_headers(daemon) -> None:
    """The page is served on every HTTP server, with CSP, no framing, nosniff and Referrer-Policy."""
    d = daemon(PROGRAMS)
    d.wait_state("web", "RUNNING")
    status, body, headers = get(d, "/index.html")
    assert status == 200
    assert b'data-name="web"' in body
    assert b'data-name="quiet"' in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert b"<script>" not in body  # no inline script: the CSP would refuse it


def test_message_in_the_url_is_never_shown(daemon) -> None:
    """Supervisor shows any ?message= text as a banner; procward shows nothing from the URL."""
    d = daemon(PROGRAMS)
    _, body, _ = get(d, "/?message=Process%20web%20was%20hacked")
    assert b"hacked" not in body


def test_actions_on_unknown_names_and_unknown_verbs(daemon) -> None:
    """An unknown process answers the API's fault text per name; an unknown action is 400."""
    d = daemon(PROGRAMS)
    t = token(d)
    status, body = post(d, {"token": t, "do": "stop:nope"}, {"Accept": "application/json"})
    assert status == 200
    assert json.loads(body) == [{"name": "nope", "ok": False, "message": "ERROR (BAD_NAME: nope)"}]
    assert post(d, {"token": t, "do": "explode:web"})[0] == 400
    assert post(d, {"token": t, "do": "stop:selected"}, {"Accept": "application/json"})[1] == \
        b'[{"name": "", "ok": false, "message": "no process selected"}]'
    assert post(d, {"token": "stale", "do": "stop:web"})[0] == 403
    assert d.state("web") == "RUNNING"


def test_legacy_get_with_an_unknown_action_is_400(daemon) -> None:
    """index.html?action=explode: 400, nothing done."""
    d = daemon(PROGRAMS)
    assert get(d, "/index.html?processname=web&action=explode")[0] == 400
    assert d.state("web") == "RUNNING"


def test_log_pages_for_missing_logs_and_bad_bytes(daemon) -> None:
    """No such process: 404. A process logged nowhere: the page says so. Non-UTF-8 output is shown
    replaced, never an error."""
    d = daemon(PROGRAMS)
    d.wait_state("web", "RUNNING")
    assert get(d, "/log.html?processname=nope")[0] == 404
    assert get(d, "/log.html?processname=web&channel=bogus")[0] == 404
    status, body, _ = get(d, "/log.html?processname=quiet")
    assert status == 200
    assert b"has no log file" in body
    wait_until(lambda: b"fine" in get(d, "/log.html?processname=web")[1], what="output in the log page")
    _, body, _ = get(d, "/log.html?processname=web")
    assert "caf\ufffd latin-1".encode() in body
    assert get(d, "/follow?processname=web&offset=abc")[0] == 400
    assert get(d, "/download?processname=quiet")[0] == 404
    status, body, headers = get(d, "/download?processname=web")
    assert status == 200
    assert headers["Content-Disposition"] == 'attachment; filename="web-stdout.log"'
    assert b"fine\n" in body


def test_logtail_streams_are_not_sniffed(daemon) -> None:
    """/logtail answers carry nosniff: browsers show a text/plain stream at once instead of holding 1 KiB."""
    d = daemon(PROGRAMS)
    d.wait_state("web", "RUNNING")
    conn = UnixHTTPConnection(d.sock, timeout=10)
    try:
        conn.request("GET", "/logtail/web")
        response = conn.getresponse()
        assert response.status == 200
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    finally:
        conn.close()


def test_legacy_get_actions_can_be_turned_off(daemon) -> None:
    """legacy_actions = false: even a script's index.html?action= GET is refused (403) and nothing happens."""
    d = daemon(PROGRAMS, server_extra="legacy_actions = false")
    d.wait_state("web", "RUNNING")
    status, body, _ = get(d, "/index.html?processname=web&action=stop", {"User-Agent": "curl/8.5.0"})
    assert status == 403
    assert b"legacy_actions" in body
    assert d.state("web") == "RUNNING"


def test_a_followed_log_goes_on_across_rotation(daemon) -> None:
    """/follow (the log page's stream) keeps following when the file is rotated under it."""
    d = daemon("""
        [program:chatty]
        command=sh -c 'i=0; while true; do i=$((i+1)); echo "line $i"; sleep 0.05; done'
        startsecs=0
        stdout_logfile=%(here)s/chatty.log
        stdout_logfile_maxbytes=300
        stdout_logfile_backups=2
        """)
    d.wait_state("chatty", "RUNNING")
    conn = UnixHTTPConnection(d.sock, timeout=30)
    try:
        conn.request("GET", "/follow?processname=chatty&offset=0")
        response = conn.getresponse()
        assert response.status == 200
        seen = b""
        wait_until(lambda: (d.dir / "chatty.log.1").exists(), what="a rotation", timeout=30)
        backup = (d.dir / "chatty.log.1").read_bytes()
        assert backup.startswith(b"line "), backup
        rotated_at = int(backup.rsplit(b"line ", 1)[1].split()[0])
        while f"line {rotated_at + 5}\n".encode() not in seen:
            seen += response.read1(65536)
    finally:
        conn.close()


def test_a_failed_start_shows_the_spawn_error_and_group_actions(daemon) -> None:
    """A start that fails answers with the process's spawn error; a group's signal and clear-logs reach
    every member; a group that does not exist is an error per name."""
    d = daemon(PROGRAMS + """
    [program:broken]
    command=/nonexistent/binary
    autostart=false
    [group:pair]
    programs=a,b
    [program:a]
    command=sleep 300
    startsecs=0
    [program:b]
    command=sleep 300
    startsecs=0
    """)
    t = token(d)
    _, body = post(d, {"token": t, "do": "start:broken"}, {"Accept": "application/json"})
    assert json.loads(body) == [{"name": "broken", "ok": False,
                                 "message": "ERROR (NO_FILE: can't find command '/nonexistent/binary')"}]
    d.wait_state("pair:b", "RUNNING")
    _, body = post(d, {"token": t, "do": "signalgroup:pair", "signal": "USR1"}, {"Accept": "application/json"})
    answer = json.loads(body)
    assert answer[0]["ok"]
    assert "pair:a OK" in answer[0]["message"]
    _, body = post(d, {"token": t, "do": "clearloggroup:pair"}, {"Accept": "application/json"})
    assert [r["name"] for r in json.loads(body)] == ["pair:a", "pair:b"]
    _, body = post(d, {"token": t, "do": "clearloggroup:nope"}, {"Accept": "application/json"})
    assert json.loads(body)[0]["ok"] is False


def test_a_node_with_wrong_credentials_is_shown_as_not_answering(daemon, tmp_path) -> None:
    """[node:x] whose password is wrong: its section says why; the page itself is served."""
    d = daemon(PROGRAMS, supervisord_extra=f"\n[node:self]\nserverurl=unix://{tmp_path}/procward.sock\n"
                                           "username=admin\npassword=wrong\n", auth=("admin", "right"))
    auth = "Basic " + base64.b64encode(b"admin:right").decode()
    status, body, _ = get(d, "/", {"Authorization": auth})
    assert status == 200
    assert b'data-node="self"' in body
    assert b"not answering: answered 401 Unauthorized" in body
