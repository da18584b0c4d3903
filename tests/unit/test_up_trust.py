"""`lab up` of an untrusted scenario is refused its configure playbooks as `reproduce` is (the
same Run, trust.enforce), before an engine is reached; it runs no verify suites, so they are
not refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.scenario.problems import ScenarioInvalid
from tests.unit.conftest import CATALOG_ROOT

FULL = CATALOG_ROOT / "scenarios" / "full.yaml"


@pytest.fixture()
def no_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from harness.engine import client

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the engine was reached")

    monkeypatch.setattr(client, "connect", refuse)
    reports = tmp_path / "reports"
    monkeypatch.setenv("LABHARNESS_REPORTS", str(reports))
    return reports


def test_up_refuses_an_untrusted_scenarios_playbooks_located(no_engine: Path) -> None:
    from harness.verbs.up import up

    with pytest.raises(ScenarioInvalid) as exc:
        up(FULL, root=CATALOG_ROOT, untrusted=True)
    problems = exc.value.problems
    assert [(p.line, "configure playbook 'playbooks/tls.yml'" in p.message) for p in problems] == [
        (51, True)
    ]
    assert "pass --trust" in problems[0].message
    # the fix's own playbook too, located in the fix
    with pytest.raises(ScenarioInvalid) as exc:
        up(FULL, root=CATALOG_ROOT, fix="enable-tls13", untrusted=True)
    assert [p.line for p in exc.value.problems] == [51, 74]
    assert not no_engine.exists()  # refused before a run folder was made


def test_up_with_trust_goes_on_to_the_engine(no_engine: Path) -> None:
    from harness.verbs.up import up

    with pytest.raises(AssertionError, match="the engine was reached"):
        up(FULL, root=CATALOG_ROOT, untrusted=True, trust=True)
