"""procward.core.output.linelog: the one-copy path writes byte for byte what the general path writes."""

from __future__ import annotations

import asyncio
import random

import pytest

from procward.config.model import LineFormat, TimeFormat
from procward.core.output.linelog import MAX_LINE, LineWriter


class Sink:
    def __init__(self) -> None:
        self.data = bytearray()
        self.writes = 0

    def write(self, data: bytes | memoryview) -> None:
        self.data += data
        self.writes += 1


def _line(rng: random.Random, kind: str) -> bytes:
    size = rng.choice([0, 1, 5, 80, 99, 300, 3000]) if rng.random() > 0.01 else rng.randint(MAX_LINE - 5, 3 * MAX_LINE)
    alphabet = {
        "plain": b"abcdefghij klmnop0123456789-_:/.,=",
        "quotes": b'abc "q" \\ \t',
        "cr": b"abc\r",
        "control": b"abc\x01\x1b[0m\x7f",
        "utf8": "abé€😀".encode(),
        "invalid": b"ab\xff\xfe",
    }[kind]
    if kind == "utf8":
        return ("abé€😀" * (size // 4 + 1))[:size].encode()
    return bytes(rng.choice(alphabet) for _ in range(size))


def _stream(rng: random.Random) -> bytes:
    # Runs of 40 lines, half of them plain, the others mostly plain with some lines of one other kind.
    lines = []
    for run in range(10):
        other = "plain" if run % 2 == 0 else rng.choice(["quotes", "cr", "control", "utf8", "invalid"])
        lines += [_line(rng, other if rng.random() < 0.3 else "plain") + rng.choice([b"\n"] * 9 + [b"\r\n"])
                  for _ in range(40)]
    return b"".join(lines) + _line(rng, "plain")  # and a line left unended


@pytest.mark.parametrize("fmt", [LineFormat.TEXT, LineFormat.JSON])
@pytest.mark.parametrize("seed", range(12))
def test_fast_path_matches_the_general_path(fmt: LineFormat, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data
    data = _stream(rng)
    cuts = sorted(rng.sample(range(1, len(data)), min(60, len(data) - 1)))
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    loop = asyncio.new_event_loop()
    try:
        outputs = []
        fast_blocks = 0
        for general in (False, True):
            sink = Sink()
            writer = LineWriter(sink, loop, fmt, name="web", group="g", pid=42, stream="stdout",
                                time_format=TimeFormat.UNIX, with_name=True, clock=lambda: 1796004900.123)
            if general:
                monkeypatch.setattr(writer, "_fast", lambda _data: False)
            else:
                original = writer._fast

                def counted(block: bytes, original=original) -> bool:
                    nonlocal fast_blocks
                    taken = original(block)
                    fast_blocks += taken
                    return taken
                monkeypatch.setattr(writer, "_fast", counted)
            for chunk in chunks:
                writer.write(chunk)
            writer.flush()
            outputs.append(bytes(sink.data))
    finally:
        loop.close()
    assert outputs[0] == outputs[1]
    assert fast_blocks > 0  # the fast path was taken for some blocks, so it was compared
    assert outputs[0].count(b"\n") >= 400


def test_plain_block_is_written_from_one_replace() -> None:
    """A block of plain lines: every line formatted, the partial line kept for the next read."""
    loop = asyncio.new_event_loop()
    try:
        sink = Sink()
        writer = LineWriter(sink, loop, LineFormat.JSON, name="web", group="g", pid=7, stream="stderr",
                            time_format=TimeFormat.UNIX, clock=lambda: 10.5)
        writer.write(b"one\ntwo\nthr")
        writer.write(b"ee\n")
    finally:
        loop.close()
    head = b'{"time": "10.500", "name": "web", "group": "g", "pid": 7, "stream": "stderr", "message": "'
    assert bytes(sink.data) == head + b'one"}\n' + head + b'two"}\n' + head + b'three"}\n'
