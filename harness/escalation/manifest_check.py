"""A bundle's manifest checked before anything is believed or written (docs/escalations.md).

The manifest is the bundle author's word: checksums in it prove nothing against its author, and
every value that replay turns into a path is a way out of the extraction folder (`run.id` names
the work folder, `run.fix_file` is read and applied). So, before a folder exists:

- every path the manifest names (run.scenario_file, run.fix_file, run.folder, files[].path,
  redaction.files[].path, the images' context, folder, dockerfile and files) must be relative,
  without `..`, and so resolve inside the extraction folder; the member paths must be under
  `bundle/`, the scenario and overlay under `project/`;
- `run.id` must be a plain run id (YYMMDD-HHMMSS-xxxx), never a path;
- a verification bundle's `verification.id` a plain verify-<run id>, its `candidate` section
  checked like `run`, and the sides it names the runs those sections describe;
- every listed file needs a sha256 and a size; the sizes it declares must fit Limits: each file,
  the total, the count, and the ratio of the declared total to the compressed archive's size.

Each refusal names the manifest key, is a BundleRefused (UsageError, exit 2), and happens before
a folder is made.
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import TYPE_CHECKING, Any

from harness.errors import UsageError
from harness.escalation.bundle import KIND, MANIFEST, SIGNATURE, TOP
from harness.run.ids import RUN_ID
from harness.sizes import human
from harness.verification_model import PREFIX as VERIFY

if TYPE_CHECKING:
    from pathlib import Path

    from harness.escalation.safe_extract import Limits

GiB = 1 << 30
MiB = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
HINT = (
    "nothing was run; get the bundle again from the ticket (its sha256 is in the ticket "
    "comment) or ask who made it"
)


class BundleRefused(UsageError):
    """The bundle is not what its manifest says, or is unsafe to extract."""


def refuse(bundle: Path, member: str | None, reason: str) -> BundleRefused:
    where = f"{bundle}: member {member!r}: " if member else f"{bundle}: "
    return BundleRefused(where + reason, hint=HINT)


def refuse_key(bundle: Path, key: str, value: object, reason: str) -> BundleRefused:
    shown = repr(value)
    shown = shown if len(shown) <= 120 else shown[:117] + "..."
    return BundleRefused(f"{bundle}: manifest.json: {key} {shown}: {reason}", hint=HINT)


def parse_manifest(bundle: Path, raw: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise refuse(bundle, MANIFEST, f"not JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        raise refuse(bundle, MANIFEST, f"not a labharness bundle manifest (kind != {KIND!r})")
    return manifest


def path_problem(value: object, under: str | None = None) -> str | None:
    """Why `value` is not a relative path that stays inside the folder it is relative to."""
    if not isinstance(value, str) or not value:
        return "expected a relative path (text)"
    if "\0" in value or "\\" in value:
        return "a NUL byte or backslash in a path"
    if value.startswith("/") or (len(value) > 1 and value[1] == ":"):
        return "an absolute path: it would leave the extraction folder"
    if ".." in value.split("/"):
        return "'..' in the path: it would leave the extraction folder"
    norm = posixpath.normpath(value)
    if norm in (".", ""):
        return "the folder itself, not a path in it"
    if under is not None and not norm.startswith(under + "/"):
        return f"outside the bundle's {under}/ folder"
    return None


def _path(bundle: Path, key: str, value: object, under: str | None = None) -> None:
    why = path_problem(value, under)
    if why:
        raise refuse_key(
            bundle, key, value, why + "; every path the manifest names must stay in the bundle"
        )


def _dict(bundle: Path, key: str, value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise refuse_key(bundle, key, type(value).__name__, "expected a mapping")
    return value


def _list(bundle: Path, key: str, value: object) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise refuse_key(bundle, key, type(value).__name__, "expected a list")
    return value


def _run_id(bundle: Path, key: str, rid: object, *, required: bool = False) -> None:
    if (rid is not None or required) and not (isinstance(rid, str) and RUN_ID.match(rid)):
        raise refuse_key(
            bundle, key, rid, "expected a plain run id like 261126-011847-b203, not a path"
        )


def _run(bundle: Path, run: dict[str, Any], key: str = "run") -> None:
    """A run section (`run`, and a verification's `candidate`): its id and every path in it."""
    _run_id(bundle, f"{key}.id", run.get("id"), required=key != "run")
    for k in ("params", "replay_params", "matrix_cell"):
        for name, val in _dict(bundle, f"{key}.{k}", run.get(k)).items():
            if val is not None and not isinstance(val, str | int | float | bool):
                raise refuse_key(bundle, f"{key}.{k}.{name}", val, "expected a plain value")
    if run.get("fix") is not None and not isinstance(run["fix"], str):
        raise refuse_key(bundle, f"{key}.fix", run["fix"], "expected a fix name")
    if run.get("scenario_file") is not None:
        _path(bundle, f"{key}.scenario_file", run["scenario_file"], "project")
    if run.get("fix_file") is not None:
        _path(bundle, f"{key}.fix_file", run["fix_file"], "project")
    if run.get("folder") is not None:
        _path(bundle, f"{key}.folder", run["folder"])


def _verification(bundle: Path, manifest: dict[str, Any]) -> None:
    """A verification bundle's sections: a plain verify-<run id>, a candidate that names its
    run and scenario file, the sides' run ids those of `run` and `candidate`."""
    v = _dict(bundle, "verification", manifest.get("verification"))
    vid = v.get("id")
    if not (isinstance(vid, str) and vid.startswith(VERIFY) and RUN_ID.match(vid[len(VERIFY) :])):
        raise refuse_key(
            bundle,
            "verification.id",
            vid,
            "expected a verification id like verify-261126-011847-b203",
        )
    _path(bundle, "verification.folder", v.get("folder"))
    if not isinstance(v.get("verdict"), str):
        raise refuse_key(bundle, "verification.verdict", v.get("verdict"), "expected a verdict")
    candidate = _dict(bundle, "candidate", manifest.get("candidate"))
    _run(bundle, candidate, "candidate")
    if candidate.get("scenario_file") is None:
        raise refuse_key(bundle, "candidate.scenario_file", None, "expected the scenario's path")
    run = _dict(bundle, "run", manifest.get("run"))
    for side, section in (("baseline", run), ("candidate", candidate)):
        named = _dict(bundle, f"verification.{side}", v.get(side)).get("run")
        if named != section.get("id"):
            where = "run" if side == "baseline" else "candidate"
            raise refuse_key(
                bundle,
                f"verification.{side}.run",
                named,
                f"not the bundled {side} run ({where}.id {section.get('id')!r})",
            )


def _files(bundle: Path, files: list[Any], limits: Limits, compressed: int) -> None:
    seen: set[str] = set()
    total = 0
    if len(files) > limits.members:
        raise refuse_key(bundle, "files", f"{len(files)} files", f"over {limits.members} files")
    for i, e in enumerate(files):
        key = f"files[{i}]"
        if not isinstance(e, dict):
            raise refuse_key(bundle, key, type(e).__name__, "expected a mapping")
        p = e.get("path")
        _path(bundle, f"{key}.path", p, TOP)
        assert isinstance(p, str)
        if p in (MANIFEST, SIGNATURE) or p in seen:
            raise refuse_key(bundle, f"{key}.path", p, "listed twice (or names the head)")
        seen.add(p)
        if not isinstance(e.get("sha256"), str) or not _SHA256.match(e["sha256"]):
            raise refuse_key(bundle, f"{key}.sha256", e.get("sha256"), "expected 64 hex digits")
        size = e.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise refuse_key(bundle, f"{key}.size", size, "expected a number of bytes")
        if size > limits.per_file:
            raise refuse_key(
                bundle,
                f"{key}.size",
                size,
                f"{p} declares {human(size)}, over the per-file limit of "
                f"{human(limits.per_file)} ($LABHARNESS_BUNDLE_MAX_FILE)",
            )
        total += size
    if total > limits.total:
        raise refuse_key(
            bundle,
            "files",
            f"{len(files)} files, {human(total)}",
            f"together over the limit of {human(limits.total)} ($LABHARNESS_BUNDLE_MAX_TOTAL)",
        )
    if limits.ratio and total > limits.ratio_floor and total > limits.ratio * max(compressed, 1):
        raise refuse_key(
            bundle,
            "files",
            f"{human(total)} from {human(compressed)} compressed",
            f"over {limits.ratio} times its compressed size: a compression bomb, not evidence "
            "($LABHARNESS_BUNDLE_MAX_RATIO)",
        )


def _images(bundle: Path, images: list[Any]) -> None:
    for i, img in enumerate(images):
        rec = _dict(bundle, f"images[{i}]", img)
        for part, sub in (("", rec), (".env", _dict(bundle, f"images[{i}].env", rec.get("env")))):
            for k in ("context", "folder", "dockerfile"):
                if sub.get(k) is not None:
                    _path(bundle, f"images[{i}]{part}.{k}", sub[k])
            for j, f in enumerate(_list(bundle, f"images[{i}]{part}.files", sub.get("files"))):
                fd = _dict(bundle, f"images[{i}]{part}.files[{j}]", f)
                _path(bundle, f"images[{i}]{part}.files[{j}].path", fd.get("path"))


def check_manifest(bundle: Path, manifest: dict[str, Any], limits: Limits, compressed: int) -> None:
    """Refuse (naming the key) any manifest value that could lead out of the extraction folder
    or declares more than the limits allow."""
    _run(bundle, _dict(bundle, "run", manifest.get("run")))
    if manifest.get("verification") is not None:
        _verification(bundle, manifest)
    files = manifest.get("files")
    if not isinstance(files, list):
        raise refuse(bundle, MANIFEST, "its `files` list is malformed")
    _files(bundle, files, limits, compressed)
    redaction = _dict(bundle, "redaction", manifest.get("redaction"))
    for i, f in enumerate(_list(bundle, "redaction.files", redaction.get("files"))):
        _path(
            bundle,
            f"redaction.files[{i}].path",
            _dict(bundle, f"redaction.files[{i}]", f).get("path"),
            TOP,
        )
    _images(bundle, _list(bundle, "images", manifest.get("images")))
