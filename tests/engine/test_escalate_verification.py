"""`lab escalate VERIFY-ID` and `lab replay` of its bundle, end to end through the CLI on the real
engine and the local tracker: the bundle carries the verification and both runs (their links
intact), the ticket comment leads with the verdict on the fix and both rates, the ledger and
`lab escalations` name the verification, and a replay in a clean folder reruns both sides and
prints the original verdict on the fix beside the new one, exiting as `lab verify-fix`.
(The real Redmine side is in test_redmine_escalate.py.)"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.conftest import ROOT, indexed
from tests.engine.test_escalation import _json as as_json
from tests.engine.test_escalation import _lab as lab

pytestmark = [pytest.mark.engine]

QUICK = "scenarios/examples/quick-repro.yaml"


@pytest.fixture(scope="module")
def area(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("escalate-verification")


def verified(area: Path, fix: str) -> dict[str, Any]:
    p = lab(area, "verify-fix", QUICK, "--fix", fix, "--destroy", "always", "--json")
    return dict(as_json(p))


@pytest.fixture(scope="module")
def fixed(area: Path, docker_client: Any) -> dict[str, Any]:
    r = verified(area, "add-page")
    assert r["verdict"] == "FIXED", r["reason"]
    return r


@pytest.fixture(scope="module")
def escalated(area: Path, fixed: dict[str, Any]) -> dict[str, Any]:
    p = lab(area, "escalate", fixed["verification"], "--ticket", "SUP-91001", "--json")
    assert p.returncode == 0, p.stderr
    return dict(as_json(p))


def members(bundle: Path) -> dict[str, bytes]:
    with tarfile.open(bundle, "r:gz") as tar:
        return {m.name: (tar.extractfile(m) or io.BytesIO()).read() for m in tar.getmembers()}


def test_the_bundle_carries_the_verification_and_both_runs(
    area: Path, fixed: dict[str, Any], escalated: dict[str, Any]
) -> None:
    vid, base, cand = fixed["verification"], fixed["baseline"]["run"], fixed["candidate"]["run"]
    r = escalated
    assert (r["run"], r["verdict"]) == (vid, "FIXED")
    assert r["rate"] == "baseline 2/2, candidate 0/2"
    assert r["verification"]["baseline"] == {
        "run": base,
        "verdict": "REPRODUCED",
        "rate": "2/2, 95% CI 34-100%",
    }
    assert r["verification"]["candidate"]["verdict"] == "NOT_REPRODUCED"
    schema = json.loads((ROOT / "schemas/results/escalate.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(r)
    ticket = area / "escalations" / "SUP-91001"
    bundle = ticket / r["bundle"]
    assert r["bundle"].startswith(f"quick-repro-{vid}-")
    assert hashlib.sha256(bundle.read_bytes()).hexdigest() == r["sha256"]
    got = members(bundle)
    manifest = json.loads(got["bundle/manifest.json"])
    for want in (
        f"bundle/runs/{vid}/verification.json",
        f"bundle/runs/{vid}/report.html",
        f"bundle/runs/{vid}/junit.xml",
        f"bundle/runs/{base}/journal.json",
        f"bundle/runs/{base}/REPRODUCE.md",
        f"bundle/runs/{cand}/journal.json",
        f"bundle/runs/{cand}/report.html",
        "bundle/project/scenarios/examples/quick-repro.yaml",
        "bundle/project/labs/nginx/lab.yaml",
    ):
        assert want in got, want
    assert not any(n.startswith("bundle/run/") for n in got)  # a run bundle's folder: not here
    assert any(n.startswith(f"bundle/runs/{vid}/allure-results/") for n in got)
    # the verification's page links to each side's own page, which sits beside it
    page = got[f"bundle/runs/{vid}/report.html"].decode()
    assert f"../{cand}/report.html" in page and f"../{base}/report.html" in page
    v = manifest["verification"]
    assert (v["id"], v["verdict"], v["fix"], v["folder"]) == (
        vid,
        "FIXED",
        "add-page",
        f"runs/{vid}",
    )
    assert (v["baseline"]["run"], v["candidate"]["run"]) == (base, cand)
    assert (manifest["run"]["id"], manifest["run"]["folder"]) == (base, f"runs/{base}")
    assert (manifest["candidate"]["id"], manifest["candidate"]["fix"]) == (cand, "add-page")
    assert all(img["sides"] == ["baseline", "candidate"] for img in manifest["images"])
    listed = {f["path"] for f in manifest["files"]}
    assert listed == set(got) - {"bundle/manifest.json"}


def test_the_ticket_comment_leads_with_the_verdict_on_the_fix(
    area: Path, fixed: dict[str, Any], escalated: dict[str, Any]
) -> None:
    vid, base, cand = fixed["verification"], fixed["baseline"]["run"], fixed["candidate"]["run"]
    ticket = area / "escalations" / "SUP-91001"
    comment = (ticket / "comment-1.md").read_text().splitlines()
    assert comment[0] == (
        f"labharness escalation for SUP-91001: scenario quick-repro, verification {vid} "
        "of fix add-page (fix)"
    )
    assert comment[2].startswith("Verification: FIXED - baseline 2/2, candidate 0/2")
    assert comment[3] == (
        f"Baseline (without the fix): REPRODUCED 2/2 (95% CI 34-100%), run {base}; "
        "checks 1 passed, 0 failed"
    )
    assert comment[4].startswith(
        f"Candidate (with add-page): NOT_REPRODUCED 0/2 (95% CI 0-66%), run {cand}"
    )
    assert not any(line.startswith("Verdict:") for line in comment)
    # beside the bundle: the verification's page and the baseline's manual steps
    side = sorted(escalated["attachments"][1:])
    assert side == sorted([f"{base}-REPRODUCE.md", f"{vid}-report.html"])
    page = (ticket / f"{vid}-report.html").read_text()
    assert "FIXED" in page and "add-page" in page


def test_the_ledger_and_escalations_name_the_verification(
    area: Path, fixed: dict[str, Any], escalated: dict[str, Any]
) -> None:
    vid = fixed["verification"]
    r = as_json(lab(area, "escalations", "--ticket", "SUP-91001", "--json"))
    (entry,) = r["escalations"]
    assert (entry["run"], entry["verdict"], entry["rate"]) == (
        vid,
        "FIXED",
        "baseline 2/2, candidate 0/2",
    )
    assert entry["verification"]["candidate"]["run"] == fixed["candidate"]["run"]
    # what `lab triage` knows it by: the baseline's error/warning signatures, the fix it proved
    assert entry["signatures"] == ["http.status:404"]
    assert entry["fix"] == f"add-page (fix, verified FIXED in {vid})"
    baseline = area / "reports" / "quick-repro" / fixed["baseline"]["run"]
    t = as_json(lab(area, "triage", str(baseline), "--json"))
    ours = [m for m in t["matches"] if m["id"] == "SUP-91001"]
    assert ours and ours[0]["fix"] == entry["fix"] and ours[0]["score"] == 1.0
    text = lab(area, "escalations", "--ticket", "SUP-91001").stdout
    assert f"quick-repro verification {vid}  FIXED (baseline 2/2, candidate 0/2)" in text


def test_the_same_verification_gives_the_same_bytes(
    area: Path, fixed: dict[str, Any], escalated: dict[str, Any]
) -> None:
    p = lab(area, "escalate", fixed["verification"], "--ticket", "SUP-91001", "--json")
    r = as_json(p)
    assert p.returncode == 0, p.stderr
    assert (r["bundle"], r["sha256"]) == (escalated["bundle"], escalated["sha256"])
    assert sorted(r["trackers"][0]["already"]) == sorted(escalated["attachments"])


def test_replay_reruns_both_sides_and_prints_both_verdicts_on_the_fix(
    area: Path, tmp_path: Path, fixed: dict[str, Any], escalated: dict[str, Any]
) -> None:
    clean = tmp_path / "clean"
    clean.mkdir()
    src = area / "escalations" / "SUP-91001" / escalated["bundle"]
    bundle = Path(shutil.copy(src, clean / src.name))
    env = {"LABHARNESS_REPORTS": str(clean / "reports")}
    p = lab(area, "replay", bundle.name, cwd=clean, **env)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert (
        f"original  FIXED  verification {fixed['verification']}  baseline 2/2, candidate 0/2" in out
    )
    assert "replay    FIXED  verification verify-" in out and "same verdict on the fix" in out
    assert "baseline: REPRODUCED (2/2" in out and "candidate add-page: NOT_REPRODUCED (0/2" in out
    p = lab(area, "replay", bundle.name, "--workdir", "again", "--json", cwd=clean, **env)
    r = as_json(p)
    assert (p.returncode, r["verdict"], r["same_verdict"]) == (0, "FIXED", True)
    replays = [e for (kind, _), e in indexed(clean / "reports").items() if kind == "replay"]
    assert [(e.verdict, e.parent) for e in replays] == [("FIXED", fixed["verification"])] * 2
    rows = indexed(area / "reports")  # where the escalation was made
    esc = [e for (kind, _), e in rows.items() if kind == "escalation" and e.ticket == "SUP-91001"]
    assert esc and esc[0].detail["bundle"] == escalated["bundle"]
    assert rows[("verification", fixed["verification"])].verdict == "FIXED"
    assert r["original"]["run"] == fixed["verification"]
    new = r["verification"]
    assert new["verification"] != fixed["verification"] and new["verdict"] == "FIXED"
    folder = Path(new["verification_folder"])
    assert folder.is_relative_to(clean) and (folder / "verification.json").is_file()
    assert (new["baseline"]["verdict"], new["candidate"]["verdict"]) == (
        "REPRODUCED",
        "NOT_REPRODUCED",
    )
    assert all(i["same_inputs"] for i in r["images"])
    schema = json.loads((ROOT / "schemas/results/replay.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(r)


def test_a_regression_escalates_and_replays_as_one(area: Path, tmp_path: Path) -> None:
    """The verdict a verification bundle replays to exits as verify-fix: REGRESSION is 1."""
    r = verified(area, "break-site")
    assert r["verdict"] == "REGRESSION", r["reason"]
    p = lab(area, "escalate", r["verification"], "--ticket", "SUP-91002", "--json")
    e = as_json(p)
    assert (p.returncode, e["verdict"]) == (0, "REGRESSION"), p.stderr
    comment = (area / "escalations" / "SUP-91002" / "comment-1.md").read_text()
    assert "\nVerification: REGRESSION - " in comment
    bundle = area / "escalations" / "SUP-91002" / e["bundle"]
    p = lab(
        area,
        "replay",
        str(bundle),
        "--workdir",
        str(tmp_path / "w"),
        "--json",
        cwd=tmp_path,
        LABHARNESS_REPORTS=str(tmp_path / "reports"),
    )
    again = as_json(p)
    assert (p.returncode, again["verdict"], again["same_verdict"]) == (1, "REGRESSION", True)


def test_a_verification_missing_a_side_or_unknown_is_refused(
    area: Path, tmp_path: Path, fixed: dict[str, Any]
) -> None:
    """Without one side's run folder the bundle would not support its verdict: exit 2, naming
    the side, nothing attached; an unknown verification id is exit 2 too."""
    reports = tmp_path / "reports"
    shutil.copytree(area / "reports", reports)
    shutil.rmtree(reports / "quick-repro" / fixed["candidate"]["run"])
    env = {"LABHARNESS_REPORTS": str(reports), "LABHARNESS_ESCALATIONS": str(tmp_path / "esc")}
    p = lab(area, "escalate", fixed["verification"], "--ticket", "SUP-91003", **env)
    assert p.returncode == 2, p.stderr
    assert f"the candidate run {fixed['candidate']['run']} is not there any more" in p.stderr
    assert "Traceback" not in p.stderr and not (tmp_path / "esc" / "SUP-91003").exists()
    p = lab(area, "escalate", "verify-000000-000000-0000", "--ticket", "SUP-91003", **env)
    assert p.returncode == 2 and "no verification 'verify-000000-000000-0000'" in p.stderr
