"""The state machine drawn in docs/state-machine.md is the one in core/states.py."""

from __future__ import annotations

import re
from pathlib import Path

from procward.core.states import ALLOWED, Detail

DOC = (Path(__file__).resolve().parents[2] / "docs" / "state-machine.md").read_text()


def test_drawing_has_exactly_the_tables_edges() -> None:
    """Every edge of ALLOWED is drawn, and nothing else."""
    drawn = set(re.findall(r"^\s+([A-Z]+) --> ([A-Z]+):", DOC, flags=re.M))
    table = {(old.name, new.name) for old, targets in ALLOWED.items() for new in targets}
    assert drawn == table


def test_edge_table_has_exactly_the_tables_edges() -> None:
    """The 'Edges' table lists the same edges."""
    listed = set(re.findall(r"^\| ([A-Z]+) \| ([A-Z]+) \|", DOC, flags=re.M))
    table = {(old.name, new.name) for old, targets in ALLOWED.items() for new in targets}
    assert listed == table


def test_every_sub_state_is_described() -> None:
    """Each Detail but NONE has a row."""
    described = set(re.findall(r"^\| ([A-Z_]+) \| [A-Z]", DOC, flags=re.M))
    assert described >= {d.name for d in Detail if d is not Detail.NONE}
