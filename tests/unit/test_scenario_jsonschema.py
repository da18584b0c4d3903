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
        "idempotence",
        "reproduce",
        "verify",
        "fixes",
        "collect",
        "evidence",
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


# -- the schema checked by a real validator (jsonschema), issue 13 point 9 --------------------

MALFORMED = REPO / "tests" / "scenarios" / "malformed"
# What the JSON Schema rejects on its own: shapes, types, patterns, unknown keys, name patterns
# and counts. Everything else in the corpus needs the catalog (labs, oses, versions), the file
# system (fixtures, folders), arithmetic on addresses, cross-references between parts of the
# file (networks, nodes, steps, hosts, cycles) or the matrix expanded: no JSON Schema can say
# those (docs/scenario-format.md, "What the JSON Schema checks").
SCHEMA_REJECTS = {
    "bad-duration",
    "bad-impairment-values",
    "configure-misspelt-playbook-key",
    "confidence-out-of-range",
    "empty-file",
    "files-target-relative",
    "fix-kind-invalid",
    "fix-without-kind",
    "misspelt-top-level-key",
    "node-name-not-dns-safe",
    "node-settings",
    "not-a-mapping",
    "not-a-scenario",
    "probe-bad-tolerance",
    "scenario-name-not-dns-safe",
    "several-problems",
    "severity-out-of-range",
    "too-many-nodes",
    "unknown-node-key",
    "version-number-not-quoted",
    "wrong-type-attempts",
    "wrong-type-subnet",
}
# Refused while reading the YAML (syntax, duplicate keys, limits): there is no data to check.
NOT_YAML_DATA = {
    "alias-bomb",
    "control-character",
    "deep-nesting",
    "duplicate-key",
    "huge-integer",
    "tab-indentation",
    "too-many-aliases",
    "yaml-syntax",
}


def _validator() -> Any:
    import jsonschema

    schema = json.loads((REPO / SCHEMA_FILE).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)  # a well-formed 2020-12 schema
    return jsonschema.Draft202012Validator(schema)


def _data(path: Path) -> Any:
    from harness.scenario.yamlpos import load_yaml

    located, problems = load_yaml(path.read_text(encoding="utf-8"), str(path))
    return None if located is None or problems else (located.data,)


def test_every_repository_scenario_passes_the_published_schema() -> None:
    """scenarios/**, bench/scenarios, tests/**/scenarios: with `${params.x}` in typed and
    patterned fields (`loss: "${params.loss}"`), all accepted by the real validator."""
    validator = _validator()
    files = [f for f in scenario_files() if "malformed" not in f.parts]
    names = {f.relative_to(REPO).as_posix() for f in files}
    assert "scenarios/cases/lossy-link-intermittent.yaml" in names
    assert any(n.startswith("bench/scenarios/") for n in names)
    assert any(n.startswith("tests/engine/scenarios/") for n in names)
    wrong = []
    for f in files:
        data = _data(f)
        assert data is not None, f
        for err in validator.iter_errors(data[0]):
            wrong.append(f"{f.relative_to(REPO)}: {err.json_path}: {err.message[:200]}")
    assert not wrong, "\n".join(wrong)


def test_the_schema_rejects_the_structurally_malformed_scenarios() -> None:
    validator = _validator()
    files = sorted(MALFORMED.glob("*.yaml"))
    rejected, accepted, no_data = set(), set(), set()
    for f in files:
        data = _data(f)
        if data is None:
            no_data.add(f.stem)
        elif any(True for _ in validator.iter_errors(data[0])):
            rejected.add(f.stem)
        else:
            accepted.add(f.stem)
    assert no_data == NOT_YAML_DATA
    assert rejected == SCHEMA_REJECTS, "update SCHEMA_REJECTS and the docs when this changes"
    assert accepted  # the cross-reference checks, which only `lab validate` makes


def test_interpolation_is_accepted_in_a_patterned_field_but_the_pattern_still_applies() -> None:
    validator = _validator()
    base: dict[str, Any] = {
        "scenario": "x",
        "topology": {
            "networks": {"lan": {}},
            "nodes": {"a": {"os": "debian-12", "networks": ["lan"]}},
            "impairments": [{"node": "a", "loss": "10%"}],
        },
    }
    imp = base["topology"]["impairments"][0]
    for good in ("10%", "${params.loss}", "${params.pct}%"):
        imp["loss"] = good
        assert validator.is_valid(base), good
    for bad in ("10 percent", "${params.loss"):
        imp["loss"] = bad
        assert not validator.is_valid(base), bad
