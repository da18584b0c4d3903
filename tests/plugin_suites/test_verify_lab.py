"""Listed in tests/engine/scenarios/suite-verify.yaml's `verify` with -k "not deselected"; run by
the harness against the run's own topology (never by the main run: norecursedirs)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.pytest_plugin import Lab, Node


@pytest.mark.lab_node("client")
def test_client_reaches_the_proxy(host: Any) -> None:
    assert host.check_output("curl -fsS http://proxy/health") == "ok"


@pytest.mark.lab_lab("nginx")
def test_nginx_nodes_by_lab(node: Node) -> None:
    assert (node.name, node.lab, node.version, node.os) == ("proxy", "nginx", "1.22", "debian-12")


def test_skipped_on_purpose(lab: Lab) -> None:
    pytest.skip("reported as skipped, which is not a failure")


def test_deselected() -> None:
    raise AssertionError("never selected: the scenario asks for -k 'not deselected'")
