"""docs/configuration.md lists every option the reader accepts, under its section."""

from __future__ import annotations

import re
from pathlib import Path

from procward.config import build

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def documented() -> dict[str, set[str]]:
    """Options named in the first column of each section's table, by section header."""
    sections: dict[str, set[str]] = {}
    current = ""
    for line in REFERENCE.read_text().splitlines():
        header = re.match(r"## \[(\w[\w-]*)(?::x)?\]", line)
        if header:
            current = header.group(1)
            sections.setdefault(current, set())
        elif current and (cell := re.match(r"\| `(\w+)` \|", line)):
            sections[current].add(cell.group(1).lower())  # the reader folds case, as configparser does
    return sections


def test_every_accepted_option_is_in_the_reference() -> None:
    """Each option of each section kind appears in its table (listener and fcgi options in program's
    table or in their additions)."""
    docs = documented()
    missing = []
    for kind, options in build._KNOWN_OPTIONS.items():
        listed = docs.get(kind, set())
        if kind in ("eventlistener", "fcgi-program"):
            listed = listed | docs["program"]
        missing += [f"[{kind}] {option}" for option in sorted(options - listed)]
    assert not missing, f"options not in docs/configuration.md: {missing}"


def test_the_reference_names_no_option_the_reader_does_not_know() -> None:
    """No stale rows: every documented option is accepted."""
    docs = documented()
    stale = [f"[{kind}] {option}" for kind, options in docs.items()
             for option in sorted(options - build._KNOWN_OPTIONS.get(kind, frozenset()))]
    assert not stale, stale
