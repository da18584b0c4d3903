"""A small results index for the dashboard's tests: a real SQLite store (migrated, written with
`Store.upsert`) over real report folders in a temporary reports root, with the detail each kind
carries, a scenario named like markup, and files and symlinks the dashboard must never serve."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.store.db import Store
from harness.store.entry import ResultEntry

SECRET = b"TOPSECRET-outside-the-reports"
XSS = "<script>alert('x')</script>"
AXES = {"nginx": ["1.18", "1.22"], "page": ["index.html", "missing.html"]}
# the three matrices of matrix-small, oldest first: cell label -> status
MATRICES = [
    ("m1", "2026-03-01T09:00:00.000+00:00", {"A": "PASS", "B": "PASS", "C": "FAIL", "D": "FAIL"}),
    ("m2", "2026-03-02T09:00:00.000+00:00", {"A": "PASS", "B": "FAIL", "C": "FAIL"}),
    ("m3", "2026-03-03T09:00:00.000+00:00", {"A": "PASS", "B": "FAIL", "C": "FAIL", "D": "ERROR"}),
]
CELLS = {  # label -> the cell
    "A": {"nginx": "1.18", "page": "index.html"},
    "B": {"nginx": "1.22", "page": "index.html"},
    "C": {"nginx": "1.18", "page": "missing.html"},
    "D": {"nginx": "1.22", "page": "missing.html"},
}
VERDICTS = {"PASS": "NOT_REPRODUCED", "FAIL": "REPRODUCED", "ERROR": "ERROR"}
REGRESSED = "matrix-small/nginx=1.22,page=index.html"


@dataclass
class Index:
    root: Path  # the reports root
    url: str  # the store's URL (SQLite)
    outside: Path  # a file beside the reports root, never to be served


def _write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)


def _run_folder(root: Path, rel: str, title: str) -> str:
    folder = root / rel
    _write(folder / "report.html", f"<!doctype html><html><body><h1>{title}</h1></body></html>")
    _write(folder / "journal.json", '{"scenario": "x"}')
    _write(folder / "REPRODUCE.md", "# Reproduce by hand\n")
    _write(folder / "junit.xml", "<testsuites/>")
    _write(folder / "artifacts" / "web" / "access.log", "GET /status.html 404\n")
    _write(folder / "captures" / "lan.pcap", b"\xd4\xc3\xb2\xa1" + b"\x00" * 20)
    return rel


def run(
    rid: str,
    started: str,
    *,
    scenario: str = "quick-repro",
    k: int | None = 2,
    n: int = 2,
    verdict: str = "REPRODUCED",
    role: str = "reproduce",
    **more: Any,
) -> ResultEntry:
    detail = {"title": f"{scenario} title", "checks_green": True, **more.pop("detail", {})}
    fields: dict[str, Any] = {
        "kind": "run",
        "id": rid,
        "scenario": scenario,
        "role": role,
        "verdict": verdict,
        "observed": k,
        "attempts": n if k is not None else None,
        "rate": f"{k}/{n}" if k is not None else None,
        "ticket": "EXAMPLE-2",
        "versions": {"web": "nginx 1.22 on debian-12", "client": "curl 7.88 on debian-12"},
        "engine": "unix:///var/run/docker.sock",
        "started": started,
        "ended": started,
        "duration_s": 4.5,
        "folder": f"{scenario}/{rid}",
        "detail": detail,
    }
    fields.update(more)
    return ResultEntry(**fields)


def _runs(root: Path) -> list[ResultEntry]:
    out = [
        run("r1", "2026-03-01T10:00:00.000+00:00"),
        run("r2", "2026-03-05T10:00:00.000+00:00", k=0, n=3, verdict="NOT_REPRODUCED"),
        run("r3", "2026-03-10T10:00:00.000+00:00", k=3, n=5),
        run("r4", "2026-03-11T10:00:00.000+00:00", k=0, n=1, verdict="ERROR"),
        run("b1", "2026-03-12T10:00:00.000+00:00", role="baseline", parent="v1"),
        run(
            "c1",
            "2026-03-12T10:01:00.000+00:00",
            k=0,
            verdict="NOT_REPRODUCED",
            role="candidate",
            parent="v1",
            detail={"fix": "add-page"},
        ),
        run("x1", "2026-03-13T10:00:00.000+00:00", scenario=XSS, ticket="<b>T-1</b>"),
        run("out1", "2026-03-14T10:00:00.000+00:00", ticket="OUT-1"),
    ]
    for e in out:
        if e.id != "out1" and e.scenario != XSS:
            _run_folder(root, e.folder or "", f"run {e.id}")
    return out


def _verification(root: Path) -> ResultEntry:
    _write(root / "quick-repro" / "v1" / "report.html", "<html><body>verification v1</body></html>")
    _write(root / "quick-repro" / "v1" / "verification.json", "{}")

    def side(rid: str, verdict: str, rate: str) -> dict[str, Any]:
        return {
            "run": rid,
            "verdict": verdict,
            "rate": rate,
            "folder": f"quick-repro/{rid}",
            "checks_green": True,
        }

    return ResultEntry(
        kind="verification",
        id="v1",
        scenario="quick-repro",
        verdict="FIXED",
        ticket="EXAMPLE-2",
        started="2026-03-12T10:00:00.000+00:00",
        folder="quick-repro/v1",
        detail={
            "fix": "add-page",
            "reason": "the symptom showed 2/2 before the fix and 0/2 after",
            "baseline": side("b1", "REPRODUCED", "2/2"),
            "candidate": side("c1", "NOT_REPRODUCED", "0/2"),
        },
    )


def _matrices(root: Path) -> list[ResultEntry]:
    out = []
    for mid, started, statuses in MATRICES:
        cells = []
        for label, status in statuses.items():
            rid = f"{mid}-{label}"
            rel = _run_folder(root, f"matrix-small/{rid}", f"cell {rid}")
            cells.append(
                {
                    "label": label,
                    "cell": CELLS[label],
                    "status": status,
                    "verdict": VERDICTS[status],
                    "rate": "0/1" if status == "PASS" else "1/1",
                    "run": rid,
                    "folder": rel,
                }
            )
            if mid == "m3":  # only the newest matrix's cells are indexed runs
                out.append(
                    run(
                        rid,
                        started,
                        scenario="matrix-small",
                        role="cell",
                        parent=mid,
                        cell=label,
                        k=0 if status == "PASS" else 1,
                        n=1,
                        verdict=VERDICTS[status],
                    )
                )
        _write(root / "matrix-small" / mid / "matrix.html", f"<html>{mid}</html>")
        summary: dict[str, int] = {}
        for status in statuses.values():
            summary[status] = summary.get(status, 0) + 1
        out.append(
            ResultEntry(
                kind="matrix",
                id=mid,
                scenario="matrix-small",
                started=started,
                verdict="FAIL",
                folder=f"matrix-small/{mid}",
                detail={"axes": AXES, "summary": summary, "cells": cells},
            )
        )
    return out


def _gates() -> list[ResultEntry]:
    def gate(gid: str, release: str, started: str, b_status: str, **d: Any) -> ResultEntry:
        cells = [
            {"key": "matrix-small/nginx=1.18,page=index.html", "status": "PASS", "run": "m3-A"},
            {"key": REGRESSED, "status": b_status, "run": "m3-B"},
        ]
        return ResultEntry(
            kind="gate",
            id=gid,
            scenario="release-gate",
            release=release,
            started=started,
            verdict="FAIL" if d.get("regressions") else "PASS",
            detail={
                "reason": "r",
                "baseline": "baselines/1.2.json",
                "cells": cells,
                "regressions": [],
                "fixed": [],
                "new": [],
                "removed": [],
                **d,
            },
        )

    return [
        gate("g0", "1.2", "2026-02-01T00:00:00.000+00:00", "PASS"),
        gate("g1", "1.3", "2026-03-01T00:00:00.000+00:00", "PASS"),
        gate(
            "g2",
            "1.3",
            "2026-03-03T00:00:00.000+00:00",
            "FAIL",
            regressions=[{"cell": REGRESSED, "baseline": "PASS", "now": "FAIL"}],
            new=[{"cell": "matrix-small/nginx=1.22,page=missing.html", "now": "ERROR"}],
        ),
    ]


def _escalations() -> list[ResultEntry]:
    def esc(eid: str, ticket: str, started: str, subject: str, what: str, **d: Any) -> ResultEntry:
        return ResultEntry(
            kind="escalation",
            id=eid,
            ticket=ticket,
            scenario="quick-repro",
            verdict="REPRODUCED",
            rate="2/2",
            started=started,
            folder=f"quick-repro/{subject}",
            detail={
                "run": subject,
                "what": what,
                "bundle": f"{subject}.tar.gz",
                "sha256": "ab" * 32,
                **d,
            },
        )

    return [
        esc(
            "e1",
            "SUP-1",
            "2026-03-02T00:00:00.000+00:00",
            "r1",
            "run",
            trackers=[
                {
                    "tracker": "local",
                    "attached": ["r1.tar.gz", "report.html"],
                    "already": [],
                    "not_attached": [],
                    "url": "https://tracker.example/SUP-1",
                    "error": None,
                },
                {
                    "tracker": "redmine",
                    "attached": [],
                    "already": ["r1.tar.gz"],
                    "not_attached": ["captures/lan.pcap"],
                    "url": None,
                    "error": None,
                },
            ],
        ),
        esc(
            "e2",
            "SUP-1",
            "2026-03-12T11:00:00.000+00:00",
            "v1",
            "verification",
            trackers=[
                {
                    "tracker": "jira",
                    "attached": ["v1.tar.gz"],
                    "already": [],
                    "not_attached": [],
                    "url": "javascript:alert(1)",
                    "error": "tracker down: 503",
                },
            ],
        ),
        esc("e3", "SUP-2", "2026-03-13T00:00:00.000+00:00", "r3", "run", trackers=[]),
    ]


def build(tmp: Path) -> Index:
    """The reports root under tmp/reports, its index at tmp/reports/index.sqlite."""
    root = tmp / "reports"
    root.mkdir()
    outside = tmp / "secret.txt"
    outside.write_bytes(SECRET)
    entries = [*_runs(root), _verification(root), *_matrices(root), *_gates(), *_escalations()]
    # a symlink inside a run folder that leads out of it, and a run folder that is one
    os.symlink(outside, root / "quick-repro" / "r1" / "artifacts" / "leak.txt")
    (tmp / "elsewhere").mkdir()
    (tmp / "elsewhere" / "report.html").write_bytes(SECRET)
    os.symlink(tmp / "elsewhere", root / "quick-repro" / "out1")
    url = f"sqlite:///{root / 'index.sqlite'}"
    store = Store.open(url)
    try:
        store.upsert(entries)
    finally:
        store.close()
    return Index(root=root, url=url, outside=outside)


VOID = frozenset({"meta", "link", "br", "hr", "img", "input", "source", "wbr", "col", "area"})


@dataclass
class Node:
    """An element of a parsed page (the standard library's parser, into a small tree)."""

    tag: str
    attrs: dict[str, str]
    children: list[Node]
    texts: list[str]

    @property
    def classes(self) -> list[str]:
        return self.attrs.get("class", "").split()

    def text(self) -> str:
        return " ".join(" ".join([*self.texts, *(c.text() for c in self.children)]).split())

    def all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Node]:
        out = []
        for c in self.children:
            if (
                (tag is None or c.tag == tag)
                and (cls is None or cls in c.classes)
                and all(c.attrs.get(k) == v for k, v in attrs.items())
            ):
                out.append(c)
            out.extend(c.all(tag, cls, **attrs))
        return out

    def one(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> Node:
        found = self.all(tag, cls, **attrs)
        assert len(found) == 1, f"{len(found)} <{tag} class={cls} {attrs}>"
        return found[0]

    def links(self) -> list[str]:
        return [a.attrs["href"] for a in self.all("a") if "href" in a.attrs]


def parse(html: str) -> Node:
    from html.parser import HTMLParser

    root = Node("#root", {}, [], [])
    stack = [root]

    class Builder(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            node = Node(tag, {k: v or "" for k, v in attrs}, [], [])
            stack[-1].children.append(node)
            if tag not in VOID:
                stack.append(node)

        def handle_endtag(self, tag: str) -> None:
            for i in range(len(stack) - 1, 0, -1):
                if stack[i].tag == tag:
                    del stack[i:]
                    return

        def handle_data(self, data: str) -> None:
            stack[-1].texts.append(data)

    Builder(convert_charrefs=True).feed(html)
    return root
