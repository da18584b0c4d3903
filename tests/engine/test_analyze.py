"""`lab analyze` on the run folders of real cases (real nginx, OpenSSL, PostgreSQL, tcpdump and
tshark): the customer's signature is what the lab's own evidence shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import nothing_left, run_json

pytestmark = pytest.mark.engine


def _findings(folder: str, reports: Path) -> dict[str, list[dict[str, Any]]]:
    r = run_json("analyze", folder, reports=reports)
    out: dict[str, list[dict[str, Any]]] = {}
    for s in r["sources"]:
        for f in s["findings"]:
            out.setdefault(f["signature"], []).append(f)
    return out


def _reproduced(case: str, reports: Path, cleanup_runs: list[str]) -> dict[str, Any]:
    run: dict[str, Any] = run_json("reproduce", f"scenarios/cases/{case}.yaml", reports=reports)
    cleanup_runs.append(run["run"])
    assert run["verdict"] == "REPRODUCED", run["reason"]
    return run


def test_tls_case_capture_shows_the_protocol_version_alert(
    docker_client: Any, reports: Path, cleanup_runs: list[str]
) -> None:
    run = _reproduced("tls-protocol-mismatch", reports, cleanup_runs)
    found = _findings(run["folder"], reports)
    (alert,) = found["tls.alert:protocol_version"]
    assert alert["network"] == "dmz" and alert["count"] == run["attempts"]
    assert alert["conversation"].split(" -> ")[0].endswith(":443")  # the proxy sent it
    assert alert["source"].endswith("captures/dmz.pcap") and alert["first_frame"] > 0
    assert found["tls.handshake-failed"][0]["count"] == run["attempts"]
    assert nothing_left(docker_client, run["run"])


def test_postgres_case_log_shows_too_many_clients_on_the_db_node(
    docker_client: Any, reports: Path, cleanup_runs: list[str]
) -> None:
    run = _reproduced("postgres-too-many-clients", reports, cleanup_runs)
    (f,) = _findings(run["folder"], reports)["log:postgres.too-many-clients"]
    assert (f["node"], f["lab"]) == ("db", "postgres")
    assert f["source"].endswith("artifacts/db/container.log") and f["first_line"] > 1
    assert "sorry, too many clients already" in f["sample"] and f["first_time"].endswith("UTC")
    json.dumps(f)  # plain JSON all the way down


def test_every_run_records_its_own_findings_in_the_journal_and_reports(
    docker_client: Any, reports: Path, cleanup_runs: list[str]
) -> None:
    """Issue 16 point 2: the run analyzes itself right after collect; no `lab analyze` call."""
    run = _reproduced("tls-protocol-mismatch", reports, cleanup_runs)
    folder = Path(run["folder"])
    journal = json.loads((folder / "journal.json").read_text())
    names = [p["phase"] for p in journal["phases"]]
    assert names.index("collect") + 1 == names.index("analyze") < names.index("down")
    analyze = journal["phases"][names.index("analyze")]
    assert analyze["result"] == "ok", analyze
    src = {s["path"]: s for s in analyze["sources"]}
    alert = next(
        f
        for f in src["captures/dmz.pcap"]["findings"]
        if f["signature"] == "tls.alert:protocol_version"
    )
    assert (alert["network"], alert["count"], alert["severity"]) == (
        "dmz",
        run["attempts"],
        "error",
    )
    assert alert["source"] == "captures/dmz.pcap" and alert["first_frame"] > 0
    html = (folder / "report.html").read_text()
    section = html[html.index('<h2 id="findings">Findings</h2>') : html.index("<h2>Case</h2>")]
    assert "tls.alert:protocol_version" in section and f"frame {alert['first_frame']}" in section
    junit = (folder / "junit.xml").read_text()
    assert f'name="finding:tls.alert:protocol_version" value="{run["attempts"]}"' in junit
    assert nothing_left(docker_client, run["run"])
