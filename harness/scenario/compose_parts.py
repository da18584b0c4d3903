"""Small pure translations a compose import needs: names, image references, versions, durations.

Each answers one question the mapping (from_compose.py) asks of one compose value, so the
rules can be read, and table-tested, apart from the walk over the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# an image's repository (its last path component) -> the catalog's lab of that software
IMAGE_LABS = {
    "nginx": "nginx",
    "postgres": "postgres",
    "postgresql": "postgres",
    "redis": "redis",
    "curl": "curl",
}
_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_NUMBERS = re.compile(r"^v?(\d+(?:\.\d+)*)")


@dataclass(frozen=True)
class ImageRef:
    """An image reference split the way the engine reads it."""

    ref: str
    repository: str  # without registry and tag: `curlimages/curl`
    tag: str  # '' when none (or only a digest)

    @property
    def software(self) -> str:
        return self.repository.rsplit("/", 1)[-1]


def parse_image(ref: str) -> ImageRef:
    """`registry:5000/team/app:1.2@sha256:...` -> repository `team/app`, tag `1.2`."""
    name = ref.split("@", 1)[0]
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    last = parts[-1]
    tag = ""
    if ":" in last:
        last, tag = last.split(":", 1)
    repo = "/".join([*parts[:-1], last])
    return ImageRef(ref, repo.removeprefix("library/"), tag)


def version_numbers(text: str) -> tuple[int, ...] | None:
    """The leading version of a tag or lab version: `1.25.3-alpine` -> (1, 25, 3); None when
    the tag names no version (`latest`, `alpine`)."""
    m = _NUMBERS.match(text)
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def _same(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def nearest_version(wanted: tuple[int, ...], versions: list[str]) -> tuple[str, bool]:
    """The catalog version for an image's version, and whether it is the same release line
    (`7` and `7.0`, `1.22.1` and `1.22`). Otherwise the newest one not newer than the image's,
    else the oldest: a lab older than the customer's is the usual, and safer, approximation."""
    parsed = [(v, n) for v in versions if (n := version_numbers(v)) is not None]
    for v, n in parsed:
        if _same(wanted, n):
            return v, True
    older = [(n, v) for v, n in parsed if n < wanted]
    if older:
        return max(older)[1], False
    return min((n, v) for v, n in parsed)[1], False


def go_duration(text: str | None) -> float | None:
    """A compose duration (`1m30s`, `500ms`) in seconds; None when absent or unreadable."""
    if not text:
        return None
    found = _GO_DURATION.findall(text)
    if not found or "".join(n + u for n, u in found) != text.strip():
        return None
    return sum(float(n) * _UNITS[u] for n, u in found)


def node_name(service: str) -> str:
    """A DNS-safe node name for a compose service: lowercase, `_` and `.` as `-`, a leading
    letter, at most 31 characters."""
    name = re.sub(r"[^a-z0-9-]+", "-", service.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = f"s-{name}".rstrip("-")
    return name[:31].rstrip("-")


def scenario_name(project: str) -> str:
    """A scenario name from compose's project name (at most 40 characters)."""
    name = re.sub(r"[^a-z0-9-]+", "-", project.lower()).strip("-")[:40].strip("-")
    return name or "imported"


def param_name(env: str) -> str:
    """A param name for an env var: `POSTGRES_PASSWORD` -> `postgres_password`."""
    name = re.sub(r"[^a-z0-9_]+", "_", env.lower())
    return name if re.match(r"^[a-z_]", name) else f"_{name}"


def scenario_text(value: str) -> str:
    """A compose value as scenario text: compose's `$$` is a literal `$`, and a literal `${`
    in a scenario is written `$${` (the scenario's own interpolation)."""
    return value.replace("$$", "$").replace("${", "$${")
