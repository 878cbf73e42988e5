"""The method table: names, parameter types, docstrings; dispatch with arity and type checks."""

from __future__ import annotations

import dis
import inspect
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

from procward.rpc.faults import Faults, RPCError


def _strict(*types: type) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, types) or (int in types and bool not in types and isinstance(value, bool)):
            raise RPCError(Faults.INCORRECT_PARAMETERS)
        return value
    return check


def _name(value: Any) -> Any:
    # Supervisor looks any value up as a name: an unhashable one is a parameter error, any other
    # value that is not a string names nothing.
    if isinstance(value, dict | list):
        raise RPCError(Faults.INCORRECT_PARAMETERS)
    if not isinstance(value, str):
        raise RPCError(Faults.BAD_NAME, str(value))
    return value


def _config_name(value: Any) -> Any:
    # addProcessGroup compares the value with each configured group's name: no match, whatever its type.
    if not isinstance(value, str):
        raise RPCError(Faults.BAD_NAME, str(value))
    return value


# How each parameter kind is checked. Supervisor is dynamically typed: a 'wait' flag is any value
# (PHP and shell clients send 0/1 or strings), remote-comm text is formatted with %s. Matching that
# keeps those clients working; everything else gets a fault instead of Supervisor's HTTP 500.
_COERCE: dict[str, Callable[[Any], Any]] = {
    "string": _strict(str),
    "name": _name,
    "config_name": _config_name,
    "text": str,
    "int": _strict(int),
    "boolean": bool,
    "array": _strict(list, tuple),
    "struct": _strict(dict),
    "signal": _strict(str, int, bool),  # a name ('HUP') or a number; Supervisor reads True as 1
    "any": lambda value: value,
}
Handler = Callable[..., Coroutine[Any, Any, Any]]

# The check a parameter gets when its method does not name one (see ``checks``): by its name, else by
# the XML-RPC type its docstring gives it.
_KIND_BY_NAME = {"name": "name", "wait": "boolean", "signal": "signal"}


def checks(**kinds: str) -> Callable[[Handler], Handler]:
    """Name the check of some parameters of a method (a key of _COERCE), where the default is wrong."""
    def mark(handler: Handler) -> Handler:
        handler.__rpc_kinds__ = kinds  # type: ignore[attr-defined]
        return handler
    return mark


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter: its name, how its value is checked, and its default when optional."""

    name: str
    kind: str
    default: Any = inspect.Parameter.empty

    @property
    def optional(self) -> bool:
        return self.default is not inspect.Parameter.empty


@dataclass(frozen=True, slots=True)
class Method:
    """A callable method of the API; its help is its docstring, its signature comes from the help's tags."""

    name: str
    handler: Handler
    params: tuple[Param, ...]
    help: str
    waits: bool = True  # its code awaits something; False: it always finishes in one step (call_now)
    # Read from ``params`` once (check_params runs at every call): how many are required, each one's check.
    required: int = field(init=False)
    checks: tuple[Callable[[Any], Any], ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "required", sum(1 for p in self.params if not p.optional))
        object.__setattr__(self, "checks", tuple(_COERCE[p.kind] for p in self.params))

    def signature(self) -> list[str]:
        """system.methodSignature: return type, then parameter types, from @return / @param (as Supervisor)."""
        returns, types = "", []
        for line in self.help.splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] == "@param":
                types.append(words[1])
            elif len(words) >= 2 and words[0] == "@return":
                returns = words[1]
        return [returns, *types]


def _method(name: str, handler: Handler) -> Method:
    doc = inspect.getdoc(handler)
    if not doc or "@return" not in doc:
        raise TypeError(f"RPC method {name} needs a docstring with @param and @return tags")
    declared = {}
    for line in doc.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "@param":
            declared[words[2]] = words[1]
    overrides: dict[str, str] = getattr(handler, "__rpc_kinds__", {})
    params = []
    for parameter in inspect.signature(handler).parameters.values():
        kind = overrides.get(parameter.name) or _KIND_BY_NAME.get(parameter.name) or declared[parameter.name]
        if kind not in _COERCE:
            raise TypeError(f"RPC method {name}: no check for parameter kind {kind!r}")
        params.append(Param(parameter.name, kind, parameter.default))
    return Method(name, handler, tuple(params), doc, _awaits(handler.__code__))


# Every await, async for and async with suspends through YIELD_VALUE; a coroutine whose code (with the
# code of the comprehensions in it) has none finishes in the step that starts it.
_YIELD = dis.opmap["YIELD_VALUE"]


def _awaits(code: CodeType) -> bool:
    # Instructions are two bytes, the opcode first (inline caches are CACHE instructions): the opcodes are
    # the even bytes. dis.get_instructions made an object per instruction, 3.5 ms of every start.
    return _YIELD in code.co_code[::2] or any(
        _awaits(const) for const in code.co_consts if isinstance(const, CodeType))


class Registry:
    """All methods by full name (``namespace.method``)."""

    def __init__(self) -> None:
        self.methods: dict[str, Method] = {}

    def add_namespace(self, prefix: str, namespace: object, aliases: dict[str, str] | None = None) -> None:
        """Register every public coroutine method of ``namespace`` as ``prefix.name``, and the aliases."""
        for attr in dir(namespace):
            handler = getattr(namespace, attr)
            if not attr.startswith("_") and inspect.iscoroutinefunction(handler):
                self.methods[f"{prefix}.{attr}"] = _method(f"{prefix}.{attr}", handler)
        for alias, target in (aliases or {}).items():
            self.methods[f"{prefix}.{alias}"] = self.methods[f"{prefix}.{target}"]

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

    def call_now(self, method: Method, params: tuple[Any, ...]) -> Any:
        """``call`` for a method that does not wait (``waits`` False), run to its end here: no task."""
        assert not method.waits
        coroutine = method.handler(*check_params(method, params))
        try:
            coroutine.send(None)
        except StopIteration as done:
            return done.value
        coroutine.close()
        raise RuntimeError(f"{method.name} waited, though its code has no await")


def check_params(method: Method, params: tuple[Any, ...]) -> list[Any]:
    """Positional arguments, checked or coerced per kind, defaults filled in; a fault on a wrong count."""
    given = len(params)
    if not method.required <= given <= len(method.params):
        raise RPCError(Faults.INCORRECT_PARAMETERS)
    args, errors = [], []
    for check, value in zip(method.checks, params, strict=False):
        try:
            args.append(check(value))
        except RPCError as exc:
            errors.append(exc)
    if errors:  # as in Supervisor, a wrong type anywhere wins over a name that matches nothing
        raise next((e for e in errors if e.code == Faults.INCORRECT_PARAMETERS), errors[0])
    if given < len(method.params):
        args.extend(p.default for p in method.params[given:])
    return args
