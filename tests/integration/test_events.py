"""Events and event listeners: every Supervisor event type, the listener protocol and its edge cases."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from support import wait_until

from procward.config.eventnames import ancestry

LISTENER = Path(__file__).resolve().parents[1] / "programs" / "listener.py"


def listener(events: str, record: Path, *options: str, extra: str = "") -> str:
    return f"""
        [eventlistener:listen]
        command={sys.executable} {LISTENER} {record} {' '.join(options)}
        events={events}
        startsecs=0
        {extra}
        """


def records(record: Path) -> list[dict[str, Any]]:
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines()]


def wait_records(record: Path, check, what: str, timeout: float = 15.0) -> list[dict[str, Any]]:
    return wait_until(lambda: (r := records(record)) and check(r) and r, what=what, timeout=timeout)


def named(recs: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [r for r in recs if r["eventname"].startswith(prefix)]


def test_process_state_events_have_supervisors_payloads(daemon, tmp_path: Path) -> None:
    """STARTING/RUNNING/STOPPING/STOPPED/EXITED/BACKOFF/FATAL with from_state, tries, expected, pid."""
    record = tmp_path / "events.jsonl"
    d = daemon(listener("PROCESS_STATE", record) + """
        [program:web]
        command=sleep 300
        startsecs=0
        autostart=false
        [program:quick]
        command=sh -c 'exit 0'
        startsecs=0
        autostart=false
        autorestart=false
        [program:broken]
        command=sh -c 'exit 3'
        startsecs=1
        startretries=1
        autostart=false
        """)
    d.wait_state("listen", "RUNNING")
    sup = d.rpc().supervisor
    sup.startProcess("web")
    pid = sup.getProcessInfo("web")["pid"]
    sup.stopProcess("web")
    sup.startProcess("quick")
    d.wait_state("quick", "EXITED")
    sup.startProcess("broken", False)
    d.wait_state("broken", "FATAL")

    def payloads(recs: list[dict[str, Any]], process: str) -> list[tuple[str, str]]:
        return [(r["eventname"], r["payload"]) for r in recs if f"processname:{process} " in r["payload"]]

    recs = wait_records(record, lambda r: any("FATAL" in x["eventname"] for x in r), "FATAL event")
    assert payloads(recs, "web") == [
        ("PROCESS_STATE_STARTING", "processname:web groupname:web from_state:STOPPED tries:0"),
        ("PROCESS_STATE_RUNNING", f"processname:web groupname:web from_state:STARTING pid:{pid}"),
        ("PROCESS_STATE_STOPPING", f"processname:web groupname:web from_state:RUNNING pid:{pid}"),
        ("PROCESS_STATE_STOPPED", f"processname:web groupname:web from_state:STOPPING pid:{pid}"),
    ]
    quick = payloads(recs, "quick")
    assert [name for name, _ in quick] == ["PROCESS_STATE_STARTING", "PROCESS_STATE_RUNNING",
                                           "PROCESS_STATE_EXITED"]
    assert quick[2][1].startswith("processname:quick groupname:quick from_state:RUNNING expected:1 pid:")
    assert payloads(recs, "broken") == [
        ("PROCESS_STATE_STARTING", "processname:broken groupname:broken from_state:STOPPED tries:0"),
        ("PROCESS_STATE_BACKOFF", "processname:broken groupname:broken from_state:STARTING tries:1"),
        ("PROCESS_STATE_STARTING", "processname:broken groupname:broken from_state:BACKOFF tries:1"),
        ("PROCESS_STATE_BACKOFF", "processname:broken groupname:broken from_state:STARTING tries:2"),
        ("PROCESS_STATE_FATAL", "processname:broken groupname:broken from_state:BACKOFF"),
    ]


def test_envelope_header_serials_and_length(daemon, tmp_path: Path) -> None:
    """ver/server/serial/pool/poolserial/eventname/len as Supervisor writes them."""
    record = tmp_path / "events.jsonl"
    d = daemon(listener("REMOTE_COMMUNICATION", record), supervisord_extra="identifier=box-7")
    d.wait_state("listen", "RUNNING")
    for i in range(3):
        d.rpc().supervisor.sendRemoteCommEvent(f"kind{i}", f"data {i}")
    recs = wait_records(record, lambda r: len(r) == 3, "three events")
    assert [r["payload"] for r in recs] == ["type:kind0\ndata 0", "type:kind1\ndata 1", "type:kind2\ndata 2"]
    assert {r["ver"] for r in recs} == {"3.0"}
    assert {r["server"] for r in recs} == {"box-7"}
    assert {r["pool"] for r in recs} == {"listen"}
    assert [int(r["poolserial"]) for r in recs] == [0, 1, 2]
    serials = [int(r["serial"]) for r in recs]
    assert serials == sorted(serials)
    assert len(set(serials)) == 3
    assert all(int(r["len"]) == len(r["payload"]) for r in recs)


def test_log_communication_group_and_supervisor_events(daemon, tmp_path: Path) -> None:
    """PROCESS_LOG, PROCESS_COMMUNICATION (capture mode), PROCESS_GROUP_*, SUPERVISOR_STATE_CHANGE."""
    record = tmp_path / "events.jsonl"
    d = daemon(listener("PROCESS_LOG,PROCESS_COMMUNICATION,PROCESS_GROUP,SUPERVISOR_STATE_CHANGE", record) + """
        [program:talk]
        command=sh -c 'echo hello; echo oops >&2; exec sleep 300'
        startsecs=0
        stdout_events_enabled=true
        stderr_events_enabled=true
        [program:comm]
        command=sh -c 'printf "before<!--XSUPERVISOR:BEGIN-->secret message<!--XSUPERVISOR:END-->after\\n"; exec sleep 300'
        startsecs=0
        stdout_capture_maxbytes=1MB
        stdout_logfile=%(here)s/comm.log
        """)
    recs = wait_records(record, lambda r: named(r, "PROCESS_COMMUNICATION") and len(named(r, "PROCESS_LOG")) >= 2,
                        "log and communication events")
    talk_pid = d.rpc().supervisor.getProcessInfo("talk")["pid"]
    comm_pid = d.rpc().supervisor.getProcessInfo("comm")["pid"]
    logs = sorted((r["eventname"], r["payload"]) for r in named(recs, "PROCESS_LOG"))
    assert logs == [
        ("PROCESS_LOG_STDERR", f"processname:talk groupname:talk pid:{talk_pid} channel:stderr\noops\n"),
        ("PROCESS_LOG_STDOUT", f"processname:talk groupname:talk pid:{talk_pid} channel:stdout\nhello\n"),
    ]
    comm = named(recs, "PROCESS_COMMUNICATION")
    assert [(r["eventname"], r["payload"]) for r in comm] == [
        ("PROCESS_COMMUNICATION_STDOUT", f"processname:comm groupname:comm pid:{comm_pid}\nsecret message")]
    wait_until(lambda: (tmp_path / "comm.log").read_text() == "beforeafter\n", what="log without the message")
    assert [r["payload"] for r in named(recs, "SUPERVISOR_STATE_CHANGE")] == [""]
    assert named(recs, "SUPERVISOR_STATE_CHANGE")[0]["eventname"] == "SUPERVISOR_STATE_CHANGE_RUNNING"
    groups = [(r["eventname"], r["payload"]) for r in named(recs, "PROCESS_GROUP")]
    assert ("PROCESS_GROUP_ADDED", "groupname:talk\n") in groups
    d.rpc().supervisor.stopProcess("talk")
    d.rpc().supervisor.removeProcessGroup("talk")
    wait_records(record, lambda r: any(x["eventname"] == "PROCESS_GROUP_REMOVED" and
                                       x["payload"] == "groupname:talk\n" for x in r), "group removed event")


def test_tick_5(daemon, tmp_path: Path) -> None:
    """TICK_5 arrives at a 5-second boundary with when: set to it."""
    record = tmp_path / "events.jsonl"
    d = daemon(listener("TICK_5", record))
    d.wait_state("listen", "RUNNING")
    recs = wait_records(record, lambda r: len(r) >= 1, "a TICK_5", timeout=12)
    assert recs[0]["eventname"] == "TICK_5"
    when = int(recs[0]["payload"].removeprefix("when:"))
    assert when % 5 == 0


def test_fail_is_sent_again(daemon, tmp_path: Path) -> None:
    """RESULT FAIL puts the event back: the same serial comes again until OK."""
    record = tmp_path / "events.jsonl"
    d = daemon(listener("REMOTE_COMMUNICATION", record, "--fail-first", "2"))
    d.wait_state("listen", "RUNNING")
    d.rpc().supervisor.sendRemoteCommEvent("t", "once")
    recs = wait_records(record, lambda r: any(x["answer"] == "OK" for x in r), "the event accepted")
    assert [r["answer"] for r in recs] == ["FAIL", "FAIL", "OK"]
    assert len({r["serial"] for r in recs}) == 1
    assert len({r["poolserial"] for r in recs}) == 1
    assert "listen: event was rejected" in d.log_text()


def test_listener_killed_mid_event_loses_nothing(daemon, tmp_path: Path) -> None:
    """A listener that dies holding an event: the restarted listener gets the same event."""
    record = tmp_path / "events.jsonl"
    d = daemon(listener("REMOTE_COMMUNICATION", record, "--die-first"))
    d.wait_state("listen", "RUNNING")
    d.rpc().supervisor.sendRemoteCommEvent("t", "precious")
    recs = wait_records(record, lambda r: any(x["answer"] == "OK" for x in r), "the event redelivered")
    assert [r["answer"] for r in recs] == ["died", "OK"]
    assert recs[0]["serial"] == recs[1]["serial"]
    assert recs[1]["payload"] == "type:t\nprecious"


def test_buffer_overflow_discards_oldest_and_logs(daemon, tmp_path: Path) -> None:
    """buffer_size=2 and five events while the listener is not READY: the two newest arrive."""
    record = tmp_path / "events.jsonl"
    gate = tmp_path / "go"
    d = daemon(listener("REMOTE_COMMUNICATION", record, "--slow-ready", str(gate), extra="buffer_size=2"))
    d.wait_state("listen", "RUNNING")
    for i in range(5):
        d.rpc().supervisor.sendRemoteCommEvent("t", str(i))
    d.wait_log("pool listen event buffer overflowed, discarding event")
    gate.touch()
    recs = wait_records(record, lambda r: len(r) >= 2, "buffered events")
    assert [r["payload"] for r in recs] == ["type:t\n3", "type:t\n4"]


def test_bad_result_line_rebuffers_and_stops_the_listener(daemon, tmp_path: Path) -> None:
    """A malformed RESULT line: logged, the listener gets nothing more, the event is kept."""
    record = tmp_path / "events.jsonl"
    d = daemon(listener("REMOTE_COMMUNICATION", record, "--bad-result"))
    d.wait_state("listen", "RUNNING")
    d.rpc().supervisor.sendRemoteCommEvent("t", "a")
    d.wait_log("listen: bad result line: 'RESULT x'")
    d.rpc().supervisor.sendRemoteCommEvent("t", "b")
    # Restarting the listener gives a fresh protocol state; the kept event comes first.
    d.rpc().supervisor.stopProcess("listen")
    before = len(records(record))
    d.rpc().supervisor.startProcess("listen")
    recs = wait_records(record, lambda r: len(r) >= before + 1, "redelivery after restart")
    assert recs[before]["payload"] == "type:t\na"


def test_procward_event_types_are_not_under_event() -> None:
    """A Supervisor listener subscribed to EVENT never sees procward's own types."""
    assert "EVENT" in ancestry("PROCESS_STATE_RUNNING")
    for name in ("PROCWARD_HEALTH_UNHEALTHY", "PROCWARD_PROCESS_READY", "PROCWARD_MEMORY_LIMIT"):
        assert "EVENT" not in ancestry(name)
