"""Customer evidence never lands in git, and its location is the engineer's to choose."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.trackers.config import escalations_dir

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed on this machine")
@pytest.mark.parametrize(
    "rel",
    [
        "escalations/SUP-1/bundle.tar.gz",
        "escalations/index.json",
        "reports/s/r/journal.json",
        "replay-r1/project/scenario.yaml",
    ],
)
def test_evidence_folders_are_git_ignored(rel: str) -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (an sdist): .gitignore has nothing to apply to")
    r = subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", "-q", "--no-index", rel], check=False
    )
    assert r.returncode == 0, f"{rel} would be committed: add its folder to .gitignore"


def test_escalations_location_env_then_trackers_yaml_then_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LABHARNESS_ESCALATIONS", raising=False)
    assert escalations_dir(tmp_path) == tmp_path / "escalations"
    (tmp_path / "trackers.yaml").write_text(
        "trackers:\n  local: {kind: local, path: /srv/evidence}\n"
    )
    assert escalations_dir(tmp_path) == Path("/srv/evidence")
    monkeypatch.setenv("LABHARNESS_ESCALATIONS", str(tmp_path / "elsewhere"))
    assert escalations_dir(tmp_path) == tmp_path / "elsewhere"
