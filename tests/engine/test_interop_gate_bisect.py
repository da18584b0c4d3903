"""The sample product across versions and OS generations: the interop table, the release gate
against the previous release's baseline, and bisecting the customer's defect."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from tests.conftest import ROOT, indexed, nothing_left, run_lab

INTEROP = "scenarios/interop/sample-product-redis.yaml"
CASE = "scenarios/cases/sample-product-separator.yaml"

# product 1.4 settles with LMPOP, which Redis 6.0 (debian-11) does not have; 1.5 (the vendor's
# hotfix .deb, labs/sample-product/packages/) falls back to LRANGE+LTRIM there
EXPECTED = {
    (p, os): ("FAIL" if (p, os) == ("1.4", "debian-11") else "PASS")
    for p in ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5")
    for os in ("debian-11", "debian-12", "debian-13")  # Redis 6.0, 7.0, 8.0
}


def test_interop_matrix_expected_table(docker_client: Any, reports: Path) -> None:
    p = run_lab("matrix", INTEROP, "-j", "2", "--json", reports=reports)
    r = json.loads(p.stdout)
    table = {(c["cell"]["product"], c["cell"]["os"]): c["status"] for c in r["cells"]}
    assert table == EXPECTED
    fail = next(c for c in r["cells"] if c["status"] == "FAIL")
    assert fail["verdict"] == "REPRODUCED"
    assert p.returncode == 1
    folder = Path(r["folder"])
    merged = (folder / "junit.xml").read_text()
    assert merged.count("<testsuite ") >= 15  # every cell's suites, merged
    for c in r["cells"]:
        assert nothing_left(docker_client, c["run"])
    rows = indexed(reports)  # indexed as it finished: the matrix, and each cell's run under it
    m = rows[("matrix", r["matrix"])]
    assert m.verdict == "FAIL" and len(m.detail["cells"]) == len(EXPECTED)
    assert all(rows[("run", c["run"])].parent == r["matrix"] for c in r["cells"])


def test_gate_passes_a_good_release_and_fails_a_bad_one(reports: Path, tmp_path: Path) -> None:
    good = run_lab("gate", "scenarios/gates/release-1.3.yaml", "--json", reports=reports)
    g = json.loads(good.stdout)
    assert (good.returncode, g["verdict"]) == (0, "PASS"), g["reason"]
    assert g["regressions"] == [] and len(g["cells"]) == 3
    # debian-13 joined the suite after release 1.2's baseline was saved: new, not a failure
    assert [x["cell"] for x in g["new"]] == ["sample-product-redis[os=debian-13]"], g["new"]
    bad = run_lab(
        "gate",
        "scenarios/gates/release-1.4.yaml",
        "--json",
        "--save-baseline",
        "--baseline-file",
        str(tmp_path / "release-1.4.json"),
        reports=reports,
    )
    b = json.loads(bad.stdout)
    schema = json.loads((ROOT / "schemas/results/gate.schema.json").read_text())
    for result in (g, b):  # the published schema holds, saved_baseline or not
        jsonschema.Draft202012Validator(schema).validate(result)
    assert "saved_baseline" in b and "saved_baseline" not in g
    assert (bad.returncode, b["verdict"]) == (1, "FAIL")
    assert [x["cell"] for x in b["regressions"]] == ["sample-product-redis[os=debian-11]"]
    assert "regressed: sample-product-redis[os=debian-11]" in b["reason"]
    rows = indexed(reports)
    gates = {e.release: e for (kind, _), e in rows.items() if kind == "gate"}
    assert (gates["1.3"].verdict, gates["1.4"].verdict) == ("PASS", "FAIL")
    assert [x["key"] for x in gates["1.4"].detail["regressions"]] == [
        "sample-product-redis[os=debian-11]"
    ]
    junit = (Path(b["folder"]) / "junit.xml").read_text()
    assert "regression: PASS in the baseline" in junit
    saved = json.loads((tmp_path / "release-1.4.json").read_text())
    assert {c["key"]: c["status"] for c in saved["cells"]} == {
        "sample-product-redis[os=debian-11]": "FAIL",
        "sample-product-redis[os=debian-12]": "PASS",
        "sample-product-redis[os=debian-13]": "PASS",
    }


def test_bisect_finds_the_version_that_brought_the_defect(reports: Path) -> None:
    values = "1.1,1.0,1.2,1.3"  # out of order on purpose: ordered as versions
    p = run_lab(
        "bisect", CASE, "--axis", "product_version", "--values", values, "--json", reports=reports
    )
    assert p.returncode == 1  # 1.3 fixed it: no single transition from 1.0 to 1.3
    p = run_lab(
        "bisect",
        CASE,
        "--axis",
        "product_version",
        "--values",
        "1.0,1.1,1.2",
        "--json",
        reports=reports,
    )
    r = json.loads(p.stdout)
    assert (p.returncode, r["first_bad"], r["last_good"]) == (0, "1.2", "1.1")
    assert len(r["probes"]) <= 2 + 2  # ceil(log2 3) + 2
    assert all(Path(x["folder"]).is_dir() for x in r["probes"])
    p = run_lab(
        "bisect",
        CASE,
        "--axis",
        "product_version",
        "--values",
        "1.2,1.3,1.4",
        "--fixed",
        "--json",
        reports=reports,
    )
    r = json.loads(p.stdout)
    assert (p.returncode, r["first_fixed"], r["last_unfixed"]) == (0, "1.3", "1.2")
    bisects = [e for (kind, _), e in indexed(reports).items() if kind == "bisect"]
    assert sorted(e.verdict for e in bisects) == ["FOUND", "FOUND", "NO_TRANSITION"]
    assert {e.detail.get("first_bad") for e in bisects} >= {"1.2"}
    assert all((reports / str(e.folder) / "bisect.json").is_file() for e in bisects)
