"""Every XML-RPC method, right and wrong calls, sent to supervisord 4.3 and to procward side by side.

supervisord is the oracle: where it answers a fault, procward answers the same fault code; where it
answers a value, procward answers a value of the same type and shape. Where supervisord answers
HTTP 500 with a traceback in its log (wrong argument types), procward answers a fault and logs nothing.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
import xmlrpc.client
from pathlib import Path
from typing import Any

import pytest
from support import Daemon, rpc_client, wait_until

PROGRAMS = """
    [program:web]
    command=sleep 300
    startsecs=0
    [program:idle]
    command=sleep 300
    autostart=false
    startsecs=0
    [program:talk]
    command=sh -c 'echo hello; echo oops >&2; exec sleep 300'
    startsecs=0
    [group:pool]
    programs=p
    [program:p]
    command=sleep 300
    numprocs=2
    process_name=p%(process_num)d
    startsecs=0
    """

# Argument lists tried on every method: none, wrong types, wrong counts, unknown and known names.
ARGUMENTS: list[tuple[Any, ...]] = [
    (), ({"a": 1},), (1, 2), (["x"],), ("nope",), ("nope", "x"), ("nope:*",), ("pool:nope",), ("web",),
    ("talk", 0, 100), ("talk", -5, 0), ("talk", 0, -1), ("web", "CONT"), ("web", "NOSUCHSIG"), ("web", 99999),
    ("pool:*",), ("pool", "CONT"), ("idle", "text"), (True,), ("web", "data", "extra"), ({"a": 1},) * 6,
]
SKIPPED = {"supervisor.shutdown", "supervisor.restart"}


class Supervisord:
    """supervisord 4.3 from PyPI on the same programs, in its own directory."""

    def __init__(self, tmp: Path) -> None:
        header = textwrap.dedent(Daemon.HEADER).format(supervisord_extra="", server_extra="", ctl_extra="")
        self.conf = tmp / "supervisord.conf"
        self.conf.write_text(header.replace("procward", "supervisord") + textwrap.dedent(PROGRAMS))
        self.sock = str(tmp / "supervisord.sock")
        self.log = tmp / "main.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.rpc().supervisor.getState()["statename"] == "RUNNING", what="supervisord up",
                   timeout=20)

    def rpc(self) -> Any:
        return rpc_client(self.sock)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def outcome(proxy: Any, method: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """('fault', code), ('ok', shape) or ('http', status) for one call."""
    try:
        value = getattr(proxy, method)(*args)
    except xmlrpc.client.Fault as exc:
        return ("fault", exc.faultCode)
    except xmlrpc.client.ProtocolError as exc:
        return ("http", exc.errcode)
    return ("ok", shape(value))


def shape(value: Any) -> Any:
    """The type structure of a value: what clients depend on, without pids and times."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    theirs = Supervisord(tmp_path_factory.mktemp("supervisord"))
    ours = Daemon(tmp_path_factory.mktemp("procward"), PROGRAMS).start()
    try:
        for proxy in (theirs.rpc(), ours.rpc()):
            wait_until(lambda p=proxy: all(i["statename"] == "RUNNING" for i in p.supervisor.getAllProcessInfo()
                                           if i["name"] != "idle"), what="programs running", timeout=20)
        yield theirs, ours
    finally:
        theirs.stop()
        ours.stop()


def test_same_method_list_signatures_and_help(pair) -> None:
    """system.listMethods, methodSignature and methodHelp agree for every method (help up to indentation:
    procward answers the docstring without its source indentation)."""
    theirs, ours = pair
    methods = theirs.rpc().system.listMethods()
    listed = ours.rpc().system.listMethods()
    # procward's own namespace is the one addition (supervisorctl never calls it); the rest is identical.
    assert [m for m in listed if not m.startswith("procward.")] == methods
    assert [m for m in listed if m.startswith("procward.")] == [
        "procward.getAlarmState", "procward.reexec", "procward.resumeAlarms", "procward.rollingRestart", "procward.silenceAlarms",
        "procward.testAlarm", "procward.update"]
    for method in methods:
        assert ours.rpc().system.methodSignature(method) == theirs.rpc().system.methodSignature(method), method
        assert ours.rpc().system.methodHelp(method) == inspect.cleandoc(theirs.rpc().system.methodHelp(method))


def test_every_method_with_right_and_wrong_arguments(pair) -> None:
    """Same fault codes and return shapes as supervisord; a fault where supervisord answers HTTP 500."""
    theirs, ours = pair
    methods = [m for m in theirs.rpc().system.listMethods() if m not in SKIPPED]
    mismatches = []
    for method in methods:
        for args in ARGUMENTS:
            expected = outcome(theirs.rpc(), method, args)
            got = outcome(ours.rpc(), method, args)
            if expected[0] == "http":
                ok = got[0] != "http"  # supervisord's 500 is a bug, not a contract
            elif method == "supervisor.getAllConfigInfo" and got[0] == "ok":
                ok = shape_keys(got[1]) >= shape_keys(expected[1])  # procward may add keys
            elif method == "system.listMethods" and got[0] == "ok":
                ok = got[1][:len(expected[1])] == expected[1]  # the procward.* names come on top (checked above)
            else:
                ok = got == expected or extra_keys_only(expected, got)
            if not ok:
                mismatches.append(f"{method}{args!r}: supervisord {expected}, procward {got}")
    assert not mismatches, "\n".join(mismatches)
    assert "Traceback" not in ours.log_text()


def shape_keys(value: Any) -> set[str]:
    return set(value[0]) if isinstance(value, list) and value else set()


def extra_keys_only(expected: tuple[Any, ...], got: tuple[Any, ...]) -> bool:
    """procward may add keys to a dict (never change or drop Supervisor's)."""
    if expected[0] != "ok" or got[0] != "ok":
        return False
    return _covers(expected[1], got[1])


def _covers(theirs: Any, ours: Any) -> bool:
    if isinstance(theirs, dict) and isinstance(ours, dict):
        return all(key in ours and _covers(value, ours[key]) for key, value in theirs.items())
    if isinstance(theirs, list) and isinstance(ours, list):
        return len(theirs) == len(ours) and all(_covers(a, b) for a, b in zip(theirs, ours, strict=True))
    return bool(theirs == ours)


def test_multicall_matches(pair) -> None:
    """system.multicall: results and faults in order, nested multicall refused, as supervisord."""
    theirs, ours = pair
    calls = [
        {"methodName": "supervisor.getAPIVersion", "params": []},
        {"methodName": "supervisor.getProcessInfo", "params": ["nope"]},
        {"methodName": "supervisor.nosuch", "params": []},
        {"methodName": "system.multicall", "params": [[]]},
        {"methodName": "supervisor.getState", "params": []},
    ]
    expected = theirs.rpc().system.multicall(calls)
    got = ours.rpc().system.multicall(calls)
    assert shape(got) == shape(expected)
    assert [r.get("faultCode") if isinstance(r, dict) else None for r in got] == \
           [r.get("faultCode") if isinstance(r, dict) else None for r in expected]
    assert got[0] == "3.0"
    assert got[4] == {"statecode": 1, "statename": "RUNNING"}
    # Entries supervisord answers with HTTP 500: procward faults just that entry.
    broken = ours.rpc().system.multicall([{"params": []}, "not a struct", {"methodName": "supervisor.getPID"}])
    assert [r.get("faultCode") if isinstance(r, dict) else r for r in broken] == [2, 2, ours.proc.pid]


def test_version_answers(pair) -> None:
    """The values supervisorctl and other tools check."""
    theirs, ours = pair
    for name in ("getAPIVersion", "getVersion", "getSupervisorVersion", "getState"):
        assert getattr(ours.rpc().supervisor, name)() == getattr(theirs.rpc().supervisor, name)(), name
    assert ours.rpc().supervisor.getIdentification() == "supervisor"
    assert ours.rpc().supervisor.getPID() == ours.proc.pid
