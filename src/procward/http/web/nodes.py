"""Other daemons shown on the page (``[node:NAME]`` sections): plain XML-RPC calls to their /RPC2, over a
unix socket or TCP, each bounded in time, so a stock supervisord 4.3 works as a node and a node that does
not answer costs the page at most NODE_TIMEOUT.

The calls are async on the daemon's loop (no thread, nothing left hanging). xmlrpc.client is imported
only when a node is configured: the daemon does not load it otherwise (docs/performance.md: memory).
"""

from __future__ import annotations

import asyncio
import base64
import urllib.parse
from dataclasses import dataclass
from typing import Any

from procward.config.model import NodeConfig

NODE_TIMEOUT = 5.0  # seconds for one call to another daemon, connect to last byte
MAX_ANSWER = 16 * 1024 * 1024


class NodeError(Exception):
    """The node did not answer, or answered something that is not an XML-RPC response."""


@dataclass(frozen=True, slots=True)
class NodeFault(Exception):
    """The node answered with an XML-RPC fault."""

    code: int
    text: str


async def call(node: NodeConfig, method: str, *params: Any) -> Any:
    """Call ``method`` on ``node``; NodeError when it cannot be reached, NodeFault for a fault."""
    import xmlrpc.client

    body = xmlrpc.client.dumps(tuple(params), method).encode()
    headers = ["POST /RPC2 HTTP/1.0", "Content-Type: text/xml", f"Content-Length: {len(body)}",
               "User-Agent: procward-web"]
    if node.username is not None and node.password is not None:
        token = base64.b64encode(f"{node.username}:{node.password}".encode()).decode()
        headers.append(f"Authorization: Basic {token}")
    try:
        async with asyncio.timeout(NODE_TIMEOUT):
            answer = await _exchange(node.serverurl, "\r\n".join(headers).encode() + b"\r\n\r\n" + body)
    except TimeoutError:
        raise NodeError(f"no answer within {NODE_TIMEOUT:g}s") from None
    except OSError as exc:
        raise NodeError(exc.strerror or str(exc)) from None
    head, _, payload = answer.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or status[1] != b"200":
        raise NodeError(f"answered {b' '.join(status[1:]).decode('latin-1') or 'nothing'}")
    try:
        return xmlrpc.client.loads(payload)[0][0]
    except xmlrpc.client.Fault as fault:
        raise NodeFault(fault.faultCode, fault.faultString) from None
    except Exception as exc:  # noqa: BLE001 - whatever the parser says, it is not an XML-RPC answer
        raise NodeError(f"not an XML-RPC answer ({type(exc).__name__})") from None


async def _exchange(serverurl: str, request: bytes) -> bytes:
    if serverurl.startswith("unix://"):
        reader, writer = await asyncio.open_unix_connection(serverurl[len("unix://"):])
    else:
        parts = urllib.parse.urlsplit(serverurl)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
    try:
        writer.write(request)
        await writer.drain()
        answer = await reader.read(MAX_ANSWER)
        while chunk := await reader.read(MAX_ANSWER):
            answer += chunk
            if len(answer) > MAX_ANSWER:
                raise NodeError("answer too large")
        return answer
    finally:
        writer.close()
