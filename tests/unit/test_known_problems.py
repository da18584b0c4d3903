"""The known-problems catalog (harness/scenario/known_problems.py): files load with located
errors, and ranking puts the problem whose signatures the evidence shows most completely first,
saying why (each signature seen, where, and each one not seen)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.scenario.known_problems import (
    KnownProblem,
    KnownProblemDef,
    Seen,
    load_known_problems,
    rank,
)


def problem(pid: str, *signatures: str) -> KnownProblem:
    return KnownProblem(
        pid, f"known-problems/{pid}.yaml", KnownProblemDef(title=pid, signatures=list(signatures))
    )


TLS = problem("tls-min", "tls.alert:protocol_version", "tcp.reset")
BODY = problem("body", "log:nginx.body-too-large", "http.status:413")
FIVE = problem("upstream", "http.status:5*")


def test_the_most_complete_match_ranks_first_and_says_why() -> None:
    seen = [
        Seen("tls.alert:protocol_version", "captures/dmz.pcap frame 4", 3),
        Seen("http.status:502", "captures/lan.pcap frame 9"),
        Seen("log:nginx.body-too-large", "artifacts/web/error.log:2"),
    ]
    ranked = rank([BODY, FIVE, TLS], seen)
    assert [m.problem.id for m in ranked] == ["upstream", "body", "tls-min"]
    assert ranked[0].score == 1.0 and ranked[1].score == 0.5
    assert ranked[0].why() == [
        "seen http.status:5* as http.status:502 x1 (captures/lan.pcap frame 9)"
    ]
    assert ranked[2].why() == [
        "seen tls.alert:protocol_version x3 (captures/dmz.pcap frame 4)",
        "not seen tcp.reset",
    ]


def test_ties_go_to_more_signatures_then_the_id() -> None:
    two = problem("two", "a", "b")
    one = problem("one", "a")
    also = problem("also", "a")
    ranked = rank([one, two, also], [Seen("a", "x"), Seen("b", "y")])
    assert [m.problem.id for m in ranked] == ["two", "also", "one"]


def test_nothing_seen_ranks_nothing() -> None:
    assert rank([TLS, BODY], [Seen("dns.rcode:NXDOMAIN", "x")]) == []


def test_the_catalog_loads_and_bad_files_are_located(tmp_path: Path) -> None:
    folder = tmp_path / "known-problems"
    folder.mkdir()
    (folder / "a.yaml").write_text("title: A\nsignatures: [tcp.reset]\nfix: restart\n")
    (got,) = load_known_problems(tmp_path)
    assert (got.id, got.definition.fix, got.source) == ("a", "restart", "known-problems/a.yaml")
    (folder / "b.yaml").write_text("title: B\nsignature: [x]\n")
    with pytest.raises(UsageError) as e:
        load_known_problems(tmp_path)
    assert "known-problems/b.yaml: signatures: Field required" in e.value.message
    assert "known-problems/b.yaml: signature: Extra inputs are not permitted" in e.value.message
    (folder / "b.yaml").write_text("title: [B\n")
    with pytest.raises(UsageError) as e:
        load_known_problems(tmp_path)
    assert "known-problems/b.yaml:2:1: not YAML" in e.value.message


def test_the_shipped_catalog_loads() -> None:
    root = Path(__file__).resolve().parents[2]
    problems = load_known_problems(root)
    assert problems, "known-problems/ ships examples"
    for p in problems:
        assert all((root / c).is_file() for c in p.definition.cases), p.id
    covered = {c for p in problems for c in p.definition.cases}
    assert covered == {
        f"scenarios/cases/{f.name}" for f in (root / "scenarios/cases").glob("*.yaml")
    }


def test_at_equal_share_a_stated_fix_then_the_catalog_rank_first() -> None:
    def with_fix(pid: str, fix: str | None, escalated: bool = False) -> KnownProblem:
        d = KnownProblemDef(title=pid, signatures=["a"], fix=fix)
        return KnownProblem(pid, pid, d, escalated)

    ticket = with_fix("SUP-1", "raise the limit", escalated=True)
    catalog = with_fix("zz-catalog", "raise the limit")
    bare = with_fix("aa-no-fix", None)
    ranked = rank([bare, ticket, catalog], [Seen("a", "x")])
    assert [m.problem.id for m in ranked] == ["zz-catalog", "SUP-1", "aa-no-fix"]
