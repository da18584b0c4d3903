"""${params.x} / ${matrix.x} substitution on the raw tree."""

from __future__ import annotations

from typing import Any

import pytest

from harness.scenario.interpolate import interpolate
from harness.scenario.yamlpos import load_yaml

VARS: dict[str, dict[str, Any]] = {
    "params": {"port": 443, "name": "proxy", "on": True, "nothing": None, "ratio": 0.5},
    "matrix": {"os": "debian-12"},
}


def run(text: str) -> tuple[Any, list[str]]:
    located, problems = load_yaml(text, "f.yaml")
    assert located is not None and not problems
    data, found = interpolate(located, VARS, "f.yaml")
    return data, [str(p) for p in found]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("'${params.port}'", 443),  # whole string: keeps the type
        ("' ${params.port} '", 443),
        ("${params.on}", True),
        ("'${params.nothing}'", None),
        ("'${params.ratio}'", 0.5),
        ("'port ${params.port}'", "port 443"),  # inside text: as text
        ("'${params.name}:${params.port}'", "proxy:443"),
        ("'flag=${params.on} x=${params.nothing}.'", "flag=true x=."),
        ("'$${params.port}'", "${params.port}"),  # escaped
        ("'$${HOME} and ${matrix.os}'", "${HOME} and debian-12"),
        ("'no dollars'", "no dollars"),
        ("'$HOME {x}'", "$HOME {x}"),
    ],
)
def test_substitution(value: str, expected: Any) -> None:
    data, problems = run(f"v: {value}\n")
    assert problems == []
    assert data["v"] == expected


def test_params_and_matrix_sections_are_left_alone() -> None:
    data, problems = run("params: {a: '${params.port}'}\nmatrix: {x: ['${y.z}']}\nv: [1]\n")
    assert problems == []
    assert data["params"] == {"a": "${params.port}"}
    assert data["matrix"] == {"x": ["${y.z}"]}


def test_nested_values_and_keys() -> None:
    data, problems = run("a:\n  - {k: '${matrix.os}'}\n  - ['${params.port}']\n")
    assert problems == []
    assert data == {"a": [{"k": "debian-12"}, [443]]}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "${params.prot}",
            "f.yaml:2:6: unknown param 'prot' in '${params.prot}'; did you mean 'port'?",
        ),
        ("${parms.port}", "unknown namespace 'parms' in '${parms.port}'; did you mean 'params'?"),
        ("${env.HOME}", "unknown namespace 'env' in '${env.HOME}'; expected params or matrix"),
        ("${matrix.oss}", "unknown matrix axis 'oss' in '${matrix.oss}'; did you mean 'os'?"),
        ("x ${params.port", "unterminated '${'"),
        ("${port}", "cannot read '${port}'; expected ${params.NAME} or ${matrix.NAME}"),
    ],
)
def test_unknown_variables_are_located(value: str, message: str) -> None:
    _, problems = run(f"a: 1\nb:   '{value}'\n")
    assert len(problems) == 1
    assert problems[0].startswith("f.yaml:2:6: ")
    assert message in problems[0]


def test_no_matrix_and_no_params() -> None:
    located, _ = load_yaml("v: '${matrix.os} ${params.x}'\n", "f.yaml")
    assert located is not None
    _, problems = interpolate(located, {"params": {}, "matrix": {}}, "f.yaml")
    assert [p.message for p in problems] == [
        "unknown matrix axis 'os' in '${matrix.os}'; no matrix"
    ]
