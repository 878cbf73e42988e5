"""The daemon's own log: supervisord's line format and level names, size rotation, stdout echo."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import time

TRACE = 5
BLATHER = 3
_NAMES = {logging.CRITICAL: "CRIT", logging.ERROR: "ERRO", logging.WARNING: "WARN", logging.INFO: "INFO",
          logging.DEBUG: "DEBG", TRACE: "TRAC", BLATHER: "BLAT"}
logging.addLevelName(TRACE, "TRACE")
logging.addLevelName(BLATHER, "BLATHER")


class SupervisordFormatter(logging.Formatter):
    """``2026-11-23 01:41:05,123 INFO spawned: 'web' with pid 42`` (operators grep these lines)."""

    _stamp: tuple[int, str] = (-1, "")  # (second, its text): replaced whole, so threads never mix them

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        stamp = self._stamp
        if stamp[0] != second:  # strftime once a second, not at every line of a mass start or stop
            stamp = self._stamp = (second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second)))
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        return f"{stamp[1]},{int(record.msecs):03d} {_NAMES.get(record.levelno, record.levelname)} {message}"


class _Rotating(logging.FileHandler):
    """The main log, rotated as supervisord rotates it: once a record has taken the file to maxbytes, the
    next one first moves f.N-1 .. f.1 up by one and f to f.1, or, with no backups, empties f.

    Not logging.handlers.RotatingFileHandler: with backupCount=0 it reopens the file for append, so a main
    log with logfile_backups=0 grew without bound and was reopened at every record once past maxbytes
    (supervisord truncates it); and that module brings pickle, queue and threading into every daemon
    (~0.7 MB, ~2.5 ms of a start). A non-regular file such as /dev/stdout never rotates. The file's size is
    counted as records are formatted (a stat or a TextIOWrapper's tell() at each record was a sixth of a
    mass start's logging)."""

    def __init__(self, path: str, maxbytes: int, backups: int) -> None:
        self.maxbytes, self.backups = maxbytes, backups
        self._regular = False
        self._size = 0
        super().__init__(path, mode="a", encoding="utf-8", errors="backslashreplace")

    def _open(self) -> io.TextIOWrapper:
        stream = super()._open()
        self._regular = stream.seekable()
        self._size = stream.tell() if self._regular else 0  # opened for append: the size
        return stream

    def emit(self, record: logging.LogRecord) -> None:
        if self.maxbytes and self._regular and self._size >= self.maxbytes:
            try:
                self._rotate()
            except OSError:
                self.handleError(record)  # the record is still written, to whatever file is open
        super().emit(record)

    def _rotate(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None  # reopened below
        base = self.baseFilename
        if self.backups > 0:
            for n in range(self.backups - 1, 0, -1):
                if os.path.exists(f"{base}.{n}"):
                    os.replace(f"{base}.{n}", f"{base}.{n + 1}")
            if os.path.exists(base):
                os.replace(base, f"{base}.1")
        else:
            with contextlib.suppress(FileNotFoundError):
                os.truncate(base, 0)
        self.stream = self._open()

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        # Characters, and bytes only when they differ: rotation needs no more than that.
        self._size += (len(text) if text.isascii() else len(text.encode("utf-8", "backslashreplace"))) + 1
        return text


def setup(logfile: str | None, level: int, maxbytes: int, backups: int, *, echo: bool) -> list[logging.Handler]:
    """Route the ``procward`` loggers to the main log file (and stdout when in the foreground)."""
    root = logging.getLogger("procward")
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    root.propagate = False
    # The line format uses none of these, which the logging HOWTO ("Optimization") says how to skip:
    # ~1.6 us of each record (two records a spawn, one an exit).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None  # no caller lookup (file, line, function) for every record
    formatter = SupervisordFormatter()
    handlers: list[logging.Handler] = []
    if logfile:
        handlers.append(_Rotating(logfile, maxbytes, backups))
    if echo and logfile not in ("/dev/stdout", "/proc/self/fd/1"):
        handlers.append(logging.StreamHandler(sys.stdout))
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    return handlers


def reopen(handlers: list[logging.Handler]) -> None:
    """Reopen file handlers (SIGUSR2)."""
    for handler in handlers:
        if isinstance(handler, logging.FileHandler):
            handler.acquire()
            try:
                if handler.stream is not None:
                    handler.stream.close()
                handler.stream = handler._open()
            finally:
                handler.release()
