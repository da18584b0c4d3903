"""The local tracker and the escalations index (no server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.trackers import AttachResult, get_tracker
from harness.trackers.local import index, record


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("LABHARNESS_ESCALATIONS", raising=False)
    root = tmp_path / "proj"
    root.mkdir()
    return root


def evidence(tmp_path: Path) -> list[Path]:
    bundle = tmp_path / "SUP-1-run1.tar.gz"
    bundle.write_bytes(b"\x1f\x8b bundle bytes")
    report = tmp_path / "report.html"
    report.write_text("<html>REPRODUCED 3/3</html>")
    return [bundle, report]


def test_attach_copies_files_comment_and_records(project: Path, tmp_path: Path) -> None:
    tracker = get_tracker(None, root=project)
    assert tracker.name == "local"
    res = tracker.attach("SUP-48213", evidence(tmp_path), "Reproduced 3/3 on debian-12")
    folder = project / "escalations" / "SUP-48213"
    assert isinstance(res, AttachResult)
    assert res.attached == ["SUP-1-run1.tar.gz", "report.html"] and res.already == []
    assert res.comment == str(folder / "comment-1.md")
    assert res.url == folder.as_uri()
    assert (folder / "SUP-1-run1.tar.gz").read_bytes() == b"\x1f\x8b bundle bytes"
    assert (folder / "comment-1.md").read_text() == "Reproduced 3/3 on debian-12\n"
    entries = index(project)
    assert [e["file"] for e in entries] == ["SUP-1-run1.tar.gz", "report.html"]
    e = entries[0]
    assert set(e) == {"ticket", "tracker", "file", "sha256", "size", "when", "where", "comment"}
    assert e["ticket"] == "SUP-48213" and e["tracker"] == "local" and e["size"] == 15
    assert e["where"] == str(folder / "SUP-1-run1.tar.gz") and e["comment"] == res.comment
    assert len(e["sha256"]) == 64 and e["when"].endswith("Z")
    assert json.loads((project / "escalations" / "index.json").read_text())["entries"] == entries
    assert res.as_dict()["attached"] == res.attached


def test_attach_twice_adds_nothing(project: Path, tmp_path: Path) -> None:
    tracker = get_tracker("local", root=project)
    files = evidence(tmp_path)
    tracker.attach("SUP-1", files, "same words")
    again = tracker.attach("SUP-1", files, "same words")
    assert again.attached == [] and again.already == ["SUP-1-run1.tar.gz", "report.html"]
    assert again.comment is None
    folder = project / "escalations" / "SUP-1"
    assert sorted(p.name for p in folder.iterdir()) == [
        "SUP-1-run1.tar.gz",
        "comment-1.md",
        "report.html",
    ]
    assert len(index(project)) == 2


def test_new_words_without_new_files_add_a_comment(project: Path, tmp_path: Path) -> None:
    tracker = get_tracker(None, root=project)
    files = evidence(tmp_path)
    tracker.attach("SUP-1", files, "first")
    res = tracker.attach("SUP-1", files, "second look: also on debian-11")
    assert res.attached == [] and res.comment and res.comment.endswith("comment-2.md")
    last = index(project)[-1]
    assert last["file"] is None and last["comment"] == res.comment


def test_same_name_other_content_is_kept_beside(project: Path, tmp_path: Path) -> None:
    tracker = get_tracker(None, root=project)
    files = evidence(tmp_path)
    tracker.attach("SUP-1", files, "one")
    files[1].write_text("<html>NOT_REPRODUCED</html>")
    res = tracker.attach("SUP-1", files, "two")
    assert res.attached == ["report-2.html"] and res.already == ["SUP-1-run1.tar.gz"]
    again = tracker.attach("SUP-1", files, "two")
    assert again.attached == [] and sorted(again.already) == ["SUP-1-run1.tar.gz", "report.html"]


def test_env_var_moves_escalations(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "esc"
    monkeypatch.setenv("LABHARNESS_ESCALATIONS", str(elsewhere))
    get_tracker(None, root=project).attach("T-1", evidence(tmp_path)[:1], "")
    assert (elsewhere / "T-1" / "SUP-1-run1.tar.gz").is_file()
    assert [e["comment"] for e in index(project)] == [None]


def test_bad_ticket_and_missing_file_are_usage_errors(project: Path, tmp_path: Path) -> None:
    tracker = get_tracker(None, root=project)
    with pytest.raises(UsageError, match="ticket"):
        tracker.attach("../etc", evidence(tmp_path), "x")
    with pytest.raises(UsageError, match="no such file"):
        tracker.attach("T-1", [tmp_path / "missing.tar.gz"], "x")


def test_record_for_remote_trackers_and_empty_index(project: Path) -> None:
    assert index(project) == []
    entry = record(
        project,
        ticket="42",
        tracker="redmine-lab",
        file="b.tar.gz",
        sha256="0" * 64,
        size=3,
        where="http://127.0.0.1:3000/attachments/download/7/b.tar.gz",
        comment="http://127.0.0.1:3000/issues/42#change-9",
    )
    assert index(project) == [entry]


def test_broken_index_is_a_clear_error(project: Path) -> None:
    (project / "escalations").mkdir()
    (project / "escalations" / "index.json").write_text("{not json")
    with pytest.raises(UsageError, match=r"index.json:1: not valid JSON"):
        index(project)
