"""Check a bundle and extract it without trusting it.

Nothing in a bundle is believed until checked, and nothing is written until everything is:

1. The head: the first member must be bundle/manifest.json (the second may be
   bundle/manifest.sig, its signature: signing.py). The manifest is checked for shape before any
   folder exists (manifest_check.py): every path it names stays inside the extraction folder,
   `run.id` is a plain run id, every listed file has a size, and the sizes it declares are
   within Limits (each file, the total, the count, and the ratio to the compressed size: a gzip
   bomb is refused by arithmetic, not by running out of disk).
2. A scan of the whole archive, writing nothing: every member's tar header (name, type, size)
   and content (sha256) against the manifest.
3. Only then the copy, from the same open file, each member hashed again as it is written (the
   file could have changed since the scan).

Refused, with the member's (or manifest key's) name and the reason (BundleRefused, exit 2):

- absolute names, `..` components, names outside `bundle/`;
- symbolic and hard links (those pointing out of the bundle are named as such; a bundle that
  labharness made has none at all);
- device files, FIFOs and any other special member;
- a member over the per-file limit, or the members together over the total limit, or too many
  members, or more uncompressed bytes per compressed byte than the ratio limit allows
  (Limits, or $LABHARNESS_BUNDLE_MAX_FILE / _MAX_TOTAL / _MAX_MEMBERS / _MAX_RATIO);
- a file missing, extra, listed twice, of another size than listed, or whose content does not
  match its checksum;
- a truncated or corrupt archive.

Files are created with O_EXCL | O_NOFOLLOW below a folder this module creates, so nothing is
written outside it. On any refusal or interruption what was extracted is removed.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import posixpath
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from harness.errors import UsageError
from harness.escalation.bundle import MANIFEST, SIGNATURE, TOP
from harness.escalation.manifest_check import (
    BundleRefused,
    check_manifest,
    parse_manifest,
    refuse,
)
from harness.sizes import human, limits_from_env

GiB = 1 << 30
MiB = 1 << 20
TRAILING = 1 * MiB  # after the tar's end-of-archive blocks (record padding is 10 KiB at most)
__all__ = ["BundleHead", "BundleRefused", "Limits", "extract_bundle", "read_head", "read_manifest"]


@dataclass(frozen=True)
class Limits:
    total: int = 2 * GiB
    per_file: int = 512 * MiB
    members: int = 100_000
    manifest: int = 64 * MiB
    ratio: int = 200  # uncompressed bytes per compressed byte, at most...
    ratio_floor: int = 64 * MiB  # ...once the bundle declares more than this

    @classmethod
    def from_env(cls) -> Limits:
        names = {"total": "TOTAL", "per_file": "FILE", "members": "MEMBERS", "ratio": "RATIO"}
        return limits_from_env(cls(), {k: f"LABHARNESS_BUNDLE_MAX_{v}" for k, v in names.items()})


@dataclass(frozen=True)
class BundleHead:
    """The manifest as read (its exact bytes, which a signature covers) and the signature."""

    manifest: dict[str, Any]
    raw: bytes
    signature: bytes | None


def _check_name(name: str) -> str | None:
    """Why a member name is unsafe, or None."""
    if not name or "\0" in name:
        return "empty name or NUL byte in the name"
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return "'..' in the path: it would land outside the target folder"
    norm = posixpath.normpath(name)
    if norm != TOP and not norm.startswith(TOP + "/"):
        return f"outside the bundle's {TOP}/ folder"
    return None


def _link_reason(ti: tarfile.TarInfo) -> str:
    kind = "symbolic link" if ti.issym() else "hard link"
    target = ti.linkname
    if ti.issym():
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(ti.name), target))
    else:
        resolved = posixpath.normpath(target)
    outside = (
        target.startswith("/")
        or resolved == ".."
        or resolved.startswith("../")
        or not (resolved == TOP or resolved.startswith(TOP + "/"))
    )
    if outside:
        return f"{kind} pointing out of the bundle (-> {target})"
    return f"{kind} (-> {target}): a labharness bundle carries no links"


def _special_reason(ti: tarfile.TarInfo) -> str:
    if ti.ischr() or ti.isblk():
        return "device file"
    if ti.isfifo():
        return "FIFO (named pipe)"
    return f"unsupported member type {ti.type!r}"


def _mkdirs(root: Path, rel_dir: str) -> Path:
    """Create rel_dir below root, refusing to go through anything but plain folders."""
    here = root
    for part in [p for p in rel_dir.split("/") if p]:
        here = here / part
        if here.is_symlink():
            raise OSError(f"{here} is a symbolic link")
        if not here.exists():
            here.mkdir()
        elif not here.is_dir():
            raise OSError(f"{here} is not a folder")
    return here


def _copy_checked(src: IO[bytes], out: int | None, size: int) -> str:
    """sha256 of `size` bytes of src, written to `out` unless it is None (the scan)."""
    h = hashlib.sha256()
    left = size
    while left > 0:
        chunk = src.read(min(left, 1 << 20))
        if not chunk:
            raise EOFError("unexpected end of data")
        h.update(chunk)
        if out is not None:
            os.write(out, chunk)
        left -= len(chunk)
    return h.hexdigest()


def _read_member(bundle: Path, tar: tarfile.TarFile, ti: tarfile.TarInfo, limit: int) -> bytes:
    if ti.size > limit:
        raise refuse(bundle, ti.name, f"{human(ti.size)} is over the limit of {human(limit)}")
    f = tar.extractfile(ti)
    if f is None:
        raise refuse(bundle, ti.name, "cannot be read")
    data = f.read()
    if len(data) != ti.size:
        raise refuse(bundle, ti.name, "truncated")
    return data


def _head(
    bundle: Path, tar: tarfile.TarFile, limits: Limits
) -> tuple[BundleHead, tarfile.TarInfo | None]:
    """The manifest (checked) and the signature; and the member after them, already read."""
    ti = tar.next()
    if ti is None or ti.name != MANIFEST or not ti.isreg():
        name = ti.name if ti is not None else None
        raise refuse(bundle, name, f"not a labharness bundle: the first member must be {MANIFEST}")
    raw = _read_member(bundle, tar, ti, limits.manifest)
    manifest = parse_manifest(bundle, raw)
    check_manifest(bundle, manifest, limits, bundle.stat().st_size)
    signature = None
    after = tar.next()
    if after is not None and after.name == SIGNATURE:
        if not after.isreg():
            raise refuse(bundle, after.name, "the signature must be a regular file")
        signature = _read_member(bundle, tar, after, 4096)
        after = tar.next()
    return BundleHead(manifest, raw, signature), after


def _corrupt(bundle: Path, exc: BaseException) -> BundleRefused:
    if isinstance(exc, FileNotFoundError):
        return BundleRefused(f"{bundle}: no such file")
    return refuse(bundle, None, f"truncated or corrupt archive ({exc})")


def read_head(bundle: Path, limits: Limits | None = None) -> BundleHead:
    """Only the manifest and its signature, checked for shape and limits; nothing is extracted
    and no folder is made."""
    limits = limits or Limits.from_env()
    if not bundle.is_file():
        raise BundleRefused(f"{bundle}: no such file")
    try:
        with tarfile.open(bundle, mode="r|gz") as tar:
            return _head(bundle, tar, limits)[0]
    except BundleRefused:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise _corrupt(bundle, exc) from None


def read_manifest(bundle: Path, limits: Limits | None = None) -> dict[str, Any]:
    """Only the manifest (the first member), checked; nothing is extracted."""
    return read_head(bundle, limits).manifest


def extract_bundle(
    bundle: Path,
    dest: Path,
    *,
    limits: Limits | None = None,
    expect: BundleHead | None = None,
) -> dict[str, Any]:
    """Verify and extract `bundle` into `dest` (created; must not exist or be empty), without
    the leading bundle/: dest/manifest.json (and manifest.sig), dest/project/, dest/run/.
    With `expect` (a head read and judged earlier), the archive's head must still be that one.
    Returns the manifest."""
    limits = limits or Limits.from_env()
    if not bundle.is_file():
        raise BundleRefused(f"{bundle}: no such file")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"{dest}: exists and is not an empty folder; give a fresh one")
    try:
        raw = bundle.open("rb")
    except OSError as exc:
        raise refuse(bundle, None, f"cannot read: {exc.strerror}") from None
    with raw:
        head, _ = _pass(bundle, raw, None, limits, expect)  # writes nothing
        if expect is None:
            expect = head
        created = not dest.exists()
        dest.mkdir(parents=True, exist_ok=True)
        try:
            raw.seek(0)
            _pass(bundle, raw, dest.resolve(), limits, expect)
        except BaseException:
            remove_extracted(dest, created)
            raise
    return head.manifest


def remove_extracted(dest: Path, created: bool) -> None:
    """Remove what extraction put in dest (and dest itself when it was made for it)."""
    if created:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in list(dest.iterdir()) if dest.is_dir() else []:
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _pass(
    bundle: Path,
    raw: IO[bytes],
    dest: Path | None,
    limits: Limits,
    expect: BundleHead | None,
) -> tuple[BundleHead, set[str]]:
    """One pass over the archive: every member checked against the manifest; written below
    dest when it is given (else only checked)."""
    try:
        gz = gzip.GzipFile(fileobj=raw, mode="rb")
        with tarfile.open(fileobj=gz, mode="r|") as tar:
            head, ti = _head(bundle, tar, limits)
            if expect is not None and (head.raw, head.signature) != (expect.raw, expect.signature):
                raise refuse(bundle, MANIFEST, "changed while it was being read: not extracting it")
            if dest is not None:
                _write_new(dest / "manifest.json", head.raw)
                if head.signature is not None:
                    _write_new(dest / "manifest.sig", head.signature)
            seen = _members(bundle, tar, ti, head.manifest, dest=dest, limits=limits)
        _to_the_end(bundle, gz)
    except BundleRefused:
        raise
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise _corrupt(bundle, exc) from None
    except OSError as exc:
        raise refuse(bundle, None, f"cannot extract: {exc}") from None
    expected = {e["path"] for e in head.manifest["files"]}
    missing = sorted(expected - seen)
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise refuse(
            bundle,
            missing[0],
            f"listed in the manifest but missing from the archive ({', '.join(missing[:3])}"
            f"{more}): truncated or altered",
        )
    return head, seen


def _to_the_end(bundle: Path, gz: gzip.GzipFile) -> None:
    """Read the gzip stream to its end-of-stream marker and CRC: tar alone takes an archive cut
    at a member boundary for a complete one. What follows the tar's end is only padding."""
    left = TRAILING
    while chunk := gz.read(1 << 16):
        left -= len(chunk)
        if left < 0:
            raise refuse(
                bundle, None, f"more than {human(TRAILING)} of data after the archive's end"
            )


def _write_new(path: Path, data: bytes) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _members(
    bundle: Path,
    tar: tarfile.TarFile,
    ti: tarfile.TarInfo | None,
    manifest: dict[str, Any],
    *,
    dest: Path | None,
    limits: Limits,
) -> set[str]:
    expected = {e["path"]: e for e in manifest["files"]}
    seen: set[str] = set()
    total = 0
    count = 0
    while ti is not None:
        count += 1
        _check_header(bundle, ti, count, limits)
        if ti.isdir():
            if dest is not None:
                _mkdirs(dest, posixpath.normpath(ti.name).removeprefix(TOP))
            ti = tar.next()
            continue
        if not ti.isreg():
            raise refuse(bundle, ti.name, _special_reason(ti))
        name = posixpath.normpath(ti.name)
        if ti.size > limits.per_file:
            raise refuse(
                bundle,
                name,
                f"{human(ti.size)} is over the per-file limit of {human(limits.per_file)}",
            )
        total += ti.size
        if total > limits.total:
            raise refuse(
                bundle, name, f"the bundle's files together pass the limit of {human(limits.total)}"
            )
        entry = _listed_once(bundle, name, ti, expected, seen)
        _extract_checked(bundle, tar, ti, name, sha256=entry["sha256"], dest=dest)
        ti = tar.next()
    return seen


def _check_header(bundle: Path, ti: tarfile.TarInfo, count: int, limits: Limits) -> None:
    """Refuse a member by its header alone: one too many, a bad name, a link."""
    if count > limits.members:
        raise refuse(bundle, ti.name, f"more than {limits.members} members")
    why = _check_name(ti.name)
    if why:
        raise refuse(bundle, ti.name, why)
    if ti.issym() or ti.islnk():
        raise refuse(bundle, ti.name, _link_reason(ti))


def _listed_once(
    bundle: Path,
    name: str,
    ti: tarfile.TarInfo,
    expected: dict[str, dict[str, Any]],
    seen: set[str],
) -> dict[str, Any]:
    """The manifest's entry for a regular member, refused unless listed, first seen now and of
    the size listed; the name is added to seen."""
    entry = expected.get(name)
    if entry is None:
        raise refuse(bundle, name, "not listed in the manifest (added or renamed)")
    if name in seen:
        raise refuse(bundle, name, "appears twice")
    seen.add(name)
    if entry["size"] != ti.size:
        raise refuse(
            bundle,
            name,
            f"size mismatch: its header says {ti.size} bytes, the manifest {entry['size']}",
        )
    return entry


def _extract_checked(
    bundle: Path,
    tar: tarfile.TarFile,
    ti: tarfile.TarInfo,
    name: str,
    *,
    sha256: str,
    dest: Path | None,
) -> None:
    """Copy a member to a new file below dest (only hash it when dest is None); refused when its
    content is not what the manifest records. Its mode is set only once it checked out."""
    src = tar.extractfile(ti)
    if src is None:
        raise refuse(bundle, name, "cannot be read")
    target: Path | None = None
    if dest is None:
        digest = _copy_checked(src, None, ti.size)
    else:
        rel = name.removeprefix(TOP + "/")
        target = _mkdirs(dest, posixpath.dirname(rel)) / posixpath.basename(rel)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(target, flags, 0o600)
        try:
            digest = _copy_checked(src, fd, ti.size)
        finally:
            os.close(fd)
    if digest != sha256:
        raise refuse(
            bundle,
            name,
            "checksum mismatch: its content is not what the manifest records "
            "(changed after bundling)",
        )
    if target is not None:
        os.chmod(target, ti.mode & 0o777)
