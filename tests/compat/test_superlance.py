"""The real superlance 2.0 plugins (from PyPI) run as event listeners under procward, unchanged."""

from __future__ import annotations

import sys
from pathlib import Path

from support import free_port, wait_until

BIN = Path(sys.executable).parent


def new_pid(d, name: str, old: int, timeout: float = 30) -> int:
    return wait_until(lambda: (i := d.rpc().supervisor.getProcessInfo(name))["pid"] not in (0, old)
                      and i["statename"] == "RUNNING" and i["pid"], what=f"{name} restarted", timeout=timeout)


def test_memmon_restarts_a_program_that_grows_past_its_limit(daemon) -> None:
    """memmon (TICK_5) sees RSS over 30MB through getAllProcessInfo + ps, and restarts the program."""
    d = daemon(f"""
        [program:grower]
        command={sys.executable} -c "import time; data = b'x' * (80 << 20); time.sleep(300)"
        startsecs=0
        [eventlistener:memmon]
        command={BIN / 'memmon'} -p grower=30MB
        events=TICK_5
        startsecs=0
        """)
    first = d.wait_state("grower", "RUNNING")["pid"]
    new_pid(d, "grower", first, timeout=30)
    d.wait_log("stopped: grower")


def test_httpok_restarts_a_program_whose_port_stops_answering(daemon, tmp_path: Path) -> None:
    """httpok gets HTTP 500 from the program's loopback port and restarts it."""
    port = free_port()
    sick = tmp_path / "sick"
    server = tmp_path / "server.py"
    server.write_text(f"""
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(500 if os.path.exists({str(sick)!r}) else 200)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", {port}), H).serve_forever()
""")
    d = daemon(f"""
        [program:web]
        command={sys.executable} {server}
        startsecs=0
        [eventlistener:httpok]
        command={BIN / 'httpok'} -p web -t 3 http://127.0.0.1:{port}/
        events=TICK_5
        startsecs=0
        """)
    first = d.wait_state("web", "RUNNING")["pid"]
    sick.touch()
    second = new_pid(d, "web", first, timeout=30)
    sick.unlink()
    assert second != first


def test_crashmail_reports_an_unexpected_exit(daemon, tmp_path: Path) -> None:
    """crashmail (PROCESS_STATE_EXITED) mails through a fake sendmail that writes a file."""
    mail = tmp_path / "mail.txt"
    d = daemon(f"""
        [eventlistener:crashmail]
        command={BIN / 'crashmail'} -p crasher -m ops@example.com -s "cat >> {mail}"
        events=PROCESS_STATE_EXITED
        startsecs=0
        [program:crasher]
        command=sh -c 'sleep 0.3; exit 3'
        startsecs=0
        autorestart=false
        autostart=false
        """)
    d.wait_state("crashmail", "RUNNING")
    d.rpc().supervisor.startProcess("crasher")
    # The fake sendmail appends as it reads: wait for the body's last words, not only the subject's.
    text = wait_until(lambda: mail.exists() and "exited unexpectedly (pid " in (t := mail.read_text()) and t,
                      what="crash mail", timeout=20)
    assert "To: ops@example.com" in text
    assert "Process crasher in group crasher exited unexpectedly (pid " in text
