"""Child output as lines: a time prefix, JSON Lines, or a container's ``name | line`` prefix.

Only these modes assemble lines; the default (raw) copies the pipe's bytes as they come, byte-identical
to Supervisor. Lines that arrive in one read share its time. A line longer than MAX_LINE is written in
pieces, each flagged partial; a partial line that sits idle for IDLE_FLUSH seconds is written flagged (a
prompt, a progress bar); a process's last partial line is written when it exits.

The formatting works on whole blocks with bytes.replace/join (C speed); only a block that needs JSON
escaping beyond quotes, backslashes, tabs and carriage returns, or holds bytes that are not UTF-8, or a
line over MAX_LINE, takes the line-by-line path.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Callable
from typing import Protocol

from procward.config.model import LineFormat, TimeFormat

MAX_LINE = 16 * 1024  # bytes of one written line; longer lines are written in pieces of this size
IDLE_FLUSH = 2.0  # seconds a partial line waits for its end before it is written flagged
# Control bytes left after the fast escapes send a block down the slow path. Found with translate(), which
# deletes them at C speed (a regex character class scans several times slower).
_CONTROL = bytes([*range(0x00, 0x09), *range(0x0B, 0x20)])


class Sink(Protocol):
    """Where formatted bytes go (a RotatingFile): whole lines, as bytes or a view."""

    def write(self, data: bytes | memoryview) -> None: ...


def stamp(fmt: TimeFormat, now: float) -> str:
    """The time of a line in ``fmt``."""
    if fmt == TimeFormat.UNIX:
        return f"{now:.3f}"
    if fmt == TimeFormat.LOCAL:
        local = datetime.datetime.fromtimestamp(now)
        return local.strftime("%Y-%m-%d %H:%M:%S,") + f"{local.microsecond // 1000:03d}"
    return datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat()


def _has_long_line(block: bytes, start: int = 0, size: int | None = None) -> bool:
    """Whether some line of ``block[start:size]`` is longer than MAX_LINE: one rfind per MAX_LINE bytes,
    from the end of each window (a regex for it costs a scan per byte)."""
    size = len(block) if size is None else size
    while size - start > MAX_LINE:
        newline = block.rfind(b"\n", start, start + MAX_LINE + 1)
        if newline < 0:
            return True
        start = newline + 1
    return False


def _plain_json(block: bytes) -> bool:
    """Whether ``block`` goes into a JSON string as it is: ASCII with no quote, backslash or control byte
    but newlines (memchr scans and one translate(), no per-byte Python)."""
    return (block.isascii() and block.find(b'"') < 0 and block.find(b"\\") < 0 and block.find(b"\t") < 0
            and len(block.translate(None, _CONTROL)) == len(block))


class LineWriter:
    """One stream of one process: assembles lines and writes each in the chosen format."""

    def __init__(self, sink: Sink, loop: asyncio.AbstractEventLoop, fmt: LineFormat, *, name: str, group: str,
                 pid: int, stream: str, time_format: TimeFormat = TimeFormat.RFC3339, with_name: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        self._sink = sink
        self._loop = loop
        self._fmt = fmt
        self._name, self._group, self._pid, self._stream = name, group, pid, stream
        self._time_format = time_format
        self._with_name = with_name
        self._clock = clock
        self._partial = b""
        self._idle: asyncio.TimerHandle | None = None

    @property
    def partial(self) -> bytes:
        """The line begun and not ended yet (carried over a reexec)."""
        return self._partial

    def resume(self, partial: bytes) -> None:
        """Go on with a line the previous daemon began."""
        self._partial = partial

    def write(self, data: bytes) -> None:
        """Take a block of output; write the lines it completes."""
        if self._fast(data):
            return
        block = self._partial + data if self._partial else data
        last = block.rfind(b"\n")
        complete, rest = (block[:last], block[last + 1:]) if last >= 0 else (b"", block)
        out = self._lines(complete) if last >= 0 else b""
        while len(rest) > MAX_LINE:  # a line that does not end: written in flagged pieces
            out += self._one(rest[:MAX_LINE], partial=True)
            rest = rest[MAX_LINE:]
        self._partial = rest
        if out:
            self._sink.write(out)
        self._wait_for_end(rest)

    def _fast(self, data: bytes) -> bool:
        """The common block (lines that need no per-line work) with one copy: one replace() of the whole
        read inserts every line's head (and, for JSON, the previous line's end); the lines are then
        written from a view of it, without the partial line that follows (kept for the next read).
        False (nothing done) when the block needs the general path."""
        last = data.rfind(b"\n")
        if last < 0 or self._fmt == LineFormat.CONTAINER:
            return False
        first = data.find(b"\n")
        partial = self._partial
        if (len(partial) + first > MAX_LINE or len(data) - last - 1 > MAX_LINE or _has_long_line(data, first + 1, last)
                or data.find(b"\r") >= 0 or partial.find(b"\r") >= 0):
            return False
        if self._fmt == LineFormat.TEXT:
            head, end = self._text_head(), b"\n"
        elif _plain_json(data) and _plain_json(partial):
            head, end = self._json_ends()
        else:
            return False
        joined = data.replace(b"\n", end + head)
        rest = data[last + 1:]
        self._partial = rest
        self._sink.write(head + partial + joined[:first + len(end)])
        if first < last:  # the lines after the first, from the head of the second to the end of the last
            self._sink.write(memoryview(joined)[first + len(end):len(joined) - len(head) - len(rest)])
        self._wait_for_end(rest)
        return True

    def _wait_for_end(self, rest: bytes) -> None:
        """Restart the idle clock of the partial line ``rest`` (none when the block ended a line)."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if rest:
            self._idle = self._loop.call_later(IDLE_FLUSH, self.flush)

    def flush(self) -> None:
        """Write a partial line now, flagged (idle for IDLE_FLUSH, or the process exited)."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._partial:
            line, self._partial = self._partial, b""
            self._sink.write(self._one(line, partial=True))

    def _lines(self, complete: bytes) -> bytes:
        """Complete lines (without the last newline) in the format; one call per read block."""
        if _has_long_line(complete):
            return b"".join(self._piecewise(line) for line in complete.split(b"\n"))
        if complete.find(b"\r") >= 0:
            # ``complete`` stops before its last newline: a CR there ended the last line's CRLF too.
            complete = complete.replace(b"\r\n", b"\n").removesuffix(b"\r")
        if self._fmt == LineFormat.CONTAINER:
            head = self._name.encode() + b" | "
            return head + complete.replace(b"\n", b"\n" + head) + b"\n"
        if self._fmt == LineFormat.TEXT:
            head = self._text_head()
            return head + complete.replace(b"\n", b"\n" + head) + b"\n"
        escaped = self._escaped(complete)
        if escaped is None:
            return b"".join(self._one(line, partial=False) for line in complete.split(b"\n"))
        head, tail = self._json_ends()
        return head + escaped.replace(b"\n", tail + head) + tail

    def _piecewise(self, line: bytes) -> bytes:
        pieces = [line[i:i + MAX_LINE] for i in range(0, len(line), MAX_LINE)] or [b""]
        return b"".join(self._one(piece, partial=len(pieces) > 1) for piece in pieces)

    def _text_head(self) -> bytes:
        name = f" {self._name}" if self._with_name else ""
        return f"{stamp(self._time_format, self._clock())}{name} ".encode()

    def _json_ends(self) -> tuple[bytes, bytes]:
        record = {"time": stamp(self._time_format, self._clock()), "name": self._name, "group": self._group,
                  "pid": self._pid, "stream": self._stream, "message": ""}
        import json  # here: only the json format needs it (not loaded by a daemon that never uses it)

        text = json.dumps(record, ensure_ascii=False).encode()
        return text[:-2], b'"}\n'  # everything up to the message's opening quote, and its end

    @staticmethod
    def _escaped(block: bytes) -> bytes | None:
        """``block`` as the inside of a JSON string, or None when it needs the line-by-line path."""
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            return None
        escaped = block.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\t", b"\\t").replace(b"\r", b"\\r")
        return None if len(escaped.translate(None, _CONTROL)) != len(escaped) else escaped

    def _one(self, line: bytes, *, partial: bool) -> bytes:
        """One line, the slow and exact way (and the only way for flagged lines)."""
        line = line.removesuffix(b"\r")
        if self._fmt == LineFormat.CONTAINER:
            return self._name.encode() + b" | " + line + b"\n"
        if self._fmt == LineFormat.TEXT:
            return self._text_head() + line + (b" [partial]\n" if partial else b"\n")
        try:
            message, undecodable = line.decode("utf-8"), False
        except UnicodeDecodeError:
            message, undecodable = line.decode("utf-8", "replace"), True
        record: dict[str, object] = {
            "time": stamp(self._time_format, self._clock()), "name": self._name, "group": self._group,
            "pid": self._pid, "stream": self._stream, "message": message}
        if undecodable:
            record["undecodable"] = True
        if partial:
            record["partial"] = True
        import json  # see _json_ends

        return json.dumps(record, ensure_ascii=False).encode() + b"\n"
