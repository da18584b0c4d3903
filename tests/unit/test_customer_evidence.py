"""The customer's evidence (`evidence:`): compared signature by signature with what the lab
showed (pure), validated as project files, and bad evidence (random bytes as a pcap, a binary
log) refused by `lab reproduce` with exit 2 before a run folder or a container exists."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.journal_model import AnalyzedSource
from harness.run.customer_evidence import compare
from tests.conftest import ROOT

NOWHERE = "unix:///nonexistent/labharness-test-docker.sock"


def source(*found: tuple[str, str]) -> AnalyzedSource:
    findings = [
        {"signature": sig, "kind": "log", "severity": sev, "title": sig, "count": 1, "source": "f"}
        for sig, sev in found
    ]
    return AnalyzedSource.model_validate({"path": "f", "kind": "log", "findings": findings})


def test_compare_takes_the_customers_errors_and_warnings() -> None:
    theirs = source(
        ("tls.alert:protocol_version", "error"),
        ("tcp.reset", "warning"),
        ("http.status:200", "info"),
    )
    ours = source(("tls.alert:protocol_version", "error"), ("http.status:200", "info"))
    m = compare([theirs], [ours])
    assert (m.signatures, m.shown, m.missing) == (
        ["tcp.reset", "tls.alert:protocol_version"],
        ["tls.alert:protocol_version"],
        ["tcp.reset"],
    )
    assert m.text == "the lab showed 1 of the customer's 2 signatures"


@pytest.mark.parametrize(
    ("scenario", "said"),
    [
        ("bad-capture.yaml", "evidence tests/unit/evidence/not-a-capture.pcap"),
        ("bad-log.yaml", "tests/unit/evidence/binary.log"),
    ],
)
def test_bad_evidence_is_exit_2_before_anything_exists(
    tmp_path: Path, scenario: str, said: str
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DOCKER_HOST": NOWHERE}
    env["LABHARNESS_REPORTS"] = str(tmp_path / "reports")
    p = subprocess.run(
        [sys.executable, "-m", "harness", "reproduce", f"tests/unit/evidence/{scenario}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2, p.stderr
    assert said in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert not (tmp_path / "reports").exists()  # no run folder: nothing half-written


def test_a_missing_evidence_file_is_a_located_validate_error(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    text = (ROOT / "tests/unit/evidence/bad-capture.yaml").read_text()
    f.write_text(text.replace("not-a-capture.pcap", "no-such.pcap"))
    p = subprocess.run(
        [sys.executable, "-m", "harness", "validate", str(f), "--project", str(ROOT)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2 and "s.yaml:14:" in p.stdout + p.stderr
    assert "evidence file not found: 'tests/unit/evidence/no-such.pcap'" in p.stdout + p.stderr
