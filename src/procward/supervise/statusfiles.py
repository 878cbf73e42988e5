"""daemontools/meetbill supervise's status directory: ``lock``, the ``control`` and ``ok`` FIFOs and the
20-byte ``status`` file, byte for byte as the reference writes them (docs/from-supervise.md), so
``svc``-style scripts (``echo d > control``, ``od -An -j16 -N4 -tu4 status``, ``fuser lock``) work on
procward's processes. Used by ``procward supervise`` and by the daemon's ``supervise_dir``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import struct
import time
from dataclasses import dataclass

TAI_OFFSET = 2**62 + 10  # TAI64 label of the Unix epoch (daemontools' tai.h: 2^62 plus 10 leap seconds)
COMMANDS = frozenset(b"udopchaitkxsnr")  # what a control byte may ask; any other byte is ignored


class StatusDirError(Exception):
    """A status directory file cannot be made or taken (``code`` is the reference's exit status)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class Status:
    """What the status file says."""

    pid: int = 0
    paused: bool = False
    want: str = "u"  # "u" up, "d" down, "" once (the reference writes a 0 byte)
    silenced: bool = False  # alarms off (byte 14 = "x"; "o" when on)
    changed: float = 0.0  # time of the last pid change (start or exit)

    def pack(self) -> bytes:
        """The 20 bytes: TAI64N of the last pid change, paused, want, alarms, 0, pid little-endian."""
        seconds = int(self.changed)
        nanos = int((self.changed - seconds) * 1e9)
        return (struct.pack(">QL", TAI_OFFSET + seconds, nanos)
                + bytes([1 if self.pid and self.paused else 0, ord(self.want) if self.want else 0,
                         ord("x" if self.silenced else "o"), 0])
                + struct.pack("<I", self.pid))


def unpack(data: bytes) -> Status:
    """A status file's 20 bytes read back (for tests and ``procward supervise`` status lines)."""
    label, nanos = struct.unpack(">QL", data[:12])
    return Status(pid=struct.unpack("<I", data[16:20])[0], paused=bool(data[12]),
                  want=chr(data[13]) if data[13] else "", silenced=data[14] == ord("x"),
                  changed=label - TAI_OFFSET + nanos / 1e9)


def write_status(directory: str, status: Status) -> None:
    """Write ``status.new`` and rename it over ``status``: a reader never sees half a file."""
    new = os.path.join(directory, "status.new")
    fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, status.pack())
    finally:
        os.close(fd)
    os.rename(new, os.path.join(directory, "status"))


def take_lock(directory: str) -> int:
    """Open ``lock`` and flock it (held while this process lives, so ``fuser lock`` names it)."""
    path = os.path.join(directory, "lock")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StatusDirError(f"unable to open {path}: {exc.strerror}", 111) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise StatusDirError(f"Unable to acquier {path}: another supervise runs on {directory}", 111) from None
        raise StatusDirError(f"Unable to acquier {path}: {exc.strerror}", 111) from None
    return fd


def fifo(directory: str, name: str) -> str:
    """Make the FIFO ``name`` (0600) unless it is one already; a plain file in its place is replaced."""
    path = os.path.join(directory, name)
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISFIFO(os.lstat(path).st_mode):
            os.unlink(path)
    try:
        os.mkfifo(path, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise StatusDirError(f"unable to make {path}: {exc.strerror}", 1) from None
    return path


def open_fifo(path: str) -> tuple[int, int]:
    """A FIFO opened for reading without blocking, plus a held write end so it never reports EOF."""
    try:
        reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        writer = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise StatusDirError(f"unable to open {path}: {exc.strerror}", 1) from None
    return reader, writer


def read_commands(fd: int) -> bytes:
    """The control bytes waiting in the FIFO, unknown bytes (``echo``'s newline) dropped."""
    data = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            break
        if not chunk:
            break
        data += chunk
    return bytes(b for b in data if b in COMMANDS)


class DeletionWatch:
    """inotify on a directory for deleted entries (no polling, no thread): ``fd`` becomes readable, then
    ``deleted()`` names what went. Set up synchronously, so nothing deleted after it is missed."""

    _IN_DELETE, _IN_NONBLOCK, _IN_CLOEXEC = 0x200, 0o4000, 0o2000000

    def __init__(self, directory: str) -> None:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(self._IN_NONBLOCK | self._IN_CLOEXEC)
        if self.fd < 0 or libc.inotify_add_watch(self.fd, directory.encode(), self._IN_DELETE) < 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))

    def deleted(self) -> set[str]:
        """Names deleted since the last call."""
        names: set[str] = set()
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return names
            offset = 0
            while offset + 16 <= len(data):  # struct inotify_event: wd, mask, cookie, len, name[len]
                length = struct.unpack_from("iIII", data, offset)[3]
                names.add(data[offset + 16:offset + 16 + length].rstrip(b"\0").decode(errors="replace"))
                offset += 16 + length

    def close(self) -> None:
        """Stop watching."""
        os.close(self.fd)


def now() -> float:
    """The time a status file records."""
    return time.time()
