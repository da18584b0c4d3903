"""Readiness as a symptom (issue 15 point 4) on the in-memory engine: a node a readiness probe
names may fail to start; bring-up records how (exit code, last log lines, which wait), its
dependents are not started, configure items and steps on it are skipped with a reason, and the
probe decides REPRODUCED or NOT_REPRODUCED. Any other node that fails to start is still ERROR.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from harness.engine import waits
from harness.engine.fake import FakeEngine, ok
from harness.errors import InfraError
from harness.run.execute import Run, RunOptions
from harness.run.probes import evaluate, may_not_start
from harness.scenario.catalog import Catalog
from harness.scenario.load import load_scenario
from harness.scenario.resolved import HealthSpec
from harness.scenario.schema import ReadyProbe
from tests.unit.conftest import CATALOG_ROOT

LOG = b"nginx: [emerg] SSL_CTX_use_certificate() failed (SSL: ca md too weak)\n"

SCENARIO = """\
scenario: not-ready
topology:
  networks:
    lan: {{}}
  nodes:
    proxy: {{os: debian-12, networks: [lan]}}
    client: {{os: debian-12, networks: [lan]}}
    sidecar: {{os: debian-12, networks: [lan], depends_on: [proxy]}}
configure:
  - {{run: "write-conf", on: [proxy, client]}}
reproduce:
  attempts: {attempts}
  steps:
    - {{id: get, on: client, run: "curl-proxy"}}
    - {{id: conf, on: proxy, run: "cat-conf"}}
  symptom:
    - {probe}
verify:
  - {{on: client, run: "curl-proxy"}}
"""
EXITED = '{node: proxy, state: exited, exit_code: 1, log: "ca md too weak"}'


@pytest.fixture(autouse=True)
def _reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABHARNESS_REPORTS", str(tmp_path / "reports"))


def make_run(
    tmp_path: Path,
    catalog: Catalog,
    engine: FakeEngine,
    probe: str = EXITED,
    attempts: int | str = 1,
) -> Run:
    path = tmp_path / "not-ready.yaml"
    path.write_text(SCENARIO.format(probe=probe, attempts=attempts))
    loaded = load_scenario(path, root=CATALOG_ROOT, catalog=catalog)
    return Run(loaded, CATALOG_ROOT, catalog, RunOptions(destroy="always"), engine=engine)


def journal(run: Run) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run.folder.path / "journal.json").read_text())
    return data


def phase(run: Run, name: str) -> dict[str, Any]:
    return next(p for p in journal(run)["phases"] if p["phase"] == name)


def engine(exits: bool = True, curl: int = 7) -> FakeEngine:
    fake = FakeEngine()
    fake.output = {"proxy": b"starting\n" + LOG}
    if exits:
        fake.exits = {"proxy": 1}
    fake.on_exec("client", "curl-proxy", ok(exit_code=curl))
    return fake


def test_a_node_that_exits_as_the_symptom_says_is_reproduced(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    fake = engine()
    run = make_run(tmp_path, test_catalog, fake)
    result = run.execute()
    assert result.verdict == "REPRODUCED", result
    nodes = {n["name"]: n for n in phase(run, "up")["nodes"]}
    proxy = nodes["proxy"]["not_ready"]
    assert proxy["state"] == "exited" and proxy["exit_code"] == 1
    assert "exited with code 1 before it was ready" in proxy["reason"]
    assert "ca md too weak" in proxy["log_tail"]
    assert "log" not in proxy  # the whole output is for the probe, not the journal
    assert nodes["sidecar"]["not_ready"]["state"] == "skipped"
    assert "depends on proxy" in nodes["sidecar"]["not_ready"]["reason"]
    assert "not_ready" not in nodes["client"]
    from harness import journal_model

    typed = journal_model.load(run.folder.path / "journal.json").phase("up")
    assert isinstance(typed, journal_model.UpPhase)
    records = {n.name: n.not_ready for n in typed.nodes}
    assert records["proxy"] == journal_model.NotReady.model_validate(proxy)
    assert records["client"] is None
    started = [a[1] for a in fake.called("start_node")]
    assert "sidecar" not in started and "client" in started
    # configure and steps on proxy: skipped with a reason, never exec'd
    item = phase(run, "configure")["items"][0]["results"]
    assert [r["node"] for r in item] == ["proxy", "client"]
    assert "did not become ready" in item[0]["skipped"] and "skipped" not in item[1]
    steps = {s["id"]: s for s in phase(run, "attempt-1")["steps"]}
    assert "did not become ready" in steps["conf"]["skipped"]
    assert "skipped" not in steps["get"]
    assert [a[1] for a in fake.called("exec")].count("proxy") == 0
    # the symptom's evidence names the exit code and the log line
    evidence = json.dumps(phase(run, "attempt-1")["symptom"])
    assert "exit code 1" in evidence and "ca md too weak" in evidence
    assert [a[1] for a in fake.called("exec")].count("client") == 3  # configure, get, verify
    # report.html (built from journal.json alone) lists the node that did not start
    html = (run.folder.path / "report.html").read_text()
    assert "Did not start" in html and "ca md too weak" in html and "skipped" in html


def test_the_node_starting_is_not_reproduced_and_its_checks_run(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    fake = engine(exits=False, curl=0)
    run = make_run(tmp_path, test_catalog, fake)
    result = run.execute()
    assert result.verdict == "NOT_REPRODUCED", result
    assert all("not_ready" not in n for n in phase(run, "up")["nodes"])
    assert "Did not start" not in (run.folder.path / "report.html").read_text()
    assert "became ready" in json.dumps(phase(run, "attempt-1")["symptom"])
    assert result.checks_green
    assert [a[1] for a in fake.called("exec")].count("proxy") == 2  # configure and conf


def test_a_node_no_probe_names_that_fails_to_start_is_still_error(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    fake = engine()
    fake.exits["client"] = 2
    run = make_run(tmp_path, test_catalog, fake)
    result = run.execute()
    assert result.verdict == "ERROR"
    assert "client exited with code 2" in (result.error or "")


def test_a_timed_out_health_wait_is_not_ready_but_not_exited(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    fake = engine(exits=False)
    fake.unhealthy = {"proxy": "port 443 never listened"}
    run = make_run(tmp_path, test_catalog, fake)
    assert run.execute().verdict == "NOT_REPRODUCED"  # state: exited does not hold
    assert "did not exit" in json.dumps(phase(run, "attempt-1")["symptom"])
    rec = {n["name"]: n for n in phase(run, "up")["nodes"]}["proxy"]["not_ready"]
    assert rec["state"] == "not_ready" and rec["exit_code"] is None
    assert "port 443 never listened" in rec["reason"]

    fake = engine(exits=False)
    fake.unhealthy = {"proxy": "port 443 never listened"}
    probe = '{node: proxy, state: not_ready, log: "ca md"}'
    assert make_run(tmp_path, test_catalog, fake, probe).execute().verdict == "REPRODUCED"


def test_later_attempts_without_fresh_see_the_same_state(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    fake = engine()
    run = make_run(tmp_path, test_catalog, fake, attempts=3)
    result = run.execute()
    assert (result.verdict, result.rate) == ("REPRODUCED", "3/3")
    assert [a[1] for a in fake.called("start_node")].count("proxy") == 1


def test_fresh_attempts_bring_the_node_up_again_and_record_it_again(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    fake = engine()
    run = make_run(tmp_path, test_catalog, fake, attempts="2\n  fresh: true")
    result = run.execute()
    assert (result.verdict, result.rate) == ("REPRODUCED", "2/2")
    assert [a[1] for a in fake.called("start_node")].count("proxy") == 2
    assert phase(run, "up-2")["nodes"][0]["not_ready"]["state"] == "exited"


def test_the_probe_needs_its_log_and_exit_code_to_match() -> None:
    failed = {"proxy": {"state": "exited", "exit_code": 1, "reason": "exited", "log": "boom"}}
    probe = ReadyProbe(node="proxy", state="exited", exit_code=1, log="ca md too weak")
    r = evaluate(probe, {}, {}, failed)
    assert not r.held and any("does not match" in e for e in r.evidence)
    assert not evaluate(
        ReadyProbe(node="proxy", state="exited", exit_code={"not": 1}), {}, {}, failed
    ).held
    assert evaluate(ReadyProbe(node="proxy", state="not_ready", log="bo+m"), {}, {}, failed).held
    assert not evaluate(ReadyProbe(node="proxy", state="not_ready"), {}, {}, {}).held


def test_nodes_a_symptom_allows_not_to_start_are_found_at_any_depth(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    probe = "{any: [{step: get, exit_code: 7}, {all: [{node: sidecar, state: not_ready}]}]}"
    run = make_run(tmp_path, test_catalog, FakeEngine(), probe)
    assert may_not_start(run.repro.symptom) == frozenset({"sidecar"})


class _Exits:
    """A container that stops between its state read and the readiness exec (the engine
    answers 409, then 500 'is not running'; or, stopping while the exec runs, it drops the
    exec and answers 404 'No such exec instance' when its exit code is read), then reads as
    exited with code 1."""

    name = "lab-x-proxy"

    def __init__(self, vanish: bool = False) -> None:
        self.vanish = vanish
        self.reads = 0
        self.attrs: dict[str, Any] = {}

    def reload(self) -> None:
        self.reads += 1
        status = "running" if self.reads <= 2 else "exited"
        self.attrs = {"State": {"Status": status, "ExitCode": 1}}

    def exec_run(self, *args: Any, **kwargs: Any) -> Any:
        if self.vanish:
            raise docker.errors.NotFound(
                "404 Client Error", _Status(404), "No such exec instance: 1989c2ffae8b"
            )
        if self.reads % 2:  # refused at the exec's creation, or at its start
            raise docker.errors.APIError("409 Conflict", _Status(409), "container is not running")
        raise docker.errors.APIError("500 Server Error", _Status(500), "x is not running: Exited")

    def logs(self, **kwargs: Any) -> bytes:
        return LOG


class _Status:
    def __init__(self, code: int) -> None:
        self.status_code = code


@pytest.mark.parametrize("vanish", [False, True], ids=["refused", "exec-dropped"])
def test_a_node_that_stops_during_its_readiness_exec_is_an_exit_not_a_crash(vanish: bool) -> None:
    spec = HealthSpec(kind="command", command="true", timeout=5.0, interval=0.01)
    with pytest.raises(InfraError, match="exited with code 1 before it was ready"):
        waits.wait_ready(_Exits(vanish), "proxy", spec)
