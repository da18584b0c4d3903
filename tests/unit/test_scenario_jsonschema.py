"""The published JSON Schema, and the editor modeline on every scenario file in the repository."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from harness.scenario.catalog import load_catalog
from harness.scenario.jsonschema import SCHEMA_FILE, scenario_json_schema, scenario_json_schema_text
from harness.scenario.load import validate_file

REPO = Path(__file__).resolve().parents[2]
TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}
SKIP_DIRS = {".venv", ".git", "reports", ".nox", "node_modules", "build"}


def walk(node: Any, path: str = "#") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        out.append((path, node))
        for k, v in node.items():
            out += walk(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += walk(v, f"{path}/{i}")
    return out


def test_schema_is_valid_json_schema_shape() -> None:
    schema = scenario_json_schema()
    assert json.loads(json.dumps(schema)) == schema
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    defs = schema["$defs"]
    for where, node in walk(schema):
        ref = node.get("$ref")
        if isinstance(ref, str):
            assert ref.startswith("#/$defs/"), where
            assert ref.removeprefix("#/$defs/") in defs, f"{where}: dangling {ref}"
        t = node.get("type")
        if t is not None and not where.endswith("/properties"):
            types = t if isinstance(t, list) else [t]
            assert set(types) <= TYPES, f"{where}: type {t}"
        for key in ("anyOf", "oneOf", "allOf"):
            if key in node:
                assert isinstance(node[key], list) and node[key], where
        if "required" in node:
            assert set(node["required"]) <= set(node.get("properties", {})), where


def test_schema_has_the_top_level_keys() -> None:
    schema = scenario_json_schema()
    assert list(schema["properties"]) == [
        "scenario",
        "title",
        "description",
        "case",
        "params",
        "matrix",
        "topology",
        "configure",
        "reproduce",
        "verify",
        "fixes",
        "collect",
        "redact",
    ]
    assert set(schema["required"]) == {"scenario", "topology"}
    node = schema["$defs"]["Node"]["properties"]
    assert {"lab", "version", "os", "image", "networks", "files", "env", "command"} <= set(node)


def test_typed_fields_accept_interpolation() -> None:
    attempts = scenario_json_schema()["$defs"]["Reproduce"]["properties"]["attempts"]
    assert {"type": "string", "pattern": r"^\s*\$\{[^}]+\}\s*$"} in attempts["anyOf"]


def test_committed_schema_is_current() -> None:
    committed = (REPO / SCHEMA_FILE).read_text(encoding="utf-8")
    assert committed == scenario_json_schema_text(), "run `lab schema` and commit the result"


def scenario_files() -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(REPO):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        parts = Path(dirpath).relative_to(REPO).parts
        if "scenarios" not in parts or "gates" in parts:  # gate files are not scenarios
            continue
        found += [Path(dirpath) / f for f in filenames if f.endswith((".yaml", ".yml"))]
    return sorted(found)


def test_every_scenario_file_points_at_the_schema() -> None:
    files = scenario_files()
    assert len(files) >= 30
    wrong = []
    for f in files:
        first = f.read_text(encoding="utf-8").splitlines()[0]
        rel = os.path.relpath(REPO / SCHEMA_FILE, f.parent)
        if first != f"# yaml-language-server: $schema={rel}":
            wrong.append(f"{f.relative_to(REPO)}: {first!r} (want $schema={rel})")
    assert not wrong, "\n".join(wrong)


def test_repository_scenarios_are_valid() -> None:
    """Example, engine-test and bench scenarios validate against the real labs."""
    catalog = load_catalog(REPO)
    files = [
        f
        for f in scenario_files()
        if "malformed" not in f.parts and "unit" not in f.relative_to(REPO).parts
    ]
    problems = [str(p) for f in files for p in validate_file(f, root=REPO, catalog=catalog)]
    assert problems == []
