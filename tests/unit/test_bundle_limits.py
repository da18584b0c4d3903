"""Sizes come from the manifest and the tar headers, checked before a byte is written: the review's
five 500 MiB members with valid checksums (2.5 GB of zeros in an 11 MB bundle) wrote 1.98 GB
before the total limit refused them. Now nothing is written: the extraction folder never exists
and the disk holds nothing but the bundle."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.escalation.safe_extract import BundleRefused, Limits, extract_bundle
from tests.unit.bundle_craft import replay, tree, zero_bundle

MiB = 1 << 20


def _used(folder: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


def test_five_500_mib_members_with_valid_checksums_write_nothing(tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    clean.mkdir()
    bundle = zero_bundle(
        clean / "big.tar.gz", {f"bundle/run/big{i}.bin": 500 * MiB for i in range(5)}
    )
    size = bundle.stat().st_size
    assert size < 20 * MiB
    free = shutil.disk_usage(clean).free
    p = replay(bundle, clean, "--workdir", "w")
    assert p.returncode == 2, p.stderr
    assert "manifest.json: files " in p.stderr and "together over the limit of 2.0 GiB" in p.stderr
    assert tree(clean) == ["big.tar.gz"]
    assert _used(clean) <= size + 64 * 1024
    # (other tests share the disk: a 1.98 GB write would show far beyond their noise)
    assert free - shutil.disk_usage(clean).free < 400 * MiB


def test_a_header_larger_than_the_manifest_says_is_refused_before_writing(tmp_path: Path) -> None:
    """The manifest lies (10 bytes), the header says 600 MiB: refused from the header, before
    the member's data is read, and before the extraction folder exists."""
    bundle = zero_bundle(
        tmp_path / "lie.tar.gz", {"bundle/run/big.bin": 600 * MiB}, {"bundle/run/big.bin": 10}
    )
    with pytest.raises(
        BundleRefused, match=r"'bundle/run/big.bin': 600.0 MiB is over the per-file"
    ):
        extract_bundle(bundle, tmp_path / "w")
    assert not (tmp_path / "w").exists()
    small = zero_bundle(
        tmp_path / "lie2.tar.gz", {"bundle/run/b.bin": 3 * MiB}, {"bundle/run/b.bin": 10}
    )
    with pytest.raises(BundleRefused, match="size mismatch: its header says 3145728 bytes"):
        extract_bundle(small, tmp_path / "w")
    assert not (tmp_path / "w").exists()


def test_a_compression_bomb_is_refused_by_its_ratio(tmp_path: Path) -> None:
    """100 MiB of zeros in 100 KB: under the total and per-file limits, over 200:1."""
    bundle = zero_bundle(tmp_path / "bomb.tar.gz", {"bundle/run/z.bin": 100 * MiB}, level=6)
    p = replay(bundle, tmp_path, "--workdir", "w")
    assert p.returncode == 2, p.stderr
    assert "compression bomb" in p.stderr and "LABHARNESS_BUNDLE_MAX_RATIO" in p.stderr
    assert tree(tmp_path) == ["bomb.tar.gz"]
    # the engineer can raise it for a bundle they know: then it extracts
    limits = Limits(ratio=0)
    extract_bundle(bundle, tmp_path / "w", limits=limits)
    assert (tmp_path / "w" / "run" / "z.bin").stat().st_size == 100 * MiB
    shutil.rmtree(tmp_path / "w")


def test_limits_from_the_environment_apply_to_the_manifest(tmp_path: Path) -> None:
    bundle = zero_bundle(tmp_path / "b.tar.gz", {"bundle/run/a.bin": 5000, "bundle/run/b.bin": 10})
    p = replay(bundle, tmp_path, "--workdir", "w", LABHARNESS_BUNDLE_MAX_FILE="4096")
    assert p.returncode == 2
    assert "files[1].size 5000: bundle/run/a.bin declares 4.9 KiB, over the per-file" in p.stderr
    p = replay(bundle, tmp_path, "--workdir", "w", LABHARNESS_BUNDLE_MAX_MEMBERS="2")
    assert p.returncode == 2 and "over 2 files" in p.stderr, p.stderr
    p = replay(bundle, tmp_path, "--workdir", "w", LABHARNESS_BUNDLE_MAX_RATIO="x")
    assert p.returncode == 2 and "LABHARNESS_BUNDLE_MAX_RATIO='x'" in p.stderr, p.stderr
    assert tree(tmp_path) == ["b.tar.gz"]
