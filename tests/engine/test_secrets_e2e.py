"""Secrets as the field finds them, seeded into configs (files:), env, step output, logs and
traffic of a real run, never reach the run folder, the bundle or the terminal.

One run of tests/engine/scenarios/secrets-field.yaml (nginx + curl labs), then `lab escalate`;
every file of the run folder (pcaps and allure-results included), every member of the bundle and
everything `lab` printed are searched for each secret and its base64 form.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.engine]

SCENARIO = "tests/engine/scenarios/secrets-field.yaml"
PLAIN = "field-plain-S3cr3t-v4lue"  # the decoded value of the base64 secret in app.ini
SECRETS = {
    "aws key id": "AKIAZ7Q3XK2LM9PWT4RB",
    "aws secret": "q8Zr3LmN0vXw5TyB2kHs7JdP4gFc1QaE9uRiOp6W",
    "github token": "R8mK2xQ9vL4tZ7wN1cB5yH3jF6pD0sA2eUgX",
    "jwt header": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
    "jwt signature": "Qm9ndXNTaWduYXR1cmVGb3JUZXN0czEyMzQ",
    "base64 secret": base64.b64encode(PLAIN.encode()).decode(),
    "its decoded value": PLAIN,
    "nginx header token": "7f3a9c1e5b2d8f4a6c0e9b1d3f5a7c9e",
    "SERVICE_AUTH env": "Vq7Lm2Xc9Rt4Bn8Kw3Hs6Pz1",
    "redact: pattern": "CUST-REF-918273",
    "PEM key body": "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ",
    "PEM header": "BEGIN OPENSSH PRIVATE KEY",
}


def _lab(area: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["LABHARNESS_REPORTS"] = str(area / "reports")
    env["LABHARNESS_ESCALATIONS"] = str(area / "escalations")
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _blobs(*roots: Path) -> dict[str, bytes]:
    """Every file under roots, and every member of every bundle among them."""
    out: dict[str, bytes] = {}
    for root in roots:
        for f in sorted(root.rglob("*")):
            if not f.is_file():
                continue
            out[str(f)] = f.read_bytes()
            if f.name.endswith(".tar.gz"):
                with tarfile.open(f) as tar:
                    for m in tar.getmembers():
                        data = tar.extractfile(m) if m.isfile() else None
                        if data is not None:
                            out[f"{f.name}!{m.name}"] = data.read()
    return out


def test_no_seeded_secret_reaches_run_folder_bundle_or_terminal(
    tmp_path: Path, docker_client: Any, cleanup_runs: list[str]
) -> None:
    p = _lab(tmp_path, "reproduce", SCENARIO, "--destroy", "always")
    terminal = {"reproduce stdout": p.stdout, "reproduce stderr": p.stderr}
    run = next(line.split()[1] for line in p.stdout.splitlines() if line.strip().startswith("run "))
    cleanup_runs.append(run)
    assert p.returncode == 0 and p.stdout.startswith("REPRODUCED"), p.stdout + p.stderr
    e = _lab(tmp_path, "escalate", run, "--ticket", "SUP-31337", "--tracker", "local")
    assert e.returncode == 0, e.stdout + e.stderr
    terminal |= {"escalate stdout": e.stdout, "escalate stderr": e.stderr}

    blobs = _blobs(tmp_path / "reports", tmp_path / "escalations")
    blobs |= {k: v.encode() for k, v in terminal.items()}
    names = list(blobs)
    # the places the brief names were all searched, and the evidence is really there
    for where in ("journal.json", "report.html", "junit.xml", "inspect.json", "REPRODUCE.md"):
        assert any(n.endswith(where) for n in names), where
    assert any("allure-results" in n for n in names)
    assert any(n.endswith("app.ini") and "artifacts" in n for n in names)  # collected config
    assert any("!bundle/project/fixtures/harness-tests/secrets-field/app.ini" in n for n in names)
    pcaps = [d for n, d in blobs.items() if n.endswith("lan.pcap")]
    assert pcaps and all(b"X-Auth-Token: ****" in d for d in pcaps)  # the request was captured
    for pcap in (tmp_path / "reports").rglob("lan.pcap"):  # masked in place, still a pcap
        r = subprocess.run(["tshark", "-r", str(pcap), "-q", "-z", "conv,tcp"], capture_output=True)
        assert r.returncode == 0 and b"<->" in r.stdout, r.stderr
    journal = next(d for n, d in blobs.items() if n.endswith("journal.json"))
    assert b"region = eu-west-1" in journal and b"***REDACTED***" in journal

    leaks = [
        f"{what} ({secret}) in {where}"
        for where, data in blobs.items()
        for what, secret in SECRETS.items()
        for form in (secret, base64.b64encode(secret.encode()).decode())
        if form.encode() in data
    ]
    assert not leaks, "\n".join(leaks[:20])
