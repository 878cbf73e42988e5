"""The whole XML-RPC API for one Supervisor: one registry with every namespace."""

from __future__ import annotations

from procward.core.daemon.supervisor import Supervisor
from procward.rpc import procward_ns, supervisor_ns, system_ns
from procward.rpc.registry import Registry


def build(supervisor: Supervisor) -> Registry:
    """A registry holding supervisor.*, procward.* and system.* bound to ``supervisor``."""
    registry = Registry()
    supervisor_ns.register(registry, supervisor_ns.SupervisorNamespace(supervisor))
    procward_ns.register(registry, procward_ns.ProcwardNamespace(supervisor))
    system_ns.register(registry, system_ns.SystemNamespace(registry))
    return registry
