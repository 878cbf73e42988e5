"""Which API methods are answered at once (no task, no turn of the loop): those whose code cannot wait,
read from the code itself; and what call_now does with them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from procward.rpc.faults import Faults, RPCError
from procward.rpc.registry import Registry


async def _ticks() -> AsyncIterator[int]:
    yield 1


class _Lock:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_: object) -> None:
        return None


class _Namespace:
    async def plain(self, name: str) -> str:
        """Answer at once.

        @param string name A name
        @return string result The name, upper case
        """
        if name == "bad":
            raise RPCError(Faults.BAD_NAME, name)
        return name.upper()

    async def two(self, name: str, count: int, wait: bool = True) -> list[object]:
        """Check each parameter.

        @param string name A name
        @param int count A count
        @param boolean wait Any value, read as true or false
        @return array result What the method was given
        """
        return [name, count, wait]

    async def sleeps(self) -> bool:
        """Wait.

        @return boolean result Always true
        """
        await asyncio.sleep(0)
        return True

    async def loops(self) -> int:
        """Wait in an async for.

        @return int result One
        """
        async for tick in _ticks():
            return tick
        return 0

    async def locks(self) -> bool:
        """Wait in an async with.

        @return boolean result Always true
        """
        async with _Lock():
            return True

    async def gathers(self) -> list[int]:
        """Wait inside a comprehension.

        @return array result The ticks
        """
        return [tick async for tick in _ticks()]


@pytest.fixture
def registry() -> Registry:
    r = Registry()
    r.add_namespace("t", _Namespace())
    return r


def test_a_method_waits_when_its_code_has_an_await_of_any_form(registry: Registry) -> None:
    assert not registry.methods["t.plain"].waits
    assert all(registry.methods[f"t.{name}"].waits for name in ("sleeps", "loops", "locks", "gathers"))


def test_call_now_gives_the_value_or_raises_the_fault(registry: Registry) -> None:
    method = registry.methods["t.plain"]
    assert registry.call_now(method, ("abc",)) == "ABC"
    with pytest.raises(RPCError) as fault:
        registry.call_now(method, ("bad",))
    assert fault.value.code == Faults.BAD_NAME
    with pytest.raises(RPCError) as wrong:
        registry.call_now(method, ())  # the arity is checked as for call
    assert wrong.value.code == Faults.INCORRECT_PARAMETERS


def test_call_and_call_now_agree(registry: Registry) -> None:
    assert asyncio.run(registry.call("t.plain", ("xyz",))) == registry.call_now(registry.methods["t.plain"], ("xyz",))


def test_each_parameter_is_checked_and_defaults_are_filled_in(registry: Registry) -> None:
    method = registry.methods["t.two"]
    assert registry.call_now(method, ("a", 1)) == ["a", 1, True]
    assert registry.call_now(method, ("a", 1, 0)) == ["a", 1, False]  # a wait flag is any value
    for params in ((), ("a",), ("a", 1, True, "extra"), ("a", "1"), (5, "x"), ("a", True)):
        with pytest.raises(RPCError) as wrong:
            registry.call_now(method, params)
        # A wrong type anywhere wins over a name that matches nothing (as in Supervisor).
        assert wrong.value.code == Faults.INCORRECT_PARAMETERS, params
    with pytest.raises(RPCError) as unknown:
        registry.call_now(method, (5, 1))
    assert unknown.value.code == Faults.BAD_NAME
