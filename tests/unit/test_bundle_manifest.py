"""Crafted manifests: every path a bundle's manifest names must stay inside the extraction folder,
and `run.id` must be a plain run id. Each bundle here has valid checksums (the manifest is the
author's own word), is replayed through the CLI in a clean folder, and must be refused with exit
2, naming the manifest key, before a folder exists: nothing is written anywhere, nothing read
from outside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.bundle_craft import BASIC, SCENARIO, craft, manifest_for, replay, tree

OUTSIDE = [
    ("run.id", {"id": "x/../../../somewhere"}, "expected a plain run id"),
    ("run.id", {"id": "../../escaped"}, "expected a plain run id"),
    ("run.id", {"id": "/tmp/labharness-h2-abs"}, "expected a plain run id"),
    ("run.id", {"id": "261201-101010-beef/.."}, "expected a plain run id"),
    ("run.fix_file", {"fix": "f", "fix_file": "/etc/shadow"}, "an absolute path"),
    ("run.fix_file", {"fix": "f", "fix_file": "project/../../../../etc/shadow"}, "'..'"),
    ("run.fix_file", {"fix": "f", "fix_file": "run/journal.json"}, "outside the bundle's project/"),
    ("run.scenario_file", {"scenario_file": "/etc/passwd"}, "an absolute path"),
    ("run.scenario_file", {"scenario_file": "project/../../outside.yaml"}, "'..'"),
    ("run.folder", {"folder": "../elsewhere"}, "'..'"),
]


@pytest.mark.parametrize(
    ("key", "run", "reason"), OUTSIDE, ids=[f"{k}={next(iter(r.values()))}" for k, r, _ in OUTSIDE]
)
def test_a_manifest_path_leading_out_is_refused_naming_the_key(
    tmp_path: Path, key: str, run: dict[str, Any], reason: str
) -> None:
    clean = tmp_path / "a" / "b" / "clean"  # room for ../../.. to land inside tmp_path
    clean.mkdir(parents=True)
    bundle = craft(clean / "evil.tar.gz", **run)
    p = replay(bundle, clean)  # no --workdir: the default folder is named after run.id
    assert p.returncode == 2, p.stderr
    assert f"manifest.json: {key} " in p.stderr and reason in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and "internal error" not in p.stderr
    assert tree(tmp_path) == ["a", "a/b", "a/b/clean", "a/b/clean/evil.tar.gz"]
    assert not Path("/tmp/labharness-h2-abs").exists()


def _with(files: dict[str, bytes], edit: Any) -> dict[str, Any]:
    m = manifest_for(files)
    edit(m)
    return m


OTHER_KEYS = [
    ("files[0].path", lambda m: m["files"][0].update(path="bundle/../../x")),
    ("files[0].path", lambda m: m["files"][0].update(path="/etc/cron.d/x")),
    ("files[0].size", lambda m: m["files"][0].pop("size")),
    ("files[0].sha256", lambda m: m["files"][0].update(sha256="../x")),
    ("redaction.files[0].path", lambda m: m["redaction"]["files"].append({"path": "/etc/x"})),
    ("images[0].context", lambda m: m["images"].append({"context": "../../labs/x"})),
    ("run.replay_params", lambda m: m["run"].update(replay_params="x")),
    ("run.matrix_cell.os", lambda m: m["run"].update(matrix_cell={"os": {"a": 1}})),
    ("run.fix", lambda m: m["run"].update(fix=["a"])),
    (
        "images[0].env.files[0].path",
        lambda m: m["images"].append({"env": {"files": [{"path": "/etc/shadow"}]}}),
    ),
]


@pytest.mark.parametrize(("key", "edit"), OTHER_KEYS, ids=[k for k, _ in OTHER_KEYS])
def test_every_other_path_the_manifest_names_is_checked(
    tmp_path: Path, key: str, edit: Any
) -> None:
    bundle = craft(tmp_path / "evil.tar.gz", manifest=_with(BASIC, edit))
    p = replay(bundle, tmp_path, "--workdir", "w")
    assert p.returncode == 2, p.stderr
    assert f"manifest.json: {key} " in p.stderr, p.stderr
    assert tree(tmp_path) == ["evil.tar.gz"]


def test_a_missing_scenario_file_is_named(tmp_path: Path) -> None:
    bundle = craft(tmp_path / "b.tar.gz", scenario_file="project/scenarios/none.yaml")
    p = replay(bundle, tmp_path, "--workdir", "w")
    assert p.returncode == 2, p.stderr
    assert "run.scenario_file 'project/scenarios/none.yaml': not a file in the bundle" in p.stderr
    assert tree(tmp_path) == ["b.tar.gz"]  # extracted, then removed


@pytest.mark.parametrize("source", ["/etc/shadow", "../../../../etc/shadow"])
def test_a_bundled_scenario_whose_fixture_leaves_the_project_is_refused(
    tmp_path: Path, source: str
) -> None:
    """Fixtures are named by the scenario, not the manifest: the loader holds them to the
    extracted project (root = workdir/project)."""
    text = SCENARIO.replace(
        b"networks: [lan]}", b'networks: [lan], files: {/x: "' + source.encode() + b'"}}'
    )
    files = {**BASIC, "bundle/project/scenarios/s.yaml": text}
    bundle = craft(tmp_path / "b.tar.gz", files)
    p = replay(bundle, tmp_path, "--workdir", "w")
    assert p.returncode == 2, p.stderr
    assert "scenarios/s.yaml:" in p.stderr and "outside the project" in p.stderr, p.stderr
    assert "shadow" in p.stderr and "root:" not in p.stderr
    assert tree(tmp_path) == ["b.tar.gz"]


def test_a_plain_bundle_passes_the_checks(tmp_path: Path) -> None:
    """The control: the same crafted bundle without a hostile value gets past every check and
    reaches the engine (none here: exit 3), then removes what it extracted."""
    bundle = craft(tmp_path / "b.tar.gz")
    p = replay(bundle, tmp_path, "--workdir", "w")
    assert p.returncode == 3 and "no Docker engine" in p.stderr, p.stderr
    assert tree(tmp_path) == ["b.tar.gz"]
