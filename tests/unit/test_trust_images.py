"""A lab folder's build context never reaches outside the folder, and what is built is what was
hashed (harness/images.py plans, harness/engine/images.py tars)."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from harness.engine.images import _context_tar, _read_as_hashed
from harness.errors import UsageError
from harness.images import context_files, plan_lab
from harness.scenario.catalog import load_catalog
from tests.unit.conftest import CATALOG_ROOT


@pytest.fixture
def host_file(tmp_path: Path) -> Path:
    secret = tmp_path / "host" / "hostname"
    secret.parent.mkdir()
    secret.write_text("host-secret\n")
    return secret


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(CATALOG_ROOT, root)
    (root / "labs" / "web" / "Dockerfile").write_text("FROM scratch\nCOPY loot /loot\n")
    return root


def test_a_link_to_a_host_file_is_refused_naming_it(project: Path, host_file: Path) -> None:
    loot = project / "labs" / "web" / "loot"
    loot.symlink_to(host_file)
    with pytest.raises(UsageError) as exc:
        plan_lab(load_catalog(project), "web", "1.25", "debian-12")
    msg = exc.value.message
    assert msg.startswith(f"{loot}: a symlink to {str(host_file)!r}")
    assert f"resolves to {host_file}, outside the build context" in msg
    assert exc.value.exit_code == 2


def test_a_relative_link_out_and_a_linked_folder_are_refused(
    project: Path, host_file: Path
) -> None:
    web = project / "labs" / "web"
    (web / "up").symlink_to(Path("..") / "client" / "lab.yaml")
    with pytest.raises(UsageError, match=re.escape("up: a symlink to '../client/lab.yaml'")):
        context_files(web)
    (web / "up").unlink()
    (web / "etc").symlink_to(host_file.parent, target_is_directory=True)
    with pytest.raises(UsageError, match=r"etc: a symlink to .*outside the build context"):
        context_files(web)


def test_links_inside_the_folder_are_followed_and_ignored_ones_do_not_matter(
    project: Path, host_file: Path
) -> None:
    web = project / "labs" / "web"
    (web / "conf").mkdir()
    (web / "conf" / "site.conf").write_text("listen 80;\n")
    (web / "site.conf").symlink_to(Path("conf") / "site.conf")
    (web / "outside").symlink_to(host_file)
    (web / ".dockerignore").write_text("outside\n")
    files = {f.path: f for f in context_files(web)}
    assert files["site.conf"].source == (web / "conf" / "site.conf").resolve()
    assert files["site.conf"].sha256 == files["conf/site.conf"].sha256
    assert "outside" not in files


def test_a_file_swapped_for_a_link_after_planning_is_not_built(
    project: Path, host_file: Path
) -> None:
    web = project / "labs" / "web"
    (web / "loot").write_text("harmless\n")
    plan = plan_lab(load_catalog(project), "web", "1.25", "debian-12")
    loot = next(f for f in plan.files if f.path == "loot")
    assert _read_as_hashed(loot) == b"harmless\n"
    (web / "loot").unlink()
    (web / "loot").symlink_to(host_file)  # the swap, between hashing and building
    with pytest.raises(UsageError, match="cannot read this build input"):
        _context_tar(plan)
    (web / "loot").unlink()
    (web / "loot").write_text("changed\n")
    with pytest.raises(UsageError, match="changed after it was hashed"):
        _context_tar(plan)
    fifo = replace(loot, source=web / "fifo")
    os.mkfifo(fifo.source)
    with pytest.raises(UsageError, match="no longer a regular file"):
        _read_as_hashed(fifo)  # O_NONBLOCK: refused at once, never waited on
