"""The docs tell the truth: the state machine drawn in docs/state-machine.md is the one in core/states.py,
and every link in the README and docs/ leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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


ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_leads_somewhere(page: Path) -> None:
    """Relative links name files that exist, and anchors headings that exist; nothing points outside the
    repository."""
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if ROOT not in linked.parents and linked != ROOT:
            broken.append(f"{target}: outside the repository")
            continue
        if not linked.exists():
            broken.append(f"{target}: no such file")
            continue
        if anchor and linked.suffix == ".md":
            headings = {_slug(h) for h in re.findall(r"^#+ (.+)$", linked.read_text(), re.MULTILINE)}
            if anchor not in headings:
                broken.append(f"{target}: no such heading")
    assert not broken
