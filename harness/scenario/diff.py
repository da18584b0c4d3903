"""What a fix changes: the resolved scenario before and after its overlay, as YAML and as a
unified diff. Pure: it reads the loaded models only."""

from __future__ import annotations

import difflib
from typing import Any

import yaml

from harness.scenario.schema import Scenario

_LEFT_OUT = ("fixes",)  # the overlays themselves: the diff shows what one of them did


def resolved_data(raw: Scenario) -> dict[str, Any]:
    """The scenario as it ran (params interpolated, the fix merged), without its `fixes:`."""
    data: dict[str, Any] = raw.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    for key in _LEFT_OUT:
        data.pop(key, None)
    return data


def resolved_yaml(raw: Scenario) -> str:
    return yaml.safe_dump(resolved_data(raw), sort_keys=False, default_flow_style=False, width=100)


def changed_keys(before: Scenario, after: Scenario) -> list[str]:
    """The top-level keys whose resolved value differs (`topology`, `configure`, ...)."""
    a, b = resolved_data(before), resolved_data(after)
    return [k for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]


def scenario_diff(before: Scenario, after: Scenario, *, names: tuple[str, str]) -> str:
    """A unified diff of the resolved scenarios; empty when the overlay changed nothing."""
    lines = difflib.unified_diff(
        resolved_yaml(before).splitlines(keepends=True),
        resolved_yaml(after).splitlines(keepends=True),
        fromfile=names[0],
        tofile=names[1],
        n=3,
    )
    return "".join(lines)
