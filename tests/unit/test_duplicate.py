"""Duplication (`duplicate: 5%`, issue 18 point 5): its validation, located; the capability it
needs; the by-hand line in REPRODUCE.sh; the run passing it to the engine. The packets really
doubled between containers: tests/engine/test_duplicate.py."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.engine import impair
from harness.engine.fake import FakeEngine, ok
from harness.errors import UsageError
from harness.reports import manual_steps
from harness.run.execute import Run, RunOptions
from harness.scenario.catalog import Catalog
from harness.scenario.load import load_scenario
from tests.unit.conftest import CATALOG_ROOT

BASE = """\
scenario: dup
topology:
  networks:
    lan: {}
  nodes:
    a: {os: debian-12, networks: [lan]}
    b: {os: debian-12, networks: [lan]}
  impairments:
    - {node: a, network: lan, IMPAIRMENT}
reproduce:
  steps:
    - {id: s, on: b, run: "true"}
  symptom:
    - {step: s, exit_code: 0}
"""


def _load(tmp_path: Path, catalog: Catalog, text: str) -> Any:
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    return load_scenario(path, root=CATALOG_ROOT, catalog=catalog)


def _error(tmp_path: Path, catalog: Catalog, text: str) -> str:
    with pytest.raises(UsageError) as err:
        _load(tmp_path, catalog, text)
    assert err.value.exit_code == 2
    return str(err.value)


def test_a_duplicate_is_a_percentage_alone_or_with_the_rest(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    loaded = _load(tmp_path, test_catalog, BASE.replace("IMPAIRMENT", "duplicate: 5%"))
    assert loaded.raw.topology.impairments[0].duplicate == "5%"
    both = "duplicate: 1.5%, delay: 50ms, loss: 1%"
    assert _load(tmp_path, test_catalog, BASE.replace("IMPAIRMENT", both))
    text = _error(tmp_path, test_catalog, BASE.replace("IMPAIRMENT", "duplicate: twice"))
    assert "dup.yaml:9:" in text and "duplicate" in text and "percentage like '5%'" in text


def test_a_duplicate_on_a_network_with_ipv6_is_refused(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    text = BASE.replace("lan: {}", 'lan: {subnet6: "fd00:91::/64"}')
    err = _error(tmp_path, test_catalog, text.replace("IMPAIRMENT", "duplicate: 5%"))
    assert "dup.yaml:9:" in err
    assert "duplicate: network 'lan' has IPv6, and duplicate copies IPv4 only" in err


def test_a_fault_step_duplicates_too_and_needs_an_effect(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    text = BASE.replace("    - {node: a, network: lan, IMPAIRMENT}\n", "    []\n").replace(
        "  impairments:\n    []\n", ""
    )
    step = '    - {fault: impair, node: a, duplicate: 20%}\n    - {id: s, on: b, run: "true"}'
    loaded = _load(tmp_path, test_catalog, text.replace('    - {id: s, on: b, run: "true"}', step))
    assert loaded.raw.reproduce.steps[0].duplicate == "20%"
    bare = '    - {fault: impair, node: a}\n    - {id: s, on: b, run: "true"}'
    err = _error(tmp_path, test_catalog, text.replace('    - {id: s, on: b, run: "true"}', bare))
    assert "fault 'impair' needs one of loss, rate, delay, duplicate" in err


def test_a_duplicate_needs_the_tee_target() -> None:
    caps = {c: True for c in impair.CAPABILITIES}
    req = [{"node": "a", "network": "lan", "duplicate": "5%"}]
    assert impair.unsupported(req, caps) == []
    said = impair.unsupported(req, {**caps, "tee": False}, "6.18")
    assert said == [
        "duplicate 5% on a/lan needs the iptables TEE target, which this engine's kernel (6.18)"
        " lacks"
    ]
    assert "try tee iptables" in impair._PROBE_SCRIPT and "tee" in impair.CAPABILITIES


def test_reproduce_sh_copies_what_arrives_as_the_harness_does(tmp_path: Path) -> None:
    lines = manual_steps.link_lines("a", "lan", {"duplicate": "5%", "loss": "1%"})
    assert lines == ["loss a lan 0.010000", "dup_link a lan 0.050000"]
    log = tmp_path / "calls"
    stub = tmp_path / "docker"
    stub.write_text(
        f'#!/bin/sh\necho "$*" >> {log}\n'
        'case "$*" in\n'
        '  *"ip -o -4 addr show"*) echo "2: eth0    inet 10.0.0.2/24 brd 10.0.0.255" ;;\n'
        '  "network inspect"*) echo "P-a 10.0.0.2/24" ;;\n'
        "esac\n"
    )
    stub.chmod(0o755)
    script = f"PREFIX=P\n{manual_steps.helpers(True)}\ndup_link a lan 0.050000\n"
    p = subprocess.run(
        ["sh", "-eu", "-c", script],
        capture_output=True,
        text=True,
        env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
    )
    assert p.returncode == 0, p.stderr
    rule = (
        "exec P-a iptables -w 5 -t mangle -I INPUT 1 -i eth0 -m statistic --mode random"
        " --probability 0.050000 -m comment --comment lh:dup:lan -j TEE --gateway 10.0.0.2"
    )
    assert rule in log.read_text()


def test_the_run_asks_the_engine_for_the_duplicate(
    tmp_path: Path, test_catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABHARNESS_REPORTS", str(tmp_path / "reports"))
    path = tmp_path / "dup.yaml"
    path.write_text(BASE.replace("IMPAIRMENT", "duplicate: 5%"))
    fake = FakeEngine()
    fake.on_exec("b", "true", ok(""))
    loaded = load_scenario(path, root=CATALOG_ROOT, catalog=test_catalog)
    run = Run(loaded, CATALOG_ROOT, test_catalog, RunOptions(), engine=fake)
    run.execute()
    [call] = fake.called("impair")
    assert call[1:3] == ("a", "lan") and call[-1] == "5%"
