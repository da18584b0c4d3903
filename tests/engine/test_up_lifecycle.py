"""`lab up` is reproduce's own run with the replay phases left out and the lab kept: the same
configure, fix overlay, capability preflight, evidence and redaction. Real engine, real CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import nothing_left, run_json, run_lab

pytestmark = [pytest.mark.engine]

SCEN = "tests/engine/scenarios"
LIFE = f"{SCEN}/up-lifecycle.yaml"
DB_PASSWORD = "Vt8-Kd2-up-Zq5-Lw3"  # up-lifecycle's env; the node prints it on its output
FILE_SECRETS = ("Pa55-fixture-PLAIN", "tok-FIXTURE-8c1d2e")  # fixtures/harness-tests/secrets


def _exec(run: str, cmd: str, reports: Path) -> subprocess.CompletedProcess[str]:
    return run_lab("exec", run, "app", "--", "sh", "-c", cmd, reports=reports)


def _phases(folder: Path) -> list[str]:
    journal = json.loads((folder / "journal.json").read_text())
    return [p["phase"] for p in journal["phases"]]


def test_up_applies_configure_and_journals_the_same_phases_as_reproduce(
    docker_client: Any, reports: Path, cleanup_runs: list[str]
) -> None:
    up = run_json("up", LIFE, reports=reports)
    run = up["run"]
    cleanup_runs.append(run)
    assert up["fix"] is None and [n["name"] for n in up["nodes"]] == ["app"]
    # configure ran in the node (its redact: pattern is the node's own business, not masked)
    got = _exec(run, "cat /etc/app/configured", reports)
    assert got.stdout == "configured for CASE-REF-424242\n", got.stderr
    assert _exec(run, "test -f /etc/app/fix-applied", reports).returncode == 1
    folder = Path(up["folder"])
    journal = json.loads((folder / "journal.json").read_text())
    assert (journal["verb"], journal["role"], journal["result"]) == ("up", "up", "up")
    assert _phases(folder) == ["build", "preflight", "up", "configure"]
    assert all(p["result"] == "ok" for p in journal["phases"])
    assert journal["topology"]["nodes"][0]["name"] == "app"  # what the pytest plugin reads
    assert json.loads((folder / "run.json").read_text())["state"] == "up"
    listed = {r["run"]: r for r in run_json("ls", reports=reports)}
    assert listed[run]["state"] == "up"
    # what was written holds neither the env secret nor the redact: pattern
    for f in folder.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert DB_PASSWORD.encode() not in data and b"CASE-REF-424242" not in data, f
    run_json("down", run, reports=reports)
    assert nothing_left(docker_client, run)


def test_up_with_a_fix_brings_up_the_candidate(
    docker_client: Any, reports: Path, tmp_path: Path, cleanup_runs: list[str]
) -> None:
    up = run_json("up", LIFE, "--fix", "mark-fixed", reports=reports)
    run = up["run"]
    cleanup_runs.append(run)
    assert up["fix"] == "mark-fixed"
    assert _exec(run, "cat /etc/app/fix-applied", reports).stdout == "fixed\n"
    journal = json.loads((Path(up["folder"]) / "journal.json").read_text())
    assert journal["fix"] == "mark-fixed"
    configure = next(p for p in journal["phases"] if p["phase"] == "configure")
    assert len(configure["items"]) == 2  # the scenario's item, then the fix's
    run_json("down", run, reports=reports)
    assert nothing_left(docker_client, run)
    # a fix kept outside the scenario, as reproduce and verify-fix take it
    overlay = tmp_path / "from-l3.yaml"
    overlay.write_text(
        "fixes:\n  from-file:\n    kind: workaround\n    configure:\n"
        '      - {run: "echo from-file > /etc/app/fix-applied", on: app}\n'
    )
    up = run_json("up", LIFE, "--fix-file", str(overlay), reports=reports)
    cleanup_runs.append(up["run"])
    assert up["fix"] == "from-file"
    assert _exec(up["run"], "cat /etc/app/fix-applied", reports).stdout == "from-file\n"
    journal = json.loads((Path(up["folder"]) / "journal.json").read_text())
    assert journal["fix_file"] == str(overlay)
    run_json("down", up["run"], reports=reports)
    assert nothing_left(docker_client, up["run"])


def test_up_of_an_unknown_fix_is_a_located_usage_error(reports: Path) -> None:
    proc = run_lab("up", LIFE, "--fix", "mark-fixd", reports=reports)
    assert proc.returncode == 2, proc.stderr
    assert "mark-fixed" in proc.stderr  # the nearest name is suggested
    assert not any(reports.iterdir())


def test_an_impairment_this_engine_cannot_do_is_refused_at_preflight(
    docker_client: Any, reports: Path, cleanup_runs: list[str]
) -> None:
    from harness.engine import impair

    image = docker_client.images.list(name="labharness/env-debian-12")[0].tags[0]
    backend = impair.delay_backend(impair.capabilities(docker_client, image))
    if backend is not None:
        pytest.skip(
            f"this engine delays with {backend}: the missing-capability error cannot show"
            " (test_reproduce's delay test runs the scenario instead)"
        )
    proc = run_lab("up", f"{SCEN}/repro-delay.yaml", reports=reports)
    run = proc.stderr.split()[1]
    cleanup_runs.append(run)
    assert proc.returncode == 3, proc.stderr
    assert "delay 100ms on a/lan needs the netem qdisc" in proc.stderr
    assert "hint: run it on an engine whose kernel has the missing qdisc" in proc.stderr
    assert "qdisc kind is unknown" not in proc.stderr  # never the raw tc error
    folder = next(reports.glob(f"*/{run}"))
    phases = _phases(folder)
    assert phases[:2] == ["build", "preflight"] and "up" not in phases  # nothing was started
    assert json.loads((folder / "run.json").read_text())["state"] == "failed"
    assert nothing_left(docker_client, run)


def test_a_failing_health_check_leaves_its_secrets_nowhere(
    docker_client: Any, reports: Path, cleanup_runs: list[str]
) -> None:
    proc = run_lab("up", LIFE, "-p", "health=false", "-p", "health_timeout=2s", reports=reports)
    run = proc.stderr.split()[1]
    cleanup_runs.append(run)
    assert proc.returncode == 3, proc.stderr
    assert "node app not ready after 2s" in proc.stderr
    assert "last log lines of app" in proc.stderr and "start DB_PASSWORD=***" in proc.stderr
    assert nothing_left(docker_client, run)
    folder = next(reports.glob(f"*/{run}"))
    # the evidence was saved before teardown, through the redactor
    log = (folder / "artifacts" / "app" / "container.log").read_text()
    assert "start DB_PASSWORD=***REDACTED***" in log
    assert (folder / "artifacts" / "app" / "inspect.json").is_file()
    assert json.loads((folder / "run.json").read_text())["state"] == "failed"
    assert _phases(folder) == ["build", "preflight", "up", "collect", "down"]
    places = {"stdout": proc.stdout.encode(), "stderr": proc.stderr.encode()}
    places |= {str(f): f.read_bytes() for f in folder.rglob("*") if f.is_file()}
    for name in ("journal.json", "run.json", "container.log", "inspect.json"):
        assert any(p.endswith(name) for p in places), name
    leaks = [
        f"{secret} in {where}"
        for where, data in places.items()
        for secret in (DB_PASSWORD, *FILE_SECRETS, "CASE-REF-424242")
        if secret.encode() in data
    ]
    assert not leaks, leaks


def test_keep_leaves_a_failed_lab_up_for_a_look(
    docker_client: Any, reports: Path, cleanup_runs: list[str]
) -> None:
    proc = run_lab(
        "up", LIFE, "--keep", "-p", "health=false", "-p", "health_timeout=1s", reports=reports
    )
    run = proc.stderr.split()[1]
    cleanup_runs.append(run)
    assert proc.returncode == 3, proc.stderr
    assert "tearing down" not in proc.stderr
    folder = next(reports.glob(f"*/{run}"))
    assert json.loads((folder / "run.json").read_text())["state"] == "up"  # gc leaves it
    journal = json.loads((folder / "journal.json").read_text())
    assert (journal["result"], journal["kept"]) == ("failed", True)
    assert _exec(run, "true", reports).returncode == 0
    run_json("down", run, reports=reports)
    assert nothing_left(docker_client, run)
