"""The local tracker, and the escalations index every tracker records in.

escalations/<ticket>/ holds the files copied in (bundle, report.html, ...) and the comments as
comment-<n>.md; escalations/index.json lists every file that reached any ticket:

    {"entries": [{"ticket", "tracker", "file", "sha256", "size", "when", "where", "comment"}]}

`where` is the copy's path (local) or the attachment's URL (remote); `comment` is the id/url of
the comment that came with it. A comment added without a new file is one entry with file null.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.trackers import AttachResult, TrackerConfigError

INDEX = "index.json"
_TICKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._#-]{0,127}$")
_COMMENT = re.compile(r"^comment-(\d+)\.md$")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class LocalFile:
    """A file to attach: its path, name, size and digests (computed once)."""

    path: Path
    name: str
    size: int
    sha256: str
    md5: str

    @classmethod
    def of(cls, path: Path) -> LocalFile:
        if not path.is_file():
            raise UsageError(f"cannot attach {path}: no such file")
        sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                sha.update(chunk)
                md5.update(chunk)
        return cls(path, path.name, path.stat().st_size, sha.hexdigest(), md5.hexdigest())


def files_of(paths: list[Path]) -> list[LocalFile]:
    out = [LocalFile.of(Path(p)) for p in paths]
    names = [f.name for f in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UsageError(f"two files to attach share the name {dup[0]!r}; rename one")
    return out


# ---- the index ---------------------------------------------------------------------------


def index(root: Path, *, config: Path | None = None) -> list[dict[str, Any]]:
    """Every recorded escalation entry, oldest first ([] when nothing was escalated yet)."""
    from harness.trackers.config import escalations_dir

    return read_index(escalations_dir(root, config))


def record(
    root: Path,
    *,
    ticket: str,
    tracker: str,
    file: str | None,
    sha256: str | None,
    size: int | None,
    where: str | None,
    comment: str | None,
    when: str | None = None,
    config: Path | None = None,
) -> dict[str, Any]:
    """Append one entry to the index (trackers' attach() already records: do not call twice)."""
    from harness.trackers.config import escalations_dir

    entry = make_entry(
        ticket=ticket,
        tracker=tracker,
        file=file,
        sha256=sha256,
        size=size,
        where=where,
        comment=comment,
        when=when,
    )
    append_entries(escalations_dir(root, config), [entry])
    return entry


def make_entry(
    *,
    ticket: str,
    tracker: str,
    file: str | None,
    sha256: str | None,
    size: int | None,
    where: str | None,
    comment: str | None,
    when: str | None = None,
) -> dict[str, Any]:
    return {
        "ticket": ticket,
        "tracker": tracker,
        "file": file,
        "sha256": sha256,
        "size": size,
        "when": when or now(),
        "where": where,
        "comment": comment,
    }


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def read_index(directory: Path) -> list[dict[str, Any]]:
    path = directory / INDEX
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{path}:{exc.lineno}: not valid JSON ({exc.msg})", hint="fix it, or move it aside"
        ) from None
    entries = data.get("entries") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise UsageError(f'{path}: expected {{"entries": [...]}}')
    return [e for e in entries if isinstance(e, dict)]


def record_attach(
    directory: Path | None,
    tracker: str,
    result: Any,
    placed: list[tuple[Any, str | None]],
) -> None:
    """Index what a remote attach placed: one entry per new file (`placed`: the local file
    with its name/sha256/size, and where it landed), or the comment alone when no file was new."""
    if directory is None:
        return
    common = {"ticket": result.ticket, "tracker": tracker, "comment": result.comment}
    entries = [
        make_entry(**common, file=f.name, sha256=f.sha256, size=f.size, where=where)
        for f, where in placed
    ]
    if not entries and result.comment:
        entries.append(
            make_entry(**common, file=None, sha256=None, size=None, where=result.comment)
        )
    append_entries(directory, entries)


def append_entries(directory: Path, entries: list[dict[str, Any]]) -> None:
    if not entries:
        return
    directory.mkdir(parents=True, exist_ok=True)
    with _locked(directory):
        current = read_index(directory)
        current.extend(entries)
        _write_atomic(directory / INDEX, json.dumps({"entries": current}, indent=2) + "\n")


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    with (directory / ".index.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ---- the local tracker -------------------------------------------------------------------


def check_ticket(ticket: str) -> str:
    t = ticket.strip()
    if not _TICKET.match(t) or ".." in t:
        raise UsageError(
            f"ticket {ticket!r}: expected an id like SUP-48213 (letters, digits, . _ - #)"
        )
    return t


class LocalTracker:
    """Escalations kept on disk: escalations/<ticket>/ (no server, always available)."""

    def __init__(self, *, name: str = "local", directory: Path, root: Path | None = None) -> None:
        self.name = name
        self.directory = directory
        self.root = root

    def attach(self, ticket: str, files: list[Path], comment: str) -> AttachResult:
        ticket = check_ticket(ticket)
        todo = files_of(files)
        folder = self.directory / ticket
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrackerConfigError(
                f"cannot create {folder}: {exc.strerror}", hint="set LABHARNESS_ESCALATIONS"
            ) from None
        result = AttachResult(tracker=self.name, ticket=ticket, url=folder.as_uri())
        added: list[tuple[LocalFile, Path]] = []
        with _locked(self.directory):
            for f in todo:
                target = _target(folder, f)
                if target is None:
                    result.already.append(f.name)
                    continue
                tmp = folder / f".{target.name}.part"
                shutil.copyfile(f.path, tmp)
                os.replace(tmp, target)
                added.append((f, target))
                result.attached.append(target.name)
            text = comment.strip()
            if text and (added or text not in _comments(folder)):
                n = max((int(m.group(1)) for m in _comment_files(folder)), default=0) + 1
                path = folder / f"comment-{n}.md"
                _write_atomic(path, text + "\n")
                result.comment = str(path)
        entries = [
            make_entry(
                ticket=ticket,
                tracker=self.name,
                file=target.name,
                sha256=f.sha256,
                size=f.size,
                where=str(target),
                comment=result.comment,
            )
            for f, target in added
        ]
        if not entries and result.comment:
            entries.append(
                make_entry(
                    ticket=ticket,
                    tracker=self.name,
                    file=None,
                    sha256=None,
                    size=None,
                    where=result.comment,
                    comment=result.comment,
                )
            )
        append_entries(self.directory, entries)
        return result


def _target(folder: Path, f: LocalFile) -> Path | None:
    """Where `f` goes in `folder`: None if a file of that name (or a renamed copy) has the same
    content; a free name (name, then stem-2.ext, ...) otherwise."""
    stem, suffix = _split(f.name)
    n = 1
    while True:
        candidate = folder / (f.name if n == 1 else f"{stem}-{n}{suffix}")
        if not candidate.exists():
            return candidate
        if candidate.stat().st_size == f.size and sha256_of(candidate) == f.sha256:
            return None
        n += 1


def _split(name: str) -> tuple[str, str]:
    for ext in (".tar.gz", ".tar.zst", ".tar.xz", ".tar.bz2"):
        if name.endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)], ext
    p = Path(name)
    return (p.stem, p.suffix) if p.suffix and p.stem else (name, "")


def _comment_files(folder: Path) -> list[re.Match[str]]:
    return [m for p in folder.iterdir() if (m := _COMMENT.match(p.name))]


def _comments(folder: Path) -> set[str]:
    return {
        (folder / m.group(0)).read_text(encoding="utf-8").strip() for m in _comment_files(folder)
    }
