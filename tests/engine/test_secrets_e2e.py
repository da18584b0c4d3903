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


def _lab(area: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["LABHARNESS_REPORTS"] = str(area / "reports")
    env["LABHARNESS_ESCALATIONS"] = str(area / "escalations")
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd,
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
    assert any(n.endswith("!bundle/run/captures/lan.pcap") for n in names)  # recorded masked
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


def _secrets_in(data: bytes) -> list[str]:
    return [
        what
        for what, secret in SECRETS.items()
        for form in (secret, base64.b64encode(secret.encode()).decode())
        if form.encode() in data
    ]


def _tcpdump_writing(pcap: Path) -> bool:
    for p in Path("/proc").iterdir():
        try:
            argv = (p / "cmdline").read_bytes().split(b"\0") if p.name.isdigit() else []
        except OSError:
            continue
        if argv and argv[0].endswith(b"tcpdump") and str(pcap).encode() in argv:
            return True
    return False


def _killable_scenario(tmp: Path) -> Path:
    """secrets-field with a long last step, so the run can be SIGKILLed after its traffic was
    captured and before collect; a case folder of its own (run with --project ROOT, where its
    fixtures are)."""
    text = (ROOT / SCENARIO).read_text()
    marker = "  symptom:\n"
    assert marker in text
    text = text.replace(
        marker, "    - {id: long, on: client, run: 'sleep 120', timeout: 300s}\n" + marker, 1
    )
    path = tmp / "case" / "scenario.yaml"
    path.parent.mkdir()
    path.write_text(text.replace("scenario: secrets-field", "scenario: secrets-sigkill", 1))
    return path


def test_a_sigkilled_runs_capture_is_masked_by_lab_down_and_bundled_only_then(
    tmp_path: Path, docker_client: Any, cleanup_runs: list[str]
) -> None:
    """SIGKILL leaves the pcap as tcpdump wrote it (collect never ran): `lab escalate` leaves
    it out, saying why; `lab down` masks it in place with the scenario's redactor (SERVICE_AUTH
    is known only from the scenario's env) and records it; the next bundle carries it, with
    no secret in the pcap or anywhere in the bundle."""
    import signal
    import threading
    import time

    from tests.conftest import nothing_left

    scenario = _killable_scenario(tmp_path)
    case = scenario.parent  # escalate finds a relative scenario from where it ran
    env = dict(os.environ)
    env["LABHARNESS_REPORTS"] = str(tmp_path / "reports")
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "reproduce", "scenario.yaml", "--project", str(ROOT)],
        cwd=scenario.parent,  # a relative path: `lab down` runs elsewhere and finds it
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        lines.extend(line.rstrip("\n") for line in proc.stderr)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 600
    while not any("long:" in x for x in lines):
        assert proc.poll() is None and time.monotonic() < deadline, "\n".join(lines)
        time.sleep(0.05)
    run = next(x.split()[1] for x in lines if "run " in x)
    cleanup_runs.append(run)
    folder = next((tmp_path / "reports").glob(f"*/{run}"))
    pcap = folder / "captures" / "lan.pcap"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    deadline = time.monotonic() + 10
    while _tcpdump_writing(pcap) and time.monotonic() < deadline:
        time.sleep(0.05)  # tcpdump ends with its run (PR_SET_PDEATHSIG)
    assert not _tcpdump_writing(pcap)
    raw = pcap.read_bytes()
    # what the kill left: the request went by in the clear (else this test proves nothing)
    assert "SERVICE_AUTH env" in _secrets_in(raw), "the request was not captured"

    # before `lab down`: the unmasked pcap stays out of the bundle, and the bundle says so
    e = _lab(
        tmp_path,
        "escalate",
        run,
        "--ticket",
        "SUP-31338",
        "--tracker",
        "local",
        "--project",
        str(ROOT),
        cwd=case,
    )
    assert e.returncode == 0, e.stdout + e.stderr
    first = _blobs(tmp_path / "escalations")
    assert not any(n.endswith("!bundle/run/captures/lan.pcap") for n in first), list(first)
    manifest = next(d for n, d in first.items() if n.endswith("!bundle/manifest.json"))
    assert b'"path": "bundle/run/captures/lan.pcap"' in manifest
    assert b"never masked" in manifest
    assert any(b"Not in the bundle: bundle/run/captures/lan.pcap" in d for d in first.values())

    d = _lab(tmp_path, "down", run, "--json")
    assert d.returncode == 0, d.stdout + d.stderr
    assert '"captures/lan.pcap"' in d.stdout and '"scenario scenario.yaml"' in d.stdout, d.stdout
    assert nothing_left(docker_client, run)
    masked = pcap.read_bytes()
    assert len(masked) == len(raw)  # masked in place, same length
    assert b"X-Auth-Token: ****" in masked  # the request is still there, its token is not
    assert not _secrets_in(masked), _secrets_in(masked)
    r = subprocess.run(["tshark", "-r", str(pcap), "-q", "-z", "conv,tcp"], capture_output=True)
    assert r.returncode == 0 and b"<->" in r.stdout, r.stderr

    e = _lab(
        tmp_path,
        "escalate",
        run,
        "--ticket",
        "SUP-31339",
        "--tracker",
        "local",
        "--project",
        str(ROOT),
        cwd=case,
    )
    assert e.returncode == 0, e.stdout + e.stderr
    blobs = _blobs(tmp_path / "reports", tmp_path / "escalations")
    blobs |= {"escalate stdout": e.stdout.encode(), "escalate stderr": e.stderr.encode()}
    in_bundle = [n for n in blobs if n.endswith("!bundle/run/captures/lan.pcap")]
    assert in_bundle, "the masked pcap should now be bundled"
    assert all(b"X-Auth-Token: ****" in blobs[n] for n in in_bundle)
    leaks = [f"{w} in {n}" for n, data in blobs.items() for w in _secrets_in(data)]
    assert not leaks, "\n".join(leaks[:20])
