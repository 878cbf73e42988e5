"""The ``system.*`` namespace: listMethods, methodHelp, methodSignature, multicall."""

from __future__ import annotations

import logging
from typing import Any

from procward.rpc.faults import Faults, RPCError
from procward.rpc.registry import Param, Registry

log = logging.getLogger(__name__)


class SystemNamespace:
    """Introspection and batching over a Registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def listMethods(self) -> list[str]:  # noqa: N802 - the API's names
        return sorted(self.registry.methods)

    async def methodHelp(self, name: str) -> str:  # noqa: N802
        return self._method(name).help

    async def methodSignature(self, name: str) -> list[str]:  # noqa: N802
        return self._method(name).signature()

    def _method(self, name: Any) -> Any:
        method = self.registry.methods.get(name) if isinstance(name, str) else None
        if method is None:
            raise RPCError(Faults.SIGNATURE_UNSUPPORTED)
        return method

    async def multicall(self, calls: list[Any]) -> list[Any]:
        # Supervisor returns each result bare, not wrapped in a one-item array as the multicall
        # convention (and its own docstring) says; clients written against it depend on that.
        results: list[Any] = []
        for call in calls:
            try:
                results.append(await self._one(call))
            except RPCError as exc:
                results.append({"faultCode": int(exc.code), "faultString": exc.text})
            except Exception as exc:  # a boundary: one bad call must not fail the batch
                log.exception("multicall entry failed")
                results.append({"faultCode": int(Faults.FAILED), "faultString": f"FAILED: {exc}"})
        return results

    async def _one(self, call: Any) -> Any:
        if not isinstance(call, dict):
            raise RPCError(Faults.INCORRECT_PARAMETERS, "multicall entries must be structs")
        name = call.get("methodName")
        params = call.get("params", [])
        if not isinstance(name, str):
            raise RPCError(Faults.INCORRECT_PARAMETERS, "No methodName")
        if name == "system.multicall":
            raise RPCError(Faults.INCORRECT_PARAMETERS, "Recursive system.multicall forbidden")
        if not isinstance(params, list | tuple):
            raise RPCError(Faults.INCORRECT_PARAMETERS, "params must be an array")
        return await self.registry.call(name, tuple(params))


def register(registry: Registry, ns: SystemNamespace) -> None:
    """Add the system.* methods to ``registry``."""
    name = Param("name", "any")  # anything that is not a method name is SIGNATURE_UNSUPPORTED
    registry.add("system.listMethods", ns.listMethods, (), "array",
                 "Return an array listing the available method names")
    registry.add("system.methodHelp", ns.methodHelp, (name,), "string",
                 "Return a string showing the method's documentation")
    registry.add("system.methodSignature", ns.methodSignature, (name,), "array",
                 "Return an array describing the method signature in the form [rtype, ptype, ptype...]")
    registry.add("system.multicall", ns.multicall, (Param("calls", "array"),), "array",
                 "Process an array of calls, and return an array of results.")
