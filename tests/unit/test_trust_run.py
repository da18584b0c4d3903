"""The run's trust level: what an untrusted scenario is refused before anything starts."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.errors import UsageError
from harness.localconfig import DEFAULT_CAPABILITIES
from harness.run import trust
from harness.run.provision import bring_up
from harness.run.trust import TRUSTED, Trust
from harness.scenario.catalog import Catalog
from harness.scenario.load import LoadedScenario, load_scenario
from harness.scenario.problems import ScenarioInvalid
from tests.unit.conftest import CATALOG_ROOT

FULL = CATALOG_ROOT / "scenarios" / "full.yaml"
UNTRUSTED = Trust.of(untrusted=True, trust=False)
OVERRIDDEN = Trust.of(untrusted=True, trust=True)
CAPS = """\
scenario: caps
topology:
  networks:
    lan: {}
  nodes:
    a: {os: debian-12, networks: [lan], cap_add: [NET_ADMIN, SYS_PTRACE]}
reproduce:
  steps: [{id: s, on: a, run: "true"}]
  symptom: [{step: s, exit_code: 0}]
"""


@pytest.fixture(autouse=True)
def local_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configuration the engineer owns that allows SYS_PTRACE (for their own scenarios)."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text("allow_capabilities: [SYS_PTRACE]\n")
    cfg.chmod(0o600)
    monkeypatch.setenv("LABHARNESS_CONFIG", str(cfg))
    return cfg


def full(catalog: Catalog, fix: str | None = None) -> LoadedScenario:
    return load_scenario(FULL, root=CATALOG_ROOT, catalog=catalog, fix=fix)


def caps(tmp_path: Path, catalog: Catalog) -> LoadedScenario:
    path = tmp_path / "caps.yaml"
    path.write_text(CAPS)
    return load_scenario(path, root=CATALOG_ROOT, catalog=catalog)


def test_levels() -> None:
    assert (TRUSTED.restricted, TRUSTED.level) == (False, "trusted")
    assert (UNTRUSTED.restricted, UNTRUSTED.level) == (True, "untrusted")
    assert (OVERRIDDEN.restricted, OVERRIDDEN.level) == (False, "untrusted, run with --trust")
    assert Trust.of(untrusted=False, trust=True) == TRUSTED  # --trust alone changes nothing
    assert UNTRUSTED.capabilities() == DEFAULT_CAPABILITIES  # the local config does not apply
    assert "SYS_PTRACE" in OVERRIDDEN.capabilities() and "SYS_PTRACE" in TRUSTED.capabilities()


def test_every_playbook_and_suite_of_an_untrusted_run_is_refused_located(
    test_catalog: Catalog,
) -> None:
    loaded = full(test_catalog, fix="enable-tls13")
    problems = trust.host_code_problems(loaded, UNTRUSTED)
    where = [(p.line, p.col) for p in problems]
    # configure[0] (the run: item at [1] runs inside a node), the fix's playbook, two suites
    assert where == [(51, 16), (74, 20), (66, 5), (67, 13)]
    assert (
        "configure playbook 'playbooks/tls.yml' would run ansible-playbook" in problems[0].message
    )
    assert "verify suite 'checks/web_checks.py' would run pytest on this machine" in (
        problems[2].message
    )
    assert "conftest.py" in problems[2].message
    assert all(p.message.endswith("pass --trust to run it on this machine") for p in problems)
    assert all(p.file.endswith("full.yaml") for p in problems)


def test_trusted_and_overridden_runs_refuse_nothing(test_catalog: Catalog) -> None:
    loaded = full(test_catalog, fix="enable-tls13")
    assert trust.host_code_problems(loaded, TRUSTED) == []
    assert trust.host_code_problems(loaded, OVERRIDDEN) == []
    trust.enforce(loaded, loaded.topology, OVERRIDDEN)  # nothing raised


def test_enforce_raises_every_problem_at_once(test_catalog: Catalog) -> None:
    loaded = full(test_catalog)
    with pytest.raises(ScenarioInvalid) as exc:
        trust.enforce(loaded, loaded.topology, UNTRUSTED)
    assert exc.value.exit_code == 2 and len(exc.value.problems) == 3


def test_an_untrusted_run_gets_only_the_default_capabilities(
    tmp_path: Path, test_catalog: Catalog, local_config: Path
) -> None:
    loaded = caps(tmp_path, test_catalog)  # valid: the engineer's config allows SYS_PTRACE
    assert trust.capability_problems(loaded, loaded.topology, TRUSTED) == []
    assert trust.capability_problems(loaded, loaded.topology, OVERRIDDEN) == []
    (problem,) = trust.capability_problems(loaded, loaded.topology, UNTRUSTED)
    assert (problem.line, problem.col) == (6, 62)  # the cap_add item
    assert problem.message.startswith("node 'a': SYS_PTRACE traces and rewrites other processes")
    assert "an untrusted run (a bundle, or --untrusted) gets only" in problem.message
    assert f"pass --trust to apply {local_config} allow_capabilities" in problem.message


def test_bring_up_refuses_before_touching_the_engine(tmp_path: Path, test_catalog: Catalog) -> None:
    """Defense in depth: whatever skipped validation, no container gets a capability the run's
    trust does not allow. The engine client is never called (None would fail at once)."""
    loaded = caps(tmp_path, test_catalog)
    topo = loaded.topology
    node = replace(topo.nodes[0], cap_add=("SYS_ADMIN",))
    forged = replace(topo, nodes=(node,))
    none: Any = None
    with pytest.raises(UsageError, match="SYS_ADMIN reaches the host"):
        bring_up(none, forged, {}, none, threading.Event(), trust=TRUSTED)
    with pytest.raises(UsageError, match=r"node 'a': SYS_PTRACE .* untrusted run"):
        bring_up(none, topo, {}, none, threading.Event(), trust=UNTRUSTED)


def test_the_verbs_refuse_before_any_engine_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """reproduce, verify-fix (both sides, before the baseline runs) and up refuse an untrusted
    scenario's host code and capabilities before they connect to an engine."""
    from harness.engine import client
    from harness.verbs.reproduce import reproduce, verify_fix
    from harness.verbs.up import up

    def no_engine(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the engine was reached")

    monkeypatch.setattr(client, "connect", no_engine)
    monkeypatch.setenv("LABHARNESS_REPORTS", str(tmp_path / "reports"))
    with pytest.raises(ScenarioInvalid) as exc:
        reproduce(FULL, root=CATALOG_ROOT, untrusted=True)
    assert len(exc.value.problems) == 3
    with pytest.raises(ScenarioInvalid) as exc:
        verify_fix(FULL, root=CATALOG_ROOT, fix="enable-tls13", untrusted=True)
    assert [p.line for p in exc.value.problems] == [51, 66, 67]  # the baseline's, first
    path = tmp_path / "caps.yaml"
    path.write_text(CAPS)
    with pytest.raises(ScenarioInvalid, match="SYS_PTRACE"):
        up(path, root=CATALOG_ROOT, untrusted=True)
    assert not (tmp_path / "reports").exists()
