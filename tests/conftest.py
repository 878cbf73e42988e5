"""Shared fixtures: a daemon factory that always cleans up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import Daemon


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Start a procward daemon on a config of programs; stopped (and checked for leftovers) at teardown."""
    started: list[Daemon] = []

    def make(programs: str, **extra: str) -> Daemon:
        d = Daemon(tmp_path, programs, **extra)
        started.append(d.start())
        return d

    yield make
    for d in started:
        d.stop()
