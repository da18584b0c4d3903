"""The text of an imported scenario: its YAML, under comments that tell the engineer what to edit.

An import writes the minimum `lab validate` accepts and `lab up` brings up; the comments say so,
name the secret params (placeholders, never the customer's values) and list what was not
carried over, so the file itself carries the import's report.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from harness.scenario.from_compose import Imported


def _wrapped(text: str, width: int = 96) -> list[str]:
    lines: list[str] = []
    line = "#"
    for word in text.split():
        if len(line) + 1 + len(word) > width and line != "#":
            lines.append(line)
            line = "#  "
        line += f" {word}"
    lines.append(line)
    return lines


def header(imported: Imported, source: str, schema: str, missing: list[str]) -> list[str]:
    """The comment lines above the YAML."""
    out = [f"# yaml-language-server: $schema={schema}"]
    out += _wrapped(
        f"Written by `lab import compose {source}`: the minimum that `lab validate` accepts "
        "and `lab up` brings up. Edit it: add `reproduce:` (the steps and the symptom) to "
        "make it a case, and `configure:` for what compose did at start."
    )
    if imported.secrets:
        names = ", ".join(imported.secrets)
        out += _wrapped(
            f"Secret params ({names}) hold a placeholder, never the customer's value; give "
            "the real one with --param NAME=VALUE when it matters."
        )
    for image in missing:
        out += _wrapped(f"Image {image} is not on this engine: `docker load` it before `lab up`.")
    if imported.not_carried:
        out.append("# Not carried over:")
    for item in imported.not_carried:
        where = f"{item.service} " if item.service else ""
        out += _wrapped(f"- {where}{item.key}: {item.why}")
    return out


def scenario_yaml(imported: Imported, source: str, schema: str, missing: list[str]) -> str:
    """The whole file: header comments, then the scenario (defaults left out)."""
    data = imported.scenario.model_dump(mode="json", exclude_defaults=True)
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return "\n".join(header(imported, source, schema, missing)) + "\n" + body


def schema_ref(scenario_file: Path, root: Path) -> str:
    """The `$schema` path, relative to where the scenario is written (inside the project)."""
    target = (root / "schemas" / "scenario.schema.json").resolve()
    try:
        scenario_file.resolve().relative_to(root.resolve())
    except ValueError:
        return str(target)  # written outside the project: a relative path would not read well
    return os.path.relpath(target, scenario_file.resolve().parent)
