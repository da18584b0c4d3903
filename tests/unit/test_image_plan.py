"""Image planning is pure: same inputs -> same tag, any input change -> a new tag."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from harness.engine.images import apt_mirror
from harness.errors import UsageError
from harness.images import context_files, plan_all, plan_environment, plan_image, plan_lab
from harness.scenario.catalog import load_catalog
from harness.scenario.resolved import EnvImage, LabImage, PlainImage

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the repository's environments and labs, free to modify."""
    root = tmp_path / "proj"
    for sub in ("environments", "labs"):
        shutil.copytree(REPO / sub, root / sub)
    return root


def tags(root: Path) -> dict[str, str]:
    envs, labs = plan_all(load_catalog(root))
    return {
        **{f"env:{p.name}": p.tag for p in envs},
        **{f"lab:{p.lab}:{p.version}:{p.os}": p.tag for p in labs},
    }


def test_real_catalog_plans_every_lab_on_every_os() -> None:
    envs, labs = plan_all(load_catalog(REPO))
    assert [e.name for e in envs] == ["debian-11", "debian-12", "debian-13"]
    got = {(p.lab, p.version, p.os) for p in labs}
    for lab in ("nginx", "curl", "postgres", "redis"):
        assert sum(1 for g in got if g[0] == lab) == 3  # one version per OS generation
    for os_name in ("debian-11", "debian-12", "debian-13"):
        assert ("backend", "1.0", os_name) in got
        assert ("sample-product", "1.4", os_name) in got


def test_tag_format() -> None:
    cat = load_catalog(REPO)
    env = plan_environment(cat, "debian-12")
    assert re.fullmatch(r"labharness/env-debian-12:[0-9a-f]{12}", env.tag)
    lab = plan_lab(cat, "nginx", "1.22", "debian-12")
    assert re.fullmatch(r"labharness/lab-nginx:1\.22-debian-12-[0-9a-f]{12}", lab.tag)
    assert lab.args()["BASE_IMAGE"] == env.tag
    assert lab.args()["LAB_VERSION"] == "1.22"


def test_same_inputs_same_tags_wherever_the_project_lives(project: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    shutil.copytree(project, other)
    assert tags(project) == tags(project)
    assert tags(project) == tags(other) == tags(REPO)


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {k for k in before if before[k] != after.get(k)}


def test_dockerfile_change_changes_only_that_lab(project: Path) -> None:
    before = tags(project)
    df = project / "labs/nginx/Dockerfile"
    df.write_text(df.read_text() + "\n# a comment\n")
    assert changed(before, tags(project)) == {
        "lab:nginx:1.18:debian-11",
        "lab:nginx:1.22:debian-12",
        "lab:nginx:1.26:debian-13",
    }


def test_new_file_and_mode_change_change_the_tag(project: Path) -> None:
    before = tags(project)
    (project / "labs/redis/extra.conf").write_text("maxmemory 10mb\n")
    after_add = tags(project)
    redis = {"lab:redis:6.0:debian-11", "lab:redis:7.0:debian-12", "lab:redis:8.0:debian-13"}
    assert changed(before, after_add) == redis
    (project / "labs/redis/extra.conf").chmod(0o600)
    assert changed(after_add, tags(project)) == redis


def test_ignored_files_are_not_inputs(project: Path) -> None:
    before = tags(project)
    (project / "labs/curl/tests").mkdir(exist_ok=True)
    (project / "labs/curl/tests/test_extra.py").write_text("def test(): pass\n")
    (project / "labs/curl/__pycache__").mkdir()
    (project / "labs/curl/__pycache__/x.pyc").write_bytes(b"\0")
    assert tags(project) == before
    names = [f.path for f in context_files(project / "labs/curl")]
    assert names == sorted(names)
    assert "Dockerfile" in names and not any(n.startswith("tests/") for n in names)


def test_version_build_args_change_the_tag(project: Path) -> None:
    before = tags(project)
    y = project / "labs/backend/lab.yaml"
    y.write_text(
        y.read_text().replace(
            "os: [debian-11, debian-12, debian-13]",
            'os: [debian-11, debian-12, debian-13]\n    build_args: {EXTRA: "1"}',
        )
    )
    assert changed(before, tags(project)) == {
        "lab:backend:1.0:debian-11",
        "lab:backend:1.0:debian-12",
        "lab:backend:1.0:debian-13",
    }


def test_environment_change_changes_its_labs(project: Path) -> None:
    before = tags(project)
    y = project / "environments/debian-11/environment.yaml"
    y.write_text(y.read_text() + "  - less\n")
    diff = changed(before, tags(project))
    assert "env:debian-11" in diff and "env:debian-12" not in diff
    assert {k for k in diff if k.startswith("lab:")} == {
        k for k in before if k.startswith("lab:") and k.endswith(":debian-11")
    }
    # a recipe file beside environment.yaml is an input too
    before = tags(project)
    (project / "environments/debian-12/notes.txt").write_text("x\n")
    assert "env:debian-12" in changed(before, tags(project))


def test_plan_image_sources_and_errors() -> None:
    cat = load_catalog(REPO)
    assert plan_image(cat, PlainImage("busybox:1")).tag == "busybox:1"
    assert plan_image(cat, EnvImage("debian-11")).tag == plan_environment(cat, "debian-11").tag
    assert plan_image(cat, LabImage("curl", "7.88", "debian-12")).tag.startswith(
        "labharness/lab-curl:7.88-debian-12-"
    )
    with pytest.raises(UsageError, match="no version"):
        plan_lab(cat, "nginx", "9.9", "debian-12")
    with pytest.raises(UsageError, match="does not build on"):
        plan_lab(cat, "nginx", "1.22", "debian-11")
    with pytest.raises(UsageError, match="unknown lab"):
        plan_all(cat, labs=["ngnix"])
    envs, labs = plan_all(cat, labs=["curl"], oses=["debian-11"])
    assert [e.name for e in envs] == ["debian-11"]
    assert [(p.lab, p.os) for p in labs] == [("curl", "debian-11")]


def test_apt_mirror_is_read_from_apt_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LABHARNESS_DEBIAN_MIRROR", raising=False)
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://sec.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n"
    )
    assert apt_mirror(d, tmp_path / "none") == "http://mirror.example/debian"
    (d / "debian.sources").unlink()
    legacy = tmp_path / "sources.list"
    legacy.write_text("# c\ndeb [arch=amd64] http://old.example/debian/ bullseye main\n")
    assert apt_mirror(d, legacy) == "http://old.example/debian"
    monkeypatch.setenv("LABHARNESS_DEBIAN_MIRROR", "http://override.example/debian")
    assert apt_mirror(d, legacy) == "http://override.example/debian"
