"""Helpers for the report tests: a run folder made from a journal captured from a real run
(tests/unit/journals/, paths rewritten to /srv/lab/...), with the files its collect phase
names created small, so attachments and links have something to point at."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.escalation.comment import ticket_comment

JOURNALS = Path(__file__).resolve().parent / "journals"
XSD = Path(__file__).resolve().parent / "junit-jenkins.xsd"


def journal(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((JOURNALS / f"{name}.json").read_text())
    return data


def make_run(tmp: Path, name: str, data: dict[str, Any] | None = None) -> Path:
    j = data if data is not None else journal(name)
    folder = tmp / str(j.get("scenario", "x")) / str(j.get("run", name))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "journal.json").write_text(json.dumps(j))
    for p in j.get("phases", []):
        if p.get("phase") == "collect":
            for node, files in p.get("nodes", {}).items():
                for f in files:
                    target = folder / "artifacts" / node / f
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(f"{node} {f}\n")
            for cap in p.get("captures", []):
                target = folder / "captures" / Path(cap["path"]).name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(b"\xd4\xc3\xb2\xa1" + b"\0" * 20)
    (folder / "REPRODUCE.md").write_text("# Reproduce\n")
    return folder


def comment_of(manifest: dict[str, Any]) -> str:
    """The ticket comment of a (hand-made) bundle manifest, without REPRODUCE.md or files."""
    return ticket_comment(
        manifest,
        ticket="SUP-1",
        bundle_name="b.tar.gz",
        bundle_sha256="0" * 64,
        attachments=[],
        reproduce_md="",
        redact=lambda text: text,
    )
