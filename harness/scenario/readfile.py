"""Read a scenario file that may be hostile: never block, never read more than the limit.

A path given to `lab validate` may be a fifo (a plain open blocks until a writer comes), a
device (/dev/zero never ends), a socket, a folder or a symlink loop. We stat before opening,
open with O_NONBLOCK, fstat the open descriptor (the path may have been swapped in between)
and read at most MAX_FILE_BYTES + 1 bytes.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from harness.scenario.limits import MAX_FILE_BYTES

_KINDS = {
    stat.S_IFIFO: "a fifo (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}
_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class Unreadable(Exception):
    """The file cannot be a scenario; `message` is one sentence for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def kind_of(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def _os_error(exc: OSError) -> Unreadable:
    if exc.errno == errno.ENOENT:
        return Unreadable("file not found")
    if exc.errno == errno.ELOOP:
        return Unreadable("the path is a symlink loop (too many levels of symbolic links)")
    if exc.errno == errno.ENXIO:
        return Unreadable("this is a socket, not a scenario file")
    return Unreadable(f"cannot read the file: {exc.strerror or exc}")


def _too_big(size: int) -> Unreadable:
    return Unreadable(
        f"the file is {size:,} bytes; a scenario file is at most {MAX_FILE_BYTES:,} bytes "
        "(limit MAX_FILE_BYTES)"
    )


def _check_mode(mode: int, size: int) -> None:
    kind = kind_of(mode)
    if kind is not None:
        raise Unreadable(f"this is {kind}, not a scenario file; only a regular file is read")
    if size > MAX_FILE_BYTES:
        raise _too_big(size)


def read_text(path: Path) -> str:
    """The file's text; raises Unreadable with one clear sentence for anything else."""
    try:
        before = os.stat(path)
        _check_mode(before.st_mode, before.st_size)
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        raise _os_error(exc) from None
    try:
        opened = os.fstat(fd)
        _check_mode(opened.st_mode, opened.st_size)
        chunks: list[bytes] = []
        total = 0
        while total <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise _os_error(exc) from None
    finally:
        os.close(fd)
    if total > MAX_FILE_BYTES:
        raise Unreadable(f"the file grew past {MAX_FILE_BYTES:,} bytes while being read")
    return decode_text(b"".join(chunks))


def decode_text(data: bytes) -> str:
    """The bytes as UTF-8 text; raises Unreadable saying where they stop being text."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise Unreadable(
            f"not UTF-8 text: {exc.reason} at byte {exc.start} (line {line})"
        ) from None
