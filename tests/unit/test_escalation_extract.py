"""`lab replay` refuses malicious bundles before anything runs: each one built here with tarfile,
fed to the CLI in a clean folder; exit 2, the member and the reason named, nothing written
outside the target folder (and the target folder removed)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.escalation.bundle import KIND
from harness.escalation.safe_extract import BundleRefused, extract_bundle

ROOT = Path(__file__).resolve().parents[2]


def _manifest(files: dict[str, bytes]) -> bytes:
    m = {
        "kind": KIND,
        "bundle_version": 1,
        "run": {"id": "261126-000000-beef", "scenario": "x", "scenario_file": "project/x.yaml"},
        "files": [
            {"path": n, "sha256": hashlib.sha256(d).hexdigest(), "size": len(d), "mode": "644"}
            for n, d in files.items()
        ],
    }
    return json.dumps(m).encode()


def _bundle(
    path: Path, files: dict[str, bytes], extra: Callable[[tarfile.TarFile], None] | None = None
) -> Path:
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        for name, data in [("bundle/manifest.json", _manifest(files)), *files.items()]:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
        if extra is not None:
            extra(tar)
    return path


def _add(tar: tarfile.TarFile, name: str, data: bytes = b"x", **attrs: object) -> None:
    ti = tarfile.TarInfo(name)
    ti.size = len(data) if attrs.get("type", tarfile.REGTYPE) == tarfile.REGTYPE else 0
    for k, v in attrs.items():
        setattr(ti, k, v)
    tar.addfile(ti, io.BytesIO(data) if ti.size else None)


GOOD = {"bundle/project/x.yaml": b"scenario: x\n"}


def _replay(bundle: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT)
    e["LABHARNESS_REPORTS"] = str(cwd / "reports")
    e.update(env)
    return subprocess.run(
        [sys.executable, "-m", "harness", "replay", str(bundle), "--workdir", str(cwd / "w")],
        cwd=cwd,
        env=e,
        capture_output=True,
        text=True,
        timeout=120,
    )


MALICIOUS: list[tuple[str, Callable[[tarfile.TarFile], None], str, str]] = [
    (
        "absolute",
        lambda t: _add(t, "/tmp/labharness-evil-abs.txt"),
        "/tmp/labharness-evil-abs.txt",
        "absolute path",
    ),
    ("dotdot", lambda t: _add(t, "bundle/../../escape.txt"), "bundle/../../escape.txt", "'..'"),
    (
        "symlink",
        lambda t: _add(t, "bundle/run/passwd", type=tarfile.SYMTYPE, linkname="/etc/passwd"),
        "bundle/run/passwd",
        "symbolic link pointing out of the bundle (-> /etc/passwd)",
    ),
    (
        "hardlink",
        lambda t: _add(t, "bundle/run/shadow", type=tarfile.LNKTYPE, linkname="../etc/shadow"),
        "bundle/run/shadow",
        "hard link pointing out of the bundle",
    ),
    (
        "device",
        lambda t: _add(t, "bundle/run/sda", type=tarfile.BLKTYPE, devmajor=8, devminor=0),
        "bundle/run/sda",
        "device file",
    ),
    (
        "chardev",
        lambda t: _add(t, "bundle/run/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3),
        "bundle/run/null",
        "device file",
    ),
]


@pytest.mark.parametrize(
    ("kind", "extra", "member", "reason"), MALICIOUS, ids=[m[0] for m in MALICIOUS]
)
def test_malicious_bundle_is_refused(
    tmp_path: Path,
    kind: str,
    extra: Callable[[tarfile.TarFile], None],
    member: str,
    reason: str,
) -> None:
    clean = tmp_path / "clean"
    clean.mkdir()
    bundle = _bundle(clean / f"{kind}.tar.gz", GOOD, extra)
    p = _replay(bundle, clean)
    assert p.returncode == 2, p.stderr
    assert f"member {member!r}" in p.stderr and reason in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    # nothing outside the target folder, and the target folder itself removed
    assert sorted(x.name for x in clean.iterdir()) == [bundle.name]
    assert not (tmp_path / "escape.txt").exists()
    assert not Path("/tmp/labharness-evil-abs.txt").exists()


def test_member_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    files = {**GOOD, "bundle/run/big.bin": b"\0" * 5000}
    bundle = _bundle(tmp_path / "big.tar.gz", files)
    p = _replay(bundle, tmp_path, LABHARNESS_BUNDLE_MAX_FILE="4096")
    assert p.returncode == 2, p.stderr
    # refused from the manifest's declared size, before a folder exists (the header must agree)
    assert "manifest.json: files[1].size 5000: bundle/run/big.bin declares" in p.stderr
    assert "over the per-file limit" in p.stderr
    assert not (tmp_path / "w").exists()
    p = _replay(bundle, tmp_path, LABHARNESS_BUNDLE_MAX_TOTAL="3000")
    assert p.returncode == 2 and "together over the limit of" in p.stderr, p.stderr
    assert not (tmp_path / "w").exists()


def test_extra_or_missing_member_and_not_a_bundle(tmp_path: Path) -> None:
    extra = _bundle(tmp_path / "extra.tar.gz", GOOD, lambda t: _add(t, "bundle/run/new.txt"))
    with pytest.raises(
        BundleRefused, match=re.escape("'bundle/run/new.txt': not listed in the manifest")
    ):
        extract_bundle(extra, tmp_path / "a")
    assert not (tmp_path / "a").exists()
    # a manifest that lists a file the archive lacks: truncated or altered
    with tarfile.open(tmp_path / "missing.tar.gz", "w:gz") as tar:
        data = _manifest({**GOOD, "bundle/run/gone.txt": b"gone"})
        ti = tarfile.TarInfo("bundle/manifest.json")
        ti.size = len(data)
        tar.addfile(ti, io.BytesIO(data))
    with pytest.raises(
        BundleRefused,
        match=r"listed in the manifest but missing from the archive \(.*bundle/run/gone\.txt",
    ):
        extract_bundle(tmp_path / "missing.tar.gz", tmp_path / "b")
    (tmp_path / "plain.tar.gz").write_bytes(b"not a tar at all")
    with pytest.raises(BundleRefused, match="truncated or corrupt"):
        extract_bundle(tmp_path / "plain.tar.gz", tmp_path / "c")
    with tarfile.open(tmp_path / "other.tar.gz", "w:gz") as tar:
        _add(tar, "README")
    with pytest.raises(BundleRefused, match="not a labharness bundle"):
        extract_bundle(tmp_path / "other.tar.gz", tmp_path / "d")


def test_a_good_bundle_extracts_with_its_modes(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path / "ok.tar.gz", GOOD)
    manifest = extract_bundle(bundle, tmp_path / "out")
    assert (tmp_path / "out" / "project" / "x.yaml").read_bytes() == b"scenario: x\n"
    assert manifest["kind"] == KIND
    with pytest.raises(Exception, match="not an empty folder"):
        extract_bundle(bundle, tmp_path / "out")


def test_a_bundle_cut_anywhere_is_truncated_never_accepted(tmp_path: Path) -> None:
    """tar alone takes an archive cut at a member boundary for a complete one; the gzip stream's
    end marker and CRC are read too, so every cut is said to be truncated."""
    files = {**GOOD, **{f"bundle/run/f{i}.txt": os.urandom(700) for i in range(6)}}
    data = _bundle(tmp_path / "whole.tar.gz", files).read_bytes()
    cut = tmp_path / "cut.tar.gz"
    for n in range(10, len(data) - 1, max(1, len(data) // 60)):
        cut.write_bytes(data[:n])
        with pytest.raises(BundleRefused, match="truncated or corrupt"):
            extract_bundle(cut, tmp_path / "w")
        assert not (tmp_path / "w").exists(), n
    cut.write_bytes(data[:-1])  # the CRC's last byte
    with pytest.raises(BundleRefused, match="truncated or corrupt"):
        extract_bundle(cut, tmp_path / "w")
    extract_bundle(tmp_path / "whole.tar.gz", tmp_path / "w")  # the control


def test_data_after_the_end_of_the_archive_is_bounded(tmp_path: Path) -> None:
    import gzip

    with tarfile.open(tmp_path / "b.tar", "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in [("bundle/manifest.json", _manifest(GOOD)), *GOOD.items()]:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    raw = (tmp_path / "b.tar").read_bytes()
    (tmp_path / "tail.tar.gz").write_bytes(gzip.compress(raw + b"\0" * (2 << 20)))
    with pytest.raises(BundleRefused, match="of data after the archive's end"):
        extract_bundle(tmp_path / "tail.tar.gz", tmp_path / "w")
    assert not (tmp_path / "w").exists()
