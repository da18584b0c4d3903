"""What the store keeps of one result: pure, so the readers, the store and the web pages share
one typed row (no dict of strings between them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["run", "verification", "matrix", "gate", "bisect", "replay", "escalation"]
KINDS: tuple[str, ...] = ("run", "verification", "matrix", "gate", "bisect", "replay", "escalation")


class ResultEntry(BaseModel):
    """One indexed result. `folder` is relative to the reports root (the web pages serve files
    only under it); `parent` ties a run to its verification, matrix or replay; `detail` holds
    what a page needs beyond the columns (a matrix's cells, a gate's regressions, an
    escalation's trackers), plain JSON."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind
    id: str
    scenario: str | None = None
    cell: str | None = None  # a matrix cell's label (`os=debian-12 version=1.24`)
    role: str | None = None  # reproduce | baseline | candidate | cell | up
    verdict: str | None = None
    observed: int | None = None
    attempts: int | None = None
    rate: str | None = None  # `3/5`
    ticket: str | None = None
    release: str | None = None  # a gate's release
    versions: dict[str, str] = Field(default_factory=dict)  # node -> `lab version on os`
    engine: str | None = None
    parent: str | None = None
    started: str | None = None
    ended: str | None = None
    duration_s: float | None = None
    folder: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)
