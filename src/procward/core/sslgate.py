"""The daemon keeps OpenSSL out of asyncio, and only out of asyncio.

asyncio imports ssl whenever it can, for TLS transports the daemon never uses (it serves plain HTTP;
https health checks are refused at config load), and that import alone loads OpenSSL (~4 MB of RSS).
So ``import ssl`` fails inside asyncio's modules. Every other importer gets ssl: a module that imports it
only if it can (http.client, urllib.request, smtplib) decides at its own import, once for the life of
the process, whether it supports TLS. Refusing ssl to those made one feature break another depending on
which was used first (an alarm sent through a webhook before the first /metrics scrape left
urllib.request without HTTPS, and prometheus_client's exposition module, which needs it, failed at every
scrape). Refusing it to asyncio alone is the same decision at every start, whatever the configuration
and whatever is used first.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import importlib.machinery

_GATED = "asyncio"


def _importer() -> str:
    """The name of the module whose code is running the import under way (past importlib's frames)."""
    frame = sys._getframe(2)
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if name != "importlib" and not name.startswith(("importlib.", "_frozen_importlib")):
            return name
        frame = frame.f_back  # type: ignore[assignment]
    return ""


class _NoSslForAsyncio:
    """A meta path finder (the protocol is this one method: importlib.abc's base class would import
    importlib.resources, ~3 ms of every start)."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname == "ssl":
            importer = _importer()
            if importer == _GATED or importer.startswith(_GATED + "."):
                raise ModuleNotFoundError("procward keeps ssl out of asyncio (procward.core.sslgate)", name="ssl")
        return None  # any other module, and any other importer: the usual finders


def keep_out() -> None:
    """From now on asyncio's modules see no ssl module (a no-op when ssl or asyncio is loaded already:
    then nothing would be saved)."""
    if "ssl" in sys.modules or _GATED in sys.modules:
        return
    if not any(isinstance(finder, _NoSslForAsyncio) for finder in sys.meta_path):
        sys.meta_path.insert(0, _NoSslForAsyncio())
