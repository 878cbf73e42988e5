"""The HTTP layer on its real sockets: credentials on every route, 404s, hostile XML-RPC bodies."""

from __future__ import annotations

import base64
import hashlib
import http.client
import socket
import xmlrpc.client
from typing import Any

import pytest
from support import UnixHTTPConnection, free_port, wait_until

PROGRAMS = """
    [program:web]
    command=sh -c 'echo out-line; echo err-line >&2; exec sleep 300'
    startsecs=0
    """
ROUTES = [("POST", "/RPC2"), ("GET", "/RPC2"), ("GET", "/logtail/web"), ("GET", "/logtail/web/stderr"),
          ("GET", "/mainlogtail"), ("GET", "/ok.html"), ("GET", "/"), ("GET", "/nosuch")]
GET_STATE = (b"<?xml version='1.0'?><methodCall><methodName>supervisor.getState</methodName>"
             b"<params></params></methodCall>")


def request(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None,
            headers: dict[str, Any] | None = None, read: int | None = None) -> tuple[int, bytes]:
    """One request; for streaming routes read only ``read`` bytes of the body."""
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read1(read) if read else response.read()
        return response.status, data
    finally:
        conn.close()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def secured(daemon):
    port = free_port()
    sha = hashlib.sha1(b"tcp-secret").hexdigest()
    d = daemon(PROGRAMS, auth=("admin", "s3cret"))
    d.conf.write_text(d.conf.read_text() + f"\n[inet_http_server]\nport=127.0.0.1:{port}\nusername=ops\n"
                      f"password={{SHA}}{sha}\n")
    d.rpc().supervisor.restart()
    wait_until(lambda: request(http.client.HTTPConnection("127.0.0.1", port, timeout=10), "GET", "/ok.html",
                               headers=basic("ops", "tcp-secret"))[0] == 200, what="TCP server after restart")
    d.wait_state("web", "RUNNING")
    return d, port


def connections(d: Any, port: int) -> list[tuple[str, Any, dict[str, str]]]:
    return [("unix", lambda: UnixHTTPConnection(d.sock, timeout=10), basic("admin", "s3cret")),
            ("tcp", lambda: http.client.HTTPConnection("127.0.0.1", port, timeout=10), basic("ops", "tcp-secret"))]


BAD_AUTH = [
    {},
    {"Authorization": "Basic !!!"},
    {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
    {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()},
    {"Authorization": "Bearer abc"},
    {"Authorization": "Basic"},
    basic("admin", "wrong"),
    basic("ops", "s3cret"),  # the other server's credentials are not these
]


def test_every_route_refuses_without_valid_credentials(secured) -> None:
    """401 on every route and both servers, for missing, malformed and wrong credentials."""
    d, port = secured
    for label, connect, _ in connections(d, port):
        for method, path in ROUTES:
            for headers in BAD_AUTH:
                if label == "tcp" and headers == basic("ops", "s3cret"):
                    continue
                status, body = request(connect(), method, path, GET_STATE if method == "POST" else None, headers)
                assert status == 401, (label, method, path, headers, status)
                assert b"RUNNING" not in body
                assert b"out-line" not in body


def test_valid_credentials_reach_every_route(secured) -> None:
    """With the right credentials (plaintext on unix, {SHA} on TCP) each route answers."""
    d, port = secured
    for _, connect, headers in connections(d, port):
        status, body = request(connect(), "POST", "/RPC2", GET_STATE, {**headers, "Content-Type": "text/xml"})
        assert status == 200
        assert b"RUNNING" in body
        assert request(connect(), "GET", "/logtail/web", headers=headers, read=4096) == (200, b"out-line\n")
        assert request(connect(), "GET", "/logtail/web/stderr", headers=headers, read=4096) == (200, b"err-line\n")
        status, body = request(connect(), "GET", "/mainlogtail", headers=headers, read=65536)
        assert status == 200
        assert b"spawned: 'web'" in body
        assert request(connect(), "GET", "/ok.html", headers=headers)[0] == 200
        assert request(connect(), "GET", "/nosuch", headers=headers)[0] == 404
    assert "Traceback" not in d.log_text()


def test_unknown_names_and_paths_are_404(daemon) -> None:
    """No such process, channel or route: 404; no path escapes the log files."""
    d = daemon(PROGRAMS)
    d.wait_state("web", "RUNNING")
    for path in ("/logtail/nope", "/logtail/web/bogus", "/logtail/..%2F..%2Fetc%2Fpasswd", "/logtail/../main.log",
                 "/logtail/web/../../etc/passwd", "/mainlogtail/../etc/passwd", "/etc/passwd"):
        status, body = request(UnixHTTPConnection(d.sock, timeout=10), "GET", path)
        assert status == 404, (path, status)
        assert b"root:" not in body


HOSTILE = {
    "entity expansion": b"""<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">"""
                        b"""<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">"""
                        b"""<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">]>"""
                        b"""<methodCall><methodName>&e;</methodName></methodCall>""",
    "external entity": b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY f SYSTEM "file:///etc/passwd">]>"""
                       b"""<methodCall><methodName>supervisor.getProcessInfo</methodName><params><param>"""
                       b"""<value><string>&f;</string></value></param></params></methodCall>""",
    "not xml": b"hello there",
    "empty": b"",
    "truncated": GET_STATE[:40],
    "no methodName": b"<?xml version='1.0'?><methodCall><params></params></methodCall>",
    "deep nesting": b"<?xml version='1.0'?><methodCall><methodName>system.listMethods</methodName><params>"
                    b"<param><value>" + b"<array><data><value>" * 20000 + b"</value></data></array>" * 20000
                    + b"</value></param></params></methodCall>",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_bodies_are_refused_and_the_daemon_keeps_serving(daemon, name) -> None:
    """Each hostile body gets a 4xx (or a fault), never file content, and the daemon answers after."""
    d = daemon(PROGRAMS)
    status, body = request(UnixHTTPConnection(d.sock, timeout=10), "POST", "/RPC2", HOSTILE[name],
                           {"Content-Type": "text/xml"})
    assert 400 <= status < 500 or (status == 200 and b"<fault>" in body), (status, body[:200])
    assert b"root:" not in body
    assert d.rpc().supervisor.getState()["statename"] == "RUNNING"
    assert "Traceback" not in d.log_text()


def test_empty_method_name_is_unknown_method(daemon) -> None:
    """A call with an empty (or no) method name gets the UNKNOWN_METHOD fault, not HTTP 400."""
    d = daemon(PROGRAMS)
    for body in (b"<?xml version='1.0'?><methodCall><methodName></methodName><params></params></methodCall>",
                 b"<?xml version='1.0'?><methodCall><params></params></methodCall>"):
        status, answer = request(UnixHTTPConnection(d.sock, timeout=10), "POST", "/RPC2", body,
                                 {"Content-Type": "text/xml"})
        assert status == 200
        with pytest.raises(xmlrpc.client.Fault) as fault:
            xmlrpc.client.loads(answer)
        assert (fault.value.faultCode, fault.value.faultString) == (1, "UNKNOWN_METHOD")


@pytest.mark.parametrize("site", ["unix", "tcp"])
def test_oversized_body_answer_reaches_a_client_that_sends_it_all(daemon, site: str) -> None:
    """A client that sends its whole body before reading (xmlrpc.client, requests) still reads the 413:
    the daemon lingers, discarding the body, instead of resetting the connection (3 MB and 100 MB)."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    holder.close()
    d = daemon(PROGRAMS, supervisord_extra=f"\n[inet_http_server]\nport=127.0.0.1:{port}\n")

    def connect() -> http.client.HTTPConnection:
        if site == "unix":
            return UnixHTTPConnection(d.sock, timeout=30)
        return http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    for size in (3 * 1024 * 1024, 100 * 1024 * 1024):
        conn = connect()
        try:
            conn.request("POST", "/RPC2", body=b"<" * size, headers={"Content-Type": "text/xml"})
            response = conn.getresponse()
            response.read()
            response.close()
            assert (response.status, response.reason) == (413, "Request Entity Too Large"), size
        finally:
            conn.close()
    proxy = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}") if site == "tcp" else d.rpc()
    try:
        with pytest.raises(xmlrpc.client.ProtocolError) as refused:
            proxy.supervisor.sendProcessStdin("web", "x" * (3 * 1024 * 1024))
    finally:
        proxy("close")()
    assert refused.value.errcode == 413
    assert d.rpc().supervisor.getState()["statename"] == "RUNNING"


def test_oversized_body_is_413_before_it_is_read(daemon) -> None:
    """A body over the limit is refused from its Content-Length."""
    d = daemon(PROGRAMS)
    conn = UnixHTTPConnection(d.sock, timeout=10)
    try:
        conn.putrequest("POST", "/RPC2")
        conn.putheader("Content-Length", str(64 * 1024 * 1024))
        conn.putheader("Content-Type", "text/xml")
        conn.endheaders()
        conn.send(b"<" * 1024)  # far less than announced: the answer must not wait for the rest
        assert conn.getresponse().status == 413
    finally:
        conn.close()
    assert d.rpc().supervisor.getState()["statename"] == "RUNNING"


def test_loopback_tcp_without_credentials_is_logged(daemon) -> None:
    """A TCP server without credentials is served, with Supervisor's CRIT warning in the log."""
    port = free_port()
    d = daemon(PROGRAMS)
    d.conf.write_text(d.conf.read_text() + f"\n[inet_http_server]\nport=127.0.0.1:{port}\n")
    d.rpc().supervisor.restart()
    wait_until(lambda: request(http.client.HTTPConnection("127.0.0.1", port, timeout=10), "GET", "/ok.html")[0]
               == 200, what="TCP server after restart")
    d.wait_log("Server 'inet_http_server' running without any HTTP authentication checking")
    status, body = request(http.client.HTTPConnection("127.0.0.1", port, timeout=10), "POST", "/RPC2",
                           GET_STATE, {"Content-Type": "text/xml"})
    assert status == 200
    assert b"RUNNING" in body
