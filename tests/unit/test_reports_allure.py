"""allure-results from journals of real runs: the result files' shape (Allure 2 results
format), labels, steps, attachments, environment.properties, categories.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.reports import write_reports
from harness.reports.allure import CATEGORIES
from tests.unit.reportkit import journal, make_run

STATUSES = {"passed", "failed", "broken", "skipped", "unknown"}


def results(tmp_path: Path, name: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    folder = make_run(tmp_path, name, data)
    write_reports(folder)
    out = folder / "allure-results"
    found = {}
    for f in out.glob("*-result.json"):
        r = json.loads(f.read_text())
        assert f.name == f"{r['uuid']}-result.json"
        found[r["name"]] = r
    return found


def labels(r: dict[str, Any], name: str) -> list[str]:
    return [lab["value"] for lab in r["labels"] if lab["name"] == name]


def check_step_shape(step: dict[str, Any], out: Path) -> None:
    assert step["name"] and step["status"] in STATUSES and step["stage"] == "finished"
    for a in step.get("attachments", []):
        assert set(a) == {"name", "source", "type"} and (out / a["source"]).is_file()
    for p in step.get("parameters", []):
        assert isinstance(p["name"], str) and isinstance(p["value"], str)
    for sub in step.get("steps", []):
        check_step_shape(sub, out)


@pytest.mark.parametrize(
    "name", ["tls-reproduce", "lossy-intermittent", "repro-error", "tls-ansible", "cache-partition"]
)
def test_result_shape(tmp_path: Path, name: str) -> None:
    found = results(tmp_path, name)
    out = next(tmp_path.glob("*/*/allure-results"))
    for r in found.values():
        assert set(r) >= {"uuid", "historyId", "fullName", "name", "status", "labels", "stage"}
        assert r["status"] in STATUSES
        assert isinstance(r["start"], int) and isinstance(r["stop"], int)
        assert r["start"] <= r["stop"]
        check_step_shape(r, out)


def test_tests_labels_and_steps(tmp_path: Path) -> None:
    found = results(tmp_path, "tls-reproduce")
    assert sorted(found) == sorted(
        [
            "setup",
            "configure",
            "attempt-1",
            "attempt-2",
            "attempt-3",
            "client$ curl -fsS http://proxy/health",
            "client$ curl -fsS -k --tlsv1.2 --tls-max 1.2 https://proxy/health",
            "proxy$ nginx -t",
            "collect",
        ]
    )
    a1 = found["attempt-1"]
    assert labels(a1, "epic") == ["tls-protocol-mismatch"]
    assert labels(a1, "feature") == ["nginx", "curl"]
    assert labels(a1, "story") == ["attempt-1"]
    assert labels(a1, "severity") == ["critical"]  # case severity 2
    assert "SUP-48213" in labels(a1, "tag")
    assert labels(found["proxy$ nginx -t"], "story") == ["verify"]
    assert a1["status"] == "passed"
    steps = [s["name"] for s in a1["steps"]]
    assert steps[0].startswith("step-1: proxy: wait for port 443")
    assert steps[1].startswith("request: client$ curl")
    assert steps[2] == "symptom"
    probe = a1["steps"][2]["steps"][0]
    assert probe["name"].startswith("held: step request: exit_code=35")
    assert next(s["name"] for s in probe["steps"]) == "exit code 35 (expected 35)"
    names = {a["name"] for a in a1["attachments"]}
    assert {"topology.svg", "REPRODUCE.md", "capture dmz.pcap", "proxy: container.log"} <= names
    output = a1["steps"][1]["attachments"][0]
    out = next(tmp_path.glob("*/*/allure-results"))
    assert "alert protocol version" in (out / output["source"]).read_text()
    setup = [s["name"] for s in found["setup"]["steps"]]
    assert setup == ["build", "preflight", "up", "capture"]
    collect = found["collect"]["steps"][0]
    assert {s["name"] for s in collect["steps"]} >= {
        "node proxy",
        "node client",
        "capture lab-" + journal("tls-reproduce")["run"] + "-dmz",
    }


def test_error_is_broken_and_infrastructure(tmp_path: Path) -> None:
    found = results(tmp_path, "repro-error")
    a1 = found["attempt-1"]
    assert a1["status"] == "broken"
    assert a1["statusDetails"]["message"].startswith("ERROR: node server is exited")
    assert found["setup"]["status"] == "passed"
    assert "severity" not in {lab["name"] for lab in a1["labels"]}  # the case has none


def test_intermittent_and_candidate_statuses(tmp_path: Path) -> None:
    lossy = results(tmp_path / "a", "lossy-intermittent")
    assert [lossy[f"attempt-{n}"]["status"] for n in range(1, 7)] == [
        "passed",
        "passed",
        "skipped",
        "passed",
        "skipped",
        "skipped",
    ]
    assert labels(lossy["attempt-1"], "severity") == ["normal"]  # case severity 3
    cand = results(tmp_path / "b", "tls-candidate")
    assert {cand[f"attempt-{n}"]["status"] for n in (1, 2, 3)} == {"passed"}
    assert "fix:enable-tls13" in labels(cand["attempt-1"], "tag")
    base = results(tmp_path / "c", "tls-baseline")
    assert base["attempt-1"]["historyId"] != cand["attempt-1"]["historyId"]


def test_environment_and_categories(tmp_path: Path) -> None:
    folder = make_run(tmp_path, "cache-partition")
    write_reports(folder)
    env = (folder / "allure-results" / "environment.properties").read_text().splitlines()
    props = dict(line.split("=", 1) for line in env)
    assert props["engine"] == "20.10.24+dfsg1" and props["harness"] == "0.1.0"
    assert props["image.backend"].startswith("labharness/lab-backend\\:1.0-debian-12-")
    assert {props[f"os.{n}"] for n in ("client", "proxy", "backend", "cache")} == {"debian-12"}
    cats = json.loads((folder / "allure-results" / "categories.json").read_text())
    assert cats == CATEGORIES
    infra = next(c for c in cats if c["name"] == "Infrastructure errors")
    product = next(c for c in cats if c["name"] == "Product failures")
    assert infra["matchedStatuses"] == ["broken"] and product["matchedStatuses"] == ["failed"]


def test_idempotent(tmp_path: Path) -> None:
    folder = make_run(tmp_path, "tls-reproduce")
    write_reports(folder)
    first = sorted(p.name for p in (folder / "allure-results").iterdir())
    write_reports(folder)
    assert sorted(p.name for p in (folder / "allure-results").iterdir()) == first
