"""The daemon keeps ssl out of asyncio only: whatever is imported first, every other module that can use
TLS gets it (an alarm's HTTP client imported before /metrics' once broke every scrape)."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest

MODULES = ["urllib.request", "smtplib", "xmlrpc.client", "prometheus_client.exposition"]
CHECK = """
import sys
from procward.core import sslgate
sslgate.keep_out()
import asyncio, asyncio.sslproto
assert "ssl" not in sys.modules and asyncio.sslproto.ssl is None, "asyncio loaded ssl"
for name in {order!r}:
    __import__(name)
import http.client, smtplib, urllib.request
assert hasattr(http.client, "HTTPSConnection") and hasattr(urllib.request, "HTTPSHandler") and smtplib._have_ssl
print("ok")
"""


@pytest.mark.parametrize("order", list(itertools.permutations(MODULES, 2)))
def test_no_import_order_leaves_a_module_without_tls(order: tuple[str, str]) -> None:
    run = subprocess.run([sys.executable, "-c", CHECK.format(order=list(order))], capture_output=True, text=True,
                         timeout=60, check=False)
    assert run.stdout == "ok\n", run.stderr

