"""A child's output without a child: the log-window arithmetic against Supervisor's own functions, the
pipes' rest grid over a virtual clock, and the rotating log file on a real directory."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from supervisor.options import readFile, tailFile

from procward.core.output import tails
from procward.core.output.channels import LAST_LINE, last_complete_line
from procward.core.output.logfile import RotatingFile
from procward.core.output.pipes import COALESCE, Rests


def test_tail_is_supervisors_tailfile_window_for_any_offset_and_length(tmp_path: Path) -> None:
    """tailProcessLog's quirks (overflow, the last ``length`` bytes when the offset overshoots) exactly as
    Supervisor's tailFile computes them, over seeded random files, offsets and lengths."""
    rng = random.Random(4)  # noqa: S311 - test data, not secrets
    for case in range(300):
        path = tmp_path / f"log{case % 7}"
        size = rng.choice([0, 1, 5, 100, 4096])
        path.write_bytes(bytes(rng.randrange(32, 127) for _ in range(size)))  # ASCII: tailFile decodes it
        offset, length = rng.randrange(-10, 5000), rng.randrange(0, 5000)
        data, new_offset, overflow = tails.tail(str(path), offset, length)
        assert [data.decode(), new_offset, overflow] == tailFile(str(path), offset, length), (size, offset, length)


def test_read_range_is_supervisors_readfile(tmp_path: Path) -> None:
    """readLog's window: negative offset with length 0 is the last bytes; length 0 reads to the end; a
    negative offset with a length, or a negative length, is refused (BAD_ARGUMENTS)."""
    path = tmp_path / "log"
    path.write_bytes(bytes(range(256)) * 4)
    for offset, length in [(0, 0), (10, 0), (0, 10), (1000, 50), (-100, 0), (-5000, 0), (2000, 10), (5, 1024)]:
        assert tails.read_range(str(path), offset, length) == readFile(str(path), offset, length), (offset, length)
    for offset, length in [(-10, 5), (0, -1)]:
        with pytest.raises(ValueError, match="BAD_ARGUMENTS"):
            readFile(str(path), offset, length)
        with pytest.raises(ValueError, match="bad offset/length"):
            tails.read_range(str(path), offset, length)


class GridLoop:
    """What Rests asks of a loop: the time, and timers it can fire by hand."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.timers: list[tuple[float, Any, tuple[Any, ...]]] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Any, *args: Any) -> None:
        self.timers.append((when, callback, args))

    def run_until(self, when: float) -> None:
        self.now = when
        due = [t for t in self.timers if t[0] <= when]
        self.timers = [t for t in self.timers if t[0] > when]
        for _, callback, args in sorted(due, key=lambda t: t[0]):
            callback(*args)


class Channel:
    def __init__(self) -> None:
        self.ended: list[int] = []

    def rested(self, slot: int) -> None:
        self.ended.append(slot)


def test_rests_share_wake_ups_and_never_end_late() -> None:
    loop, rests = GridLoop(), Rests()
    pipes = [Channel() for _ in range(20)]
    rng = random.Random(7)  # noqa: S311 - test data
    asked = {}
    for pipe in pipes:
        pause = rng.uniform(COALESCE / 4, COALESCE)
        slot = rests.add(loop, pipe, pause)  # type: ignore[arg-type]
        assert slot is not None
        assert slot * Rests.UNIT <= loop.now + pause + 1e-9  # on a grid, but never later than asked
        asked[id(pipe)] = slot
    assert len(loop.timers) < len(pipes) / 2  # twenty rests, a few wake-ups
    loop.run_until(loop.now + COALESCE)
    assert all(pipe.ended == [asked[id(pipe)]] for pipe in pipes)  # each read once, in its own slot
    assert rests.add(loop, Channel(), Rests.UNIT / 2) is None  # shorter than the finest grid: not worth it


def test_rotating_file_keeps_maxbytes_and_its_backups(tmp_path: Path) -> None:
    """Lines are not split across files when they fit; the file never passes maxbytes; .1 is the newest;
    older than the last backup is gone."""
    path = tmp_path / "app.log"
    log = RotatingFile(str(path), maxbytes=100, backups=2)
    lines = [f"line {i:03d} ".encode() + b"x" * 20 + b"\n" for i in range(30)]  # 30 bytes each
    for line in lines:
        log.write(line)
    log.close()
    files = [path, tmp_path / "app.log.1", tmp_path / "app.log.2"]
    assert not (tmp_path / "app.log.3").exists()
    contents = [f.read_bytes() for f in files]
    assert all(len(c) <= 100 for c in contents)
    assert all(c.endswith(b"\n") for c in contents if c)  # whole lines in every file
    kept = b"".join(reversed(contents))
    assert kept == b"".join(lines)[-len(kept):]  # the newest lines, in order, none lost among the kept


@pytest.mark.parametrize(("blocks", "shown"), [
    ([b"out \xc3\xa9", b" ", b"12", b"\n"], [b"", b"", b"", b"out \xc3\xa9 12"]),  # print() unbuffered, in pieces
    ([b"a\nb", b"c\n"], [b"a", b"bc"]),
    ([b"one\r\n", b"\r\n\n", b"two"], [b"one", b"", b""]),  # blank lines and a line not ended yet change nothing
    ([b"x" * 300 + b"\n"], [b"x" * 200]),  # its last LAST_LINE bytes
    ([b"y" * 150, b"z" * 150 + b"\n"], [b"", b"y" * 50 + b"z" * 150]),
    ([b"first\nsecond\nthird\n"], [b"third"]),
])
def test_the_last_complete_line_counts_a_line_written_in_pieces_once_it_ends(
        blocks: list[bytes], shown: list[bytes]) -> None:
    carry, seen = b"", []
    for block in blocks:
        line, carry = last_complete_line(carry, block)
        seen.append(line)
    assert seen == shown


def _last_complete_line_as_it_was(carry: bytes, data: bytes) -> tuple[bytes, bytes]:
    """last_complete_line before round 8 (docs/performance.md), which copied the whole block when it held
    no newline: what it returns is the behaviour the faster one must keep."""
    last = data.rfind(b"\n")
    if last < 0:
        return b"", (carry + data)[-LAST_LINE:]
    end = last
    while end and data[end - 1] in b"\r\n":
        end -= 1
    start = data.rfind(b"\n", 0, end) + 1 if end else 0
    line = data[max(start, end - LAST_LINE):end] if start else (carry + data[:end]).rstrip(b"\r")[-LAST_LINE:]
    return line, data[last + 1:][-LAST_LINE:]


def test_the_last_complete_line_is_what_it_was_for_any_blocks() -> None:
    """Random streams cut in random blocks, some far larger than LAST_LINE (a busy pipe's read), some all
    blank lines, some with no newline at all: the same line and carry as the version that copied every
    block, which the cases above pin down."""
    rng = random.Random(20261206)  # noqa: S311 - reproducible test data
    pieces = [b"a", b"bc", b"\xc3\xa9", b"\r", b"\n", b"\r\n", b"\n\n", b" "]
    for _ in range(400):
        carry = b""
        for _ in range(rng.randint(1, 8)):
            shape = rng.random()
            if shape < 0.15:
                block = b"x" * rng.randint(1, 9000)  # no newline; larger than the window and LAST_LINE
            elif shape < 0.25:
                block = rng.choice([b"\n", b"\r\n", b"\r"]) * rng.randint(1, 5000)  # blank lines, CRs
            elif shape < 0.35:  # a long line, then blank lines past the scan's window
                line = bytes(rng.choice(b"abcdefgh") for _ in range(rng.randint(1, 9000)))
                block = line + rng.choice([b"\n", b"\r\n"]) * rng.randint(1, 5000) + b"z" * rng.randint(0, 3)
            else:
                block = b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 700)))
            expected = _last_complete_line_as_it_was(carry, block)
            assert last_complete_line(carry, block) == expected, (carry, block)
            carry = expected[1]
