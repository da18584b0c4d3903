"""The tracker's copies hold no seeded secret: one real run of the secrets-field scenario
(tests/engine/test_secrets_e2e.py seeds every kind into configs, env, step output, logs and
traffic), `lab escalate --tracker redmine` against the real Redmine the tests start, then the
issue (subject, description, every note) and every attachment fetched back through the Redmine
API (a bundle's members too) are searched for each secret, bare, base64 and URL-encoded.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import ROOT
from tests.engine.redmine_server import Redmine, start
from tests.engine.test_secrets_e2e import SCENARIO, SECRETS

pytestmark = [pytest.mark.engine]

KEY_ENV = "LAB_TEST_REDMINE_KEY"


@pytest.fixture(scope="module")
def rm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redmine]:
    cache = Path(os.environ.get("LABHARNESS_CACHE", Path.home() / ".cache" / "labharness"))
    server = start(tmp_path_factory.mktemp("redmine-secrets"), cache / "redmine-test")
    try:
        yield server
    finally:
        server.stop()


def _lab(area: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {
        **os.environ,
        "LABHARNESS_REPORTS": str(area / "reports"),
        "LABHARNESS_ESCALATIONS": str(area / "escalations"),
        "PYTHONPATH": str(ROOT),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _forms(secret: str) -> set[str]:
    return {
        secret,
        base64.b64encode(secret.encode()).decode(),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
    }


def _unpacked(name: str, data: bytes) -> dict[str, bytes]:
    """An attachment, and when it is a bundle, its decompressed stream and every member."""
    out = {name: data}
    if name.endswith(".tar.gz"):
        out[f"{name} (gunzipped)"] = gzip.decompress(data)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for m in tar.getmembers():
                f = tar.extractfile(m) if m.isfile() else None
                if f is not None:
                    out[f"{name}!{m.name}"] = f.read()
    return out


def test_no_seeded_secret_reaches_the_trackers_copies(
    tmp_path: Path, rm: Redmine, docker_client: Any, cleanup_runs: list[str]
) -> None:
    p = _lab(tmp_path, "reproduce", SCENARIO, "--destroy", "always", "--json")
    run = str(json.loads(p.stdout)["run"])
    cleanup_runs.append(run)
    assert p.returncode == 0, p.stderr
    headers = {"X-Redmine-API-Key": rm.key}
    made = requests.post(
        f"{rm.url}/issues.json",
        json={"issue": {"project_id": "support", "subject": "secrets never reach the tracker"}},
        headers=headers,
        timeout=30,
    )
    assert made.status_code == 201, made.text
    n = int(made.json()["issue"]["id"])
    cfg = tmp_path / "trackers.yaml"
    cfg.write_text(
        "trackers:\n  redmine-lab:\n    kind: redmine\n"
        f"    url: {rm.url}\n    project: support\n    api_key_env: {KEY_ENV}\n"
        "    retries: [0.1, 0.2]\n    timeout: 20\n"
    )
    note = "L2: customer ref CUST-REF-918273, auth Vq7Lm2Xc9Rt4Bn8Kw3Hs6Pz1"  # a careless note
    e = _lab(
        tmp_path,
        "escalate",
        run,
        "--ticket",
        str(n),
        "--tracker",
        "redmine-lab",
        "--trackers",
        str(cfg),
        "--note",
        note,
        "--json",
        **{KEY_ENV: rm.key},
    )
    assert e.returncode == 0, e.stderr
    sent = json.loads(e.stdout)
    red = next(t for t in sent["trackers"] if t["tracker"] == "redmine-lab")
    assert red["attached"] == sent["attachments"] and red["not_attached"] == []

    # everything the tracker holds, fetched back through its API
    got = requests.get(
        f"{rm.url}/issues/{n}.json?include=attachments,journals", headers=headers, timeout=30
    )
    got.raise_for_status()
    issue = got.json()["issue"]
    copies: dict[str, bytes] = {
        "issue json": got.content,
        "subject": str(issue.get("subject") or "").encode(),
        "description": str(issue.get("description") or "").encode(),
    }
    for j, journal in enumerate(issue["journals"]):
        copies[f"note {j}"] = str(journal.get("notes") or "").encode()
    for a in issue["attachments"]:
        r = requests.get(a["content_url"], headers=headers, timeout=60)
        r.raise_for_status()
        copies |= _unpacked(a["filename"], r.content)
    copies |= {"escalate stdout": e.stdout.encode(), "escalate stderr": e.stderr.encode()}

    # the evidence is really there (else finding nothing proves nothing)
    names = [a["filename"] for a in issue["attachments"]]
    assert sorted(names) == sorted(sent["attachments"]), names
    for end in (".tar.gz", "report.html", "REPRODUCE.md"):
        assert any(n.endswith(end) for n in names), (end, names)
    assert any(n.endswith("!bundle/run/captures/lan.pcap") for n in copies)
    assert any(n.endswith("!bundle/run/journal.json") for n in copies)
    assert any(
        n.endswith("!bundle/project/fixtures/harness-tests/secrets-field/app.ini") for n in copies
    )
    notes = [v for k, v in copies.items() if k.startswith("note ")]
    assert any(b"Verdict: REPRODUCED" in v and b"L2: customer ref" in v for v in notes), notes
    pcap = next(v for k, v in copies.items() if k.endswith("!bundle/run/captures/lan.pcap"))
    assert b"X-Auth-Token: ****" in pcap  # the request was captured, its token masked

    leaks = [
        f"{what} ({form}) in {where}"
        for where, data in copies.items()
        for what, secret in SECRETS.items()
        for form in _forms(secret)
        if form.encode() in data
    ]
    assert not leaks, "\n".join(leaks[:20])
    assert rm.key not in e.stdout + e.stderr
