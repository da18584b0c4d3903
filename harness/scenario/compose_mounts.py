"""Which files of a compose bind mount can become fixtures, and why the others cannot.

A bind mount of a file (or a folder of files) under the compose project is the customer's
configuration: it is copied under fixtures/ and put into the node with `files:`. Anything else
(outside the project, a socket, a device, a folder too big to copy) is refused with a reason,
following the trust rules: no host bind mounts outside the project.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from harness.scenario.readfile import kind_of

MAX_FILES = 200  # files one mounted folder may bring
MAX_BYTES = 20 * 1024 * 1024  # bytes one mounted folder may bring


@dataclass(frozen=True)
class Mounted:
    source: Path  # the file on this machine, resolved
    relative: str  # its path under the compose project: where it goes under fixtures/<name>/
    target: str  # its absolute path in the node


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def mounted_files(source: Path, compose_dir: Path, target: str) -> list[Mounted] | str:
    """The files to copy for one bind mount, or why it cannot be carried."""
    project = compose_dir.resolve()
    try:
        st = source.lstat()
    except OSError:
        return f"{source} does not exist on this machine"
    real = source.resolve()
    if not _inside(real, project):
        return f"{source} is outside the compose project (the trust rules: no host bind mounts)"
    mode = os.stat(real).st_mode if stat.S_ISLNK(st.st_mode) else st.st_mode
    if stat.S_ISREG(mode):
        return [Mounted(real, real.relative_to(project).as_posix(), target)]
    if not stat.S_ISDIR(mode):
        return f"{source} is {kind_of(mode)}: only files are carried"
    return _folder(real, project, target)


def _folder(folder: Path, project: Path, target: str) -> list[Mounted] | str:
    out: list[Mounted] = []
    size = 0
    for path in sorted(folder.rglob("*")):
        real = path.resolve()
        if path.is_symlink() and not _inside(real, project):
            return f"{path} links outside the compose project"
        if not real.is_file():
            continue
        size += real.stat().st_size
        if len(out) >= MAX_FILES or size > MAX_BYTES:
            return f"{folder} holds more than {MAX_FILES} files or {MAX_BYTES >> 20} MiB"
        inner = path.relative_to(folder).as_posix()
        out.append(
            Mounted(
                real,
                path.relative_to(project).as_posix(),
                str(PurePosixPath(target) / inner),
            )
        )
    return out or f"{folder} is an empty folder"
