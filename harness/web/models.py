"""What every page shows, typed: the HTML pages render these and the /api twins return them, so
the OpenAPI description names every field. Built from the index rows by harness.web.views,
harness.web.matrices, harness.web.trends and harness.web.escalations; no I/O here."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field


class Problem(BaseModel):
    """An error answer: 404 (no such result or file), 422 (a bad query) or 503 (the results
    store does not answer)."""

    detail: str
    store: str | None = None  # on a 503: the store's URL, password hidden


class RunFilter(BaseModel):
    """The runs list's filters; `date_from`/`date_to` are days (UTC), both included."""

    scenario: str | None = None
    ticket: str | None = None
    verdict: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    limit: int = 200


class Choices(BaseModel):
    """The values the filters can take (every one the index holds)."""

    scenarios: list[str]
    tickets: list[str]
    verdicts: list[str]


class RunRow(BaseModel):
    """One run as the lists show it. `interval` is its k/n's Wilson 95% interval."""

    id: str
    scenario: str | None
    title: str | None
    role: str | None
    cell: str | None
    fix: str | None
    verdict: str | None
    rate: str | None
    interval: str | None
    ticket: str | None
    started: str | None
    duration_s: float | None
    parent: str | None
    parent_kind: str | None  # verification | matrix | replay, when the index holds it
    url: str
    parent_url: str | None


class RunsPage(BaseModel):
    filters: RunFilter
    runs: list[RunRow]
    matched: int  # how many runs match (the list holds at most `limit`, newest first)
    choices: Choices


class FileLink(BaseModel):
    """A file of a report folder: its path in the folder and where the dashboard serves it."""

    path: str
    url: str
    size: int


class RunPage(BaseModel):
    run: RunRow
    versions: dict[str, str]
    engine: str | None
    ended: str | None
    source: str | None
    checks_green: bool | None
    folder: str | None
    report_url: str | None
    files: list[FileLink]
    files_truncated: bool


class Side(BaseModel):
    """One side of a verification: the baseline (the scenario as the customer has it) or the
    candidate (with the fix)."""

    role: str
    run: str | None
    indexed: bool  # the side's run is in the index (its page exists)
    verdict: str | None
    rate: str | None
    interval: str | None
    checks_green: bool | None
    duration_s: float | None
    versions: dict[str, str]
    url: str | None
    report_url: str | None


class VerificationRow(BaseModel):
    id: str
    scenario: str | None
    fix: str | None
    verdict: str | None
    ticket: str | None
    started: str | None
    baseline_rate: str | None
    candidate_rate: str | None
    url: str


class VerificationsPage(BaseModel):
    verifications: list[VerificationRow]


class VerificationPage(BaseModel):
    verification: VerificationRow
    reason: str | None
    report_url: str | None
    baseline: Side
    candidate: Side


class MatrixRow(BaseModel):
    id: str
    scenario: str | None
    verdict: str | None
    started: str | None
    summary: dict[str, int]
    cells: int
    url: str
    report_url: str | None


class MatrixScenario(BaseModel):
    scenario: str
    url: str  # its heatmap: the latest matrix
    latest: MatrixRow
    matrices: int


class MatricesPage(BaseModel):
    scenarios: list[MatrixScenario]


class Mark(BaseModel):
    """A cell in one past matrix: its status there (None: that matrix had no such cell)."""

    matrix: str
    started: str | None
    status: str | None
    run: str | None
    url: str | None


class HeatCell(BaseModel):
    label: str
    cell: dict[str, str]
    status: str | None
    verdict: str | None
    rate: str | None
    run: str | None
    url: str | None
    history: list[Mark]  # oldest to newest, the shown matrix last


class HeatRow(BaseModel):
    label: str  # the first axis's value
    cells: list[HeatCell | None]  # one per column; None: no such cell (excluded, not planned)


class HeatmapPage(BaseModel):
    scenario: str
    matrix: MatrixRow
    history: list[MatrixRow]  # every matrix of the scenario the history covers, oldest first
    row_axis: str
    column_axes: list[str]
    columns: list[str]
    rows: list[HeatRow]


class GateChange(BaseModel):
    key: str
    baseline: str | None
    now: str | None


class GateRun(BaseModel):
    id: str
    gate: str | None
    release: str | None
    verdict: str | None
    started: str | None
    reason: str | None
    baseline: str | None
    cells: int
    regressions: list[GateChange]
    fixed: list[GateChange]
    new: list[GateChange]
    removed: list[GateChange]
    report_url: str | None


class GateMark(BaseModel):
    gate_run: str
    status: str | None
    regression: bool
    url: str | None


class GateKeyRow(BaseModel):
    key: str
    marks: list[GateMark]  # one per gate run of the release, oldest first


class GateRelease(BaseModel):
    release: str
    runs: list[GateRun]  # oldest first
    keys: list[GateKeyRow]
    regressed: bool  # the newest gate run of the release has regressions


class GatesPage(BaseModel):
    releases: list[GateRelease]


class RatePoint(BaseModel):
    run: str
    started: str | None
    role: str | None
    verdict: str | None
    observed: int
    attempts: int
    rate: float
    low: float
    high: float
    interval: str
    url: str


class Pooled(BaseModel):
    """The last `runs` runs taken together: sum of k over sum of n, with its interval."""

    runs: int
    observed: int
    attempts: int
    rate: float | None
    low: float
    high: float
    interval: str


class ScenarioRate(BaseModel):
    scenario: str
    points: list[RatePoint]  # oldest first
    pooled: Pooled


class RatesPage(BaseModel):
    window: int  # how many of the newest runs the pooled rate takes
    roles: list[str]  # the run roles counted: the scenario as the customer has it
    scenarios: list[ScenarioRate]


class Attachment(BaseModel):
    tracker: str
    attached: list[str]
    already: list[str]
    not_attached: list[str]
    url: str | None
    error: str | None


class EscalationRow(BaseModel):
    id: str
    ticket: str | None
    scenario: str | None
    verdict: str | None
    rate: str | None
    started: str | None
    what: str | None  # run | verification
    subject: str | None  # the run's or verification's id
    url: str | None
    bundle: str | None
    sha256: str | None
    trackers: list[Attachment]


class TicketEscalations(BaseModel):
    ticket: str
    escalations: list[EscalationRow]  # newest first


class EscalationsPage(BaseModel):
    tickets: list[TicketEscalations]


class About(BaseModel):
    """The dashboard's own state: which store it reads (password hidden) and how much it holds."""

    store: str
    counts: dict[str, int] = Field(default_factory=dict)
