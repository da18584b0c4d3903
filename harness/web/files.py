"""The report folders' files, served by their path under the reports root (`/reports/<folder>/
<file>`, so a report's relative links to its siblings keep working), and only when:

- the path is clean: relative, no `..` or `.` or empty segment, no backslash, no `%` left after
  the server's one decoding (a double-encoded `%252e`), no NUL or control character;
- one of its leading parts is a folder the index names (a run's, a verification's, a matrix's);
- that folder, resolved (symlinks followed), is inside the resolved reports root, and so is the
  file inside the folder: a symlink that leads out of the folder is refused like a missing file.

Everything else is 404, whatever the reason, so a probe learns nothing. The files are answered
with a sandboxing Content-Security-Policy: a report, or an HTML file a node handed over as
evidence, runs no script and cannot reach the dashboard's origin."""

from __future__ import annotations

import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from harness.web.models import FileLink

MAX_PATH = 1024
# reports style themselves inline and draw inline SVG; no script, no fetch, an opaque origin
FILE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; sandbox"
_TEXT = frozenset(
    {".log", ".md", ".txt", ".conf", ".cnf", ".yaml", ".yml", ".cfg", ".ini", ".sh", ".pem",
     ".crt", ".out", ".err", ".py", ".toml", ".csv", ".sql", ".env", ".j2", ".properties"}
)  # fmt: skip


def clean_parts(path: str) -> list[str] | None:
    """The segments of a request path, or None when it is anything but a plain relative path
    (a trailing slash names a folder and is allowed)."""
    if not path or len(path) > MAX_PATH or path.startswith("/"):
        return None
    if any(ch in path for ch in ("\\", "%")) or any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        return None
    parts = path.split("/")
    if parts[-1] == "":
        parts = parts[:-1]
    if not parts or any(p in ("", ".", "..") for p in parts):
        return None
    return parts


def prefixes(parts: list[str]) -> list[str]:
    """`a/b/c` -> `a`, `a/b`, `a/b/c`: the folders the index may name for this path."""
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def served_url(rel: str) -> str:
    """The dashboard URL of a path relative to the reports root."""
    return "/reports/" + quote(rel, safe="/")


def media_type(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _TEXT or (not suffix and _looks_text(path)):
        return "text/plain; charset=utf-8"
    guessed, _ = mimetypes.guess_type(path.name)
    if guessed is None:
        return "application/octet-stream"
    if guessed.startswith("text/") or guessed in ("application/json", "application/xml"):
        return f"{guessed}; charset=utf-8"
    return guessed


def _looks_text(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(2048)
        head.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return b"\x00" not in head


@dataclass(frozen=True)
class ReportFiles:
    """The reports root, and the one rule for what under it may be read."""

    root: Path

    @property
    def base(self) -> Path:
        return self.root.resolve()

    def folder(self, folder: str | None) -> Path | None:
        """An indexed folder, resolved, when it is a clean path strictly inside the root."""
        parts = clean_parts(folder) if folder else None
        if parts is None:
            return None
        base = self.base
        try:
            top = base.joinpath(*parts).resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        return top if top != base and top.is_relative_to(base) and top.is_dir() else None

    def inside(self, folder: str, parts: list[str]) -> Path | None:
        """The existing file or folder `parts` names, when it lies inside the indexed `folder`
        once every symlink is followed."""
        top = self.folder(folder)
        if top is None:
            return None
        try:
            target = self.base.joinpath(*parts).resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        return target if target.is_relative_to(top) else None

    def url(self, folder: str | None, name: str) -> str | None:
        """Where a folder's file is served, when it is there and may be served."""
        if not folder:
            return None
        parts = clean_parts(f"{folder}/{name}")
        if parts is None or self.inside(folder, parts) is None:
            return None
        return served_url("/".join(parts))

    def listing(self, folder: str | None, limit: int = 400) -> tuple[list[FileLink], bool]:
        """The files of a folder, sorted, at most `limit` (and whether some were left out);
        symlinks that lead out of it are left out."""
        top = self.folder(folder)
        if top is None or folder is None:
            return [], False
        found: list[FileLink] = []
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(dirpath) / name
                rel = path.relative_to(top).as_posix()
                if self._link(top, folder, rel, path, found) and len(found) > limit:
                    return found[:limit], True
        return found, False

    def _link(self, top: Path, folder: str, rel: str, path: Path, found: list[FileLink]) -> bool:
        try:
            real = path.resolve(strict=True)
            size = real.stat().st_size
        except (OSError, RuntimeError):
            return False
        if not real.is_relative_to(top) or not real.is_file() or clean_parts(rel) is None:
            return False
        found.append(FileLink(path=rel, url=served_url(f"{folder}/{rel}"), size=size))
        return True
