"""`lab verify-fix` writes a verification folder beside its two runs, with verification.json
(fitting its schema) and its own report.html, junit.xml and allure-results/ saying the verdict
on the fix; `lab report <verification id>` writes them again. Through the CLI, on the real
engine, with the SHA-1 certificate case: reissue-sha256 (FIXED) and add-chain (NOT_FIXED)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from junitparser import Failure, JUnitXml

from harness import verification_model as vm
from tests.conftest import run_lab

ROOT = Path(__file__).resolve().parents[2]
CASE = "scenarios/cases/nginx-sha1-certificate.yaml"


@pytest.mark.parametrize(
    ("fix", "verdict", "rc"), [("reissue-sha256", "FIXED", 0), ("add-chain", "NOT_FIXED", 1)]
)
def test_verify_fix_writes_the_verification_and_its_reports(
    docker_client: Any, reports: Path, cleanup_runs: list[str], fix: str, verdict: str, rc: int
) -> None:
    p = run_lab("verify-fix", CASE, "--fix", fix, "--destroy", "always", "--json", reports=reports)
    r = json.loads(p.stdout)
    cleanup_runs += [r["baseline"]["run"], r["candidate"]["run"]]
    assert (p.returncode, r["verdict"]) == (rc, verdict), p.stderr
    folder = Path(r["verification_folder"])
    assert folder.name == r["verification"] and folder.name.startswith(vm.PREFIX)
    # beside the two runs, in <reports>/<scenario>/
    assert folder.parent == reports / "nginx-sha1-certificate"
    assert (folder.parent / r["baseline"]["run"] / "journal.json").is_file()
    assert (folder.parent / r["candidate"]["run"] / "journal.json").is_file()
    assert r["junit"] == str(folder / "junit.xml") and r["report_errors"] == []
    assert not (Path(r["candidate"]["folder"]) / "verify-fix-junit.xml").exists()

    data = json.loads((folder / vm.FILE).read_text())
    schema = json.loads((ROOT / vm.SCHEMA_FILE).read_text())
    jsonschema.Draft202012Validator(schema).validate(data)
    assert data["verdict"] == verdict and data["overlay"]["fix"] == fix
    assert data["baseline"]["run"] == r["baseline"]["run"]
    assert data["candidate"]["folder"] == f"../{r['candidate']['run']}"

    _assert_reports_say(folder, verdict, data)

    # `lab report <id>` writes them again (from the files alone)
    for name in ("report.html", "junit.xml"):
        (folder / name).unlink()
    again = run_lab("report", r["verification"], "--json", reports=reports)
    assert again.returncode == 0, again.stderr
    assert set(json.loads(again.stdout)["reports"]) == {"html", "junit", "allure"}
    _assert_reports_say(folder, verdict, data)


def _assert_reports_say(folder: Path, verdict: str, data: dict[str, Any]) -> None:
    html = (folder / "report.html").read_text()
    assert html.index(f"<h1>{verdict}</h1>") < html.index('id="baseline"')
    assert html.index('id="baseline"') < html.index('id="candidate"') < html.index('class="diff"')
    assert data["baseline"]["interval"]["text"] in html
    assert f'href="../{data["baseline"]["run"]}/report.html"' in html
    assert "ca md too weak" in html  # the probe's evidence, from the baseline's journal
    for side in ("baseline", "candidate"):  # each run's own page points back to the verdict
        run_dir = folder.parent / data[side]["run"]
        assert json.loads((run_dir / "journal.json").read_text())["verification"] == folder.name
        page = (run_dir / "report.html").read_text()
        assert f'href="../{folder.name}/report.html"' in page and f"The {side} side" in page

    root = ET.parse(folder / "junit.xml").getroot()
    assert [s.get("name") for s in root] == ["baseline", "candidate", "verification"]
    case = next(
        iter(
            next(
                s for s in JUnitXml.fromfile(str(folder / "junit.xml")) if s.name == "verification"
            )
        )
    )
    assert case.name == "verdict"
    failed = [x for x in case.result if isinstance(x, Failure)]
    assert bool(failed) == (verdict != "FIXED")

    results = [json.loads(f.read_text()) for f in (folder / "allure-results").glob("*-result.json")]
    assert len(results) == 1
    assert results[0]["status"] == ("passed" if verdict == "FIXED" else "failed")
    assert verdict in results[0]["name"]


@pytest.mark.parametrize(
    ("fix", "changed", "same"),
    [
        ("raise-max-connections", ("-max_connections = 5", "+max_connections = 100"), None),
        ("raise-shared-buffers", ("+shared_buffers = 32768 8kB",), "max_connections = 5"),
    ],
)
def test_the_running_configs_are_compared_side_by_side(
    reports: Path,
    cleanup_runs: list[str],
    fix: str,
    changed: tuple[str, ...],
    same: str | None,
) -> None:
    """What PostgreSQL ran with (pg_settings, dumped by the lab's running_config) on each side:
    the right fix shows max_connections raised; the wrong one changes shared_buffers and leaves
    max_connections where the baseline had it."""
    case = "scenarios/cases/postgres-too-many-clients.yaml"
    p = run_lab("verify-fix", case, "--fix", fix, "--destroy", "always", "--json", reports=reports)
    r = json.loads(p.stdout)
    cleanup_runs += [r["baseline"]["run"], r["candidate"]["run"]]
    folder = Path(r["verification_folder"])
    for side in ("baseline", "candidate"):
        dumps = folder.parent / r[side]["run"] / "artifacts" / "db" / "running-config"
        assert sorted(x.name for x in dumps.iterdir()) == ["after-configure.txt", "at-end.txt"]
    page = (folder / "report.html").read_text()
    at = page.index("Running configuration")
    shown = page[at:]
    for line in changed:
        assert line in shown, shown[:3000]
    if same is not None:
        assert f"-{same}" not in shown and f"+{same}" not in shown
        text = folder.parent / r["candidate"]["run"] / "artifacts/db/running-config/at-end.txt"
        assert same in text.read_text()
