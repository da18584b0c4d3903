"""The run layer's lifecycle on the in-memory engine (harness/engine/fake.py): phases in order,
attempts and k/n, a step that cannot run is ERROR (never NOT_REPRODUCED), an interruption at
any phase still collects and tears down, and nothing secret reaches the run folder.

The Run is built through its normal constructor with the fake passed in; no module globals are
patched. The real adapter is tested against the real engine in tests/engine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.engine.fake import FakeEngine, ok
from harness.errors import InfraError
from harness.run.execute import Run, RunOptions
from harness.run.signals import SignalInterrupt
from harness.scenario.catalog import Catalog
from harness.scenario.load import load_scenario
from tests.unit.conftest import CATALOG_ROOT

SECRET = "hunter2-Zq9-xK4-secret-pw"  # an env value whose name says password
TICKET = "ACME-INTERNAL-4242"  # matches the scenario's own redact: pattern

SCENARIO = f"""\
scenario: lifecycle
redact: ['ACME-INTERNAL-[0-9]+']
topology:
  networks:
    lan: {{}}
  nodes:
    app:
      os: debian-12
      networks: [lan]
      env: {{DB_PASSWORD: {SECRET}, LOG_LEVEL: debug}}
    client:
      os: debian-12
      networks: [lan]
      depends_on: [app]
  impairments:
    - {{node: app, network: lan, loss: 1%}}
configure:
  - {{run: "echo configure-app", on: app}}
reproduce:
  attempts: 3
  steps:
    - {{id: probe, on: client, run: "probe-app"}}
  symptom:
    - {{step: probe, stdout: "BROKEN"}}
verify:
  - {{on: app, run: "verify-app"}}
collect:
  capture: [lan]
  logs: ["app:/etc/app/app.conf"]
"""

PHASES = [
    "build",
    "preflight",
    "up",
    "capture",
    "impair",
    "configure",
    "attempt-1",
    "attempt-2",
    "attempt-3",
    "verify",
    "collect",
    "analyze",
    "down",
]


@pytest.fixture(autouse=True)
def _reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABHARNESS_REPORTS", str(tmp_path / "reports"))


def make_run(
    tmp_path: Path,
    catalog: Catalog,
    engine: FakeEngine,
    text: str = SCENARIO,
    destroy: str = "passing",
) -> Run:
    path = tmp_path / "lifecycle.yaml"
    path.write_text(text)
    loaded = load_scenario(path, root=CATALOG_ROOT, catalog=catalog)
    return Run(loaded, CATALOG_ROOT, catalog, RunOptions(destroy=destroy), engine=engine)


def leaky_engine() -> FakeEngine:
    """An engine whose every answer carries the secrets: output, files, exec results."""
    fake = FakeEngine()
    said = f"starting with password {SECRET}\nticket {TICKET}\n".encode()
    fake.output = {"app": said, "client": said}
    fake.files = {"app": {"/etc/app/app.conf": f"password={SECRET}\nref={TICKET}\n".encode()}}
    fake.on_exec("app", "configure-app", ok(f"configured {SECRET}", TICKET))
    fake.on_exec("app", "verify-app", ok(f"verified {TICKET}"))
    return fake


def journal(run: Run) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run.folder.path / "journal.json").read_text())
    return data


def phases(run: Run) -> list[str]:
    return [p["phase"] for p in journal(run)["phases"]]


def run_state(run: Run) -> str:
    return str(json.loads((run.folder.path / "run.json").read_text())["state"])


def test_phases_in_order_and_k_of_n(tmp_path: Path, test_catalog: Catalog) -> None:
    fake = leaky_engine()
    broken, fine = ok("BROKEN: 502"), ok("200 OK")
    fake.on_exec("client", "probe-app", [broken, fine, broken])
    run = make_run(tmp_path, test_catalog, fake)
    result = run.execute()
    assert phases(run) == PHASES
    results = {p["phase"]: p["result"] for p in journal(run)["phases"]}
    assert [results.pop(f"attempt-{i}") for i in (1, 2, 3)] == ["observed", "absent", "observed"]
    assert set(results.values()) == {"ok"}, results
    assert (result.verdict, result.rate) == ("REPRODUCED", "2/3")
    assert [a.observed for a in result.attempt_results] == [True, False, True]
    assert journal(run)["result"] == "REPRODUCED"
    assert len(fake.called("exec")) == 1 + 3 + 1  # configure, three probes, verify
    assert fake.called("remove") and fake.live(run.run_id) == []
    assert run_state(run) == "done"


def test_never_observed_is_not_reproduced_and_kept(tmp_path: Path, test_catalog: Catalog) -> None:
    fake = leaky_engine()
    fake.on_exec("client", "probe-app", ok("200 OK"))
    run = make_run(tmp_path, test_catalog, fake)
    result = run.execute()
    assert (result.verdict, result.rate) == ("NOT_REPRODUCED", "0/3")
    assert result.kept and not fake.called("remove")  # --destroy passing keeps a failure
    assert sorted(fake.live(run.run_id)) == ["app", "client", "lan"]


def test_a_step_whose_exec_fails_is_error(tmp_path: Path, test_catalog: Catalog) -> None:
    fake = leaky_engine()
    fake.on_exec("client", "probe-app", [ok("BROKEN"), InfraError("lost the Docker engine")])
    run = make_run(tmp_path, test_catalog, fake, destroy="always")
    result = run.execute()
    assert result.verdict == "ERROR"
    assert "lost the Docker engine" in result.reason
    assert [a.error is None for a in result.attempt_results] == [True, False]
    assert "attempt-3" not in phases(run) and "verify" not in phases(run)
    assert phases(run)[-3:] == ["collect", "analyze", "down"]
    assert fake.live(run.run_id) == []


def test_a_step_on_a_node_that_is_gone_is_error(tmp_path: Path, test_catalog: Catalog) -> None:
    """The node was killed by a fault step: the next step cannot run there. Not observed is
    not the same as not looked for: ERROR, never NOT_REPRODUCED."""
    text = SCENARIO.replace(
        '    - {id: probe, on: client, run: "probe-app"}',
        '    - {fault: kill, node: client}\n    - {id: probe, on: client, run: "probe-app"}',
    )
    fake = leaky_engine()
    fake.on_exec("client", "probe-app", ok("200 OK"))
    run = make_run(tmp_path, test_catalog, fake, text)
    result = run.execute()
    assert result.verdict == "ERROR"
    assert "node client is exited" in result.reason
    steps = journal(run)["phases"][6]["steps"]
    assert [s.get("error", "") for s in steps][1].startswith("node client is exited")
    assert result.kept and phases(run)[-2:] == ["collect", "analyze"]  # an ERROR is kept


def test_a_missing_node_at_configure_is_error(tmp_path: Path, test_catalog: Catalog) -> None:
    fake = leaky_engine()
    fake.fail_on("exec", InfraError("run r has no node app"), lambda a: "configure-app" in a[2])
    run = make_run(tmp_path, test_catalog, fake, destroy="always")
    result = run.execute()
    assert result.verdict == "ERROR"
    assert journal(run)["phases"][5]["phase"] == "configure"
    assert journal(run)["phases"][5]["result"] == "error"
    assert phases(run)[-3:] == ["collect", "analyze", "down"]


# (phase, the fake's method that raises there, which of its calls)
WHERE = [
    ("build", "ensure_images", lambda a: True),
    ("preflight", "check_impairments", lambda a: True),
    ("up", "create_node", lambda a: a[1] == "client"),
    ("capture", "start_capture", lambda a: True),
    ("impair", "impair", lambda a: True),
    ("configure", "exec", lambda a: "configure-app" in a[2]),
    ("attempt-1", "exec", lambda a: "probe-app" in a[2]),
    ("verify", "exec", lambda a: "verify-app" in a[2]),
]


@pytest.mark.parametrize("signal", [SignalInterrupt(15), KeyboardInterrupt()], ids=["TERM", "INT"])
@pytest.mark.parametrize(("phase", "method", "when"), WHERE, ids=[w[0] for w in WHERE])
def test_interrupted_at_each_phase_collects_and_tears_down(
    tmp_path: Path,
    test_catalog: Catalog,
    phase: str,
    method: str,
    when: Any,
    signal: BaseException,
) -> None:
    fake = leaky_engine()
    fake.on_exec("client", "probe-app", ok("BROKEN"))
    fake.fail_on(method, signal, when)
    run = make_run(tmp_path, test_catalog, fake)
    with pytest.raises(SignalInterrupt):
        run.execute()
    seen = phases(run)
    assert seen == [*PHASES[: PHASES.index(phase) + 1], "collect", "down"]
    recs = {p["phase"]: p for p in journal(run)["phases"]}
    assert recs[phase]["result"] == "interrupted"
    assert journal(run)["result"] == "ERROR"
    assert run_state(run) == "interrupted"
    # collected: the engine was asked what the run holds after the interrupt, and each node
    # that existed left its output in the folder
    names = [name for name, _ in fake.calls]
    assert "find" in names[names.index(method) :]
    made = {a[1] for a in fake.called("create_node")} - ({"client"} if phase == "up" else set())
    for node in made:
        assert (run.folder.path / "artifacts" / node / "container.log").is_file()
    # torn down: removed, nothing of the run left
    assert fake.live(run.run_id) == []
    if made:
        assert fake.called("remove")


def test_every_file_in_the_run_folder_is_redacted(tmp_path: Path, test_catalog: Catalog) -> None:
    fake = leaky_engine()
    fake.on_exec("client", "probe-app", ok(f"BROKEN {SECRET} {TICKET}", f"err {SECRET}"))
    run = make_run(tmp_path, test_catalog, fake)
    result = run.execute()
    assert result.verdict == "REPRODUCED"
    written = [f for f in run.folder.path.rglob("*") if f.is_file()]
    names = {f.relative_to(run.folder.path).as_posix() for f in written}
    # the files the secrets went into are there (else the test proves nothing)
    for want in ("journal.json", "run.json", "REPRODUCE.md", "artifacts/app/container.log"):
        assert want in names, sorted(names)
    assert "artifacts/app/inspect.json" in names and "artifacts/app/files/etc/app/app.conf" in names
    for f in written:
        data = f.read_bytes()
        assert SECRET.encode() not in data, f
        assert TICKET.encode() not in data, f
    printed = result.model_dump_json()
    assert SECRET not in printed and TICKET not in printed


def test_the_fake_records_calls_in_order(tmp_path: Path, test_catalog: Catalog) -> None:
    fake = leaky_engine()
    run = make_run(tmp_path, test_catalog, fake)
    run.execute()
    names = [name for name, _ in fake.calls]
    first = {n: names.index(n) for n in ("ensure_images", "create_network", "start_capture")}
    assert first["ensure_images"] < first["create_network"] < first["start_capture"]
    assert names.index("start_node") < names.index("wait_ready")
    created = fake.called("create_node")
    assert [a[1] for a in created][-1] == "client"  # client depends on app: created either way
    assert {a[0] for a in created} == {run.run_id}


def test_an_engine_lost_mid_run_is_error_and_the_journal_is_kept(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    """From the first probe on, every engine call fails: ERROR with the teardown's failure
    and the `lab gc` hint, the journal and run.json written, nothing claimed removed."""
    lost = InfraError("lost the Docker engine while trying to run a command")
    fake = leaky_engine()
    fake.fail_on("exec", lost, lambda a: "probe-app" in a[2])

    def after_the_probe(args: tuple[Any, ...]) -> bool:
        return len(fake.called("exec")) > 1  # configure's exec, then the probe's

    for method in ("find", "remove", "output_chunks", "inspect", "file_entries"):
        fake.fail_on(method, lost, after_the_probe, times=-1)
    run = make_run(tmp_path, test_catalog, fake, destroy="always")
    result = run.execute()
    assert result.verdict == "ERROR"
    assert result.teardown_error and "lab gc" in result.teardown_error
    assert journal(run)["phases"][-1]["phase"] == "down"
    assert journal(run)["phases"][-1]["result"] == "error"
    assert run_state(run) == "failed"
    assert sorted(fake.live(run.run_id)) == ["app", "client", "lan"]  # nothing could be removed


# -- a confidence: the stop rule (issue 15 point 3) ---------------------------------------------

CONFIDENT = """\
scenario: confident
topology:
  networks:
    lan: {}
  nodes:
    client: {os: debian-12, networks: [lan]}
reproduce:
  confidence: 0.95
  max_attempts: MAX
  steps:
    - {id: probe, on: client, run: "probe-app"}
  symptom:
    - {step: probe, stdout: "BROKEN"}
"""


def _confident(
    tmp_path: Path,
    catalog: Catalog,
    answers: list[str],
    role: str = "reproduce",
    baseline: tuple[int, int] | None = None,
    budget: int = 10,
) -> Run:
    fake = FakeEngine()
    fake.on_exec("client", "probe-app", [ok(a) for a in answers])
    path = tmp_path / f"confident-{role}.yaml"
    path.write_text(CONFIDENT.replace("MAX", str(budget)))
    loaded = load_scenario(path, root=CATALOG_ROOT, catalog=catalog)
    opts = RunOptions(destroy="always", role=role, baseline_rate=baseline)
    return Run(loaded, CATALOG_ROOT, catalog, opts, engine=fake)


def test_a_confident_reproduce_stops_at_its_first_observation(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    run = _confident(tmp_path, test_catalog, ["fine", "fine", "BROKEN", "fine"])
    result = run.execute()
    assert (result.verdict, result.rate, result.planned) == ("REPRODUCED", "1/3", 3)
    assert [p for p in phases(run) if p.startswith("attempt")] == [
        "attempt-1",
        "attempt-2",
        "attempt-3",
    ]
    assert result.interval is not None and result.interval.text == "95% CI 6-79%"


def test_a_confident_reproduce_spends_its_budget_when_never_seen(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    result = _confident(tmp_path, test_catalog, ["fine"], budget=6).execute()
    assert (result.verdict, result.rate, result.planned) == ("NOT_REPRODUCED", "0/6", 6)
    assert journal_of(result)["reproduction"]["interval"]["text"] == "95% CI 0-39%"


def test_a_candidate_runs_what_the_baseline_rate_needs_then_stops_at_its_budget(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    # a baseline of 1/3 needs 8 clean attempts at 95%; the budget is 5
    result = _confident(
        tmp_path, test_catalog, ["fine"], role="candidate", baseline=(1, 3), budget=5
    ).execute()
    assert (result.verdict, result.rate, result.planned) == ("NOT_REPRODUCED", "0/5", 5)
    from harness import outcomes

    base = outcomes.Reproduction("REPRODUCED", 1, 3, 3, "")
    verdict, reason = outcomes.fix_verdict(base, result.reproduction(), [], [], confidence=0.95)
    assert verdict == "INCONCLUSIVE"
    assert "needs 8 to claim FIXED at 95% for a baseline rate of 1/3" in reason


def test_a_candidate_stops_at_its_first_observation(tmp_path: Path, test_catalog: Catalog) -> None:
    result = _confident(
        tmp_path, test_catalog, ["fine", "BROKEN"], role="candidate", baseline=(1, 3)
    ).execute()
    assert (result.verdict, result.rate) == ("REPRODUCED", "1/2")


def journal_of(result: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((Path(result.folder) / "journal.json").read_text())
    return data


def test_a_run_that_failed_before_any_node_keeps_nothing(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    """--destroy passing keeps a failed lab to look at; with no node made there is no lab, and
    the result must not say `kept` (the terminal would offer `lab shell` into nothing)."""
    fake = leaky_engine()
    fake.fail_on("ensure_images", InfraError("the build broke"))
    result = make_run(tmp_path, test_catalog, fake).execute()
    assert result.verdict == "ERROR" and "the build broke" in result.reason
    assert not result.kept
    assert not fake.called("create_node")


def test_the_run_analyzes_its_own_folder_after_collect(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    fake = leaky_engine()
    fake.on_exec("client", "probe-app", ok("BROKEN"))
    run = make_run(tmp_path, test_catalog, fake)
    run.execute()
    rec = next(p for p in journal(run)["phases"] if p["phase"] == "analyze")
    assert rec["result"] == "ok" and "error" not in rec
    paths = {s["path"] for s in rec["sources"]}
    assert {"artifacts/app/container.log", "artifacts/client/container.log"} <= paths
    assert not [p for p in paths if p.startswith("/")]  # relative to the run folder
    assert SECRET not in json.dumps(rec)


def test_an_analysis_that_breaks_never_fails_the_run(
    tmp_path: Path, test_catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("a reader's bug")

    monkeypatch.setattr("harness.run.execute.analyze_folder", broken)
    fake = leaky_engine()
    fake.on_exec("client", "probe-app", ok("BROKEN"))
    run = make_run(tmp_path, test_catalog, fake, destroy="always")
    result = run.execute()
    assert result.verdict == "REPRODUCED" and not result.report_errors
    rec = next(p for p in journal(run)["phases"] if p["phase"] == "analyze")
    assert rec["result"] == "error" and "a reader's bug" in rec["error"]
    assert phases(run)[-1] == "down" and (run.folder.path / "report.html").is_file()


def test_a_restarted_or_started_node_gets_its_impairments_back(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    """A restart (or a stop undone between attempts) gives the node a new network namespace,
    without the loss rule the topology put in the old one: the run puts it back, and says so."""
    text = SCENARIO.replace(
        '    - {id: probe, on: client, run: "probe-app"}',
        '    - {id: probe, on: client, run: "probe-app"}\n'
        "    - {fault: restart, node: app}\n"
        "    - {fault: stop, node: app}\n"
        "    - {fault: restart, node: client}",
    ).replace("attempts: 3", "attempts: 2")
    fake = FakeEngine()
    fake.on_exec("client", "probe-app", ok("BROKEN"))
    run = make_run(tmp_path, test_catalog, fake, text)
    run.execute()
    impaired = [(args[1], args[2]) for args in fake.called("impair")]
    # the impair phase; attempt 1: after the restart, after the stop is undone; attempt 2:
    # after the restart (the last attempt's faults stay for collect: nothing is undone)
    assert impaired == [("app", "lan")] * (1 + 2 + 1), fake.calls
    order = [(m, a[1:3]) for m, a in fake.calls if m in ("node_fault", "impair", "start_node")]
    first = order.index(("node_fault", ("app", "restart")))
    assert order[first + 1] == ("impair", ("app", "lan"))
    steps = [s for p in journal(run)["phases"] if p["phase"] == "attempt-1" for s in p["steps"]]
    restart = next(s for s in steps if s.get("fault", {}).get("action") == "restart")
    assert restart["fault"]["reapplied"][0]["node"] == "app"
    client = [s for s in steps if s.get("fault", {}).get("node") == "client"]
    assert client and "reapplied" not in client[0]["fault"]  # client has no impairment


class _LateLog(FakeEngine):
    """A service that logs its line a moment after the client's step ended: the first read of
    its output misses it, a later one has it."""

    def __init__(self, reads_before: int) -> None:
        super().__init__()
        self.reads_before = reads_before
        self.reads = 0

    def logs(self, run: str, node: str, since: Any = None) -> bytes:
        self._call("logs", run, node)
        self.reads += 1
        return b"the session ended: BROKEN\n" if self.reads > self.reads_before else b""


LATE = """\
scenario: late
topology:
  networks:
    lan: {}
  nodes:
    app: {os: debian-12, networks: [lan]}
reproduce:
  steps:
    - {id: probe, on: app, run: "probe-app"}
  symptom:
    - {step: probe, exit_code: 0}
    - {log: "BROKEN", on: app}
"""


@pytest.mark.parametrize(("reads_before", "observed"), [(0, True), (2, True), (9, False)])
def test_a_log_line_a_moment_late_still_counts(
    tmp_path: Path, test_catalog: Catalog, reads_before: int, observed: bool
) -> None:
    """The symptom's logs are read again (up to about a second) when it does not hold yet:
    a line written just after the step is evidence of that attempt; one that never comes is
    not, and the attempt is absent after the wait."""
    fake = _LateLog(reads_before)
    fake.on_exec("app", "probe-app", ok(""))
    run = make_run(tmp_path, test_catalog, fake, LATE)
    result = run.execute()
    [attempt] = [p for p in journal(run)["phases"] if p["phase"] == "attempt-1"]
    assert attempt["observed"] is observed and result.verdict == (
        "REPRODUCED" if observed else "NOT_REPRODUCED"
    )
    assert fake.reads == (1 if reads_before == 0 else min(reads_before + 1, 4))
    assert ("settled_s" in attempt) is (observed and reads_before > 0)
