"""procward.core.spawn on real files and real children: the command's resolution, reused for a moment."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from procward.config.build import BuildOptions, load
from procward.config.model import ProcessConfig
from procward.core import spawn as spawning
from procward.core.spawn import Spawned, SpawnError, child_environment, spawn


def _config(tmp_path: Path, command: str, path: str) -> ProcessConfig:
    conf = tmp_path / "supervisord.conf"
    conf.write_text(textwrap.dedent(f"""\
        [supervisord]
        logfile={tmp_path}/main.log
        [program:p]
        command={command}
        environment=PATH="{path}"
        """))
    return load(str(conf), BuildOptions(host_checks=False)).groups[0].processes[0]


def _script(where: Path, name: str, status: int = 0) -> Path:
    where.mkdir(exist_ok=True)
    script = where / name
    script.write_text(f"#!/bin/sh\nexit {status}\n")
    script.chmod(0o755)
    return script


@pytest.fixture
def started() -> Iterator[list[Spawned]]:
    children: list[Spawned] = []
    yield children
    for child in children:
        assert child.popen is not None
        child.popen.wait(timeout=10)
        for fd in (child.stdin, child.stdout, child.stderr):
            if fd is not None:
                os.close(fd)


@pytest.fixture(autouse=True)
def _fresh_resolutions() -> None:
    spawning._found.clear()


def _spawn(config: ProcessConfig, started: list[Spawned]) -> Spawned:
    child = spawn(config, child_environment(config, "p", None))
    started.append(child)
    return child


def test_a_command_gone_since_a_recent_search_gets_the_search_message(tmp_path: Path, started: list[Spawned]) -> None:
    script = _script(tmp_path / "bin", "prog")
    config = _config(tmp_path, "prog", str(tmp_path / "bin"))
    _spawn(config, started)
    script.unlink()  # within the second the last search is reused: the exec itself fails
    with pytest.raises(SpawnError) as failed:
        _spawn(config, started)
    assert str(failed.value) == "can't find command 'prog'"
    assert failed.value.kind == spawning.SpawnFailure.NO_FILE


def test_a_command_that_lost_its_x_bit_gets_the_search_message(tmp_path: Path, started: list[Spawned]) -> None:
    script = _script(tmp_path / "bin", "prog")
    config = _config(tmp_path, "prog", str(tmp_path / "bin"))
    _spawn(config, started)
    script.chmod(0o644)
    with pytest.raises(SpawnError) as failed:
        _spawn(config, started)
    assert str(failed.value) == f"command at '{script}' is not executable"
    assert failed.value.kind == spawning.SpawnFailure.NOT_EXECUTABLE
    script.chmod(0o755)  # and back: the next spawn searches again and runs it
    assert _spawn(config, started).pid > 0


def test_a_command_installed_earlier_in_path_is_found_once_the_search_is_old(
        tmp_path: Path, started: list[Spawned], monkeypatch: pytest.MonkeyPatch) -> None:
    _script(tmp_path / "late", "prog")
    config = _config(tmp_path, "prog", f"{tmp_path / 'early'}:{tmp_path / 'late'}")
    assert spawning.resolve(config, recent=True)[0] == str(tmp_path / "late" / "prog")
    early = _script(tmp_path / "early", "prog", status=3)
    assert spawning.resolve(config, recent=True)[0] == str(tmp_path / "late" / "prog")  # the recent search
    assert spawning.resolve(config)[0] == str(early)  # an operator's start checks afresh
    monkeypatch.setattr(spawning, "RESOLVED_FOR", 0.0)
    assert spawning.resolve(config, recent=True)[0] == str(early)
    child = _spawn(config, started)
    assert child.popen is not None
    assert child.popen.wait(timeout=10) == 3  # the one installed since ran
