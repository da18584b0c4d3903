"""A verification's bundle, crafted: its `verification` and `candidate` sections are checked like
`run` before a folder exists (every path inside, plain ids, the sides naming the bundled runs),
and after extraction its verification.json must be the one the manifest describes, or nothing
runs and what was extracted goes. The ticket comment leads with the verdict on the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.escalation.comment import ticket_comment
from tests.unit.bundle_craft import RUN_ID, SCENARIO, craft, manifest_for, replay, tree

VID = "verify-261201-101009-abcd"
CAND = "261201-101011-cafe"
FIXED_SCENARIO = SCENARIO + b"fixes:\n  f: {kind: fix, configure: [{run: 'true', on: a}]}\n"


def verification_json(vid: str = VID, base: str = RUN_ID, cand: str = CAND) -> bytes:
    side = {"observed": 0, "attempts": 1, "planned": 1, "rate": "0/1", "verdict": "NOT_REPRODUCED"}
    doc = {
        "kind": "verification",
        "id": vid,
        "scenario": "crafted",
        "verdict": "FIXED",
        "reason": "r",
        "exit_code": 0,
        "overlay": {"fix": "f"},
        "baseline": {**side, "role": "baseline", "run": base, "folder": f"../{base}"},
        "candidate": {**side, "role": "candidate", "run": cand, "folder": f"../{cand}"},
    }
    return json.dumps(doc).encode()


def files(doc: bytes | None = None) -> dict[str, bytes]:
    return {
        "bundle/project/scenarios/s.yaml": FIXED_SCENARIO,
        f"bundle/runs/{RUN_ID}/journal.json": b"{}\n",
        f"bundle/runs/{CAND}/journal.json": b"{}\n",
        f"bundle/runs/{VID}/verification.json": doc or verification_json(),
    }


def verification_manifest(members: dict[str, bytes]) -> dict[str, Any]:
    m = manifest_for(members, folder=f"runs/{RUN_ID}")
    m["candidate"] = {**m["run"], "id": CAND, "fix": "f", "folder": f"runs/{CAND}"}
    side = {"rate": "0/1", "interval": "95% CI 0-79%", "checks": {}}
    m["verification"] = {
        "id": VID,
        "verdict": "FIXED",
        "reason": "baseline 1/1, candidate 0/1, checks green",
        "fix": "f",
        "kind": "fix",
        "folder": f"runs/{VID}",
        "baseline": {**side, "run": RUN_ID, "verdict": "REPRODUCED", "rate": "1/1"},
        "candidate": {**side, "run": CAND, "verdict": "NOT_REPRODUCED"},
    }
    return m


BAD = [
    ("verification.id", lambda m: m["verification"].update(id="../../x")),
    ("verification.id", lambda m: m["verification"].update(id=RUN_ID)),
    ("verification.folder", lambda m: m["verification"].update(folder="/etc")),
    ("verification.folder", lambda m: m["verification"].update(folder="runs/../../x")),
    ("verification.verdict", lambda m: m["verification"].update(verdict=["FIXED"])),
    ("candidate.id", lambda m: m["candidate"].pop("id")),
    ("candidate.id", lambda m: m["candidate"].update(id="../x")),
    ("candidate.fix_file", lambda m: m["candidate"].update(fix_file="/etc/shadow")),
    ("candidate.scenario_file", lambda m: m["candidate"].update(scenario_file="run/x.yaml")),
    ("candidate.folder", lambda m: m["candidate"].update(folder="../elsewhere")),
    ("verification.candidate.run", lambda m: m["verification"]["candidate"].update(run=RUN_ID)),
    ("verification.baseline.run", lambda m: m["verification"]["baseline"].update(run=CAND)),
    ("candidate", lambda m: m.update(candidate=["x"])),
]


@pytest.mark.parametrize(("key", "edit"), BAD, ids=[f"{k}-{i}" for i, (k, _) in enumerate(BAD)])
def test_a_bad_verification_section_is_refused_naming_the_key(
    tmp_path: Path, key: str, edit: Any
) -> None:
    members = files()
    m = verification_manifest(members)
    edit(m)
    bundle = craft(tmp_path / "evil.tar.gz", members, manifest=m)
    p = replay(bundle, tmp_path)  # no --workdir: the default is named after verification.id
    assert p.returncode == 2, p.stderr
    assert f"manifest.json: {key} " in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    assert tree(tmp_path) == ["evil.tar.gz"]


@pytest.mark.parametrize(
    "doc",
    [
        verification_json(vid="verify-261201-101009-ffff"),
        verification_json(cand="261201-101011-ffff"),
        b"not json",
    ],
    ids=["other-id", "other-candidate", "not-json"],
)
def test_a_verification_json_that_disagrees_with_the_manifest_runs_nothing(
    tmp_path: Path, doc: bytes
) -> None:
    members = files(doc)
    bundle = craft(tmp_path / "b.tar.gz", members, manifest=verification_manifest(members))
    p = replay(bundle, tmp_path, "--workdir", "w")
    assert p.returncode == 2, p.stderr
    assert f"runs/{VID}/verification.json" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    assert tree(tmp_path) == ["b.tar.gz"]  # what was extracted is gone


def test_a_verification_without_its_candidate_run_folder_runs_nothing(tmp_path: Path) -> None:
    members = files()
    del members[f"bundle/runs/{CAND}/journal.json"]
    bundle = craft(tmp_path / "b.tar.gz", members, manifest=verification_manifest(members))
    p = replay(bundle, tmp_path, "--workdir", "w")
    assert p.returncode == 2, p.stderr
    assert f"candidate.folder 'runs/{CAND}/journal.json'" in p.stderr, p.stderr
    assert tree(tmp_path) == ["b.tar.gz"]


def test_the_comment_leads_with_the_verdict_on_the_fix_and_both_rates() -> None:
    m = verification_manifest(files())
    m["run"]["title"] = "the page is missing"
    text = ticket_comment(
        m,
        ticket="SUP-1",
        bundle_name="b.tar.gz",
        bundle_sha256="0" * 64,
        attachments=["b.tar.gz"],
        reproduce_md="",
        redact=str,
    ).splitlines()
    assert (
        text[0]
        == f"labharness escalation for SUP-1: scenario crafted, verification {VID} of fix f (fix)"
    )
    assert text[2] == "Verification: FIXED - baseline 1/1, candidate 0/1, checks green"
    assert text[3] == f"Baseline (without the fix): REPRODUCED 1/1 (95% CI 0-79%), run {RUN_ID}"
    assert text[4] == f"Candidate (with f): NOT_REPRODUCED 0/1 (95% CI 0-79%), run {CAND}"
    assert text[5] == "Problem: the page is missing"
    assert not any(line.startswith(("Verdict:", "Fix applied:")) for line in text)
