"""Capture mode: output between ``<!--XSUPERVISOR:BEGIN-->`` and ``<!--XSUPERVISOR:END-->`` becomes an event.

A port of Supervisor's POutputDispatcher.record_output: text outside the tokens is logged as usual,
text inside goes to a buffer bounded by ``*_capture_maxbytes`` (the newest bytes are kept), and the
end token emits PROCESS_COMMUNICATION_<CHANNEL> with the buffer. Only bytes that could begin a token
split across two reads are held back; Supervisor holds back any tail shorter than a token, so a short
last line sat unlogged until the program wrote more.
"""

from __future__ import annotations

from collections.abc import Callable

BEGIN_TOKEN = b"<!--XSUPERVISOR:BEGIN-->"
END_TOKEN = b"<!--XSUPERVISOR:END-->"


def _prefix_at_end(data: bytes, token: bytes) -> int:
    """Length of the longest proper prefix of ``token`` that ``data`` ends with."""
    for size in range(min(len(token) - 1, len(data)), 0, -1):
        if data.endswith(token[:size]):
            return size
    return 0


class Capture:
    """Splits one channel's output into logged data and captured messages."""

    def __init__(self, maxbytes: int, on_log: Callable[[bytes], None], on_message: Callable[[bytes], None],
                 on_capturing: Callable[[bytes], None] | None = None) -> None:
        self.maxbytes = maxbytes
        self._on_log = on_log  # data outside the tokens (to the log file)
        self._on_message = on_message  # one complete captured message
        self._on_capturing = on_capturing  # data inside the tokens, as it arrives (log events)
        self.capturing = False
        self._pending = b""
        self._captured = bytearray()

    def feed(self, data: bytes) -> None:
        """Process newly read output."""
        self._pending += data
        while True:
            token = END_TOKEN if self.capturing else BEGIN_TOKEN
            data, self._pending = self._pending, b""
            before, found, after = data.partition(token)
            if not found:
                keep = _prefix_at_end(data, token)
                if keep:
                    data, self._pending = data[:-keep], data[-keep:]
                self._emit(data)
                return
            self._emit(before)
            self._toggle()
            self._pending = after
            if not after:
                return

    def flush(self) -> None:
        """The pipe closed: whatever is held back is output after all."""
        data, self._pending = self._pending, b""
        self._emit(data)

    def _emit(self, data: bytes) -> None:
        if not data:
            return
        if not self.capturing:
            self._on_log(data)
            return
        if self._on_capturing is not None:
            self._on_capturing(data)
        self._captured += data
        if len(self._captured) > self.maxbytes:
            del self._captured[:len(self._captured) - self.maxbytes]

    def _toggle(self) -> None:
        self.capturing = not self.capturing
        if not self.capturing:
            message, self._captured = bytes(self._captured), bytearray()
            self._on_message(message)
