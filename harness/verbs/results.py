"""The typed results of the verbs (all but `lab up`'s): the CLI renders them, `--json` prints
`model_dump(mode="json")`, and schemas/results/<verb>.schema.json is `model_json_schema()`
(regenerate with `python -m harness.verbs.results`; a unit test holds the files to it).

The keys and values printed are those of the dicts the verbs returned before: optional keys
that were left out stay left out (`omit_none`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from harness.findings_model import Skipped, Source
from harness.run.result import AttemptResult, NodeLive, Result, RunResult, UpResult
from harness.scenario.from_sos import FileCarried, NotCarried
from harness.scenario.sos_match import OsCarried, SoftwareCarried
from harness.scenario.sos_networks import NetworkCarried

SCHEMA_VERSION = "v1"
SCHEMA_BASE = "https://labharness.invalid/schemas/results"
SCHEMA_DIR = "schemas/results"

__all__ = [
    "AttemptResult",
    "FileCarried",
    "NetworkCarried",
    "NodeLive",
    "NotCarried",
    "OsCarried",
    "Result",
    "RunResult",
    "SoftwareCarried",
    "UpResult",
]


# -- reproduce, verify-fix ------------------------------------------------------------------------


class ReproduceResult(RunResult):
    """`lab reproduce`: the run's result and the exit code its verdict gives."""

    exit_code: int


class WatchRerun(Result):
    """One rerun of `lab watch`: what set it off, the verdict line and the probe that decided
    (or the located error that stopped it: the watch goes on)."""

    at: str
    changed: list[str] = Field(default_factory=list)  # the files whose save set it off
    verdict: str | None = None
    rate: str | None = None
    decided: str | None = None  # the probe that decided, with what it saw
    folder: str | None = None  # the rerun's folder (<lab>/live/<n>/)
    seconds: float | None = None
    error: str | None = None
    hint: str | None = None


class WatchResult(Result):
    """`lab watch`: the lab it reran on, each rerun, and how it ended; the lab stays up."""

    run: str
    reruns: list[WatchRerun] = Field(default_factory=list)
    ended: str  # stopped (Ctrl-C between reruns) | interrupted (during one) | done
    lab_down: str  # the command that removes the lab


class VerifyFixResult(Result):
    """`lab verify-fix`: the baseline and the candidate runs, and the verdict on the fix."""

    verdict: str
    reason: str
    fix: str | None
    kind: str | None
    scenario: str
    baseline: RunResult
    candidate: RunResult
    junit: str  # the verification folder's junit.xml: both sides and the verdict
    why: list[str] = Field(
        default_factory=list
    )  # the probe or check that decided (harness/verbs/why.py)
    verification: str = ""  # its id: verify-<run id shape>
    verification_folder: str = ""  # <reports>/<scenario>/<id>/, beside the two runs
    report: str = ""  # the verification's report.html ('' when it could not be written)
    report_errors: list[str] = Field(default_factory=list)  # reports not written, and why
    exit_code: int

    def rate_text(self) -> str:
        """Both sides' k/n, as the ledger and a replay show them: `baseline 3/3, candidate 0/3`."""
        return f"baseline {self.baseline.rate}, candidate {self.candidate.rate}"


# -- ls, down, gc ---------------------------------------------------------------------------------


class NodeState(Result):
    name: str
    status: str


class ListedRun(Result):
    """One row of `lab ls`: a run with objects on the engine."""

    run: str
    scenario: str
    state: str
    owner_alive: bool
    nodes: list[NodeState]
    containers: int
    running: int
    networks: int
    folder: str | None


class StuckNetwork(Result):
    network: str
    id: str
    reason: str
    hint: str


class Removed(Result):
    """What removing one run did (`lab down`, `lab gc`)."""

    run: str
    removed: dict[str, int]
    masked: dict[str, Any] | None = None
    stuck: list[StuckNetwork] | None = None
    disconnected: list[str] | None = None

    omit_none: ClassVar[tuple[str, ...]] = ("masked", "stuck", "disconnected")


class DownResult(Removed):
    """One run `lab down` removed."""


class GcResult(Result):
    """One run `lab gc` collected (or, with --dry-run, would)."""

    run: str
    reason: str
    removed: dict[str, int]
    masked: dict[str, Any] | None = None
    stuck: list[StuckNetwork] | None = None
    disconnected: list[str] | None = None
    dry_run: bool

    omit_none: ClassVar[tuple[str, ...]] = ("masked", "stuck", "disconnected")


# -- images, exec ---------------------------------------------------------------------------------


class ImageBuilt(Result):
    """One row of `lab images build`."""

    tag: str
    kind: str
    name: str
    os: str
    version: str
    status: str  # built | reused
    how: str
    seconds: float


class ImageListed(Result):
    """One row of `lab images ls` (`current`: the tag matches the catalog; None without one)."""

    tag: str
    id: str
    kind: str
    name: str
    version: str
    os: str
    inputs: str
    size_mb: float
    created: str
    current: bool | None


class ImagePruned(Result):
    """One row of `lab images prune`."""

    tag: str
    id: str
    action: str  # removed | kept | in-use | failed
    why: str | None = None

    omit_none: ClassVar[tuple[str, ...]] = ("why",)


class ExecResult(Result):
    """`lab exec`: the command's exit code and output."""

    run: str
    node: str
    command: list[str]
    exit_code: int
    stdout: str
    stderr: str


class CopyResult(Result):
    """`lab cp`: what was copied, which way, and how much."""

    run: str
    node: str
    direction: Literal["in", "out"]
    source: str
    dest: str
    files: int
    bytes: int


# -- matrix, gate ---------------------------------------------------------------------------------


class MatrixCell(Result):
    """One cell of a matrix as results.json records it (and `lab matrix --json` prints it).

    A finished cell (it has a verdict) carries its run's verdict, expected verdict, rate, checks,
    run and folder, null or not; a SKIP, or an ERROR before a run of its own, only its status and
    reason (and seconds when measured). `engine`, `engine_url`, `attempts`: a cluster cell's.
    Keys this version does not know (a results.json from another one) are kept as they are."""

    model_config = ConfigDict(extra="allow")

    cell: dict[str, Any]
    label: str
    status: str
    verdict: str | None = None
    expected: str | None = None
    rate: str | None = None
    interval: str | None = None  # the rate's 95% interval, `95% CI 34-100%`
    reason: str | None = None
    checks: list[dict[str, Any]] | None = None
    run: str | None = None
    folder: str | None = None
    seconds: float | None = None
    engine: str | None = None
    engine_url: str | None = None
    attempts: list[dict[str, Any]] | None = None

    omit_none: ClassVar[tuple[str, ...]] = (
        *("interval", "seconds", "engine", "engine_url", "attempts"),
    )
    _finished: ClassVar[tuple[str, ...]] = (
        *("verdict", "expected", "rate", "checks", "run", "folder"),
    )

    def omitted(self, data: dict[str, Any]) -> set[str]:
        out = super().omitted(data)
        if self.verdict is None:
            out.update(k for k in self._finished if data.get(k) is None)
        return out


class MatrixResult(Result):
    """`lab matrix`: results.json's header, every cell in plan order, the summary, and where
    the results are. `only`, `params`, `resumed`, `cluster`, `engines`: a cluster matrix's
    (`jobs` is null there); `engine`: a local one's."""

    matrix: str
    scenario: str
    source: str
    only: dict[str, str] | None = None
    params: dict[str, str] | None = None
    axes: dict[str, list[Any]]
    cluster: str | None = None
    jobs: int | None
    engine: str | None = None
    engines: list[str] | None = None
    trust: dict[str, Any]
    started: str
    resumed: bool | None = None
    cells: list[MatrixCell]
    summary: dict[str, int]
    seconds: float
    ended: str
    interrupted: bool
    folder: str
    exit_code: int

    omit_none: ClassVar[tuple[str, ...]] = (
        *("only", "params", "cluster", "engine", "engines", "resumed"),
    )


class GateCell(Result):
    """One cell of a gate: its baseline key (suite and cell without the release axis), how
    it ended, and its run."""

    key: str
    suite: str
    cell: dict[str, Any]
    status: str
    verdict: str | None
    reason: str | None
    run: str | None
    folder: str | None


class GateMatrix(Result):
    """One suite's matrix in a gate."""

    scenario: str
    folder: str
    summary: dict[str, int]


class GateResult(Result):
    """`lab gate`: the verdict, every cell, the comparison with the baseline (cell key ->
    status on each side), the suites' matrices; results.json is all but `saved_baseline`
    (only when --save-baseline) and `exit_code`."""

    gate: str
    release: str | None
    verdict: str
    reason: str
    baseline: str | None
    cells: list[GateCell]
    regressions: list[dict[str, str]]
    fixed: list[dict[str, str]]
    new: list[dict[str, str]]
    removed: list[dict[str, str]]
    errors: list[str]
    matrices: list[GateMatrix]
    trust: dict[str, Any]
    folder: str
    ended: str
    saved_baseline: str | None = None
    exit_code: int

    omit_none: ClassVar[tuple[str, ...]] = ("saved_baseline",)


# -- bisect ---------------------------------------------------------------------------------------


class BisectProbe(Result):
    """One probe of `lab bisect`: the value run, its verdict, and which try it was."""

    model_config = ConfigDict(extra="forbid", serialize_by_alias=True, validate_by_name=True)

    value: Any
    verdict: str
    rate: str
    run: str
    folder: str
    try_: int = Field(alias="try")


class BisectResult(Result):
    """`lab bisect`: the values searched, every probe, the verdict. Once FOUND: the transition
    under its own names (`first_bad`/`last_good`, or with --fixed `first_fixed`/`last_unfixed`),
    under both verbs' names (`first`, `last_before`), and the runs used."""

    axis: str
    values: list[Any]
    looking_for: str
    probes: list[BisectProbe]
    trust: dict[str, Any]
    verdict: str
    first_bad: Any = None
    last_good: Any = None
    first_fixed: Any = None
    last_unfixed: Any = None
    first: Any = None
    last_before: Any = None
    reason: str
    runs: int | None = None
    exit_code: int

    omit_none: ClassVar[tuple[str, ...]] = (
        *("first_bad", "last_good", "first_fixed", "last_unfixed", "first", "last_before"),
        "runs",
    )


# -- escalate -------------------------------------------------------------------------------------


class TrackerAttached(Result):
    """What one tracker got from `lab escalate`: files newly attached, already there, not
    attached (and why: `error`), the comment added and the ticket's link."""

    tracker: str
    attached: list[str]
    already: list[str]
    not_attached: list[str]
    comment: str | None
    url: str | None
    error: str | None


class EscalatedSide(Result):
    """One side of an escalated verification: its run and k/n with the interval."""

    run: str
    verdict: str | None
    rate: str | None  # `3/3, 95% CI 44-100%`


class EscalatedVerification(Result):
    """What an escalated verification decided: the verdict on the fix and both sides."""

    id: str
    verdict: str
    reason: str | None
    fix: str | None
    baseline: EscalatedSide
    candidate: EscalatedSide


class EscalateResult(Result):
    """`lab escalate`: the bundle, where it went, and the error of a tracker that failed (the
    bundle is kept in local then, and the exit code says so). For a verification, `run` is its
    id, `verdict` the verdict on the fix and `verification` both sides."""

    omit_none: ClassVar[tuple[str, ...]] = ("verification",)

    ticket: str
    run: str
    scenario: str | None
    folder: str
    verdict: str | None
    rate: str | None
    bundle: str
    sha256: str
    size: int
    signed_by: str | None
    signing_key: str | None
    attachments: list[str]
    trackers: list[TrackerAttached]
    redacted: list[str]
    comment: str
    error: str | None
    exit_code: int
    verification: EscalatedVerification | None = None


class ReplayOriginal(Result):
    """The bundled run's verdict and where it ran, as its manifest says."""

    run: str | None
    verdict: str | None
    rate: str | None
    reason: str | None
    engine: str | None
    harness: str | None


class ReplayResult(Result):
    """`lab replay`: the bundle, the original verdict, the replay's run, and what could make
    them differ (images rebuilt from other inputs, redacted files, warnings, the signature).
    A verification bundle's: `verdict` and `original.verdict` are verdicts on the fix, `rate`
    both sides' k/n, `replay` the candidate's run and `verification` the whole verify-fix."""

    omit_none: ClassVar[tuple[str, ...]] = ("verification",)

    bundle: str
    sha256: str
    workdir: str
    project: str
    scenario: str | None
    fix: str | None
    original: ReplayOriginal
    replay: RunResult
    verdict: str
    rate: str
    same_verdict: bool
    images: list[dict[str, Any]]
    redacted: list[str]
    restored: list[str]
    warnings: list[str]
    signature: dict[str, Any]
    exit_code: int
    verification: VerifyFixResult | None = None


class ReportResult(Result):
    """`lab report`: the reports written again from journal.json, and those that could not be."""

    run: str
    folder: str
    reports: dict[str, str]
    errors: str | None


class IndexResult(Result):
    """`lab index`: the store rebuilt from the report folders (its URL without the password),
    how many rows per kind, rows removed because their folder is gone, files it could not
    read."""

    store: str
    reports: str
    indexed: int
    removed: int
    by_kind: dict[str, int]
    skipped: list[str]


class EscalationsResult(Result):
    """`lab escalations`: the local ledger's entries and the attachments index, oldest first.
    The entries are the ledger's own records (kept as written, by older versions too)."""

    folder: str
    ledger: str
    ticket: str | None
    attachments: list[dict[str, Any]]
    escalations: list[dict[str, Any]]


class KeysResult(Result):
    """`lab keys generate`: the key pair written and its id."""

    private: str
    public: str
    key_id: str


class ImportSosResult(Result):
    """`lab import sos`: the scenario and fixtures written, what was carried over from the
    report (OS, software at the catalog's nearest versions, networks, config files and how many
    values were redacted in each) and everything that was not, with the reason."""

    scenario: str
    file: str  # the scenario file written
    fixtures: str  # fixtures/<name>/ ('' when no config file was carried over)
    source: str  # the folder or tarball given
    report: str  # the report's own name
    os: OsCarried
    software: list[SoftwareCarried]
    networks: list[NetworkCarried]
    files: list[FileCarried]
    not_carried: list[NotCarried]
    unknown_packages: list[str]  # installed packages with no lab in the catalog


class SchemaResult(Result):
    """`lab schema`: where the scenario schema was written, or (`-o -`) the schema itself."""

    written: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)
    omit_none: ClassVar[tuple[str, ...]] = ("written", "schema")


class ValidateResult(Result):
    """`lab validate`: valid or not, and every problem per file (file:line:col: message)."""

    valid: bool
    files: dict[str, list[dict[str, Any]]]


# -- import ---------------------------------------------------------------------------------------


class NotCarriedOver(Result):
    """One thing of the customer's file the scenario does not have, and why (`service` is ''
    for the file as a whole)."""

    service: str
    key: str
    why: str


class ImportNote(Result):
    """One thing carried over, but changed on the way (a nearest version, a renamed node)."""

    service: str
    what: str


class ImportedNode(Result):
    """A node the import wrote: a lab (with its version) or an image, and whether the engine
    has that image (None: an engine was not asked, or the node is a lab)."""

    name: str
    service: str
    lab: str | None
    version: str | None
    image: str | None
    image_present: bool | None


class ImportComposeResult(Result):
    """`lab import compose`: the scenario and fixtures written, what was not carried over and
    what changed on the way. `params`: secret env values turned into params (placeholders)."""

    scenario: str
    file: str
    source: str
    profiles: list[str]
    nodes: list[ImportedNode]
    networks: list[str]
    fixtures: list[str]
    params: list[str]
    not_carried: list[NotCarriedOver]
    notes: list[ImportNote]
    valid: bool


# -- analyze --------------------------------------------------------------------------------------


class AnalyzeResult(Result):
    """`lab analyze`: each file read with its findings (harness/findings_model.py), the files of
    a folder not read and why, and how often each signature was seen over all of them."""

    paths: list[str]
    sources: list[Source]
    skipped: list[Skipped]
    findings: int  # findings over all sources (one per signature per source)
    signatures: dict[str, int]  # signature -> occurrences over all sources


# -- triage ---------------------------------------------------------------------------------------


class TriageMatch(Result):
    """A known problem the evidence matches: the share of its signatures seen, which were and
    were not (`why`: each with where it was first seen), and what fixes it."""

    id: str
    title: str
    source: str  # known-problems/<id>.yaml, or `escalation T (run R)`
    score: float  # signatures seen / signatures it lists
    matched: list[str]
    missing: list[str]
    why: list[str]
    fix: str | None
    link: str | None
    cases: list[str]  # scenarios that reproduce it


class TriageResult(Result):
    """`lab triage`: the known problems that match the evidence, best first."""

    paths: list[str]
    signatures: dict[str, int]  # what the evidence shows (lab analyze): signature -> count
    known: int  # known problems considered (the catalog and the escalations)
    matches: list[TriageMatch]


# -- failures -------------------------------------------------------------------------------------


class ProblemAt(Result):
    """One problem in a file, located: what `lab validate` and every verb say of bad input."""

    file: str
    line: int
    col: int
    message: str


class InvalidResult(Result):
    """Any verb's --json when its input is invalid (exit 2): every problem, located."""

    valid: bool = False
    problems: list[ProblemAt]


class ErrorResult(Result):
    """Any verb's --json when it fails (a usage error: exit 2; an infrastructure error: 3)."""

    error: str
    hint: str | None
    exit_code: int


# -- the schemas ----------------------------------------------------------------------------------

# verb -> (model, whether --json prints a list of them)
RESULTS: dict[str, tuple[type[Result], bool]] = {
    "reproduce": (ReproduceResult, False),
    "verify-fix": (VerifyFixResult, False),
    "ls": (ListedRun, True),
    "down": (DownResult, True),
    "gc": (GcResult, True),
    "images-build": (ImageBuilt, True),
    "images-ls": (ImageListed, True),
    "images-prune": (ImagePruned, True),
    "exec": (ExecResult, False),
    "cp": (CopyResult, False),
    "matrix": (MatrixResult, False),
    "gate": (GateResult, False),
    "bisect": (BisectResult, False),
    "escalate": (EscalateResult, False),
    "replay": (ReplayResult, False),
    "up": (UpResult, False),
    "report": (ReportResult, False),
    "escalations": (EscalationsResult, False),
    "keys-generate": (KeysResult, False),
    "import-sos": (ImportSosResult, False),
    "schema": (SchemaResult, False),
    "validate": (ValidateResult, False),
    "import-compose": (ImportComposeResult, False),
    "analyze": (AnalyzeResult, False),
    "triage": (TriageResult, False),
    "watch": (WatchResult, False),
    "index": (IndexResult, False),
    "error": (ErrorResult, False),  # any verb that fails
    "invalid": (InvalidResult, False),  # any verb given an invalid scenario
}


_TITLES = {
    "import-compose": "lab import compose --json",
    "error": "lab VERB --json, when it fails",
    "invalid": "lab VERB --json, when its scenario is invalid",
}


def result_schema(verb: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of `lab <verb> --json`'s output."""
    model, many = RESULTS[verb]
    schema = model.model_json_schema(mode="validation")
    defs = schema.pop("$defs", None)
    body: dict[str, Any] = {"type": "array", "items": schema} if many else schema
    if many:
        body["items"].pop("title", None)
    head = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE}/{verb}/{SCHEMA_VERSION}",
        "title": _TITLES.get(verb, f"lab {verb.replace('images-', 'images ')} --json"),
    }
    return {
        **head,
        **{k: v for k, v in body.items() if k != "title"},
        **({"$defs": defs} if defs else {}),
    }


def result_schema_text(verb: str) -> str:
    """schemas/results/<verb>.schema.json as committed."""
    return json.dumps(result_schema(verb), indent=2) + "\n"


def write_result_schemas(folder: Path) -> list[Path]:
    """Write every verb's schema into `folder`; the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for verb in RESULTS:
        path = folder / f"{verb}.schema.json"
        path.write_text(result_schema_text(verb))
        out.append(path)
    return out


def to_json(result: Any) -> Any:
    """What `--json` prints for a verb's result: models (and lists of them) as their JSON."""
    if isinstance(result, Result):
        return result.model_dump(mode="json")
    if isinstance(result, list):
        return [to_json(r) for r in result]
    return result


if __name__ == "__main__":  # python -m harness.verbs.results [FOLDER]
    for p in write_result_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else SCHEMA_DIR)):
        print(p)
