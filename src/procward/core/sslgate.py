"""The daemon keeps OpenSSL out of its process until a feature needs it.

The daemon speaks plain HTTP only; keeping ssl unloaded saves ~4 MB of RSS (asyncio and http.client
import it only if they can). A few libraries import it unconditionally (anyio under watchfiles,
prometheus_client's exposition module): the feature that loads them lets it in first.
"""

from __future__ import annotations

import sys


def keep_out() -> None:
    """Make ``import ssl`` fail (ImportError) until ``let_in``; a no-op if ssl is loaded already."""
    sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]


def let_in() -> None:
    """Undo ``keep_out``: the next ``import ssl`` loads it."""
    if "ssl" in sys.modules and sys.modules["ssl"] is None:
        del sys.modules["ssl"]
