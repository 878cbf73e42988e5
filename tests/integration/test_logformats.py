"""Child logs as lines: a time prefix, JSON Lines, a container's prefix; partial and long lines."""

from __future__ import annotations

import datetime
import json
import re
import sys
from pathlib import Path

import pytest

WRITER = """import os, sys, time
w = lambda b: os.write(1, b)
w(b'one\\ntwo "quoted" back\\\\slash\\ttab\\n')
w(b'caf\\xe9 latin-1\\n')
w(b'x' * 40000 + b'\\n')
w(b'crlf line\\r\\n')
w(b'waiting...')
time.sleep(4)  # the partial line is written after IDLE_FLUSH (2 s), before the rest comes
w(b' done\\r\\n')  # a CRLF alone in its read block
w(b'last words')
"""


def run(daemon, tmp_path: Path, options: str) -> list[str]:
    (tmp_path / "writer.py").write_text(WRITER)
    options = options.replace("\n", "\n        ")  # keep the block's indentation for dedent
    d = daemon(f"""
        [program:w]
        command={sys.executable} %(here)s/writer.py
        startsecs=0
        autorestart=false
        stdout_logfile=%(here)s/w.log
        {options}
        """)
    d.wait_state("w", "EXITED", timeout=20)
    return (tmp_path / "w.log").read_text(errors="replace").splitlines()


def test_json_lines(daemon, tmp_path: Path) -> None:
    """Every line is a JSON object with the documented fields; escapes round-trip; bytes that are not
    UTF-8 are replaced and flagged; a 40 KB line comes in flagged pieces; an idle partial line is written
    flagged after a while, and the last partial line at exit."""
    records = [json.loads(line) for line in run(daemon, tmp_path, "stdout_log_format=json")]
    messages = [r["message"] for r in records]
    assert messages[:2] == ["one", 'two "quoted" back\\slash\ttab']
    assert records[0].keys() == {"time", "name", "group", "pid", "stream", "message"}
    assert records[0]["name"] == "w"
    assert records[0]["stream"] == "stdout"
    assert datetime.datetime.fromisoformat(records[0]["time"]).tzinfo is not None
    latin = records[2]
    assert latin["message"] == "caf\ufffd latin-1"
    assert latin["undecodable"] is True
    pieces = [r for r in records if set(r["message"]) == {"x"}]
    assert [len(r["message"]) for r in pieces] == [16384, 16384, 40000 - 32768]
    assert all(r.get("partial") for r in pieces)
    assert "crlf line" in messages
    waiting = messages.index("waiting...")
    assert records[waiting]["partial"] is True  # written while the program slept
    assert messages[waiting + 1] == " done"
    assert records[-1] == {**records[-1], "message": "last words", "partial": True}


def test_text_lines_with_time_and_name(daemon, tmp_path: Path) -> None:
    """text: each line after its time (and the name); partial lines flagged."""
    lines = run(daemon, tmp_path, "stdout_log_format=text\nstdout_log_name=true\nstdout_log_time_format=local")
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.fullmatch(stamp + r" w one", lines[0]), lines[0]
    assert re.fullmatch(stamp + r' w two "quoted" back\\slash\ttab', lines[1]), lines[1]
    assert re.fullmatch(stamp + r" w waiting\.\.\. \[partial\]", next(x for x in lines if "waiting" in x))
    assert lines[-1].endswith(" w last words [partial]")


def test_container_prefix(daemon, tmp_path: Path) -> None:
    """container: NAME | line, whole lines only."""
    lines = run(daemon, tmp_path, "stdout_log_format=container")
    assert lines[:2] == ["w | one", 'w | two "quoted" back\\slash\ttab']
    assert all(line.startswith("w | ") for line in lines)


def test_raw_stays_byte_identical(daemon, tmp_path: Path) -> None:
    """The default writes the bytes as they came, nothing added."""
    run(daemon, tmp_path, "")
    data = (tmp_path / "w.log").read_bytes()
    assert data.startswith(b'one\ntwo "quoted" back\\slash\ttab\ncaf\xe9 latin-1\n')
    assert data.endswith(b"waiting... done\r\nlast words")


def test_a_bad_format_is_a_config_error(tmp_path: Path) -> None:
    """An unknown format names the option and the choices."""
    from procward.config.build import load
    from procward.errors import ConfigError

    conf = tmp_path / "x.conf"
    conf.write_text(f"[supervisord]\nlogfile={tmp_path}/m.log\n[program:a]\ncommand=sleep 1\n"
                    "stdout_log_format=xml\n")
    with pytest.raises(ConfigError) as error:
        load(str(conf))
    assert str(error.value) == (f"{conf}:5: [program:a] stdout_log_format: expected one of raw, text, json, "
                                "container, got 'xml'")
