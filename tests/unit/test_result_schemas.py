"""The verbs' typed results and their published JSON Schemas (schemas/results/).

The committed schema files are the generated ones; a result of every verb (a real run's on the
fake engine, the others constructed) validates against its schema, and one with a key missing
or of the wrong type does not; the serialisation keeps the keys `--json` printed before.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from harness.engine.fake import FakeEngine, ok
from harness.run.result import RunResult
from harness.scenario.catalog import Catalog
from harness.verbs import results as R
from harness.verbs.analyze import analyze
from harness.verbs.triage import triage
from tests.unit.test_run_lifecycle import leaky_engine, make_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABHARNESS_REPORTS", str(tmp_path / "reports"))  # not in the tree


@pytest.mark.parametrize("verb", list(R.RESULTS))
def test_the_committed_schema_is_the_generated_one(verb: str) -> None:
    committed = ROOT / R.SCHEMA_DIR / f"{verb}.schema.json"
    assert committed.is_file(), f"regenerate: python -m harness.verbs.results ({committed})"
    assert committed.read_text() == R.result_schema_text(verb), (
        f"{committed} is stale: python -m harness.verbs.results"
    )


def test_no_schema_file_without_a_verb() -> None:
    files = {p.name for p in (ROOT / R.SCHEMA_DIR).glob("*.schema.json")}
    assert files == {f"{v}.schema.json" for v in R.RESULTS}


@pytest.mark.parametrize("verb", list(R.RESULTS))
def test_every_schema_is_valid_and_versioned(verb: str) -> None:
    schema = R.result_schema(verb)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"].endswith(f"/{verb}/{R.SCHEMA_VERSION}")


def _validate(verb: str, data: Any) -> None:
    jsonschema.Draft202012Validator(R.result_schema(verb)).validate(data)


def _run(tmp_path: Path, catalog: Catalog, fake: FakeEngine | None = None) -> RunResult:
    if fake is None:
        fake = leaky_engine()
        fake.on_exec("client", "probe-app", [ok("BROKEN: 502"), ok("200 OK"), ok("BROKEN: 502")])
    return make_run(tmp_path, catalog, fake).execute()


def test_a_real_run_validates_as_reproduce_and_keeps_its_keys(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    run = _run(tmp_path, test_catalog)
    result = R.ReproduceResult(**dict(run), exit_code=0)
    data = result.model_dump(mode="json")
    _validate("reproduce", data)
    assert list(data) == [
        *("run", "scenario", "role", "fix", "folder", "engine"),
        *("verdict", "observed", "attempts", "planned", "rate", "reason", "interval"),
        *("attempt_results", "checks", "checks_green", "kept", "seconds", "exit_code"),
    ]  # no error, hint, teardown_error, report_errors keys when there is none; fix: null
    assert data["fix"] is None and data["rate"] == "2/3"
    broken = {k: v for k, v in data.items() if k != "verdict"}
    with pytest.raises(jsonschema.ValidationError):
        _validate("reproduce", broken)
    with pytest.raises(jsonschema.ValidationError):
        _validate("reproduce", {**data, "observed": "two"})


def test_an_error_brings_its_hint_key_even_when_null(tmp_path: Path, test_catalog: Catalog) -> None:
    run = _run(tmp_path, test_catalog)
    with_error = run.model_copy(update={"error": "boom", "hint": None})
    data = with_error.model_dump(mode="json")
    assert data["error"] == "boom" and "hint" in data and data["hint"] is None
    assert "hint" not in run.model_dump(mode="json")


def test_verify_fix_validates(tmp_path: Path, test_catalog: Catalog) -> None:
    base = _run(tmp_path, test_catalog)
    result = R.VerifyFixResult(
        verdict="FIXED",
        reason="the symptom is gone",
        fix="raise-limit",
        kind=None,
        scenario=base.scenario,
        baseline=base,
        candidate=base,
        junit="x/verify-261201-100000-abcd/junit.xml",
        exit_code=0,
    )
    data = result.model_dump(mode="json")
    _validate("verify-fix", data)
    assert "error" not in data["baseline"] and data["kind"] is None


REMOVED = {"containers": 2, "networks": 1, "volumes": 0}
STUCK = {"network": "lh-x", "id": "abc", "reason": "in use", "hint": "lab gc"}

CONSTRUCTED: dict[str, Any] = {
    "ls": [
        R.ListedRun(
            run="r1",
            scenario="s",
            state="up",
            owner_alive=True,
            nodes=[R.NodeState(name="app", status="running")],
            containers=1,
            running=1,
            networks=1,
            folder=None,
        )
    ],
    "down": [
        R.DownResult(run="r1", removed=REMOVED),
        R.DownResult(run="r2", removed=REMOVED, stuck=[R.StuckNetwork(**STUCK)]),
    ],
    "gc": [R.GcResult(run="r1", reason="all", removed={}, dry_run=True)],
    "images-build": [
        R.ImageBuilt(
            tag="t",
            kind="env",
            name="debian-12",
            os="debian-12",
            version="bookworm",
            status="built",
            how="import",
            seconds=1.5,
        )
    ],
    "images-ls": [
        R.ImageListed(
            tag="t",
            id="abc",
            kind="lab",
            name="app",
            version="1",
            os="debian-12",
            inputs="0123",
            size_mb=12.5,
            created="2026-01-01T00:00:00",
            current=None,
        )
    ],
    "images-prune": [
        R.ImagePruned(tag="t", id="abc", action="kept"),
        R.ImagePruned(tag="u", id="def", action="failed", why="in use"),
    ],
    "exec": R.ExecResult(run="r1", node="app", command=["true"], exit_code=0, stdout="", stderr=""),
}

FINISHED = R.MatrixCell(
    cell={"os": "debian-12"},
    label="os=debian-12",
    status="PASS",
    verdict="NOT_REPRODUCED",
    expected=None,
    rate="0/1",
    reason="the symptom did not hold",
    checks=[{"name": "served", "passed": True}],
    run="r1",
    folder="reports/x/r1",
    seconds=1.5,
)
SKIPPED = R.MatrixCell(cell={"os": "debian-11"}, label="os=debian-11", status="SKIP", reason="no")
LOST = R.MatrixCell(
    cell={"os": "debian-10"},
    label="os=debian-10",
    status="ERROR",
    reason="worker lost",
    attempts=[{"engine": "a", "error": "worker lost"}],
)
MATRIX = R.MatrixResult(
    matrix="matrix-1",
    scenario="s",
    source="s.yaml",
    axes={"os": ["debian-10", "debian-11", "debian-12"]},
    jobs=2,
    engine="20.10.24",
    trust={"untrusted": False},
    started="2026-01-01T00:00:00",
    cells=[FINISHED, SKIPPED, LOST],
    summary={"PASS": 1, "FAIL": 0, "ERROR": 1, "SKIP": 1},
    seconds=3.0,
    ended="2026-01-01T00:00:03",
    interrupted=False,
    folder="reports/s/matrix-1",
    exit_code=1,
)
GATE_CELL = R.GateCell(
    key="s[os=debian-12]",
    suite="s",
    cell={"os": "debian-12"},
    status="FAIL",
    verdict="REPRODUCED",
    reason="held",
    run="r1",
    folder="reports/x/r1",
)
REGRESSION = {"cell": "s[os=debian-12]", "baseline": "PASS", "now": "FAIL"}
CONSTRUCTED["matrix"] = MATRIX
CONSTRUCTED["gate"] = R.GateResult(
    gate="g",
    release="1.4",
    verdict="FAIL",
    reason="regressed: s[os=debian-12]",
    baseline="baselines/g.json",
    cells=[GATE_CELL],
    regressions=[REGRESSION],
    fixed=[],
    new=[],
    removed=[],
    errors=[],
    matrices=[R.GateMatrix(scenario="s.yaml", folder="reports/s/m", summary={"FAIL": 1})],
    trust={"untrusted": False},
    folder="reports/gates/g/gate-1",
    ended="2026-01-01T00:00:03",
    exit_code=1,
)

CONSTRUCTED["bisect"] = R.BisectResult(
    axis="product",
    values=["1.0", "1.1"],
    looking_for="first bad",
    probes=[
        R.BisectProbe(value="1.1", verdict="REPRODUCED", rate="1/1", run="r", folder="f", try_=1)
    ],
    trust={"untrusted": False},
    verdict="FOUND",
    first_bad="1.1",
    last_good="1.0",
    first="1.1",
    last_before="1.0",
    reason="bad from product=1.1 (last before: 1.0)",
    runs=1,
    exit_code=0,
)
CONSTRUCTED["escalate"] = R.EscalateResult(
    ticket="SUP-1",
    run="r1",
    scenario="s",
    folder="reports/s/r1",
    verdict="REPRODUCED",
    rate="2/3",
    bundle="b.tar.gz",
    sha256="0" * 64,
    size=10,
    signed_by=None,
    signing_key=None,
    attachments=["b.tar.gz"],
    trackers=[
        R.TrackerAttached(
            tracker="local",
            attached=["b.tar.gz"],
            already=[],
            not_attached=[],
            comment=None,
            url=None,
            error=None,
        )
    ],
    redacted=[],
    comment="c",
    error=None,
    exit_code=0,
)


CONSTRUCTED["up"] = R.UpResult(
    run="r1",
    scenario="s",
    fix=None,
    folder="reports/s/r1",
    engine="20.10.24",
    nodes=[
        R.NodeLive(
            name="web",
            container="lab-r1-web",
            image="labharness/lab-nginx:1.22-debian-12-abc",
            addresses={"lan": "10.1.0.2"},
            ready_s=0.4,
        )
    ],
)
CONSTRUCTED["report"] = R.ReportResult(
    run="r1", folder="reports/s/r1", reports={"html": "reports/s/r1/report.html"}, errors=None
)
CONSTRUCTED["escalations"] = R.EscalationsResult(
    folder="escalations",
    ledger="escalations/ledger.jsonl",
    ticket=None,
    attachments=[{"ticket": "SUP-1", "tracker": "local", "file": "b.tar.gz"}],
    escalations=[{"ticket": "SUP-1", "run": "r1", "verdict": "REPRODUCED"}],
)
CONSTRUCTED["keys-generate"] = R.KeysResult(
    private="k/bundle.key", public="k/bundle.pub", key_id="ab12"
)
CONSTRUCTED["import-sos"] = R.ImportSosResult(
    scenario="sos-web1",
    file="scenarios/sos-web1.yaml",
    fixtures="fixtures/sos-web1",
    source="sosreport-web1.tar.xz",
    report="sosreport-web1-2026-12-03-abcdefg",
    os=R.OsCarried(found="Debian GNU/Linux 12 (bookworm)", environment="debian-12", exact=True),
    software=[
        R.SoftwareCarried(
            lab="nginx",
            node="nginx",
            package="nginx",
            installed="1.24.0-1",
            version="1.22",
            os="debian-12",
            exact=False,
            note="nginx 1.24.0-1 is not in the catalog for debian-12; nearest: 1.22",
        )
    ],
    networks=[
        R.NetworkCarried(
            network="eth0", interface="eth0", subnet="10.7.0.0/24", address="10.7.0.5", static=True
        )
    ],
    files=[
        R.FileCarried(
            node="nginx",
            path="/etc/nginx/nginx.conf",
            fixture="fixtures/sos-web1/etc/nginx/nginx.conf",
            redacted=1,
        )
    ],
    not_carried=[R.NotCarried(what="etc/nginx/logo.png", why="binary (not a text config file)")],
    unknown_packages=["adduser"],
)
CONSTRUCTED["schema"] = R.SchemaResult(written="schemas/scenario.schema.json")
CONSTRUCTED["import-compose"] = R.ImportComposeResult(
    scenario="shop",
    file="scenarios/imported/shop.yaml",
    source="compose.yaml",
    profiles=["debug"],
    nodes=[
        R.ImportedNode(
            name="db", service="db", lab="postgres", version="15", image=None, image_present=None
        ),
        R.ImportedNode(
            name="api", service="api", lab=None, version=None, image="a:1", image_present=False
        ),
    ],
    networks=["back"],
    fixtures=["fixtures/shop/nginx.conf"],
    params=["postgres_password"],
    not_carried=[R.NotCarriedOver(service="web", key="ports", why="no host port")],
    notes=[R.ImportNote(service="db", what="image postgres:16 -> lab postgres 15")],
    valid=True,
)
CONSTRUCTED["validate"] = R.ValidateResult(
    valid=False, files={"a.yaml": [{"file": "a.yaml", "line": 3, "col": 5, "message": "m"}]}
)
CONSTRUCTED["error"] = R.ErrorResult(error="no run 'x'", hint="give the run folder", exit_code=2)
CONSTRUCTED["invalid"] = R.InvalidResult(
    problems=[R.ProblemAt(file="a.yaml", line=3, col=5, message="expected a list")]
)
CONSTRUCTED["cp"] = R.CopyResult(
    run="r1", node="web", direction="out", source="web:/etc/hosts", dest="hosts", files=1, bytes=9
)
# a real analysis: the committed capture through tshark, and a log through the labs' signatures
_ANALYZED_LOG = ROOT / "tests/data/analyze/signature_lines.yaml"
CONSTRUCTED["analyze"] = analyze(
    [str(ROOT / "tests/data/analyze/evidence.pcap"), str(_ANALYZED_LOG)], root=ROOT
)
# a real triage: the same evidence, ranked against the shipped known-problems/
CONSTRUCTED["triage"] = triage([str(ROOT / "tests/data/analyze/evidence.pcap")], root=ROOT)
_REPLAYED = R.RunResult(
    run="r2",
    scenario="s",
    role="reproduce",
    fix=None,
    folder="replay-r1/reports/s/r2",
    engine="20.10.24",
    verdict="REPRODUCED",
    observed=2,
    attempts=2,
    planned=2,
    rate="2/2",
    reason="symptom observed in 2 of 2",
    attempt_results=[],
    checks=[],
    checks_green=True,
    kept=False,
    seconds=3.0,
)
CONSTRUCTED["index"] = R.IndexResult(
    store="postgresql+psycopg://lab:***@db/results",
    reports="/p/reports",
    indexed=9,
    removed=1,
    by_kind={"run": 3, "verification": 1, "matrix": 1},
    skipped=["/p/reports/x/broken: ValueError: not a JSON object"],
)
CONSTRUCTED["watch"] = R.WatchResult(
    run="r1",
    ended="stopped",
    lab_down="lab down r1",
    reruns=[
        R.WatchRerun(
            at="2026-12-03T16:02:11.000+00:00",
            verdict="REPRODUCED",
            rate="2/2",
            decided="attempt 1: probe step page: status=404: HTTP status 404 (expected 404)",
            folder="reports/quick-repro/r1/live/4",
            seconds=0.62,
        ),
        R.WatchRerun(
            at="2026-12-03T16:02:31.000+00:00",
            changed=["/p/scenarios/quick-repro.yaml"],
            error="scenarios/quick-repro.yaml:5:9: expected a mapping",
            seconds=0.05,
        ),
    ],
)
CONSTRUCTED["replay"] = R.ReplayResult(
    bundle="b.tar.gz",
    sha256="0" * 64,
    workdir="replay-r1",
    project="replay-r1/project",
    scenario="s",
    fix=None,
    original=R.ReplayOriginal(
        run="r1", verdict="REPRODUCED", rate="2/2", reason="held", engine="20.10.24", harness="0.1"
    ),
    replay=_REPLAYED,
    verdict="REPRODUCED",
    rate="2/2",
    same_verdict=True,
    images=[{"original": "t1", "replay": "t1", "same_inputs": True}],
    redacted=[],
    restored=[],
    warnings=["w"],
    signature={"status": "unsigned"},
    exit_code=0,
)


def test_bisect_keeps_its_keys_and_the_try_name() -> None:
    data = R.to_json(CONSTRUCTED["bisect"])
    assert list(data["probes"][0])[-1] == "try"
    assert "first_fixed" not in data and "last_unfixed" not in data
    no = CONSTRUCTED["bisect"].model_copy(
        update={"verdict": "NO_TRANSITION", "first_bad": None, "last_good": None}
    )
    no = no.model_copy(update={"first": None, "last_before": None, "runs": None})
    assert list(R.to_json(no)) == [
        *("axis", "values", "looking_for", "probes", "trust", "verdict", "reason", "exit_code")
    ]


@pytest.mark.parametrize("verb", list(CONSTRUCTED))
def test_a_constructed_result_validates(verb: str) -> None:
    data = R.to_json(CONSTRUCTED[verb])
    _validate(verb, data)
    json.dumps(data)  # plain JSON


def test_optional_keys_are_left_out_as_before() -> None:
    down = R.to_json(CONSTRUCTED["down"])
    assert down[0] == {"run": "r1", "removed": REMOVED}
    assert down[1] == {"run": "r2", "removed": REMOVED, "stuck": [STUCK]}
    prune = R.to_json(CONSTRUCTED["images-prune"])
    assert prune == [
        {"tag": "t", "id": "abc", "action": "kept"},
        {"tag": "u", "id": "def", "action": "failed", "why": "in use"},
    ]
    assert list(R.to_json(CONSTRUCTED["gc"])[0]) == ["run", "reason", "removed", "dry_run"]
    listed = R.to_json(CONSTRUCTED["ls"])[0]
    assert listed["folder"] is None  # always there, null or not


def test_replay_renders_its_typed_run(tmp_path: Path, test_catalog: Catalog) -> None:
    from harness.verbs.replay import render_lines

    run = _run(tmp_path, test_catalog)
    result = CONSTRUCTED["replay"].model_copy(update={"replay": run, "verdict": run.verdict})
    lines = render_lines(result)
    assert lines[0].startswith("original  REPRODUCED (2/2)  run r1")
    assert lines[1].startswith(f"replay    {run.verdict} ({run.rate})  run {run.run}")
    assert lines[2] == f"same verdict; evidence: {run.folder}"
    assert lines[-1] == "warning: w"


def test_matrix_cells_keep_the_keys_results_json_had() -> None:
    """A finished cell has every run key (null or not); a SKIP only its reason; a cluster
    cell its attempts; a local matrix neither the cluster's keys nor its selection."""
    cells = [c.model_dump(mode="json") for c in (FINISHED, SKIPPED, LOST)]
    assert list(cells[0]) == [
        *("cell", "label", "status", "verdict", "expected", "rate", "reason", "checks"),
        *("run", "folder", "seconds"),
    ]
    assert cells[0]["expected"] is None
    assert list(cells[1]) == ["cell", "label", "status", "reason"]
    assert list(cells[2]) == ["cell", "label", "status", "reason", "attempts"]
    data = MATRIX.model_dump(mode="json")
    assert list(data) == [
        *("matrix", "scenario", "source", "axes", "jobs", "engine", "trust", "started"),
        *("cells", "summary", "seconds", "ended", "interrupted", "folder", "exit_code"),
    ]
    cluster = MATRIX.model_copy(
        update={"cluster": "tcp://s:8786", "jobs": None, "engine": None, "engines": ["a"]}
    )
    cluster = cluster.model_copy(update={"only": {}, "params": {}, "resumed": False})
    keys = list(cluster.model_dump(mode="json"))
    assert keys[:9] == [
        *("matrix", "scenario", "source", "only", "params", "axes", "cluster", "jobs"),
        "engines",
    ]
    assert cluster.model_dump(mode="json")["jobs"] is None


def test_a_results_json_cell_from_another_version_loads_and_keeps_its_keys() -> None:
    """--resume reads older results.json files: a key this version does not know stays."""
    old = {"cell": {"os": "x"}, "label": "os=x", "status": "SKIP", "reason": "no", "note": "1"}
    assert R.MatrixCell.model_validate(old).model_dump(mode="json") == old


def test_gate_results_leave_out_saved_baseline_unless_saved() -> None:
    gate = CONSTRUCTED["gate"]
    assert "saved_baseline" not in gate.model_dump(mode="json")
    saved = gate.model_copy(update={"saved_baseline": "/tmp/b.json"}).model_dump(mode="json")
    _validate("gate", saved)
    assert list(saved)[-2:] == ["saved_baseline", "exit_code"]
    assert list(saved)[5:11] == ["cells", "regressions", "fixed", "new", "removed", "errors"]


def test_every_verb_has_a_constructed_result() -> None:
    # reproduce and verify-fix validate from real runs on the fake engine (tests above)
    assert set(R.RESULTS) - {"reproduce", "verify-fix"} <= set(CONSTRUCTED)


def test_schema_prints_the_schema_under_its_own_key() -> None:
    data = R.to_json(R.SchemaResult.model_validate({"schema": {"type": "object"}}))
    assert data == {"schema": {"type": "object"}}
    assert R.to_json(R.SchemaResult(written="x.json")) == {"written": "x.json"}


def test_a_finished_cell_carries_its_rate_interval() -> None:
    from harness.verbs.matrix import cell_result

    run = _REPLAYED.model_dump(mode="json")
    run["interval"] = {"low": 0.34, "high": 1.0, "confidence": 0.95, "text": "95% CI 34-100%"}
    cell = cell_result({"os": "debian-12"}, run, "REPRODUCED", 1.5)
    data = cell.model_dump(mode="json")
    keys = list(data)
    assert keys[keys.index("rate") + 1] == "interval" and data["interval"] == "95% CI 34-100%"


@pytest.mark.parametrize(
    ("argv", "verb", "code"),
    [
        (["report", "no-such-run", "--json"], "error", 2),
        (["validate", "tests/scenarios/malformed/bad-duration.yaml", "--json"], "validate", 2),
        (["up", "tests/scenarios/malformed/bad-duration.yaml", "--json"], "invalid", 2),
    ],
)
def test_a_failing_verb_prints_json_its_schema_describes(
    argv: list[str], verb: str, code: int
) -> None:
    """Bad input under --json: one JSON document (the error or every located problem), exit 2."""
    from typer.testing import CliRunner

    from harness.cli import app

    res = CliRunner().invoke(app, argv)
    assert res.exit_code == code, res.output
    doc = json.loads(res.stdout)
    jsonschema.Draft202012Validator(R.result_schema(verb)).validate(doc)
