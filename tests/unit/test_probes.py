"""Symptom probes on plain step results: typed tolerances, regexes, durations, any/all."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from harness.run import probes
from harness.scenario.schema import Probe

ADAPTER: TypeAdapter[Any] = TypeAdapter(Probe)

RESULTS = {
    "tls": {
        "exit_code": 35,
        "stdout": "",
        "stderr": "curl: (35) alert protocol version",
        "duration_s": 0.2,
    },
    "page": {"exit_code": 0, "status": 503, "stdout": "busy", "stderr": "", "duration_s": 2.5},
    "gone": {"error": "node client is exited: the step cannot run there"},
}
OBS: probes.Observations = {
    ("log", "db", ""): "LOG: ready\nFATAL:  sorry, too many clients already\n",
    ("file", "proxy", "/etc/x.conf"): "ssl_protocols TLSv1.2;",
    ("file", "proxy", "/missing"): None,
}


def held(raw: dict[str, Any]) -> bool:
    return probes.evaluate(ADAPTER.validate_python(raw), RESULTS, OBS).held


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"step": "tls", "exit_code": 35}, True),
        ({"step": "tls", "exit_code": 0}, False),
        ({"step": "tls", "exit_code": [35, 56]}, True),
        ({"step": "tls", "exit_code": {"not": 0}}, True),
        ({"step": "page", "exit_code": {"not": 0}}, False),
        ({"step": "tls", "stderr": "alert protocol"}, True),
        ({"step": "tls", "output": "protocol version"}, True),
        ({"step": "tls", "exit_code": 35, "stderr": "handshake failure"}, False),  # all must hold
        ({"step": "page", "status": 503}, True),
        ({"step": "page", "status": {"not": 200}}, True),
        ({"step": "page", "status": [200, 204]}, False),
        ({"step": "page", "duration_gt": "2s"}, True),
        ({"step": "page", "duration_lt": "1s"}, False),
        (
            {"step": "gone", "exit_code": {"not": 0}},
            False,
        ),  # a step that could not run shows nothing
        ({"step": "missing", "exit_code": 1}, False),
        ({"on": "db", "log": "too many clients"}, True),
        ({"on": "db", "log": "deadlock"}, False),
        ({"on": "proxy", "file": "/etc/x.conf", "matches": "TLSv1\\.2"}, True),
        ({"on": "proxy", "file": "/etc/x.conf"}, True),
        ({"on": "proxy", "file": "/missing"}, False),
        ({"any": [{"step": "tls", "exit_code": 0}, {"step": "page", "status": 503}]}, True),
        ({"all": [{"step": "tls", "exit_code": 35}, {"step": "page", "status": 200}]}, False),
    ],
)
def test_probe(raw: dict[str, Any], expected: bool) -> None:
    assert held(raw) is expected


def test_symptom_is_all_of_its_probes_and_never_empty() -> None:
    p1 = ADAPTER.validate_python({"step": "tls", "exit_code": 35})
    p2 = ADAPTER.validate_python({"step": "page", "status": 200})
    assert probes.symptom([p1], RESULTS, OBS).held
    assert not probes.symptom([p1, p2], RESULTS, OBS).held
    assert not probes.symptom([], RESULTS, OBS).held


def test_evidence_says_what_was_seen() -> None:
    r = probes.evaluate(ADAPTER.validate_python({"step": "tls", "exit_code": 0}), RESULTS, OBS)
    assert r.evidence == ["exit code 35 (expected 0)"]


def test_observations_needed_walks_any_and_all() -> None:
    p = ADAPTER.validate_python(
        {"any": [{"on": "db", "log": "x"}, {"all": [{"on": "proxy", "file": "/etc/x.conf"}]}]}
    )
    assert probes.observations_needed([p]) == [("log", "db", ""), ("file", "proxy", "/etc/x.conf")]
