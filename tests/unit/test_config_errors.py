"""Every configuration mistake is one line naming file, line, section and option: never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from procward.config.build import load
from procward.errors import ConfigError

HEAD = "[supervisord]\nlogfile=/tmp/x.log\n"


def write(path: Path, text: str) -> str:
    path.write_text(textwrap.dedent(text))
    return str(path)


CASES = [
    ("wrong value", "[program:a]\ncommand=sleep 1\nstartsecs=ten\n", 5, "program:a", "startsecs",
     "expected an integer"),
    ("unknown signal", "[program:a]\ncommand=sleep 1\nstopsignal=FOO\n", 5, "program:a", "stopsignal",
     "expected a signal name"),
    ("bad byte size", "[program:a]\ncommand=sleep 1\nstdout_logfile_maxbytes=10XB\n", 5, "program:a",
     "stdout_logfile_maxbytes", "expected a byte size"),
    ("missing command", "[program:a]\nautostart=true\n", 3, "program:a", "command", "missing required option"),
    ("unset env var", "[program:a]\ncommand=run %(ENV_NOPE_NOT_SET)s\n", 4, "program:a", "command",
     "ENV_NOPE_NOT_SET"),
    ("numprocs without process_num", "[program:a]\ncommand=sleep 1\nnumprocs=2\n", 3, "program:a",
     "process_name", "%(process_num)s"),
    ("nonexistent user", "[program:a]\ncommand=sleep 1\nuser=no_such_user_xyz\n", 5, "program:a", "user",
     "no such user"),
    ("bad boolean", "[program:a]\ncommand=sleep 1\nautostart=maybe\n", 5, "program:a", "autostart",
     "expected a boolean"),
    ("bad autorestart", "[program:a]\ncommand=sleep 1\nautorestart=sometimes\n", 5, "program:a", "autorestart",
     "expected true, false or unexpected"),
    ("bad exitcodes", "[program:a]\ncommand=sleep 1\nexitcodes=0,300\n", 5, "program:a", "exitcodes",
     "between 0 and 255"),
    ("stopasgroup without killasgroup", "[program:a]\ncommand=sleep 1\nstopasgroup=true\nkillasgroup=false\n",
     6, "program:a", "killasgroup", "cannot be false"),
    ("unknown event", "[eventlistener:l]\ncommand=cat\nevents=NOPE\n", 5, "eventlistener:l", "events",
     "unknown event type"),
    ("bad environment", '[program:a]\ncommand=sleep 1\nenvironment=A=1,B\n', 5, "program:a", "environment",
     "KEY=value"),
    ("half credentials", "[inet_http_server]\nport=:9001\nusername=u\n", 3, "inet_http_server", "password",
     "together"),
    ("bad port", "[inet_http_server]\nport=:99999\n", 4, "inet_http_server", "port", "port between"),
    ("unknown group member", "[group:g]\nprograms=nope\n", 4, "group:g", "programs", "unknown program"),
    ("socket scheme", "[program:a]\ncommand=sleep 1\nsockets=http://127.0.0.1:80\n", 5, "program:a", "sockets",
     "expected tcp://host:port, udp://host:port or unix:///path"),
    ("socket port", "[program:a]\ncommand=sleep 1\nsockets=tcp://127.0.0.1:70000\n", 5, "program:a", "sockets",
     "port from 1 to 65535"),
    ("unnamed sockets", "[program:a]\ncommand=sleep 1\nsockets=tcp://127.0.0.1:8001, tcp://127.0.0.1:8002\n", 5,
     "program:a", "sockets", "give each socket a name"),
    ("socket name", "[program:a]\ncommand=sleep 1\nsockets=my-web=tcp://127.0.0.1:8001\n", 5, "program:a",
     "sockets", "letters, digits and _"),
    ("socket dir", "[program:a]\ncommand=sleep 1\nsockets=unix:///no/such/dir/a.sock\n", 5, "program:a",
     "sockets", "the directory /no/such/dir does not exist"),
    ("socket relative", "[program:a]\ncommand=sleep 1\nsockets=unix://a.sock\n", 5, "program:a", "sockets",
     "absolute path"),
    ("foreign address", "[program:a]\ncommand=sleep 1\nsockets=tcp://192.0.2.1:8001\n", 5, "program:a", "sockets",
     "192.0.2.1 is not an address of this host"),
    ("socket mode on tcp", "[program:a]\ncommand=sleep 1\nsockets=tcp://127.0.0.1:8001\nsockets_mode=0600\n", 6,
     "program:a", "sockets_mode", "only to unix:// sockets"),
    ("socket option alone", "[program:a]\ncommand=sleep 1\nsockets_backlog=10\n", 5, "program:a",
     "sockets_backlog", "applies only with sockets ="),
]


@pytest.mark.parametrize(("label", "body", "line", "section", "option", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_error_is_located(tmp_path: Path, label: str, body: str, line: int, section: str, option: str,
                          expected: str) -> None:
    """The error names the file, the line of the bad option, the section, the option and the expectation."""
    path = write(tmp_path / "supervisord.conf", HEAD + body)
    with pytest.raises(ConfigError) as info:
        load(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: [{section}] {option}: "), message
    assert expected in message


def test_include_cycle(tmp_path: Path) -> None:
    """A file including one of its includers is an error that shows the whole chain."""
    main = write(tmp_path / "supervisord.conf", HEAD + "[include]\nfiles=a.conf\n")
    write(tmp_path / "a.conf", "[include]\nfiles=b.conf\n")
    write(tmp_path / "b.conf", "[include]\nfiles=a.conf\n")
    with pytest.raises(ConfigError, match="include cycle") as info:
        load(main)
    assert "a.conf -> " in str(info.value)
    assert str(tmp_path / "b.conf") in str(info.value)


def test_unreadable_include(tmp_path: Path) -> None:
    """An include that matches a file procward cannot read names the include line."""
    main = write(tmp_path / "supervisord.conf", HEAD + "[include]\nfiles=conf.d/*.conf\n")
    (tmp_path / "conf.d").mkdir()
    bad = tmp_path / "conf.d" / "x.conf"
    bad.write_text("[program:x]\ncommand=sleep 1\n")
    bad.chmod(0)
    if os.access(bad, os.R_OK):  # root reads anything: make it unreadable another way
        bad.unlink()
        bad.mkdir()
    with pytest.raises(ConfigError, match="not a readable file") as info:
        load(main)
    assert str(info.value).startswith(f"{main}:4: [include] files: ")


def test_same_program_in_two_files(tmp_path: Path) -> None:
    """The copy-paste mistake: one [program:x] in two files is an error naming both."""
    main = write(tmp_path / "supervisord.conf", HEAD + "[include]\nfiles=*.ini\n[program:web]\ncommand=a\n")
    other = write(tmp_path / "copy.ini", "[program:web]\ncommand=b\n")
    with pytest.raises(ConfigError, match="defined in two files") as info:
        load(main)
    assert f"{main}:5" in str(info.value)
    assert f"{other}:2" in str(info.value)


def test_two_programs_asking_for_one_socket(tmp_path: Path) -> None:
    """One address in two programs is an error naming both sections; numprocs copies of one share it."""
    main = write(tmp_path / "supervisord.conf", HEAD + "[program:a]\ncommand=a\nsockets=tcp://127.0.0.1:8001\n"
                 "[program:b]\ncommand=b\nsockets=web=tcp://127.0.0.1:8001\n")
    with pytest.raises(ConfigError, match="one socket has one program") as info:
        load(main)
    assert f"[program:a] ({main}:3)" in str(info.value)
    assert f"[program:b] ({main}:6)" in str(info.value)
    write(tmp_path / "supervisord.conf", HEAD + "[program:a]\ncommand=serve --fd %(socket_fd)s\nnumprocs=2\n"
          "process_name=a%(process_num)d\nsockets=tcp://127.0.0.1:8001\n")
    processes = load(main).groups[0].processes
    assert [p.sockets[0].url for p in processes] == ["tcp://127.0.0.1:8001"] * 2
    assert processes[0].command == "serve --fd 3"


def test_a_privileged_port_for_a_daemon_that_cannot_bind_it(tmp_path: Path) -> None:
    """Port 80 for a daemon that is not root (nor CAP_NET_BIND_SERVICE) is refused by ``check``, which says why."""
    shared = Path(tempfile.mkdtemp(prefix="procward-"))  # pytest's own tmp_path is root's alone
    conf = shared / "supervisord.conf"
    write(conf, HEAD + "[program:a]\ncommand=sleep 1\nsockets=web=tcp://127.0.0.1:80\n")
    shared.chmod(0o755)
    conf.chmod(0o644)
    command = [sys.executable, "-m", "procward", "check", "-c", str(conf)]
    if os.geteuid() == 0:  # as CI runs: check as nobody, whose port 80 it is not
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                   "--bounding-set=-all", *command]
    run = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert run.returncode != 0
    shutil.rmtree(shared)
    assert f"{conf}:5: [program:a] sockets: tcp://127.0.0.1:80: port 80 is privileged" in run.stderr, run.stderr


def test_missing_supervisord_section(tmp_path: Path) -> None:
    """A file without [supervisord] is refused, naming the file."""
    path = write(tmp_path / "x.conf", "[program:a]\ncommand=sleep 1\n")
    with pytest.raises(ConfigError, match=r"no \[supervisord\] section"):
        load(path)


def test_garbage_line(tmp_path: Path) -> None:
    """A line that is neither option nor section gets its line number."""
    path = write(tmp_path / "x.conf", HEAD + "[program:a]\nthis is not an option\n")
    with pytest.raises(ConfigError, match="expected 'name = value'") as info:
        load(path)
    assert str(info.value).startswith(f"{path}:4:")


@pytest.mark.parametrize("args", [["check"], []])
def test_cli_prints_one_line_and_exits_2(tmp_path: Path, args: list[str]) -> None:
    """`procward check` and the daemon print `Error: file:line: ...` and exit 2, no traceback."""
    path = write(tmp_path / "supervisord.conf", HEAD + "[program:a]\ncommand=sleep 1\nstartsecs=-3\n")
    result = subprocess.run([sys.executable, "-m", "procward", *args, "-c", path], capture_output=True,
                            text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == f"Error: {path}:5: [program:a] startsecs: expected an integer >= 0, got '-3'"
    assert "Traceback" not in result.stderr + result.stdout


def test_check_prints_effective_config(tmp_path: Path) -> None:
    """`procward check` shows defaults made explicit and expansions done."""
    path = write(tmp_path / "supervisord.conf",
                 HEAD + "[program:w]\ncommand=run %(program_name)s_%(process_num)d\nnumprocs=2\n"
                 "process_name=w%(process_num)s\n")
    result = subprocess.run([sys.executable, "-m", "procward", "check", "-c", path], capture_output=True,
                            text=True, timeout=30, check=True)
    assert "[process:w:w0]" in result.stdout
    assert "[process:w:w1]" in result.stdout
    assert "command = run w_1" in result.stdout
    assert "startretries = 3" in result.stdout


def test_unterminated_section_header(tmp_path: Path) -> None:
    """`[program:x` without its `]` is an error at that line, not an option of the previous section."""
    path = write(tmp_path / "x.conf", HEAD + "[program:a]\ncommand=sleep 1\n[program:b\ncommand=sleep 2\n")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(info.value) == f"{path}:5: section header without a closing ']': '[program:b'"


def test_same_program_twice_in_one_file(tmp_path: Path) -> None:
    """[program:dup] twice in one file is an error naming both lines (Supervisor merges them silently)."""
    path = write(tmp_path / "x.conf", HEAD + "[program:dup]\ncommand=a\n[program:dup]\ncommand=b\n")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(info.value) == (f"{path}:5: [program:dup] the section is written twice in this file (lines 3 "
                               "and 5); merge them or rename one")


def test_repeated_supervisord_section_is_merged_with_a_warning_per_repeated_option(tmp_path: Path) -> None:
    """A second [supervisord] merges as in Supervisor (real configs do it); a repeated option warns naming
    both lines, and the later value wins."""
    path = write(tmp_path / "x.conf", HEAD + "[program:a]\ncommand=sleep 1\nstartsecs=1\nstartsecs=7\n"
                 "[supervisord]\nidentifier=second\n")
    config = load(path)
    assert config.supervisord.identifier == "second"
    assert config.groups[0].processes[0].startsecs == 7
    assert (f"{path}:6: [program:a] startsecs is set twice (lines 5 and 6); the later value wins, as in "
            "Supervisor") in config.warnings


def test_nul_byte_in_a_value(tmp_path: Path) -> None:
    """A NUL byte cannot reach exec: the option is named."""
    path = write(tmp_path / "x.conf", HEAD + '[program:a]\ncommand=sleep 1\nenvironment=A="x\0y"\n')
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(info.value) == (f"{path}:5: [program:a] environment: value contains a NUL byte, which no "
                               "command, path or environment can carry")


def test_absurdly_long_name_is_refused_at_once(tmp_path: Path) -> None:
    """A 100,000-character program name is refused with a short message, immediately."""
    path = write(tmp_path / "x.conf", HEAD + f"[program:{'a' * 100_000}]\ncommand=sleep 1\n")
    result = subprocess.run([sys.executable, "-m", "procward", "-n", "-c", path], capture_output=True,
                            text=True, timeout=10, check=False)
    assert result.returncode == 2
    assert "expected a name of at most 200 characters, got 100000" in result.stderr
    assert len(result.stderr) < 400


def test_go_supervisord_spellings_are_read_with_a_warning(tmp_path: Path) -> None:
    """Go's init template writes logfileMaxbytes / logfileBackups: read as the real options, warned about;
    Go's log levels fatal and panic are Supervisor's critical."""
    path = write(tmp_path / "x.conf", f"[supervisord]\nlogfile={tmp_path}/m.log\nlogfileMaxbytes=5MB\n"
                 "logfileBackups=3\nloglevel=fatal\n")
    config = load(path)
    assert config.supervisord.logfile_maxbytes == 5 * 1024 * 1024
    assert config.supervisord.logfile_backups == 3
    assert config.supervisord.loglevel == 50
    assert (f"{path}:3: [supervisord] read logfilemaxbytes (Go supervisord's template) as logfile_maxbytes; "
            "write logfile_maxbytes") in config.warnings
    assert not any("unknown option" in w for w in config.warnings)
