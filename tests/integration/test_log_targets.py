"""Several targets in one *_logfile (Go supervisord's syntax): files, and syslog over UDP and TCP."""

from __future__ import annotations

import os
import re
import socket
import threading
from pathlib import Path

import pytest
from support import wait_until

CHATTY = "sh -c 'i=0; while true; do i=$((i+1)); echo \"line $i\"; echo \"oops $i\" >&2; sleep 0.05; done'"


def test_two_files_get_the_same_output(daemon, tmp_path: Path) -> None:
    """a.log, b.log: both are written; the first is the log that tail and readProcessStdoutLog read."""
    d = daemon(f"""
        [program:w]
        command={CHATTY}
        startsecs=0
        stdout_logfile=%(here)s/a.log, %(here)s/b.log
        """)
    wait_until(lambda: (tmp_path / "b.log").exists() and b"line 3\n" in (tmp_path / "b.log").read_bytes(),
               what="the second file written")
    assert (tmp_path / "a.log").read_bytes().startswith(b"line 1\nline 2\n")
    assert d.rpc().supervisor.readProcessStdoutLog("w", 0, 7) == "line 1\n"
    assert d.rpc().supervisor.getProcessInfo("w")["stdout_logfile"] == str(tmp_path / "a.log")


def test_syslog_over_udp(daemon, tmp_path: Path) -> None:
    """syslog @udp:127.0.0.1:PORT: one RFC 3164 datagram a line, with the facility, priority and tag set."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(10)
    port = receiver.getsockname()[1]
    try:
        daemon(f"""
            [program:w]
            command={CHATTY}
            startsecs=0
            stdout_logfile=%(here)s/w.log, syslog @udp:127.0.0.1:{port}
            stderr_logfile=syslog @127.0.0.1:{port}
            syslog_facility=local3
            syslog_tag=webapp
            syslog_stderr_priority=err
            """)
        seen = [receiver.recv(4096).decode() for _ in range(6)]
    finally:
        receiver.close()
    out = [m for m in seen if "line" in m]
    err = [m for m in seen if "oops" in m]
    assert out
    assert err
    assert re.fullmatch(r"<157>\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ webapp\[\d+\]: line \d+", out[0]), out[0]  # 19*8+5
    assert err[0].startswith("<155>")  # local3 (19) * 8 + err (3)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_syslog_over_udp_sends_the_first_line_of_each_stream(daemon, host: str) -> None:
    """The first line of each stream arrives, for a written-out address (nothing to resolve) and for a
    name (resolved off the loop while the lines wait)."""
    family, _, _, _, address = socket.getaddrinfo(host, 0, type=socket.SOCK_DGRAM)[0]  # where the daemon sends
    receiver = socket.socket(family, socket.SOCK_DGRAM)
    receiver.bind((address[0], 0))
    receiver.settimeout(10)
    port = receiver.getsockname()[1]
    try:
        daemon(f"""
            [program:w]
            command=sh -c 'echo out-1; echo err-1 >&2; echo out-2; echo err-2 >&2; exec sleep 300'
            startsecs=0
            stdout_logfile=syslog @udp:{host}:{port}
            stderr_logfile=syslog @udp:{host}:{port}
            """)
        seen = {receiver.recv(4096).decode().rsplit(": ", 1)[1] for _ in range(4)}
    finally:
        receiver.close()
    assert seen == {"out-1", "out-2", "err-1", "err-2"}


def test_syslog_over_tcp_waits_for_its_server_and_never_blocks_the_program(daemon, tmp_path: Path) -> None:
    """syslog @tcp: the server is down at first (one error line, the program runs on), then comes up:
    messages arrive octet-counted, and the log says it is written again."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    d = daemon(f"""
        [program:w]
        command={CHATTY}
        startsecs=0
        stdout_logfile=%(here)s/w.log, syslog @tcp:127.0.0.1:{port}
        """)
    d.wait_log(f"cannot send output to syslog tcp:127.0.0.1:{port}")
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen()
    server.settimeout(20)
    received = bytearray()

    def accept() -> None:
        conn, _ = server.accept()
        conn.settimeout(20)
        with conn:
            while len(received) < 2000:
                data = conn.recv(65536)
                if not data:
                    return
                received.extend(data)

    reader = threading.Thread(target=accept, daemon=True)
    reader.start()
    try:
        reader.join(timeout=30)
    finally:
        server.close()
    frames, data = [], bytes(received)
    while b" " in data:  # RFC 6587 octet counting: LENGTH SP MESSAGE, back to back
        length, _, rest = data.partition(b" ")
        if len(rest) < int(length):
            break  # the last one, cut by the reader
        frames.append(rest[:int(length)])
        data = rest[int(length):]
    assert len(frames) > 5, bytes(received[:300])
    assert all(re.fullmatch(rb"<133>.+ w\[\d+\]: line \d+", frame) for frame in frames), frames[:3]
    d.wait_log(f"syslog 127.0.0.1:{port} is written again")
    assert d.state("w") == "RUNNING"
    assert d.log_text().count("cannot send output to syslog") == 1  # rate-limited


@pytest.mark.parametrize(("value", "expected"), [
    ("%(here)s/a.log, syslog @tcp:host:notaport", "expected a port between 1 and 65535"),
    ("%(here)s/a.log, syslog @", "expected syslog or syslog @[udp:|tcp:]host[:port]"),
])
def test_a_malformed_target_is_a_config_error(tmp_path: Path, value: str, expected: str) -> None:
    """A target that does not parse names the option."""
    from procward.config.build import load
    from procward.errors import ConfigError

    conf = tmp_path / "x.conf"
    conf.write_text(f"[supervisord]\nlogfile={tmp_path}/m.log\n[program:a]\ncommand=sleep 1\n"
                    f"stdout_logfile={value}\n")
    with pytest.raises(ConfigError) as error:
        load(str(conf))
    assert str(error.value).startswith(f"{conf}:5: [program:a] stdout_logfile: {expected}")


def test_supervisors_stdout_syslog_option(daemon, tmp_path: Path) -> None:
    """stdout_syslog=true (Supervisor 4): each line to the local syslog as '<name> <line>', and the log file
    is still written. Needs /dev/log free to bind (root, no syslog daemon), as on CI machines."""
    if os.geteuid() != 0 or os.path.exists("/dev/log"):
        pytest.skip("needs root and no syslog daemon on /dev/log, to listen there")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind("/dev/log")
    receiver.settimeout(10)
    try:
        daemon(f"""
            [program:w]
            command={CHATTY}
            startsecs=0
            stdout_logfile=%(here)s/w.log
            stdout_syslog=true
            """)
        message = receiver.recv(4096).decode()
    finally:
        receiver.close()
        os.unlink("/dev/log")
    assert re.fullmatch(r"<14>.*w line \d+", message), message  # LOG_USER | LOG_INFO, as Supervisor sends
    wait_until(lambda: (tmp_path / "w.log").exists() and (tmp_path / "w.log").stat().st_size, what="log file")
