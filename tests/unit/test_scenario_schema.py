"""Value formats of the raw schema, and did-you-mean."""

from __future__ import annotations

import pytest

from harness.scenario.schema import Node, parse_duration
from harness.scenario.suggest import did_you_mean, nearest, unknown


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        (90, 90.0),
        (0.25, 0.25),
        ("45", 45.0),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["30 seconds", "-1s", "0", 0, True, None, "1d", [1]])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(value)


def test_numbers_where_text_is_meant() -> None:
    node = Node.model_validate({"lab": "db", "version": 15, "networks": ["a"]})
    assert node.version == "15"


def test_health_absent_is_not_health_none() -> None:
    assert "health" not in Node.model_validate({"os": "x"}).model_fields_set
    assert "health" in Node.model_validate({"os": "x", "health": None}).model_fields_set


def test_suggestions() -> None:
    assert nearest("ngnix", ["nginx", "curl"]) == "nginx"
    assert nearest("DEBIAN-12", ["debian-12"]) == "debian-12"
    assert nearest("zzz", ["nginx"]) is None
    assert did_you_mean("topolgy", ["topology", "title"]) == "did you mean 'topology'?"
    assert unknown("lab", "zzz", ["b", "a"]) == "unknown lab 'zzz'; expected one of: a, b"
    assert unknown("lab", "zzz", []) == "unknown lab 'zzz'; none are defined"
    assert unknown("version", "2", ["1"], of=" of lab 'x'").startswith(
        "unknown version '2' of lab 'x'"
    )
