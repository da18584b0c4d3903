"""Check a bundle and extract it without trusting it.

The archive is read once, as a stream. Its first member must be bundle/manifest.json; every
other member must be a regular file the manifest lists, of the size it says, and its sha256 is
checked as it is written. Refused, with the member's name and the reason (UsageError, exit 2):

- absolute names, `..` components, names outside `bundle/`;
- symbolic and hard links (those pointing out of the bundle are named as such; a bundle that
  labharness made has none at all);
- device files, FIFOs and any other special member;
- a member over the per-file limit, or the members together over the total limit, or too many
  members (limits: Limits, or $LABHARNESS_BUNDLE_MAX_FILE / _MAX_TOTAL / _MAX_MEMBERS in bytes);
- a file missing, extra, listed twice, or whose content does not match its checksum;
- a truncated or corrupt archive.

Files are created with O_EXCL | O_NOFOLLOW below a folder this module creates, so nothing is
written outside it. On any refusal what was extracted is removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from harness.errors import UsageError
from harness.escalation.bundle import KIND, MANIFEST, TOP

GiB = 1 << 30
MiB = 1 << 20


class BundleRefused(UsageError):
    """The bundle is not what its manifest says, or is unsafe to extract."""


@dataclass(frozen=True)
class Limits:
    total: int = 2 * GiB
    per_file: int = 512 * MiB
    members: int = 100_000
    manifest: int = 64 * MiB

    @classmethod
    def from_env(cls) -> Limits:
        def get(name: str, default: int) -> int:
            text = os.environ.get(name)
            if not text:
                return default
            try:
                return int(text)
            except ValueError:
                raise UsageError(f"${name}={text!r}: expected a number of bytes") from None

        d = cls()
        return cls(
            total=get("LABHARNESS_BUNDLE_MAX_TOTAL", d.total),
            per_file=get("LABHARNESS_BUNDLE_MAX_FILE", d.per_file),
            members=get("LABHARNESS_BUNDLE_MAX_MEMBERS", d.members),
        )


def _human(n: int) -> str:
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def _refuse(bundle: Path, member: str | None, reason: str) -> BundleRefused:
    where = f"{bundle}: member {member!r}: " if member else f"{bundle}: "
    return BundleRefused(
        where + reason,
        hint="nothing was run; get the bundle again from the ticket (its sha256 is in the "
        "ticket comment) or ask who made it",
    )


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


def _copy_checked(src: IO[bytes], out: int, size: int) -> str:
    h = hashlib.sha256()
    left = size
    while left > 0:
        chunk = src.read(min(left, 1 << 20))
        if not chunk:
            raise EOFError("unexpected end of data")
        h.update(chunk)
        os.write(out, chunk)
        left -= len(chunk)
    return h.hexdigest()


def read_manifest(bundle: Path, limits: Limits | None = None) -> dict[str, Any]:
    """Only the manifest (the first member), checked for shape; nothing is extracted."""
    limits = limits or Limits.from_env()
    try:
        with tarfile.open(bundle, mode="r|gz") as tar:
            ti = tar.next()
            return _manifest(bundle, tar, ti, limits)
    except BundleRefused:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise _corrupt(bundle, exc) from None


def _corrupt(bundle: Path, exc: BaseException) -> BundleRefused:
    if isinstance(exc, FileNotFoundError):
        return BundleRefused(f"{bundle}: no such file")
    return _refuse(bundle, None, f"truncated or corrupt archive ({exc})")


def _manifest(
    bundle: Path, tar: tarfile.TarFile, ti: tarfile.TarInfo | None, limits: Limits
) -> dict[str, Any]:
    if ti is None or ti.name != MANIFEST or not ti.isreg():
        name = ti.name if ti is not None else None
        raise _refuse(bundle, name, f"not a labharness bundle: the first member must be {MANIFEST}")
    if ti.size > limits.manifest:
        raise _refuse(bundle, ti.name, f"manifest of {_human(ti.size)} is over the limit")
    f = tar.extractfile(ti)
    if f is None:
        raise _refuse(bundle, ti.name, "cannot be read")
    data = f.read()
    if len(data) != ti.size:
        raise _refuse(bundle, ti.name, "truncated")
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise _refuse(bundle, ti.name, f"not JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        raise _refuse(bundle, ti.name, f"not a labharness bundle manifest (kind != {KIND!r})")
    files = manifest.get("files")
    if not isinstance(files, list) or not all(
        isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("sha256"), str)
        for e in files
    ):
        raise _refuse(bundle, ti.name, "its `files` list is malformed")
    return manifest


def extract_bundle(bundle: Path, dest: Path, *, limits: Limits | None = None) -> dict[str, Any]:
    """Verify and extract `bundle` into `dest` (created; must not exist or be empty), without
    the leading bundle/: dest/manifest.json, dest/project/, dest/run/. Returns the manifest."""
    limits = limits or Limits.from_env()
    if not bundle.is_file():
        raise BundleRefused(f"{bundle}: no such file")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"{dest}: exists and is not an empty folder; give a fresh one")
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        return _extract(bundle, dest.resolve(), limits)
    except BaseException:
        if created:
            shutil.rmtree(dest, ignore_errors=True)
        else:
            for child in dest.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise


def _extract(bundle: Path, dest: Path, limits: Limits) -> dict[str, Any]:
    seen: set[str] = set()
    total = 0
    count = 0
    try:
        with tarfile.open(bundle, mode="r|gz") as tar:
            manifest = _manifest(bundle, tar, tar.next(), limits)
            expected = {e["path"]: e for e in manifest["files"]}
            (dest / "manifest.json").write_bytes(
                json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
            )
            while (ti := tar.next()) is not None:  # (iterating would yield the manifest again)
                count += 1
                if count > limits.members:
                    raise _refuse(bundle, ti.name, f"more than {limits.members} members")
                why = _check_name(ti.name)
                if why:
                    raise _refuse(bundle, ti.name, why)
                if ti.issym() or ti.islnk():
                    raise _refuse(bundle, ti.name, _link_reason(ti))
                if ti.isdir():
                    _mkdirs(dest, posixpath.normpath(ti.name).removeprefix(TOP))
                    continue
                if not ti.isreg():
                    raise _refuse(bundle, ti.name, _special_reason(ti))
                name = posixpath.normpath(ti.name)
                if ti.size > limits.per_file:
                    raise _refuse(
                        bundle,
                        name,
                        f"{_human(ti.size)} is over the per-file limit of "
                        f"{_human(limits.per_file)}",
                    )
                total += ti.size
                if total > limits.total:
                    raise _refuse(
                        bundle,
                        name,
                        f"the bundle's files together pass the limit of {_human(limits.total)}",
                    )
                entry = expected.get(name)
                if entry is None:
                    raise _refuse(bundle, name, "not listed in the manifest (added or renamed)")
                if name in seen:
                    raise _refuse(bundle, name, "appears twice")
                seen.add(name)
                if entry.get("size") is not None and entry["size"] != ti.size:
                    raise _refuse(
                        bundle,
                        name,
                        f"checksum mismatch: {ti.size} bytes, the manifest says {entry['size']}",
                    )
                rel = name.removeprefix(TOP + "/")
                parent = _mkdirs(dest, posixpath.dirname(rel))
                target = parent / posixpath.basename(rel)
                src = tar.extractfile(ti)
                if src is None:
                    raise _refuse(bundle, name, "cannot be read")
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                fd = os.open(target, flags, 0o600)
                try:
                    digest = _copy_checked(src, fd, ti.size)
                finally:
                    os.close(fd)
                if digest != entry["sha256"]:
                    raise _refuse(
                        bundle,
                        name,
                        "checksum mismatch: its content is not what the manifest records "
                        "(changed after bundling)",
                    )
                os.chmod(target, ti.mode & 0o777)
    except BundleRefused:
        raise
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise _corrupt(bundle, exc) from None
    except OSError as exc:
        raise _refuse(bundle, None, f"cannot extract: {exc}") from None
    missing = sorted(set(expected) - seen)
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise _refuse(
            bundle,
            missing[0],
            f"listed in the manifest but missing from the archive ({', '.join(missing[:3])}"
            f"{more}): truncated or altered",
        )
    return manifest
