"""A verification's journal (verification.json): what `lab verify-fix` decided and from what,
written beside the two runs it composed. The pure model layer, like journal_model: pydantic
only, no I/O beyond reading a file; its JSON Schema is schemas/verification.schema.json.

A verification folder is `<reports>/<scenario>/verify-<id>/`. It names its two runs by id and by
folder (relative to itself, `../<run-id>`), so the reports built from it (report.html, junit.xml,
allure-results/) read the runs' own journals for the evidence, and a bundle carries all three.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.journal_model import Case, Check, RateInterval

VERIFICATION_VERSION = 1  # the on-disk format; bump on an incompatible change
SCHEMA_VERSION = "1.0"
SCHEMA_ID = (
    f"https://labharness.invalid/schemas/verification/{SCHEMA_VERSION}/verification.schema.json"
)
SCHEMA_FILE = "schemas/verification.schema.json"
FILE = "verification.json"
PREFIX = "verify-"  # a verification id is PREFIX + a run id's shape: verify-251201-101500-ab12


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Side(_Model):
    """One side of the comparison: the run, its k/n with its interval, its checks."""

    role: Literal["baseline", "candidate"]
    run: str
    folder: str  # relative to the verification folder (`../<run-id>`)
    fix: str | None = None
    verdict: str
    observed: int
    attempts: int
    planned: int
    rate: str
    interval: RateInterval | None = None
    reason: str = ""
    checks: list[Check] = Field(default_factory=list)
    checks_green: bool = True
    started: str | None = None
    ended: str | None = None
    error: str | None = None


class Overlay(_Model):
    """What the candidate changed: the fix's own definition and the resolved scenario's diff."""

    fix: str | None = None
    kind: str | None = None  # fix | workaround
    description: str | None = None
    fix_file: str | None = None  # the --fix-file overlay, as given
    definition: str = ""  # the fix's YAML as the scenario (or overlay file) has it
    diff: str = ""  # unified diff, baseline -> candidate, of the resolved scenario (redacted)
    changed: list[str] = Field(default_factory=list)  # the top-level keys that differ


class Verification(_Model):
    """verification.json: the verdict on a fix and the two runs it was decided from."""

    model_config = ConfigDict(
        extra="allow",
        title="labharness verification.json",
        json_schema_extra={"$id": SCHEMA_ID, "schema_version": SCHEMA_VERSION},
    )

    kind: Literal["verification"] = "verification"
    verification_version: int = VERIFICATION_VERSION
    id: str
    scenario: str
    title: str | None = None
    source: str | None = None  # the scenario file, as the runs' journals name it
    case: Case = Field(default_factory=Case)
    params: dict[str, Any] = Field(default_factory=dict)
    harness: str | None = None
    started: str | None = None
    ended: str | None = None
    confidence: float | None = None  # reproduce.confidence, when the scenario asks for one
    verdict: str  # FIXED | NOT_FIXED | REGRESSION | INCONCLUSIVE | ERROR
    reason: str
    why: list[str] = Field(default_factory=list)  # the probe or check that decided
    exit_code: int
    overlay: Overlay
    baseline: Side
    candidate: Side


def is_verification_id(name: str) -> bool:
    return name.startswith(PREFIX)


def parse(data: Any) -> Verification:
    return Verification.model_validate(data)


def load(path: Path) -> Verification | None:
    """The verification at `path` (a folder or its verification.json); None when it is missing
    or not one."""
    file = path / FILE if path.is_dir() else path
    try:
        return parse(json.loads(file.read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError):
        return None


def json_schema_text() -> str:
    """schemas/verification.schema.json as committed; regenerate it with `python -c 'from
    harness.verification_model import *; print(json_schema_text(), end="")' >
    schemas/verification.schema.json`."""
    schema = Verification.model_json_schema(mode="validation")
    doc: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema"}
    for key in ("$id", "schema_version", "title"):
        doc[key] = schema.pop(key)
    doc.update(schema)
    return json.dumps(doc, indent=2) + "\n"
