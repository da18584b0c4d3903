"""A local engine's running nodes seen from this host, through /proc/<pid>: files and sockets
read without asking the engine.

Each `get_archive` makes the engine re-execute itself (`docker-tar`), and each exec starts runc:
tens of ms of CPU apiece, which on a 2-core machine is time taken from parallel cells. When
the engine runs on this host, the node's init process shows its view of the world under
/proc/<pid>. Everything here answers `None` ("cannot tell from here") whenever that view is not
certainly the node's: a remote engine, a stopped node, a reused pid, a symlink on the way; the
caller then asks the engine as before.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any


class NotHere(Exception):
    """This host cannot answer for the node; ask the engine."""


def _proc(container: Any) -> Path:
    """/proc/<pid> of the node's init, if that process is the node's (its cgroup names it)."""
    pid = (container.attrs.get("State") or {}).get("Pid")
    if not pid:
        raise NotHere("not running, or not on this host")
    base = Path(f"/proc/{pid}")
    try:
        if container.id not in (base / "cgroup").read_text():
            raise NotHere("pid is not the node's: another host's, or reused")
    except OSError:
        raise NotHere("no such process here") from None
    return base


def proc_net_tcp(container: Any) -> str:
    """The node's /proc/net/tcp and tcp6 (its network namespace), for readiness checks."""
    base = _proc(container)
    try:
        return (base / "net" / "tcp").read_text() + (base / "net" / "tcp6").read_text()
    except OSError:
        raise NotHere("cannot read the node's /proc/net") from None


def read_file(container: Any, path: str, limit: int) -> bytes | None:
    """A regular file's bytes inside the node; None if it is absent or larger than `limit`.

    Resolved one component at a time from the node's root with O_NOFOLLOW, so a symlink (which
    from here would resolve against the host's root) is never followed: NotHere instead.
    """
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise NotHere("path is not a plain absolute path")
    base = _proc(container)
    fds: list[int] = []
    try:
        try:
            fds.append(os.open(base / "root", os.O_PATH | os.O_DIRECTORY))
        except OSError:
            raise NotHere("cannot open the node's root") from None
        _proc(container)  # still the node's process once its root is held: not a reused pid
        for part in parts[:-1]:
            fds.append(_open_in(fds[-1], part, os.O_PATH | os.O_DIRECTORY))
        fd = _open_in(fds[-1], parts[-1], os.O_RDONLY | os.O_NONBLOCK)
        fds.append(fd)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotHere("not a regular file")
        if st.st_size > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, 1 << 20):
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)
    except FileNotFoundError:
        return None
    finally:
        for fd in fds:
            os.close(fd)


def _open_in(dir_fd: int, name: str, flags: int) -> int:
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        raise
    except NotADirectoryError:  # a symlink met with O_DIRECTORY, or a file on the way
        try:
            link = stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
        except OSError:
            link = True
        if link:
            raise NotHere(f"{name} is a symlink") from None
        raise FileNotFoundError(name) from None
    except OSError:  # ELOOP (a symlink), EACCES...: the engine resolves it the node's way
        raise NotHere(f"cannot open {name} from here") from None
