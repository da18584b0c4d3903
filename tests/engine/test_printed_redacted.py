"""Every byte printed is redacted: up, reproduce (a verdict and an ERROR), verify-fix, matrix,
gate and escalate, each with and without --json, against the real engine.

tests/engine/scenarios/up-lifecycle.yaml seeds an env secret (DB_PASSWORD, which the node
prints on its output), a `redact:` pattern (in a configure command and a step's command, which
the live progress shows), a password and a token in a config file and a private key PEM (both
put into the node and printed by it). stdout and stderr of every command, every file of every
run folder and every member of the bundles must hold none of them.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, nothing_left

pytestmark = [pytest.mark.engine]

LIFE = "tests/engine/scenarios/up-lifecycle.yaml"
PEM = (ROOT / "fixtures/harness-tests/secrets/server.key").read_text().splitlines()
SECRETS = {
    "env DB_PASSWORD": "Vt8-Kd2-up-Zq5-Lw3",
    "redact: pattern": "CASE-REF-424242",
    "config password": "Pa55-fixture-PLAIN",
    "config token": "tok-FIXTURE-8c1d2e",
    "PEM body": PEM[1],
    "PEM last line": PEM[-2],
}
GATE = f"""gate: printed
description: one cell of up-lifecycle
suites:
  - scenario: {LIFE}
    only: {{level: debug}}
on_missing_baseline: pass
"""


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


def _files(*roots: Path) -> dict[str, bytes]:
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


def _run_of(p: subprocess.CompletedProcess[str], as_json: bool) -> str:
    if as_json:
        return str(json.loads(p.stdout)["run"])
    return next(ln.split()[1] for ln in p.stderr.splitlines() if ln.startswith("run "))


def test_nothing_printed_or_written_holds_a_seeded_secret(
    tmp_path: Path, docker_client: Any, cleanup_runs: list[str]
) -> None:
    terminal: dict[str, str] = {}

    def lab(name: str, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        p = _lab(tmp_path, *args)
        terminal[f"{name} stdout"], terminal[f"{name} stderr"] = p.stdout, p.stderr
        assert p.returncode in ok, f"{name}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
        if "--json" in args:
            json.loads(p.stdout)  # redacted JSON is still JSON
        return p

    for j in ((), ("--json",)):
        up = lab(f"up{j}", "up", LIFE, *j)
        run = _run_of(up, bool(j))
        cleanup_runs.append(run)
        lab(f"down{j}", "down", run)
        assert nothing_left(docker_client, run)
        lab(f"reproduce{j}", "reproduce", LIFE, "--destroy", "always", *j)
        err = ("-p", "health=false", "-p", "health_timeout=2s")
        bad = lab(
            f"reproduce error{j}", "reproduce", LIFE, *err, "--destroy", "always", *j, ok=(3,)
        )
        cleanup_runs.append(_run_of(bad, False))
        vf = ("verify-fix", LIFE, "--fix", "mark-fixed", "--destroy", "always")
        lab(f"verify-fix{j}", *vf, *j)
    lab("matrix", "matrix", LIFE, "-j", "1", ok=(0, 1))
    lab("matrix --json", "matrix", LIFE, "-j", "1", "--only", "level=info", "--json", ok=(0, 1))
    gate = tmp_path / "gate.yaml"
    gate.write_text(GATE)
    for j in ((), ("--json",)):
        lab(f"gate{j}", "gate", str(gate), "--project", str(ROOT), *j, ok=(0, 1))
    repro = lab("reproduce for escalate", "reproduce", LIFE, "--destroy", "always", "--json")
    run = json.loads(repro.stdout)["run"]
    cleanup_runs.append(run)
    for i, j in enumerate(((), ("--json",))):
        lab(f"escalate{j}", "escalate", run, "--ticket", f"SUP-7100{i}", "--tracker", "local", *j)

    # the paths that carry secrets were really taken
    assert "ticket ***REDACTED***" in terminal["reproduce() stderr"]  # live progress: the step
    assert "last log lines of app" in terminal["reproduce error() stdout"]  # the error row
    assert "start DB_PASSWORD=***REDACTED***" in terminal["reproduce error() stdout"]
    assert (
        "last log lines of app"
        in json.loads(terminal["reproduce error('--json',) stdout"])["reason"]
    )
    assert json.loads(terminal["verify-fix('--json',) stdout"])["verdict"] == "FIXED"
    blobs = _files(tmp_path / "reports", tmp_path / "escalations")
    assert any(n.endswith("container.log") for n in blobs)
    assert any(".tar.gz!" in n for n in blobs)
    blobs |= {k: v.encode() for k, v in terminal.items()}
    leaks = [
        f"{what} ({secret}) in {where}"
        for where, data in blobs.items()
        for what, secret in SECRETS.items()
        for form in (secret, base64.b64encode(secret.encode()).decode())
        if form.encode() in data
    ]
    assert not leaks, "\n".join(leaks[:20])
