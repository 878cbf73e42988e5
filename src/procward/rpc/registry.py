"""The method table: names, parameter types, docstrings; dispatch with arity and type checks."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from procward.rpc.faults import Faults, RPCError

_XMLRPC_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "int": (int,),
    "boolean": (bool, int),  # some clients send 0/1 for booleans; Supervisor accepts any truthy value
    "array": (list, tuple),
    "struct": (dict,),
    "signal": (str, int),  # a name ('HUP') or a number, as a string or an int
}

Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter: its name, XML-RPC type, and default when optional."""

    name: str
    kind: str
    default: Any = inspect.Parameter.empty

    @property
    def optional(self) -> bool:
        return self.default is not inspect.Parameter.empty


@dataclass(frozen=True, slots=True)
class Method:
    """A callable method of the API."""

    name: str
    handler: Handler
    params: tuple[Param, ...]
    returns: str
    help: str

    def signature(self) -> list[str]:
        """system.methodSignature: return type, then parameter types."""
        return [self.returns, *("string" if p.kind == "signal" else p.kind for p in self.params)]


class Registry:
    """All methods by full name (``namespace.method``)."""

    def __init__(self) -> None:
        self.methods: dict[str, Method] = {}

    def add(self, name: str, handler: Handler, params: tuple[Param, ...], returns: str, help_text: str) -> None:
        """Register ``handler`` under ``name``."""
        self.methods[name] = Method(name, handler, params, returns, inspect.cleandoc(help_text))

    def lookup(self, name: str) -> Method:
        """The method, or UNKNOWN_METHOD (also for names that are not exactly namespace.method)."""
        parts = name.split(".")
        if len(parts) != 2 or any(part.startswith("_") or not part for part in parts):
            raise RPCError(Faults.UNKNOWN_METHOD)
        method = self.methods.get(name)
        if method is None:
            raise RPCError(Faults.UNKNOWN_METHOD)
        return method

    async def call(self, name: str, params: tuple[Any, ...]) -> Any:
        """Check arity and types, then run the method."""
        method = self.lookup(name)
        args = check_params(method, params)
        return await method.handler(*args)


def check_params(method: Method, params: tuple[Any, ...]) -> list[Any]:
    """Positional arguments with defaults filled in; INCORRECT_PARAMETERS on a wrong count or type."""
    required = sum(1 for p in method.params if not p.optional)
    if not required <= len(params) <= len(method.params):
        raise RPCError(Faults.INCORRECT_PARAMETERS)
    args = list(params)
    for spec, value in zip(method.params, params, strict=False):
        allowed = _XMLRPC_TYPES[spec.kind]
        if not isinstance(value, allowed) or (spec.kind == "int" and isinstance(value, bool)):
            raise RPCError(Faults.INCORRECT_PARAMETERS)
    args.extend(p.default for p in method.params[len(params):])
    return args
