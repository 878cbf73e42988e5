"""Typed keys of the aiohttp application's shared state."""

from __future__ import annotations

from aiohttp import web

from procward.core.supervisor import Supervisor
from procward.rpc.registry import Registry

SUPERVISOR = web.AppKey("supervisor", Supervisor)
REGISTRY = web.AppKey("registry", Registry)
SERVERS = web.AppKey("servers", tuple)
