"""Read a sosreport (a folder, or the .tar.xz/.tar.gz/.tar `sos report` writes) without
extracting it: the adapter between a customer's report and harness/scenario/from_sos.py.

Nothing is written. Only the members the import needs are read (the parts named in
sos_facts.PARTS and the files under the config folders asked for), into memory, each under a
size limit. The archive is read once, as a stream, and refused (exit 2, with the member's name)
when it is truncated or corrupt, holds an absolute or `..` name, a device file or FIFO, more
members or more bytes than the limits allow (a decompression bomb stops at the limit, before
its content is read). Symbolic links are never followed on disk: a link inside the report is
resolved by name to another member the report holds (Debian's etc/os-release ->
../usr/lib/os-release, nginx's sites-enabled/*), and one that points out of the report or at
something not read is listed as skipped, with its target. In a folder, files are opened with
O_NOFOLLOW | O_NONBLOCK and checked to be regular after opening, so a FIFO never blocks.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import lzma
import os
import posixpath
import stat
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

from harness.errors import UsageError
from harness.scenario.sos_facts import MARKERS, PART_FOLDERS, PARTS, Skipped, SosEvidence
from harness.sizes import MiB, human, limits_from_env

MAX_HOPS = 8  # links followed from one name
__all__ = ["SosLimits", "read_sosreport"]


@dataclass(frozen=True)
class SosLimits:
    total: int = 4096 * MiB  # the members' bytes together, by their headers
    members: int = 500_000
    part: int = 64 * MiB  # one part (the package list, `ip addr`)
    config: int = 1 * MiB  # one config file

    @classmethod
    def from_env(cls) -> SosLimits:
        names = {"total": "TOTAL", "members": "MEMBERS", "part": "PART", "config": "FILE"}
        return limits_from_env(cls(), {k: f"LABHARNESS_SOS_MAX_{v}" for k, v in names.items()})


@dataclass(frozen=True)
class _Entry:
    kind: str  # file / link / dir / special
    size: int = 0
    link: str = ""


@dataclass
class _Tree:
    """The members seen (by report path) and the contents read."""

    source: str
    config: tuple[str, ...]
    limits: SosLimits
    entries: dict[str, _Entry] = field(default_factory=dict)
    data: dict[str, bytes] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)

    def limit_for(self, path: str) -> int | None:
        """How much of this member to read: None when it is not wanted."""
        if path in _PART_PATHS or path.startswith(PART_FOLDERS):
            return self.limits.part
        if any(path.startswith(c) for c in self.config):
            return self.limits.config
        return None

    def add_file(self, path: str, size: int, read: Callable[[], bytes]) -> None:
        """Record a regular member; read it when it is wanted and within its limit, else note
        why not."""
        self.entries[path] = _Entry("file", size)
        limit = self.limit_for(path)
        if limit is None:
            return
        if size > limit:
            self.skipped.append(Skipped(path, f"{human(size)}, over the {human(limit)} limit"))
            return
        self.data[path] = read()


_PART_PATHS = frozenset(p for paths in PARTS.values() for p in paths)


def refuse(source: str, member: str | None, reason: str) -> UsageError:
    where = f"{source}: member {member!r}: " if member else f"{source}: "
    return UsageError(
        where + reason,
        hint="ask for the report again as `sos report` wrote it (sosreport-*.tar.xz)",
    )


def unsafe_name(name: str) -> str | None:
    """Why a member name is unsafe to use as a path, or None."""
    if not name or "\0" in name:
        return "empty name or NUL byte in the name"
    if name.startswith(("/", "\\")):
        return "absolute path"
    if ".." in name.replace("\\", "/").split("/"):
        return "'..' in the path: it would land outside the report"
    return None


def read_sosreport(
    path: Path, config_folders: list[str], limits: SosLimits | None = None
) -> SosEvidence:
    """The parts and config files of the report at `path` (a folder or a tarball)."""
    limits = limits or SosLimits.from_env()
    config = tuple(f.strip("/") + "/" for f in config_folders if f.strip("/"))
    source = str(path)
    if path.is_dir():
        tree, name = _read_folder(path, config, limits)
    elif path.is_file():
        tree, name = _read_tarball(path, config, limits)
    elif os.path.lexists(path):
        raise UsageError(f"{source}: not a regular file or a folder")
    else:
        raise UsageError(f"{source}: no such file or folder")
    return _evidence(tree, name)


# -- tarballs ---------------------------------------------------------------------------------


def _decompressed(f: IO[bytes]) -> IO[bytes]:
    """The tar stream inside xz, gzip or bzip2 (by their magic bytes), or f itself. These
    readers raise EOFError on a stream cut short, which tarfile's own stream mode would not."""
    head = f.read(6)
    f.seek(0)
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(f)
    if head.startswith(b"\x1f\x8b"):
        return cast(IO[bytes], gzip.GzipFile(fileobj=f))  # typeshed: GzipFile is no IO
    if head.startswith(b"BZh"):
        return bz2.BZ2File(f)
    return f


TRAILING = 1 * MiB  # after the tar's end-of-archive blocks (record padding is 10 KiB at most)


def _read_tarball(path: Path, config: tuple[str, ...], limits: SosLimits) -> tuple[_Tree, str]:
    source = str(path)
    if path.suffix in {".gpg", ".asc"}:
        raise refuse(source, None, "an encrypted report: decrypt it first (gpg -d)")
    raw = _Tree(source, (), limits)  # every member, under its name in the archive
    try:
        f = path.open("rb")
    except OSError as exc:
        raise refuse(source, None, f"cannot read: {exc.strerror}") from None
    try:
        with f:
            stream = _decompressed(f)
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                _scan(tar, raw, config)
            _to_the_end(source, stream)
    except UsageError:
        raise
    except (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error, OSError) as exc:
        if isinstance(exc, tarfile.ReadError) and not raw.entries:
            raise refuse(
                source, None, f"not a tar archive sos could have written ({exc})"
            ) from None
        raise refuse(source, None, f"truncated or corrupt archive ({exc})") from None
    return _strip_top(raw, config)


def _to_the_end(source: str, stream: IO[bytes]) -> None:
    """Read the compressed stream to its end marker: tar alone takes an archive cut at a
    member boundary for a complete one (the decompressor raises EOFError when cut)."""
    left = TRAILING
    while chunk := stream.read(1 << 16):
        left -= len(chunk)
        if left < 0:
            raise refuse(source, None, f"more than {human(TRAILING)} after the archive's end")


def _scan(tar: tarfile.TarFile, raw: _Tree, config: tuple[str, ...]) -> None:
    total = 0
    count = 0
    while (ti := tar.next()) is not None:
        kept = vars(tar).get("members")  # tarfile keeps every TarInfo seen; a stream need not
        if isinstance(kept, list):
            kept.clear()
        count += 1
        if count > raw.limits.members:
            raise refuse(raw.source, ti.name, f"more than {raw.limits.members} members")
        why = unsafe_name(ti.name)
        if why:
            raise refuse(raw.source, ti.name, why)
        name = posixpath.normpath(ti.name)
        if ti.isdir():
            raw.entries[name] = _Entry("dir")
        elif ti.issym():
            raw.entries[name] = _Entry("link", link=ti.linkname)
        elif ti.islnk():  # a hard link names another member by its archive name
            raw.entries[name] = _Entry("hard", link=posixpath.normpath(ti.linkname))
        elif ti.isreg():
            total += ti.size
            if total > raw.limits.total:
                raise refuse(
                    raw.source, name, f"the members pass {human(raw.limits.total)} together"
                )
            raw.entries[name] = _Entry("file", ti.size)
            limit = _wanted(name, config, raw.limits)
            if limit is not None and ti.size <= limit:
                raw.data[name] = _read_member(tar, ti, raw.source, name)
        else:
            kind = "device file" if ti.ischr() or ti.isblk() else "FIFO or special member"
            raise refuse(raw.source, name, f"{kind}: a sosreport holds none")


def _wanted(name: str, config: tuple[str, ...], limits: SosLimits) -> int | None:
    """The read limit for a member, under its own name or with its top folder taken off."""
    probe = _Tree("", config, limits)
    rest = name.split("/", 1)[1] if "/" in name else ""
    hits = [x for x in (probe.limit_for(name), probe.limit_for(rest) if rest else None) if x]
    return max(hits) if hits else None


def _read_member(tar: tarfile.TarFile, ti: tarfile.TarInfo, source: str, name: str) -> bytes:
    f = tar.extractfile(ti)
    data = f.read() if f is not None else b""
    if len(data) != ti.size:
        raise refuse(source, name, "truncated")
    return data


def _reader(data: dict[str, bytes], name: str) -> Callable[[], bytes]:
    return lambda: data.get(name, b"")


def _strip_top(raw: _Tree, config: tuple[str, ...]) -> tuple[_Tree, str]:
    """The report's paths: without the one top folder sos puts everything in."""
    tops = {n.split("/", 1)[0] for n in raw.entries}
    top = next(iter(tops)) if len(tops) == 1 else ""
    if top and raw.entries.get(top, _Entry("dir")).kind != "dir":
        top = ""

    def inside(name: str) -> str:
        return name[len(top) + 1 :] if top and name.startswith(top + "/") else name

    tree = _Tree(raw.source, config, raw.limits)
    for name, entry in raw.entries.items():
        path = inside(name)
        if not path or path == top:
            continue
        if entry.kind == "file":
            tree.add_file(path, entry.size, _reader(raw.data, name))
        elif entry.kind == "hard":
            tree.entries[path] = _Entry("link", link="/" + inside(entry.link))
        else:
            tree.entries[path] = entry
    if not any(p == m or p.startswith(m + "/") for p in tree.entries for m in MARKERS):
        raise refuse(raw.source, None, _NOT_SOS)
    return tree, top or Path(raw.source).name


_NOT_SOS = (
    "not a sosreport: none of " + ", ".join(MARKERS) + " in it (is this the report sos wrote?)"
)


# -- folders ----------------------------------------------------------------------------------


def _report_root(path: Path) -> Path:
    """The folder itself, or the one report folder inside it."""
    if any(os.path.lexists(path / m) for m in MARKERS):
        return path
    subs = [p for p in path.iterdir() if p.is_dir() and not p.is_symlink()]
    if len(subs) == 1 and any(os.path.lexists(subs[0] / m) for m in MARKERS):
        return subs[0]
    raise refuse(str(path), None, _NOT_SOS)


def _read_folder(path: Path, config: tuple[str, ...], limits: SosLimits) -> tuple[_Tree, str]:
    try:
        root = _report_root(path)
    except OSError as exc:
        raise refuse(str(path), None, f"cannot read: {exc.strerror}") from None
    tree = _Tree(str(path), config, limits)
    for rel in sorted(_PART_PATHS):
        _visit(root, rel, tree)
    for folder in (*PART_FOLDERS, *config):
        _walk(root, folder.rstrip("/"), tree)
    return tree, root.name


def _walk(root: Path, rel: str, tree: _Tree) -> None:
    """Every member below root/rel, never through a symbolic link."""
    if not _plain_dirs(root, rel) or not (root / rel).is_dir() or (root / rel).is_symlink():
        _visit(root, rel, tree)
        return
    for here, dirs, files in os.walk(root / rel, followlinks=False):
        base = Path(here).relative_to(root).as_posix()
        for d in sorted(dirs):
            if (Path(here) / d).is_symlink():
                _visit(root, f"{base}/{d}", tree)
        for f in sorted(files):
            _visit(root, f"{base}/{f}", tree)
        if len(tree.entries) > tree.limits.members:
            raise refuse(tree.source, None, f"more than {tree.limits.members} files")


def _plain_dirs(root: Path, rel: str) -> bool:
    """Whether every folder on the way from root to rel is a real folder, not a link."""
    here = root
    for p in rel.split("/")[:-1]:
        here = here / p
        if here.is_symlink() or not here.is_dir():
            return False
    return True


def _visit(root: Path, rel: str, tree: _Tree) -> None:
    """Record one member of a report folder (read it when wanted)."""
    if not _plain_dirs(root, rel):
        return
    target = root / rel
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return
    except OSError as exc:
        tree.skipped.append(Skipped(rel, f"cannot read: {exc.strerror}"))
        return
    if stat.S_ISLNK(st.st_mode):
        tree.entries[rel] = _Entry("link", link=os.readlink(target))
    elif stat.S_ISDIR(st.st_mode):
        tree.entries[rel] = _Entry("dir")
    elif stat.S_ISREG(st.st_mode):
        tree.add_file(rel, st.st_size, lambda: _read_regular(target, tree, rel))
    else:
        raise refuse(tree.source, rel, "a device file, FIFO or socket: a sosreport holds none")


def _read_regular(path: Path, tree: _Tree, rel: str) -> bytes:
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise refuse(tree.source, rel, "replaced by a symbolic link while read") from None
        raise refuse(tree.source, rel, f"cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise refuse(tree.source, rel, "not a regular file")
        limit = tree.limit_for(rel) or tree.limits.config
        data = f.read(limit + 1)
    if len(data) > limit:
        raise refuse(tree.source, rel, "grew past its size limit while read")
    return data


# -- links and the result ---------------------------------------------------------------------


def _resolve(tree: _Tree, path: str) -> tuple[str | None, str]:
    """The regular member a path names after following links inside the report, or None and
    why not."""
    seen = path
    for _ in range(MAX_HOPS):
        entry = tree.entries.get(seen)
        if entry is None:
            return None, f"symbolic link to {seen}, which the report does not hold"
        if entry.kind != "link":
            if entry.kind == "file":
                return seen, ""
            return None, f"symbolic link to a {entry.kind} ({seen}): not followed"
        link = entry.link
        joined = (
            link.lstrip("/")
            if link.startswith("/")
            else posixpath.join(posixpath.dirname(seen), link)
        )
        norm = posixpath.normpath(joined)
        if norm.startswith("../") or norm == "..":
            return None, f"symbolic link out of the report (-> {link})"
        seen = norm
    return None, "too many levels of symbolic links"


def _evidence(tree: _Tree, name: str) -> SosEvidence:
    parts: dict[str, bytes] = {}
    files: dict[str, bytes] = {}
    skipped = list(tree.skipped)
    for path, entry in sorted(tree.entries.items()):
        wanted = tree.limit_for(path)
        if wanted is None or entry.kind == "dir":
            continue
        target, why = _resolve(tree, path)
        if target is not None and target not in tree.data:
            if tree.limit_for(target) is not None:
                continue  # skipped for its size: said once, for the member itself
            target, why = None, f"symbolic link to {target}, outside the folders carried over"
        if target is None:
            skipped.append(Skipped(path, why))
            continue
        is_part = path in _PART_PATHS or path.startswith(PART_FOLDERS)
        (parts if is_part else files)[path] = tree.data[target]
    return SosEvidence(source=tree.source, name=name, parts=parts, files=files, skipped=skipped)
