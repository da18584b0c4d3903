"""A lab version from a package in the lab folder (lab.yaml `versions.<v>.package`): every
refusal is located (lab.yaml:line:col: the key) at catalog load and exit 2 from `lab validate`;
the package's bytes are in the image tag; the sample product's .deb rebuilds byte for byte."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.images import plan_lab
from harness.scenario import labpackage
from harness.scenario.catalog import load_catalog
from harness.scenario.labpackage import upstream_version, version_matches

REPO = Path(__file__).resolve().parents[2]
DEB = "packages/ledger_1.5.0-1_all.deb"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The real environments and the sample product, free to modify."""
    root = tmp_path / "proj"
    shutil.copytree(REPO / "environments", root / "environments")
    for lab in ("sample-product", "redis", "curl"):
        shutil.copytree(REPO / "labs" / lab, root / "labs" / lab)
    return root


def lab_yaml(project: Path) -> Path:
    return project / "labs/sample-product/lab.yaml"


def set_package(project: Path, value: str) -> int:
    """Point 1.5's `package:` at `value`; the line it is written on."""
    f = lab_yaml(project)
    text = f.read_text()
    assert f"package: {DEB}" in text
    f.write_text(text.replace(f"package: {DEB}", f"package: {value}"))
    return next(i for i, line in enumerate(f.read_text().splitlines(), 1) if "package:" in line)


def refused(project: Path) -> str:
    with pytest.raises(UsageError) as info:
        load_catalog(project)
    return str(info.value)


def test_the_sample_products_package_version_plans_with_its_path() -> None:
    plan = plan_lab(load_catalog(REPO), "sample-product", "1.5", "debian-12")
    assert plan.args()["LAB_PACKAGE"] == DEB
    assert DEB in {f.path for f in plan.files}
    # versions from the lab's folders get no LAB_PACKAGE (their tags did not move for it)
    older = plan_lab(load_catalog(REPO), "sample-product", "1.4", "debian-12")
    assert "LAB_PACKAGE" not in older.args()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("packages/missing_1.5.0-1_all.deb", "no such file"),
        ("/etc/hostname", "must be a path relative to the lab folder"),
        ("../redis/lab.yaml", "leaves the lab folder ('..')"),
        ("packages/../../redis/lab.yaml", "leaves the lab folder ('..')"),
        ("Dockerfile", "not a Debian package (a .deb is an ar archive"),
        ("versions", "is not a regular file"),
    ],
)
def test_bad_package_paths_are_located(project: Path, value: str, message: str) -> None:
    line = set_package(project, value)
    text = refused(project)
    assert text.startswith(f"{lab_yaml(project)}:{line}:"), text
    assert "versions.1.5.package: " in text and message in text, text


def test_a_symlink_leading_out_of_the_lab_folder_is_refused(project: Path) -> None:
    outside = project / "elsewhere.deb"
    shutil.copy(REPO / "labs/sample-product" / DEB, outside)  # a real .deb, but outside
    (project / "labs/sample-product/packages/link.deb").symlink_to(outside)
    line = set_package(project, "packages/link.deb")
    text = refused(project)
    assert text.startswith(f"{lab_yaml(project)}:{line}:"), text
    assert f"resolves to {outside}, outside the lab folder" in text, text


def test_a_symlink_inside_the_lab_folder_is_followed(project: Path) -> None:
    (project / "labs/sample-product/packages/current.deb").symlink_to("ledger_1.5.0-1_all.deb")
    set_package(project, "packages/current.deb")
    plan = plan_lab(load_catalog(project), "sample-product", "1.5", "debian-12")
    assert plan.args()["LAB_PACKAGE"] == "packages/current.deb"


def test_an_ar_archive_that_dpkg_deb_refuses_is_not_a_package(project: Path) -> None:
    fake = project / "labs/sample-product/packages/fake.deb"
    fake.write_bytes(b"!<arch>\ndebian-binary   0           0     0     100644  4         `\n")
    line = set_package(project, "packages/fake.deb")
    text = refused(project)
    assert text.startswith(f"{lab_yaml(project)}:{line}:"), text
    assert "not a Debian package (dpkg-deb: " in text, text


def test_a_package_over_the_size_limit_is_refused(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(labpackage.PACKAGE_LIMIT_VAR, "1000")
    line = set_package(project, DEB)
    text = refused(project)
    assert text.startswith(f"{lab_yaml(project)}:{line}:"), text
    assert "over the limit of 1000 bytes (MAX_PACKAGE_BYTES" in text, text


def test_a_package_of_another_version_is_refused(project: Path) -> None:
    f = lab_yaml(project)
    f.write_text(f.read_text().replace('"1.5":', '"1.6":'))
    text = refused(project)
    assert "versions.1.6.package: " in text, text
    assert "is package ledger version '1.5.0-1', not 1.6: declare it as version '1.5.0'" in text


def test_lab_validate_exits_2_with_the_located_message(project: Path) -> None:
    line = set_package(project, "../redis/lab.yaml")
    scenario = project / "case.yaml"
    scenario.write_text(
        "scenario: vendor-package\ntitle: t\ntopology:\n  nodes:\n"
        "    product: {lab: sample-product, version: '1.5'}\n"
        "reproduce:\n  steps: [{id: v, on: product, run: 'true'}]\n"
        "  symptom: [{step: v, exit_code: 0}]\n"
    )
    p = subprocess.run(
        [sys.executable, "-m", "harness", "validate", str(scenario), "--project", str(project)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert f"{lab_yaml(project)}:{line}:" in p.stderr + p.stdout
    assert "Traceback" not in p.stderr


def test_the_tag_follows_the_package_bytes(project: Path) -> None:
    def tag() -> str:
        return plan_lab(load_catalog(project), "sample-product", "1.5", "debian-12").tag

    before = tag()
    assert tag() == before  # unchanged bytes: the same tag (the image is reused)
    deb = project / "labs/sample-product" / DEB
    with deb.open("ab") as f:
        f.write(b"\n")  # still a valid ar archive for dpkg-deb --field, other bytes
    after = tag()
    assert after != before
    other = plan_lab(load_catalog(project), "sample-product", "1.4", "debian-12")
    assert other.tag != after  # every file of the context is an input of every version


def test_a_package_excluded_by_dockerignore_is_refused_when_planned(project: Path) -> None:
    ignore = project / "labs/sample-product/.dockerignore"
    ignore.write_text(ignore.read_text() + "packages/\n")
    with pytest.raises(UsageError, match=r"excluded by \.dockerignore"):
        plan_lab(load_catalog(project), "sample-product", "1.5", "debian-12")


def test_a_dockerfile_that_ignores_the_package_is_refused_when_planned(project: Path) -> None:
    dockerfile = project / "labs/sample-product/Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("ARG LAB_PACKAGE=", "ARG OTHER="))
    with pytest.raises(UsageError, match=r"declares no `ARG LAB_PACKAGE`"):
        plan_lab(load_catalog(project), "sample-product", "1.5", "debian-12")
    plan_lab(load_catalog(project), "sample-product", "1.4", "debian-12")  # others still plan


def test_upstream_version_and_matching() -> None:
    assert upstream_version("1:1.5.0-1") == "1.5.0"
    assert upstream_version("1.5.0") == "1.5.0"
    assert upstream_version("2.0-rc1-3") == "2.0-rc1"
    assert version_matches("1.5", "1.5.0") and version_matches("1.5", "1.5")
    assert not version_matches("1.5", "1.50") and not version_matches("1.5", "1.4.9")


def test_the_sample_products_deb_rebuilds_byte_for_byte(tmp_path: Path) -> None:
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed on this machine")
    lab = tmp_path / "sample-product"
    shutil.copytree(REPO / "labs/sample-product", lab)
    committed = hashlib.sha256((lab / DEB).read_bytes()).hexdigest()
    (lab / DEB).unlink()
    subprocess.run(["sh", str(lab / "packaging/build-deb.sh")], check=True, capture_output=True)
    assert hashlib.sha256((lab / DEB).read_bytes()).hexdigest() == committed
