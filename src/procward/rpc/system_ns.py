"""The ``system.*`` namespace: listMethods, methodHelp, methodSignature, multicall."""

from __future__ import annotations

import logging
from typing import Any

from procward.rpc.faults import Faults, RPCError
from procward.rpc.registry import Method, Registry, checks

log = logging.getLogger(__name__)


class SystemNamespace:
    """Introspection and batching over a Registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def listMethods(self) -> list[str]:
        """Return an array listing the available method names

        @return array result  An array of method names available (strings).
        """
        return sorted(self.registry.methods)

    @checks(name="any")  # anything that is not a method name is SIGNATURE_UNSUPPORTED
    async def methodHelp(self, name: str) -> str:
        """Return a string showing the method's documentation

        @param string name   The name of the method.
        @return string result The documentation for the method name.
        """
        return self._method(name).help

    @checks(name="any")  # anything that is not a method name is SIGNATURE_UNSUPPORTED
    async def methodSignature(self, name: str) -> list[str]:
        """Return an array describing the method signature in the
        form [rtype, ptype, ptype...] where rtype is the return data type
        of the method, and ptypes are the parameter data types that the
        method accepts in method argument order.

        @param string name  The name of the method.
        @return array result  The result.
        """
        return self._method(name).signature()

    def _method(self, name: object) -> Method:
        method = self.registry.methods.get(name) if isinstance(name, str) else None
        if method is None:
            raise RPCError(Faults.SIGNATURE_UNSUPPORTED)
        return method

    async def multicall(self, calls: list[Any]) -> list[Any]:
        """Process an array of calls, and return an array of
        results. Calls should be structs of the form {'methodName':
        string, 'params': array}. Each result will either be a
        single-item array containing the result value, or a struct of
        the form {'faultCode': int, 'faultString': string}. This is
        useful when you need to make lots of small calls without lots
        of round trips.

        @param array calls  An array of call requests
        @return array result  An array of results
        """
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
    registry.add_namespace("system", ns)
