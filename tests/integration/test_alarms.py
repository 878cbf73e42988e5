"""Alarms through real channels: a webhook receiver on loopback, a command, and a fake sendmail script;
batching and rate limiting asserted by counting what arrived."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import wait_until
from test_beyond import refused_option
from test_supervise import control

PY = sys.executable


class Receiver:
    """An HTTP server on loopback recording every POST body; answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict] = []
        self.status = status
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append(json.loads(body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alarms(self) -> list[dict]:
        return [a for body in self.bodies for a in body.get("alarms", [])]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def channels(tmp_path: Path, webhook: str, **extra: str) -> str:
    """[supervisord] lines for the three channels: webhook, a command and a fake sendmail."""
    command = tmp_path / "on_alarm.sh"
    # Each fake channel writes under another name and renames: a test never reads a half-written file.
    command.write_text(f"#!/bin/sh\ncat > {tmp_path}/partial.$$\nmv {tmp_path}/partial.$$ {tmp_path}/command.$$.json\n"
                       f"echo \"$PROCWARD_ALARM_EVENT $PROCWARD_ALARM_PROGRAM $PROCWARD_ALARM_COUNT\" "
                       f">> {tmp_path}/command.env\n")
    command.chmod(0o755)
    sendmail = tmp_path / "sendmail"
    sendmail.write_text(f"#!/bin/sh\necho \"args: $*\" > {tmp_path}/partial.$$\ncat >> {tmp_path}/partial.$$\n"
                        f"mv {tmp_path}/partial.$$ {tmp_path}/mail.$$\n")
    sendmail.chmod(0o755)
    options = {"alarm_webhook": webhook, "alarm_command": str(command), "alarm_mail": "ops@example.com",
               "alarm_sendmail": f"{sendmail} -t -i", "alarm_batch": "0.3", **extra}
    return "\n".join(f"{k}={v}" for k, v in options.items())


def mails(tmp_path: Path) -> list[str]:
    return [p.read_text() for p in sorted(tmp_path.glob("mail.*"))]


def test_fatal_alarm_reaches_every_channel_with_what_an_operator_needs(daemon, tmp_path: Path,
                                                                        receiver: Receiver) -> None:
    d = daemon("""
        [program:dies]
        command=sh -c 'echo boom-out; echo boom-err >&2; exit 3'
        startsecs=5
        startretries=0
        stdout_logfile=%(here)s/dies.out
        stderr_logfile=%(here)s/dies.err
        """, supervisord_extra=channels(tmp_path, receiver.url))
    d.wait_state("dies", "FATAL")
    [alarm] = wait_until(lambda: receiver.alarms(), what="the webhook alarm")
    assert alarm["event"] == "fatal"
    assert alarm["program"] == "dies"
    assert alarm["host"] == os.uname().nodename
    assert "Exited too quickly" in alarm["detail"]
    assert alarm["exit"] == "exit status 3"
    assert "boom-out" in alarm["stdout"]
    assert "boom-err" in alarm["stderr"]

    env = wait_until(lambda: (tmp_path / "command.env").exists() and (tmp_path / "command.env").read_text(),
                     what="the command channel")
    assert env == "fatal dies 1\n"
    [stdin] = [json.loads(p.read_text()) for p in tmp_path.glob("command.*.json")]
    assert stdin["alarms"][0]["program"] == "dies"

    [mail] = wait_until(lambda: mails(tmp_path), what="the mail")
    assert mail.startswith("args: -t -i\n")
    assert "To: ops@example.com" in mail
    assert f"Subject: [procward] {os.uname().nodename}: dies fatal" in mail
    assert "boom-err" in mail
    assert "exit: exit status 3" in mail


def test_many_programs_failing_at_once_send_one_message(daemon, tmp_path: Path, receiver: Receiver) -> None:
    programs = "".join(f"""
        [program:p{i}]
        command=sh -c 'exit 1'
        startsecs=5
        startretries=0
        autostart=false
        """ for i in range(6))
    programs += "\n        [group:g]\n        programs=" + ",".join(f"p{i}" for i in range(6)) + "\n"
    d = daemon(programs, supervisord_extra=channels(tmp_path, receiver.url, alarm_batch="3"))
    d.rpc().supervisor.startProcessGroup("g", False)  # six failures at once, as at a host's boot
    for i in range(6):
        d.wait_state(f"g:p{i}", "FATAL")
    wait_until(lambda: len(receiver.alarms()) == 6, what="six alarms")
    assert len(receiver.bodies) == 1  # one message
    [mail] = wait_until(lambda: mails(tmp_path), what="one mail")
    assert "and 5 more" in mail
    assert sorted(a["program"] for a in receiver.alarms()) == [f"g:p{i}" for i in range(6)]


def test_repeats_within_the_interval_are_counted_not_sent(daemon, tmp_path: Path, receiver: Receiver) -> None:
    """A crash loop: the first exit alarms at once, the repeats within alarm_interval are counted and the
    count arrives with the next alarm; flapping alarms once."""
    d = daemon("""
        [program:loop]
        command=sh -c 'sleep 0.1; exit 1'
        startsecs=0
        """, supervisord_extra=channels(tmp_path, receiver.url, alarm_interval="1.5", alarm_batch="0.1",
                                         alarm_events="exit, flapping", alarm_flapping="3/60"))
    exits = wait_until(lambda: [a for a in receiver.alarms() if a["event"] == "exit"][:2] if
                       len([a for a in receiver.alarms() if a["event"] == "exit"]) >= 2 else None,
                       what="two exit alarms", timeout=20)
    assert exits[0]["suppressed"] == 0
    assert exits[1]["suppressed"] >= 3  # ~10 exits in 1.5 s: counted, not sent
    assert exits[1]["time"] - exits[0]["time"] >= 1.5
    flapping = [a for a in receiver.alarms() if a["event"] == "flapping"]
    assert len(flapping) == 1
    assert "restarts within 60s" in flapping[0]["detail"]
    d.rpc().supervisor.stopProcess("loop")


def test_silence_resume_test_and_status_from_ctl(daemon, tmp_path: Path, receiver: Receiver) -> None:
    d = daemon("""
        [program:dies]
        command=sh -c 'exit 1'
        startsecs=5
        startretries=0
        autostart=false
        """, supervisord_extra=channels(tmp_path, receiver.url) + "\nsupervise_dir=%(here)s/status")

    def ctl(*args: str) -> subprocess.CompletedProcess[str]:
        return d.ctl("alarm", *args)

    assert ctl("silence", "dies").stdout == "dies: alarms silenced\n"
    status = json.loads(ctl("status", "--json").stdout)
    assert status["silenced"] == ["dies"]
    assert status["channels"] == ["command", "webhook", "mail"]
    d.rpc().supervisor.startProcess("dies", False)
    d.wait_state("dies", "FATAL")
    test = ctl("test")
    assert test.returncode == 0, test.stdout
    assert test.stdout.splitlines() == ["command: delivered", "mail: delivered", "webhook: delivered"]
    assert [a["event"] for a in receiver.alarms()] == ["test"]  # the silenced FATAL sent nothing
    assert ctl("resume", "dies").stdout == "dies: alarms resumed\n"
    nothing = ctl("silence", "nothing")
    assert nothing.returncode != 0
    assert "nothing: ERROR (no such process)" in nothing.stdout

    helped = d.ctl("help", "alarm")
    assert "alarm test\t\tSend a test alarm through every configured channel" in helped.stdout

    control(tmp_path / "status" / "dies", "s")  # supervise's "s" is the same request
    wait_until(lambda: json.loads(ctl("status", "--json").stdout)["silenced"] == ["dies"], what="silenced by s")


def test_failing_channels_are_retried_logged_and_never_block(daemon, tmp_path: Path) -> None:
    """A webhook answering 500 and a mail command that does not exist: each retried, a warning logged,
    the daemon answering all along."""
    failing = Receiver(status=500)
    try:
        d = daemon("""
            [program:dies]
            command=sh -c 'exit 1'
            startsecs=5
            startretries=0
            """, supervisord_extra=f"alarm_webhook={failing.url}\nalarm_mail=ops@example.com\n"
                                   f"alarm_sendmail={tmp_path}/no-such-sendmail\nalarm_batch=0.1")
        d.wait_state("dies", "FATAL")
        wait_until(lambda: len(failing.bodies) == 3, what="three webhook attempts", timeout=15)
        assert d.rpc().supervisor.getState()["statename"] == "RUNNING"
        d.wait_log("alarms: webhook failed: HTTP 500")
        d.wait_log("alarms: mail failed: exit status 127")
        state = d.rpc().procward.getAlarmState()
        wait_until(lambda: d.rpc().procward.getAlarmState()["failed"] == 2, what="both counted failed",
                   timeout=15)
        assert state["sent"] == 0
    finally:
        failing.server.shutdown()
        failing.server.server_close()


@pytest.mark.parametrize(("option", "expected"), [
    ("alarm_interval = 5", "no alarm channel is configured"),
    ("alarm_mail = not-an-address", "not a mail address"),
    ("alarm_webhook = ftp://example.com/x", "expected an http:// or https:// URL"),
    ("alarm_mail = a@b\nalarm_events = fatal, explosions", "unknown alarm event 'explosions'"),
    ("alarm_mail = a@b\nalarm_flapping = 5", "expected RESTARTS/SECONDS"),
    ("alarm_mail = a@b\nalarm_webhook_format = xml", "expected json or slack"),
])
def test_alarm_option_errors_are_located(tmp_path: Path, option: str, expected: str) -> None:
    conf = tmp_path / "supervisord.conf"
    conf.write_text(f"[supervisord]\n{option}\n[program:a]\ncommand=sleep 1\n")
    from test_beyond import procward_check

    check = procward_check(conf)
    assert check.returncode == 2, check.stderr
    assert f"{conf}:" in check.stderr
    assert expected in check.stderr
    assert "Traceback" not in check.stderr
    refused = refused_option(tmp_path, "alarm_events = sometimes")[1]
    assert "unknown alarm event 'sometimes'" in refused


def test_max_tries_if_coredumped_gives_up(daemon, tmp_path: Path) -> None:
    from test_supervise import _cores_dump

    if not _cores_dump(tmp_path):
        pytest.skip("this kernel does not write core files here (core_pattern is a pipe)")
    d = daemon("""
        [program:cores]
        command=sh -c 'ulimit -c unlimited; kill -SEGV $$'
        directory=%(here)s
        startsecs=0
        autorestart=true
        max_tries_if_coredumped=1
        """)
    info = d.wait_state("cores", "FATAL", timeout=20)
    assert "dumped core 2 times (max_tries_if_coredumped)" in info["spawnerr"]


def test_an_alarm_storm_drops_the_oldest_and_says_how_many(daemon, tmp_path: Path) -> None:
    """A slow channel and a one-message queue: programs failing 0.3 s apart while one delivery takes 2 s
    leave some messages dropped; the count reaches the next message and getAlarmState."""
    slow = tmp_path / "slow.sh"
    # Written whole, then renamed: the test never reads a file the script is still writing.
    slow.write_text(f"#!/bin/sh\ncat > {tmp_path}/partial.$$\nmv {tmp_path}/partial.$$ {tmp_path}/slow.$$.json\n"
                    "sleep 2\n")
    slow.chmod(0o755)
    programs = "".join(f"""
        [program:p{i}]
        command=sh -c 'sleep {0.3 * i:.1f}; exit 1'
        startsecs=30
        startretries=0
        """ for i in range(1, 8))
    d = daemon(programs, supervisord_extra=f"alarm_command={slow}\nalarm_queue=1\nalarm_batch=0.05")
    for i in range(1, 8):
        d.wait_state(f"p{i}", "FATAL")
    wait_until(lambda: d.rpc().procward.getAlarmState()["dropped"] >= 1, what="a dropped message", timeout=20)
    d.wait_log("alarms: delivery queue full (1 messages): the oldest is dropped")
    bodies = wait_until(lambda: (found := [json.loads(p.read_text()) for p in tmp_path.glob("slow.*.json")])
                        and any(b["dropped"] for b in found) and found, what="a message naming the drops",
                        timeout=20)
    delivered = {a["program"] for b in bodies for a in b["alarms"]}
    assert len(delivered) < 7  # some never left: dropped, and counted
    assert d.rpc().supervisor.getState()["statename"] == "RUNNING"


class SMTPSink:
    """A minimal SMTP server on loopback (no TLS) keeping each message's DATA."""

    def __init__(self) -> None:
        import socketserver

        self.messages: list[str] = []
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self.wfile.write(b"220 sink\r\n")
                while line := self.rfile.readline():
                    verb = line.split(b" ", 1)[0].strip().upper()
                    if verb == b"DATA":
                        self.wfile.write(b"354 go on\r\n")
                        data = b""
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            data += chunk
                        sink.messages.append(data.decode())
                    elif verb == b"QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    self.wfile.write(b"250 ok\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_mail_over_smtp(daemon, tmp_path: Path) -> None:
    sink = SMTPSink()
    try:
        d = daemon("""
            [program:dies]
            command=sh -c 'exit 1'
            startsecs=5
            startretries=0
            """, supervisord_extra=f"alarm_mail=ops@example.com, dev@example.com\nalarm_smtp=127.0.0.1:{sink.port}\n"
                                   "alarm_smtp_starttls=false\nalarm_mail_from=pw@example.com\nalarm_batch=0.1")
        d.wait_state("dies", "FATAL")
        [message] = wait_until(lambda: sink.messages, what="the SMTP message")
        assert "To: ops@example.com, dev@example.com" in message
        assert "From: pw@example.com" in message
        assert "dies fatal" in message
    finally:
        sink.server.shutdown()
        sink.server.server_close()


def test_check_prints_the_alarm_settings_without_the_smtp_password(tmp_path: Path) -> None:
    from test_beyond import procward_check

    conf = tmp_path / "supervisord.conf"
    conf.write_text("[supervisord]\nalarm_mail=ops@example.com\nalarm_smtp=mail.example.com:587\n"
                    "alarm_smtp_username=bot\nalarm_smtp_password=s3cret-Pa55\n[program:a]\ncommand=sleep 1\n")
    check = procward_check(conf)
    assert check.returncode == 0, check.stderr
    assert "alarms.smtp_password = <hidden>" in check.stdout
    assert "s3cret-Pa55" not in check.stdout
    assert "alarms.mail = ops@example.com" in check.stdout


def test_metrics_still_scrape_after_an_alarm_went_out_first(daemon, receiver: Receiver) -> None:
    """The webhook's HTTP client is imported before anything else needs one; /metrics (whose library
    wants HTTPS support in that client) must not be left without it."""
    from test_metrics import samples

    d = daemon("""
        [program:dies]
        command=sh -c 'exit 3'
        startsecs=5
        startretries=0
        """, supervisord_extra=f"alarm_webhook={receiver.url}\nalarm_batch=0.1")
    d.wait_state("dies", "FATAL")
    [alarm] = wait_until(lambda: receiver.alarms(), what="the webhook alarm, before any scrape")
    assert (alarm["exit"], alarm["exit_code"], alarm["signal"]) == ("exit status 3", 3, None)
    found = samples(d)  # asserts 200
    assert any(name == "procward_process_state" for name, _ in found)
    found = wait_until(lambda: (f := samples(d)).get(("procward_alarms_total", (
        ("channel", "webhook"), ("event", "fatal"), ("result", "delivered")))) == 1 and f,
        what="the delivered alarm counted")
    assert found["procward_process_last_exit_code", (("group", "dies"), ("name", "dies"))] == 3


def test_alarms_carry_a_signal_as_a_number_and_failures_are_counted(daemon) -> None:
    """An exit by signal: ``signal`` 9 and no ``exit_code``; a webhook answering 500 counts as failed."""
    from test_metrics import samples

    failing = Receiver(status=500)
    try:
        d = daemon("""
            [program:victim]
            command=sleep 300
            startsecs=0
            autorestart=false
            """, supervisord_extra=f"alarm_webhook={failing.url}\nalarm_batch=0.1\nalarm_events=exit")
        pid = d.wait_state("victim", "RUNNING")["pid"]
        os.kill(pid, signal.SIGKILL)
        [alarm] = wait_until(lambda: failing.alarms(), what="the exit alarm")
        assert (alarm["event"], alarm["exit_code"], alarm["signal"]) == ("exit", None, 9)
        key = ("procward_alarms_total", (("channel", "webhook"), ("event", "exit"), ("result", "failed")))
        wait_until(lambda: samples(d).get(key) == 1, what="the failed alarm counted (after its retries)", timeout=20)
    finally:
        failing.server.shutdown()
        failing.server.server_close()
