"""The scenario format as JSON Schema, so editors complete and check scenario files.

`lab schema` writes it to schemas/scenario.schema.json; scenario files point at it with
`# yaml-language-server: $schema=<relative path>/schemas/scenario.schema.json`.
"""

from __future__ import annotations

import json
from typing import Any

from harness.scenario.schema import Scenario

SCHEMA_ID = "https://labharness.invalid/schemas/scenario.schema.json"
SCHEMA_FILE = "schemas/scenario.schema.json"


# A value that is entirely `${params.x}` or `${matrix.x}` takes the variable's type, so a
# number, boolean or duration field may also hold one (checked when the scenario is loaded).
INTERPOLATION = {"type": "string", "pattern": r"^\s*\$\{[^}]+\}\s*$"}
# A text field with a pattern or a fixed set of words (`loss: 10%`, `fault: stop`) may be
# written with a variable in it (`loss: "${params.loss}"`, `delay: "${params.ms}ms"`): the
# pattern is checked on the interpolated value when the scenario is loaded.
INTERPOLATED_TEXT = {"type": "string", "pattern": r"\$\{[^}]+\}"}
_TYPED = ("integer", "number", "boolean")
_META = ("title", "description", "default")


def _allow_interpolation(node: Any) -> Any:
    if isinstance(node, list):
        return [_allow_interpolation(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _allow_interpolation(v) for k, v in node.items()}
    if out.get("type") == "string" and ("pattern" in out or "enum" in out):
        if out in (INTERPOLATION, INTERPOLATED_TEXT):
            return out
        meta = {k: out.pop(k) for k in _META if k in out}
        return {**meta, "anyOf": [out, INTERPOLATED_TEXT]}
    if out.get("type") in _TYPED:
        meta = {k: out.pop(k) for k in _META if k in out}
        return {**meta, "anyOf": [out, INTERPOLATION]}
    alts = out.get("anyOf")
    if (
        isinstance(alts, list)
        and any(isinstance(a, dict) and a.get("type") in _TYPED for a in alts)
        and INTERPOLATION not in alts
    ):
        out["anyOf"] = [*alts, INTERPOLATION]
    return out


def scenario_json_schema() -> dict[str, Any]:
    schema = _allow_interpolation(Scenario.model_json_schema(mode="validation"))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **{k: v for k, v in schema.items() if k != "title"},
        "title": "labharness scenario",
    }


def scenario_json_schema_text() -> str:
    """The schema as written to disk: stable key order, two-space indent, final newline."""
    return json.dumps(scenario_json_schema(), indent=2, sort_keys=False) + "\n"
