"""How the client reaches the daemon: XML-RPC and log streams over a unix socket or TCP, with Basic auth."""

from __future__ import annotations

import base64
import contextlib
import http.client
import socket
import urllib.parse
import xmlrpc.client
from collections.abc import Callable, Iterator

CONNECT_TIMEOUT = 10.0


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over an AF_UNIX stream socket."""

    def __init__(self, path: str, timeout: float | None = CONNECT_TIMEOUT) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
            # Calls like startProcess(wait=True) can take as long as the program's startsecs.
            sock.settimeout(None)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def open_connection(serverurl: str) -> http.client.HTTPConnection:
    """A not-yet-connected HTTP connection to ``serverurl`` (unix:///path or http://host:port)."""
    if serverurl.startswith("unix://"):
        return UnixHTTPConnection(serverurl[len("unix://"):])
    parts = urllib.parse.urlsplit(serverurl)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"url must be http:// or unix://, got {serverurl!r}")
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=CONNECT_TIMEOUT)
    original_connect = conn.connect

    def connect() -> None:
        original_connect()
        if conn.sock is not None:
            conn.sock.settimeout(None)

    conn.connect = connect  # type: ignore[method-assign]
    return conn


def auth_header(username: str | None, password: str | None) -> dict[str, str]:
    """The Authorization header supervisorctl sends (none without a username)."""
    if not username:
        return {}
    token = base64.b64encode(f"{username}:{password or ''}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


class _Transport(xmlrpc.client.Transport):
    """xmlrpc.client's transport, pointed at a unix socket or TCP port, with credentials."""

    def __init__(self, serverurl: str, credentials: Callable[[], tuple[str | None, str | None]]) -> None:
        super().__init__()
        self._serverurl = serverurl
        self._credentials = credentials

    def make_connection(self, host: object) -> http.client.HTTPConnection:
        connection = self._connection[1]
        if connection is None:
            connection = open_connection(self._serverurl)
            self._connection = (None, connection)  # the host part is only read by the make_connection replaced here
        return connection

    def send_headers(self, connection: http.client.HTTPConnection, headers: list[tuple[str, str]]) -> None:
        super().send_headers(connection, headers)
        for key, value in auth_header(*self._credentials()).items():
            connection.putheader(key, value)


def server_proxy(serverurl: str,
                 credentials: Callable[[], tuple[str | None, str | None]]) -> xmlrpc.client.ServerProxy:
    """A ServerProxy whose calls go to ``serverurl``'s /RPC2; credentials are read at each request."""
    return xmlrpc.client.ServerProxy("http://localhost/RPC2", transport=_Transport(serverurl, credentials),
                                     allow_none=False)


class LogStream:
    """A GET of a log-tail endpoint whose body is read as it arrives (tail -f, maintail -f, fg).

    ``close()`` may be called from another thread: it shuts the socket down, which ends ``chunks()``.
    """

    def __init__(self, serverurl: str, path: str, username: str | None, password: str | None) -> None:
        self.url = serverurl + path
        self._conn = open_connection(serverurl)
        self._conn.request("GET", path, headers=auth_header(username, password))
        self._response = self._conn.getresponse()
        if self._response.status != 200:
            status, reason, headers = self._response.status, self._response.reason, self._response.getheaders()
            self._conn.close()
            raise xmlrpc.client.ProtocolError(self.url, status, reason, dict(headers))

    def chunks(self) -> Iterator[bytes]:
        """The body, chunk by chunk, until the server or ``close()`` ends it."""
        try:
            while chunk := self._response.read1(65536):
                yield chunk
        except (OSError, ValueError, http.client.HTTPException):
            return  # closed under us, or the daemon went away
        finally:
            self._conn.close()

    def close(self) -> None:
        """Stop the stream from any thread."""
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
