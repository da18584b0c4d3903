"""`lab escalate`, `lab replay`, `lab escalations` end to end: real runs, the CLI, the local
tracker; the replay in a clean folder holding nothing but the bundle."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.conftest import ROOT, run_lab
from tests.engine.test_reproduce import SECRETS

pytestmark = [pytest.mark.engine]

QUICK = "scenarios/examples/quick-repro.yaml"
SECRET_SCENARIO = "tests/engine/scenarios/repro-secrets.yaml"


@pytest.fixture(scope="module")
def area(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("escalation")


def _lab(area: Path, *args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ)
    e["LABHARNESS_REPORTS"] = str(area / "reports")
    e["LABHARNESS_ESCALATIONS"] = str(area / "escalations")
    e["PYTHONPATH"] = str(ROOT)
    e.update(env)
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd,
        env=e,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _json(p: subprocess.CompletedProcess[str]) -> Any:
    assert p.stdout.strip(), p.stderr
    return json.loads(p.stdout)


@pytest.fixture(scope="module")
def quick_run(area: Path, docker_client: Any) -> dict[str, Any]:
    p = _lab(area, "reproduce", QUICK, "--destroy", "always", "--json")
    r = _json(p)
    assert (p.returncode, r["verdict"]) == (0, "REPRODUCED"), p.stderr
    return dict(r)


@pytest.fixture(scope="module")
def quick_escalated(area: Path, quick_run: dict[str, Any]) -> dict[str, Any]:
    p = _lab(
        area, "escalate", quick_run["run"], "--ticket", "SUP-90001", "--note", "L2 look", "--json"
    )
    r = _json(p)
    assert p.returncode == 0, p.stderr
    return dict(r)


def _members(bundle: Path) -> dict[str, bytes]:
    with tarfile.open(bundle, "r:gz") as tar:
        return {m.name: (tar.extractfile(m) or io.BytesIO()).read() for m in tar.getmembers()}


def test_bundle_content_manifest_and_comment(
    area: Path, quick_run: dict[str, Any], quick_escalated: dict[str, Any]
) -> None:
    r = quick_escalated
    folder = area / "escalations" / "SUP-90001"
    bundle = folder / r["bundle"]
    assert r["trackers"][0]["tracker"] == "local"
    assert set(r["trackers"][0]["attached"]) == set(r["attachments"])
    assert hashlib.sha256(bundle.read_bytes()).hexdigest() == r["sha256"]
    members = _members(bundle)
    names = list(members)
    assert names[0] == "bundle/manifest.json"
    manifest = json.loads(members["bundle/manifest.json"])
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == set(names[1:])
    for name, data in members.items():
        if name != "bundle/manifest.json":
            assert hashlib.sha256(data).hexdigest() == listed[name]["sha256"], name
    for want in (
        "bundle/project/scenarios/examples/quick-repro.yaml",
        "bundle/project/labs/nginx/Dockerfile",
        "bundle/project/labs/curl/lab.yaml",
        "bundle/project/environments/debian-12/environment.yaml",
        "bundle/run/journal.json",
        "bundle/run/run.json",
        "bundle/run/junit.xml",
        "bundle/run/report.html",
        "bundle/run/REPRODUCE.md",
        "bundle/run/captures/lan.pcap",
        "bundle/run/artifacts/web/container.log",
    ):
        assert want in listed, want
    assert any(n.startswith("bundle/run/allure-results/") for n in names)
    # versions, images (ids and build inputs), OS per node, case metadata
    assert manifest["harness"]["run"] and manifest["engine"] == quick_run["engine"]
    assert manifest["case"] == {"ticket": "EXAMPLE-2", "customer": "example", "severity": 4}
    assert {n["name"]: n["os"] for n in manifest["nodes"]} == {
        "web": "debian-12",
        "client": "debian-12",
    }
    for img in manifest["images"]:
        assert img["image_id"].startswith("sha256:") and img["matches_run"]
        assert img["inputs_hash"] and img["files"] and img["build_args"]["LAB_VERSION"]
        assert img["env"]["inputs_hash"]
    assert manifest["run"]["verdict"] == "REPRODUCED" and manifest["run"]["rate"] == "2/2"
    comment = (folder / "comment-1.md").read_text()
    for text in (
        "REPRODUCED (2/2, 95% CI 34-100%)",
        "ticket EXAMPLE-2, customer example, severity 4",
        "Docker engine",
        "L2 look",
        "## 1. Images",
        r["bundle"],
        f"{quick_run['run']}-report.html",
    ):
        assert text in comment, text


def test_same_run_same_bytes_and_attaching_twice_adds_nothing(
    area: Path, quick_run: dict[str, Any], quick_escalated: dict[str, Any]
) -> None:
    p = _lab(
        area, "escalate", quick_run["run"], "--ticket", "SUP-90001", "--note", "L2 look", "--json"
    )
    again = _json(p)
    assert p.returncode == 0, p.stderr
    assert again["sha256"] == quick_escalated["sha256"]  # deterministic: same bytes
    assert again["trackers"][0]["attached"] == []
    assert sorted(again["trackers"][0]["already"]) == sorted(quick_escalated["attachments"])
    assert len(list((area / "escalations" / "SUP-90001").glob("comment-*.md"))) == 1
    assert (
        "already there"
        in _lab(
            area, "escalate", quick_run["run"], "--ticket", "SUP-90001", "--note", "L2 look"
        ).stdout
    )


def test_no_secret_in_bundle_comment_or_reports(area: Path, docker_client: Any) -> None:
    p = _lab(area, "reproduce", SECRET_SCENARIO, "--destroy", "always", "--json")
    run = _json(p)
    assert p.returncode == 0, p.stderr
    p = _lab(
        area,
        "escalate",
        run["run"],
        "--ticket",
        "SUP-90002",
        "--note",
        "the db_password = Pa55-fixture-PLAIN, see env-TOKEN-77aa99",
        "--json",
    )
    r = _json(p)
    assert p.returncode == 0, p.stderr
    key = (ROOT / "fixtures/harness-tests/secrets/server.key").read_bytes().split(b"\n")[1]
    secrets = [*SECRETS, key]
    folder = area / "escalations" / "SUP-90002"
    bundle = folder / r["bundle"]
    blobs: dict[str, bytes] = {f"member {n}": d for n, d in _members(bundle).items()}
    blobs["bundle (decompressed)"] = gzip.decompress(bundle.read_bytes())
    blobs["escalate output"] = p.stdout.encode()
    for f in [*folder.iterdir(), *Path(run["folder"]).rglob("*")]:
        if f.is_file() and not f.name.endswith(".tar.gz"):
            blobs[str(f)] = f.read_bytes()
    assert any(n.startswith("member bundle/project/fixtures/") for n in blobs)
    for where, data in blobs.items():
        for s in secrets:
            assert s not in data, f"{s!r} in {where}"
    manifest = json.loads(_members(bundle)["bundle/manifest.json"])
    redacted = {f["path"] for f in manifest["redaction"]["files"]}
    assert "bundle/project/fixtures/harness-tests/secrets/app.conf" in redacted
    assert "replay" in manifest["redaction"]["note"]


def test_replay_in_a_clean_folder_gives_the_same_verdict(
    area: Path, tmp_path: Path, quick_escalated: dict[str, Any]
) -> None:
    clean = tmp_path / "clean"
    clean.mkdir()
    src = area / "escalations" / "SUP-90001" / quick_escalated["bundle"]
    bundle = Path(shutil.copy(src, clean / src.name))
    env = {"LABHARNESS_REPORTS": str(clean / "reports")}
    p = _lab(area, "replay", bundle.name, cwd=clean, **env)
    assert p.returncode == 0, p.stderr
    original = f"original  REPRODUCED (2/2)  run {quick_escalated['run']}"
    assert original in p.stdout and "replay    REPRODUCED (2/2)" in p.stdout, p.stdout
    assert "same verdict" in p.stdout
    p = _lab(area, "replay", bundle.name, "--workdir", "again", "--json", cwd=clean, **env)
    r = _json(p)
    assert (p.returncode, r["verdict"], r["same_verdict"]) == (0, "REPRODUCED", True)
    assert all(i["same_inputs"] for i in r["images"])  # bundled labs -> the same image tags
    assert Path(r["project"]).is_relative_to(clean)
    schema = json.loads((ROOT / "schemas/results/replay.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(r)  # the published schema holds


def _repack(src: Path, dest: Path, change: str) -> None:
    members = _members(src)
    data = bytearray(members[change])
    data[len(data) // 2] ^= 0x01
    members[change] = bytes(data)
    with tarfile.open(dest, "w:gz") as tar:
        for name, blob in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(blob)
            tar.addfile(ti, io.BytesIO(blob))


def test_tampered_and_truncated_bundles_are_refused(
    area: Path, tmp_path: Path, quick_escalated: dict[str, Any]
) -> None:
    src = area / "escalations" / "SUP-90001" / quick_escalated["bundle"]
    tampered = tmp_path / "tampered.tar.gz"
    _repack(src, tampered, "bundle/run/REPRODUCE.md")
    p = _lab(area, "replay", str(tampered), "--workdir", str(tmp_path / "w1"), cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    assert "member 'bundle/run/REPRODUCE.md'" in p.stderr and "checksum mismatch" in p.stderr
    assert not (tmp_path / "w1").exists()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    p = _lab(area, "replay", str(truncated), "--workdir", str(tmp_path / "w2"), cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    assert "truncated or corrupt" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "w2").exists()


def test_escalations_lists_what_went_where(area: Path, quick_escalated: dict[str, Any]) -> None:
    r = _json(_lab(area, "escalations", "--json"))
    tickets = {e["ticket"] for e in r["escalations"]}
    assert {"SUP-90001", "SUP-90002"} <= tickets
    files = {(a["ticket"], a["tracker"], a["file"]) for a in r["attachments"]}
    assert ("SUP-90001", "local", quick_escalated["bundle"]) in files
    only = _json(_lab(area, "escalations", "--ticket", "SUP-90001", "--json"))
    assert {e["ticket"] for e in only["escalations"]} == {"SUP-90001"}
    text = _lab(area, "escalations").stdout
    assert "SUP-90001" in text and "SUP-90002" in text and quick_escalated["bundle"] in text


def test_bad_ticket_and_unknown_tracker_are_usage_errors(
    area: Path, quick_run: dict[str, Any]
) -> None:
    p = _lab(area, "escalate", quick_run["run"], "--ticket", "../etc")
    assert p.returncode == 2 and "ticket" in p.stderr
    p = _lab(area, "escalate", quick_run["run"], "--ticket", "SUP-1", "--tracker", "nosuch")
    assert p.returncode == 2 and "nosuch" in p.stderr


def test_a_run_folder_is_left_untouched(area: Path, quick_run: dict[str, Any]) -> None:
    folder = Path(quick_run["folder"])
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    assert (
        run_lab(
            "escalate",
            quick_run["run"],
            "--ticket",
            "SUP-90003",
            reports=area / "reports",
            LABHARNESS_ESCALATIONS=str(area / "escalations"),
        ).returncode
        == 0
    )
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == before


class _Down:
    name = "jira"

    def attach(self, ticket: str, files: list[Path], comment: str) -> Any:
        from harness.trackers import TrackerUnavailable

        raise TrackerUnavailable(
            "jira: 503 Service Unavailable after 4 attempts",
            attached=[files[0].name],
            not_attached=[f.name for f in files[1:]],
        )


class _BadToken:
    name = "redmine"

    def attach(self, ticket: str, files: list[Path], comment: str) -> Any:
        from harness.trackers import TrackerAuthError

        raise TrackerAuthError("redmine: 401 Unauthorized: the API key was refused")


def test_tracker_down_exit_3_and_bad_token_exit_2_keep_the_bundle_local(
    area: Path, quick_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.trackers
    from harness.errors import UsageError
    from harness.verbs.escalate import escalate, render_lines

    real = harness.trackers.get_tracker
    fakes: dict[str, Any] = {"jira": _Down(), "redmine": _BadToken()}
    monkeypatch.setattr(
        harness.trackers,
        "get_tracker",
        lambda name, *, root, config=None: (
            fakes[name] if name in fakes else real(name, root=root, config=config)
        ),
    )
    monkeypatch.setenv("LABHARNESS_REPORTS", str(area / "reports"))
    monkeypatch.setenv("LABHARNESS_ESCALATIONS", str(area / "esc-down"))
    r = escalate(quick_run["run"], ticket="SUP-90004", root=ROOT, tracker="jira")
    assert r.exit_code == 3
    local, jira = r.trackers
    assert sorted(local.attached) == sorted(r.attachments)  # nothing lost
    assert jira.attached == [r.bundle] and jira.not_attached == r.attachments[1:]
    text = "\n".join(render_lines(r))
    assert "jira      NOT attached:" in text and "503" in text and "kept in local" in text
    assert (area / "esc-down" / "SUP-90004" / r.bundle).is_file()
    with pytest.raises(UsageError, match="401 Unauthorized") as exc:
        escalate(quick_run["run"], ticket="SUP-90005", root=ROOT, tracker="redmine")
    assert exc.value.exit_code == 2 and "kept in local" in exc.value.message
    assert any((area / "esc-down" / "SUP-90005").glob("*.tar.gz"))


def test_a_tracker_that_is_down_through_the_cli(
    area: Path, quick_run: dict[str, Any], tmp_path: Path
) -> None:
    """No stand-in: a Redmine tracker whose server does not answer (a closed loopback port)."""
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "trackers.yaml"
    cfg.write_text(
        "trackers:\n  dead:\n    kind: redmine\n"
        f"    url: http://127.0.0.1:{port}\n    project: support\n"
        "    api_key_env: LAB_TEST_REDMINE_KEY\n    retries: [0.1, 0.2]\n    timeout: 2\n"
    )
    p = run_lab(
        "escalate",
        quick_run["run"],
        "--ticket",
        "42",
        "--tracker",
        "dead",
        "--trackers",
        str(cfg),
        "--json",
        reports=area / "reports",
        LABHARNESS_ESCALATIONS=str(area / "esc-dead"),
        LAB_TEST_REDMINE_KEY="k-123456",
    )
    assert p.returncode == 3, p.stderr
    r = json.loads(p.stdout)
    local, dead = r["trackers"]
    assert sorted(local["attached"]) == sorted(r["attachments"])  # nothing lost
    assert dead["attached"] == [] and sorted(dead["not_attached"]) == sorted(r["attachments"])
    assert "k-123456" not in p.stdout + p.stderr
    assert (area / "esc-dead" / "42" / r["bundle"]).is_file()


def test_a_signed_bundle_replays_verified_and_an_altered_one_is_refused(
    area: Path, tmp_path: Path, quick_run: dict[str, Any]
) -> None:
    """The team signs with its key (`lab keys generate`, --signing-key / bundle_signing_key);
    an engineer whose configuration lists the public key replays it as trusted, verified. The
    same run unsigned, or a member altered after signing, is refused (exit 2) with nothing
    extracted; the unsigned one replays only with --trust."""
    import stat

    keys = tmp_path / "keys"
    p = _lab(area, "keys", "generate", str(keys), "--name", "team")
    assert p.returncode == 0, p.stderr
    priv, pub = keys / "team.key", keys / "team.pub"
    mine = tmp_path / "signer.yaml"
    mine.write_text(f"bundle_signing_key: {priv}\n")
    theirs = tmp_path / "replayer.yaml"
    theirs.write_text(f"bundle_public_keys: [{pub}]\n")
    for f in (mine, theirs):
        os.chmod(f, stat.S_IRUSR | stat.S_IWUSR)
    p = _lab(
        area,
        "escalate",
        quick_run["run"],
        "--ticket",
        "SUP-90006",
        "--json",
        LABHARNESS_CONFIG=str(mine),
    )
    signed = _json(p)
    assert p.returncode == 0 and signed["signed_by"].startswith("ed25519:"), p.stderr
    members = _members(area / "escalations" / "SUP-90006" / signed["bundle"])
    assert list(members)[:2] == ["bundle/manifest.json", "bundle/manifest.sig"]
    # --signing-key gives the same (deterministic) signature and so the same bytes
    p = _lab(
        area,
        "escalate",
        quick_run["run"],
        "--ticket",
        "SUP-90006",
        "--json",
        "--signing-key",
        str(priv),
        LABHARNESS_CONFIG=str(tmp_path / "none.yaml"),
    )
    assert _json(p)["sha256"] == signed["sha256"], p.stderr
    unsigned = _json(
        _lab(
            area,
            "escalate",
            quick_run["run"],
            "--ticket",
            "SUP-90007",
            "--json",
            LABHARNESS_CONFIG=str(tmp_path / "none.yaml"),
        )
    )
    assert unsigned["signed_by"] is None

    clean = tmp_path / "clean"
    clean.mkdir()
    bundle = Path(shutil.copy(area / "escalations" / "SUP-90006" / signed["bundle"], clean))
    env = {"LABHARNESS_REPORTS": str(clean / "reports"), "LABHARNESS_CONFIG": str(theirs)}
    p = _lab(area, "replay", bundle.name, "--workdir", "w", "--json", cwd=clean, **env)
    r = _json(p)
    assert (p.returncode, r["verdict"], r["same_verdict"]) == (0, "REPRODUCED", True), p.stderr
    assert r["signature"]["status"] == "verified" and r["signature"]["key"] == str(pub)
    assert not r["warnings"]
    (found,) = (clean / "reports").glob(f"*/{r['replay']['run']}/journal.json")
    journal = json.loads(found.read_text())
    assert journal["trust"]["level"] == "trusted"
    assert journal["trust"]["origin"] == f"bundle signed by {signed['signed_by']}"

    other = Path(shutil.copy(area / "escalations" / "SUP-90007" / unsigned["bundle"], clean))
    p = _lab(area, "replay", other.name, "--workdir", "u", cwd=clean, **env)
    assert p.returncode == 2 and "unsigned: the bundle carries no signature" in p.stderr
    assert not (clean / "u").exists()
    p = _lab(area, "replay", other.name, "--workdir", "u", "--trust", cwd=clean, **env)
    assert p.returncode == 0, p.stderr
    assert "warning: unsigned: the bundle carries no signature" in p.stdout

    tampered = clean / "tampered.tar.gz"
    _repack(bundle, tampered, "bundle/run/REPRODUCE.md")  # (keeps manifest and signature)
    p = _lab(area, "replay", tampered.name, "--workdir", "t", "--trust", cwd=clean, **env)
    assert p.returncode == 2 and "member 'bundle/run/REPRODUCE.md'" in p.stderr, p.stderr
    assert "checksum mismatch" in p.stderr and not (clean / "t").exists()
