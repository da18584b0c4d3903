"""Host files that go into a node (`files:`), opened once, exactly as they were checked.

Validation looks at a path; copying reads it later. Between the two, anyone who can write in
the project (a build step, a checked-out fixture, another process) can swap the file for a
symlink to ~/.ssh/id_rsa or for a fifo that blocks forever. So the copy never reopens by name:
every component of the (already resolved) path is opened from `/` with O_NOFOLLOW, the last one
with O_NONBLOCK, the descriptor is fstat'ed (regular file, its size), and the bytes that go
into the node are read from that same descriptor.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from harness.errors import UsageError

_KINDS = {
    stat.S_IFIFO: "a fifo (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
    stat.S_IFLNK: "a symlink",
}


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words for a refusal."""
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


@dataclass(frozen=True)
class OpenedSource:
    """A checked, open host file: read `size` bytes from `file`; `mode`, `mtime` for the tar."""

    file: BinaryIO
    size: int
    mode: int
    mtime: float


def _refuse(path: Path, what: str) -> UsageError:
    return UsageError(
        f"files: source {path} is {what}; only regular files inside the project can be copied"
        " into a node",
        hint="it may have been replaced after the scenario was checked: put a plain file"
        " there and run again",
    )


def _walk(path: Path) -> int:
    """An O_RDONLY|O_NONBLOCK descriptor of `path`, no symlink followed on the way."""
    if not path.is_absolute():
        raise UsageError(f"files: source {path} is not an absolute path")
    parts = [p for p in path.parts[1:] if p not in ("", ".")]
    if not parts or ".." in parts:
        raise _refuse(path, "not a plain path")
    fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            flags = os.O_NOFOLLOW | os.O_CLOEXEC
            flags |= os.O_RDONLY | os.O_NONBLOCK if last else os.O_PATH | os.O_DIRECTORY
            try:
                nxt = os.open(part, flags, dir_fd=fd)
            except FileNotFoundError:
                raise UsageError(f"files: source {path} does not exist (any more)") from None
            except (NotADirectoryError, OSError) as exc:
                try:
                    mode = os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode
                    what = kind_of(mode)
                except OSError:
                    what = f"unreadable ({exc.strerror})"
                where = "/" + "/".join(parts[: i + 1])
                if not last:
                    what = f"under {where}, which is {what}"
                raise _refuse(path, what) from None
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


@contextmanager
def open_source(path: Path) -> Iterator[OpenedSource]:
    """The file at `path`, opened without following symlinks and checked on the descriptor.

    Refuses (UsageError, exit 2) a symlink anywhere on the path, a fifo, a device, a socket or
    a folder; never blocks (a fifo is opened non-blocking, then refused by its fstat).
    """
    fd = _walk(path)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(path, kind_of(st.st_mode))
        os.set_blocking(fd, True)
        f = os.fdopen(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise
    with f:
        yield OpenedSource(f, st.st_size, st.st_mode & 0o777, st.st_mtime)
