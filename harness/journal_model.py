"""The journal of a run (journal.json), as one typed model shared by its writer (harness/run)
and every reader (reports, `lab report`, escalation): the pure model layer, pydantic only, no
I/O beyond reading a file.

Tolerant by design: a run killed at any moment leaves a partial journal (every field but the
phase name is optional), and new keys may appear at any time (`extra="allow"`: kept, not
validated), so an old journal still loads. Typed where a report reads. The JSON Schema
generated from it is published as schemas/journal.schema.json (see `json_schema`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

from harness.findings_model import Finding

JOURNAL_VERSION = 1  # the on-disk format (docs/journal.md); bump on an incompatible change
SCHEMA_VERSION = "1.10"  # the published schema; the minor part moves with each added field
SCHEMA_ID = f"https://labharness.invalid/schemas/journal/{SCHEMA_VERSION}/journal.schema.json"
SCHEMA_FILE = "schemas/journal.schema.json"

Scalar = str | int | float | bool | None


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)


# -- the header ---------------------------------------------------------------------------


class Case(_Model):
    ticket: str | None = None
    customer: str | None = None
    severity: int | str | None = None
    product_version: str | None = None


class Link(_Model):
    network: str
    ipv4: str | None = None
    address: str | None = None  # older journals
    ipv6: str | None = None  # schema 1.10: a static IPv6 address


class TopologyNode(_Model):
    name: str
    lab: str | None = None
    version: str | None = None
    os: str | None = None
    image: str | None = None
    networks: list[Link] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    clock_s: int | None = None  # schema 1.10: seconds its clock is ahead (+) or behind (-)


class TopologyNetwork(_Model):
    name: str
    subnet: str | None = None
    internal: bool = False
    mtu: int | None = None  # schema 1.8
    ipv6: bool = False  # schema 1.10: IPv6 too (dual stack)
    subnet6: str | None = None  # schema 1.10: the scenario's; None with ipv6: a picked one


class Topology(_Model):
    networks: list[TopologyNetwork] = Field(default_factory=list)
    nodes: list[TopologyNode] = Field(default_factory=list)
    impairments: list[dict[str, Any]] = Field(default_factory=list)  # as in the scenario


# -- the plan: what the run was asked to do, as REPRODUCE.md writes it by hand ----------------


class EnvImagePlan(_Model):
    name: str
    suite: str | None = None
    tag: str


class ImagePlan(_Model):
    """How one image is made: a lab's docker build on its base OS, or a base OS alone
    (`built`: only the tag a run built is known, from a journal without a plan)."""

    kind: Literal["lab", "env", "built"]
    tag: str
    name: str | None = None  # env: the OS name
    env: EnvImagePlan | None = None  # lab: its base OS
    build_args: list[tuple[str, str]] = Field(default_factory=list)
    dockerfile: str | None = None  # lab: relative to the context
    context: str | None = None  # lab: relative to the project when inside it


class NodeFile(_Model):
    source: str  # relative to the project when inside it
    target: str


class NodeHealth(_Model):
    """How the run knew a node was ready (none: running is enough), for the manual wait."""

    kind: str = "none"  # none | command | port | log
    command: str | None = None
    port: int | None = None
    log: str | None = None
    timeout: float = 60.0


class PlanNode(_Model):
    name: str
    networks: list[Link] = Field(default_factory=list)
    cap_add: list[str] = Field(default_factory=list)
    env: list[tuple[str, str]] = Field(default_factory=list)
    command: list[str] | None = None
    files: list[NodeFile] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    health: NodeHealth | None = None  # schema 1.2
    # schema 1.8: the node settings as `docker create` flags, and the entrypoint's arguments
    # (they come after the image, before the command)
    options: list[str] = Field(default_factory=list)
    entry_args: list[str] = Field(default_factory=list)


class PlanItem(_Model):
    """A configure item: a command on nodes, or a playbook on a --limit."""

    run: str | None = None
    on: list[str] = Field(default_factory=list)
    playbook: str | None = None
    limit: list[str] | None = None
    vars: dict[str, Any] = Field(default_factory=dict)


class PlanStep(_Model):
    """A reproduce step as a person runs it: a command on a node, a wait, a sleep, a fault."""

    kind: str  # run | http | wait | sleep | fault
    id: str | None = None
    on: str | None = None
    command: str | None = None
    background: bool = False
    description: str | None = None
    seconds: float | None = None
    fault: str | None = None
    # schema 1.2: what REPRODUCE.sh needs to do the step itself
    timeout: float | None = None  # run: seconds before it is stopped
    expect_exit: int | None = None  # run: any other exit code is an ERROR of the attempt
    wait: dict[str, Any] | None = None  # wait: {port | log | file, timeout}
    args: dict[str, Any] = Field(default_factory=dict)  # fault: target, network, loss, rate...


class Plan(_Model):
    images: list[ImagePlan] = Field(default_factory=list)
    networks: list[TopologyNetwork] = Field(default_factory=list)
    nodes: list[PlanNode] = Field(default_factory=list)
    configure: list[PlanItem] = Field(default_factory=list)
    inventory: dict[str, Any] | None = None  # the Ansible inventory for the manual playbooks
    attempts: int = 1
    steps: list[PlanStep] = Field(default_factory=list)
    symptom: list[str] = Field(default_factory=list)  # each probe, described
    # schema 1.2
    probes: list[dict[str, Any]] = Field(default_factory=list)  # each probe, as the scenario has it
    fresh: bool = False  # a fresh topology for every attempt
    project: str | None = None  # the project folder the run ran from (paths are relative to it)


# -- phases -------------------------------------------------------------------------------


def _named(kind: str) -> str:
    """The phase names of one kind, as a regular expression: `attempt`, `attempt-2`..."""
    return f"^{kind}(-.*)?$"


class PhaseBase(_Model):
    phase: str
    start: str | None = None
    end: str | None = None
    duration_s: float | None = None
    result: str | None = None  # running | ok | error | interrupted; attempts: observed | absent
    error: str | None = None

    @property
    def kind(self) -> str:
        return phase_kind(self.phase)

    @property
    def failed(self) -> bool:
        return self.result in ("error", "interrupted") or bool(self.error)


class BuildPhase(PhaseBase):
    phase: str = Field(pattern=_named("build"))
    images: dict[str, str] = Field(default_factory=dict)  # node -> image tag


class PreflightPhase(PhaseBase):
    phase: str = Field(pattern=_named("preflight"))
    impairments: list[dict[str, Any]] = Field(default_factory=list)
    capabilities: dict[str, bool] = Field(default_factory=dict)


class NotReady(_Model):
    """How a node a readiness probe names failed to become ready (schema 1.4)."""

    state: Literal["exited", "not_ready", "skipped"] | str
    exit_code: int | None = None
    oom_killed: bool | None = None  # schema 1.8: the kernel's OOM killer ended it
    reason: str | None = None
    log_tail: str | None = None


class UpNode(_Model):
    name: str
    container: str | None = None
    image: str | None = None
    addresses: dict[str, str | None] = Field(default_factory=dict)
    ready_s: float | None = None
    not_ready: NotReady | None = None
    published: dict[str, str] = Field(default_factory=dict)  # schema 1.9: port -> 127.0.0.1:N
    addresses6: dict[str, str] = Field(default_factory=dict)  # schema 1.10: network -> IPv6


class UpPhase(PhaseBase):
    phase: str = Field(pattern=_named("up"))
    nodes: list[UpNode] = Field(default_factory=list)


class Capture(_Model):
    network: str | None = None
    path: str | None = None
    warning: str | None = None
    packets: int | None = None
    bytes: int | None = None
    dropped: int | None = None


class CapturePhase(PhaseBase):
    phase: str = Field(pattern=_named("capture"))
    captures: list[Capture] = Field(default_factory=list)


class Applied(_Model):
    """One impairment put in place: where, and the exact tc/iptables commands (a partition
    has its two sides, `a` and `b`)."""

    node: str | None = None
    network: str | None = None
    interface: str | None = None
    commands: list[str | list[str]] | None = None
    backend: str | None = None  # a delay's: netem | nfqueue (schema 1.10)
    a: Applied | None = None
    b: Applied | None = None

    def all_commands(self) -> list[list[str] | str]:
        if self.commands is not None:
            return list(self.commands)
        return [c for side in (self.a, self.b) if side is not None for c in side.all_commands()]


class ImpairPhase(PhaseBase):
    phase: str = Field(pattern=_named("impair"))
    applied: list[Applied] = Field(default_factory=list)


class Task(_Model):
    host: str | None = None
    task: str | None = None
    action: str | None = None
    status: str | None = None
    changed: bool | None = None
    ignored: bool | None = None
    duration: float | None = None
    rc: int | None = None
    msg: str | None = None
    stdout: str | None = None
    stderr: str | None = None


class CommandResult(_Model):
    node: str | None = None
    exit_code: int | None = None
    stdout: str | None = None
    stderr: str | None = None
    duration_s: float | None = None
    error: str | None = None


class ConfigureItem(_Model):
    """A `run:` item (run, on, results) or a playbook (the ansible-runner result)."""

    run: str | None = None
    on: list[str] | str | None = None
    results: list[CommandResult] = Field(default_factory=list)
    playbook: str | None = None
    ident: str | None = None
    status: str | None = None
    rc: int | None = None
    ok: bool | None = None
    tasks: list[Task] = Field(default_factory=list)
    stats: dict[str, Any] = Field(default_factory=dict)
    failed: list[dict[str, Any]] = Field(default_factory=list)
    command: str | None = None
    artifacts: str | None = None
    error: str | None = None
    duration: float | None = None
    limit: list[str] | None = None
    extra_vars: dict[str, Any] = Field(default_factory=dict)


class ConfigurePhase(PhaseBase):
    phase: str = Field(pattern=_named("configure"))
    items: list[ConfigureItem] = Field(default_factory=list)


class ChangedTask(_Model):
    """A task that reported a change on the idempotence pass."""

    playbook: str
    host: str | None = None
    task: str | None = None
    action: str | None = None
    msg: str | None = None


class IdempotencePhase(PhaseBase):
    """The configure playbooks run a second time (`idempotence: warn|fail`): each playbook's
    result again, and the tasks that changed on that pass."""

    phase: str = Field(pattern=_named("idempotence"))
    mode: str = "warn"
    items: list[ConfigureItem] = Field(default_factory=list)
    changed: list[ChangedTask] = Field(default_factory=list)


class Step(_Model):
    index: int | None = None
    id: str | None = None
    kind: str | None = None  # run | http | wait | sleep | fault
    node: str | None = None
    description: str | None = None
    start: str | None = None
    end: str | None = None
    duration_s: float | None = None
    command: str | None = None
    exit_code: int | None = None
    stdout: str | None = None
    stderr: str | None = None
    timed_out: bool | None = None
    status: int | str | None = None
    background: bool | None = None
    condition: str | None = None
    fault: dict[str, Any] | str | None = None
    error: str | None = None


class Symptom(_Model):
    probe: str | None = None
    held: bool = False
    evidence: list[Any] = Field(default_factory=list)
    children: list[Symptom] = Field(default_factory=list)


class AttemptPhase(PhaseBase):
    phase: str = Field(pattern=_named("attempt"))
    attempt: int | None = None
    steps: list[Step] = Field(default_factory=list)
    symptom: Symptom | None = None
    observed: bool | None = None
    undo: list[Any] = Field(default_factory=list)
    settled_s: float | None = None  # schema 1.10: the symptom held only when read again then


class Check(_Model):
    """A verify check: a command (passed, exit_code, expected, output) or a pytest test
    (suite, outcome, message); `error` when it could not run."""

    name: str | None = None
    passed: bool | None = None
    exit_code: int | None = None
    expected: int | None = None
    output: str | None = None
    duration_s: float | None = None
    error: str | None = None
    suite: str | None = None
    outcome: str | None = None
    message: str | None = None


class VerifyPhase(PhaseBase):
    phase: str = Field(pattern=_named("verify"))
    checks: list[Check] = Field(default_factory=list)
    suites: list[dict[str, Any]] = Field(default_factory=list)


class Cut(_Model):
    node: str | None = None
    path: str | None = None
    kept_bytes: int | None = None
    size: int | None = None
    why: str | None = None


class CollectPhase(PhaseBase):
    phase: str = Field(pattern=_named("collect"))
    nodes: dict[str, list[str]] = Field(default_factory=dict)  # node -> files under artifacts/
    captures: list[Capture] = Field(default_factory=list)
    cut: list[Cut] = Field(default_factory=list)
    stopped: str | None = None
    # schema 1.5: artifacts/<node>/steps.log, each node's step transcript
    step_logs: list[str] = Field(default_factory=list)


class AnalyzedFinding(Finding):
    """A finding as the journal keeps it (schema 1.6): `source` is relative to the run folder;
    keys a newer harness adds are kept, not refused."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)


class AnalyzedSource(_Model):
    """One file of the run folder the `analyze` phase read (schema 1.6): its findings, or
    why it could not be read (`error`: tshark missing, not a capture tshark reads)."""

    path: str  # relative to the run folder: captures/dmz.pcap, artifacts/proxy/container.log
    kind: str  # capture | log
    node: str | None = None
    network: str | None = None
    labs: list[str] = Field(default_factory=list)  # whose signatures applied (logs)
    units: int = 0  # frames (capture) or lines (log) read
    findings: list[AnalyzedFinding] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)  # a capture cut short: partial findings
    error: str | None = None


class EvidencePhase(PhaseBase):
    """The customer's own files (`evidence:`), read before the lab was built (schema 1.7)."""

    phase: str = Field(pattern=_named("evidence"))
    sources: list[AnalyzedSource] = Field(default_factory=list)


class EvidenceMatch(_Model):
    """The customer's error and warning signatures, and which the lab showed (schema 1.7)."""

    signatures: list[str] = Field(default_factory=list)
    shown: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)

    @property
    def text(self) -> str:
        return (
            f"the lab showed {len(self.shown)} of the customer's {len(self.signatures)} signatures"
        )


class AnalyzePhase(PhaseBase):
    """The run's own evidence read right after collect (schema 1.6): every capture and node
    log, by source. Never fails the run: an unreadable source carries its `error`."""

    phase: str = Field(pattern=_named("analyze"))
    sources: list[AnalyzedSource] = Field(default_factory=list)


class ConfigDump(_Model):
    """One node's running configuration, dumped (schema 1.4): where, or why not."""

    node: str
    lab: str | None = None
    when: str | None = None  # after-configure | after-configure-N | at-end
    command: str | None = None
    file: str | None = None  # artifacts/<node>/running-config/<when>.txt
    exit_code: int | None = None
    bytes: int | None = None
    error: str | None = None
    skipped: str | None = None


class ConfigPhase(PhaseBase):
    """`config` (after configure) and `config-end` (before collect): the running configs."""

    phase: str = Field(pattern=_named("config"))
    dumps: list[ConfigDump] = Field(default_factory=list)


class SyncAction(_Model):
    """What a live rerun did to one node before its steps."""

    node: str
    action: str  # copied+reloaded | copied+restarted | replaced | restarted
    why: str | None = None
    files: list[str] = Field(default_factory=list)
    seconds: float | None = None
    reload: dict[str, Any] | None = None  # the lab's reload command and how it ended


class SyncPhase(PhaseBase):
    """Schema 1.8: a live rerun (`lab reproduce --on RUN`) bringing the lab in line with the
    scenario: the plan (files to copy, nodes to replace, why configure runs again) and what
    was done, node by node."""

    phase: str = Field(pattern=_named("sync"))
    on: str | None = None  # the live lab's run id
    plan: dict[str, Any] = Field(default_factory=dict)
    actions: list[SyncAction] = Field(default_factory=list)
    impairments: list[Applied] = Field(default_factory=list)  # applied again to new nodes


class DownPhase(PhaseBase):
    phase: str = Field(pattern=_named("down"))
    removed: dict[str, Any] = Field(default_factory=dict)


PHASE_KINDS = (
    "evidence",
    "sync",
    "build",
    "preflight",
    "up",
    "capture",
    "impair",
    "configure",
    "idempotence",
    "config",
    "attempt",
    "verify",
    "collect",
    "analyze",
    "down",
)


def phase_kind(name: str) -> str:
    """`attempt-2` -> attempt, `up-3` -> up; a name the harness does not know -> other."""
    head = name.split("-", 1)[0]
    return head if head in PHASE_KINDS else "other"


def _phase_tag(value: Any) -> str:
    name = value.get("phase") if isinstance(value, dict) else getattr(value, "phase", "")
    return phase_kind(name if isinstance(name, str) else "")


class OtherPhase(PhaseBase):
    """A phase of a kind this version does not know (kept as it is)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "not": {"properties": {"phase": {"pattern": f"^({'|'.join(PHASE_KINDS)})(-.*)?$"}}}
        },
    )


Phase = Annotated[
    Annotated[BuildPhase, Tag("build")]
    | Annotated[PreflightPhase, Tag("preflight")]
    | Annotated[UpPhase, Tag("up")]
    | Annotated[CapturePhase, Tag("capture")]
    | Annotated[ImpairPhase, Tag("impair")]
    | Annotated[EvidencePhase, Tag("evidence")]
    | Annotated[SyncPhase, Tag("sync")]
    | Annotated[ConfigurePhase, Tag("configure")]
    | Annotated[IdempotencePhase, Tag("idempotence")]
    | Annotated[ConfigPhase, Tag("config")]
    | Annotated[AttemptPhase, Tag("attempt")]
    | Annotated[VerifyPhase, Tag("verify")]
    | Annotated[CollectPhase, Tag("collect")]
    | Annotated[AnalyzePhase, Tag("analyze")]
    | Annotated[DownPhase, Tag("down")]
    | Annotated[OtherPhase, Tag("other")],
    Discriminator(_phase_tag),
]


# -- the whole journal --------------------------------------------------------------------


class RateInterval(_Model):
    """The confidence interval of k/n (Wilson), as fractions of 1 (harness/confidence.py)."""

    low: float
    high: float
    confidence: float
    text: str  # `95% CI 11-60%`


class Reproduction(_Model):
    verdict: str | None = None
    observed: int | None = None
    attempts: int | None = None
    planned: int | None = None
    rate: str | None = None
    reason: str | None = None
    interval: RateInterval | None = None  # journals before schema 1.3 have none


class Header(_Model):
    """What the run is, written when it starts."""

    journal_version: int = JOURNAL_VERSION
    run: str | None = None
    scenario: str | None = None
    source: str | None = None
    verb: str | None = None  # `lab up`
    role: str | None = None  # reproduce | baseline | candidate | cell
    cell: str | None = None
    fix: str | None = None
    fix_file: str | None = None
    verification: str | None = None  # schema 1.4: the verify-fix this run is a side of
    # schema 1.8: a live rerun: {"on": the lab's run id, "rerun": its number, "folder": the lab's}
    live: dict[str, Any] | None = None
    # schema 1.7: the customer's signatures (`evidence:`) and which of them the lab showed
    evidence_match: EvidenceMatch | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    matrix_cell: dict[str, Any] | None = None
    case: Case = Field(default_factory=Case)
    engine: str | None = None
    harness: str | None = None
    title: str | None = None
    trust: dict[str, Any] = Field(default_factory=dict)
    topology: Topology = Field(default_factory=Topology)


class Journal(Header):
    """journal.json: the header, the phases in order, the plan and the ending."""

    model_config = ConfigDict(
        extra="allow",
        title="labharness journal.json",
        json_schema_extra={"$id": SCHEMA_ID, "schema_version": SCHEMA_VERSION},
    )

    started: str | None = None
    phases: list[Phase] = Field(default_factory=list)
    plan: Plan | None = None
    # the ending
    result: str | None = None
    reproduction: Reproduction | None = None
    checks: list[Check] = Field(default_factory=list)
    kept: bool | None = None
    ended: str | None = None
    teardown_error: str | None = None

    def phase(self, name: str) -> PhaseBase | None:
        return next((p for p in self.phases if p.phase == name), None)

    def of_kind(self, kind: str) -> list[PhaseBase]:
        return [p for p in self.phases if p.kind == kind]


def parse(data: Any) -> Journal:
    """A journal from its JSON value; pydantic's ValidationError when it does not fit."""
    return Journal.model_validate(data)


def load(path: Path) -> Journal:
    """The journal at `path`; an empty journal when it is missing, unreadable or not a journal
    (reports are still written, saying what is missing). Never raises."""
    try:
        return parse(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError):
        return Journal()


def json_schema() -> dict[str, Any]:
    """The JSON Schema of journal.json (draft 2020-12), as published in schemas/."""
    schema = Journal.model_json_schema(mode="validation")
    head: dict[str, Any] = {
        k: schema.pop(k) for k in ("$id", "schema_version", "title") if k in schema
    }
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **head, **schema}


def json_schema_text() -> str:
    """schemas/journal.schema.json as committed; regenerate it with
    `python -c 'from harness.journal_model import *; print(json_schema_text(), end="")' >
    schemas/journal.schema.json`."""
    return json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"
