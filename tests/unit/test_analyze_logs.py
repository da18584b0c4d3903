"""Log signatures (labs/*/lab.yaml `signatures:`): every shipped one matched by a line its
software prints and not by a near miss; the scan counts, locates, timestamps and redacts; a
bad signature is refused at catalog load, located."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest
import yaml

from harness.analysis import logmatch
from harness.errors import UsageError
from harness.run.redact import MASK, Redactor
from harness.scenario.catalog import load_catalog

ROOT = Path(__file__).resolve().parents[2]
LINES = yaml.safe_load((ROOT / "tests/data/analyze/signature_lines.yaml").read_text())
CATALOG = load_catalog(ROOT)
RULES = {r.signature.id: r for r in logmatch.rules_of(CATALOG)}


def test_every_shipped_signature_has_real_lines() -> None:
    assert set(RULES) == set(LINES)
    labs = {r.lab for r in RULES.values()}
    assert labs == {
        "nginx",
        "postgres",
        "redis",
        "curl",
        "backend",
        "sample-product",
        "haproxy",
        "openssh",
        "unbound",
        "mosquitto",
        "openldap",
    }


@pytest.mark.parametrize("sig", sorted(LINES))
def test_signature_matches_its_lines_and_not_the_near_miss(sig: str) -> None:
    rule = RULES[sig]
    for line in LINES[sig]["match"]:
        found = logmatch.scan([line], [rule], source="x.log").findings
        assert [f.signature for f in found] == [f"log:{sig}"], line
        # as a file gives it (harness.analysis.evidence.lines keeps the line end)
        found = logmatch.scan([line + "\n"], [rule], source="x.log").findings
        assert [f.signature for f in found] == [f"log:{sig}"], f"{line!r} with its line end"
    for line in LINES[sig]["miss"]:
        assert not logmatch.scan([line], [rule], source="x.log").findings, line


def test_an_anchored_signature_matches_a_files_line_as_a_runs() -> None:
    """RE2's `$` matches at the very end only: the line end is not part of the line."""
    sig = RULES[next(iter(RULES))].signature.model_copy(update={"pattern": "ready$"})
    rule = logmatch.Rule(lab="x", signature=sig, rx=logmatch.compile_signature("ready$"))
    for end in ("", "\n", "\r\n"):
        found = logmatch.scan([f"server is ready{end}"], [rule], source="x.log").findings
        assert len(found) == 1 and found[0].sample == "server is ready", repr(end)


def test_scan_counts_first_line_timestamp_and_redacts_the_sample() -> None:
    lines = [
        "2026-12-03 06:55:07.497 UTC [7] LOG:  database system is ready to accept connections\n",
        "2026-12-03 06:55:09.067 UTC [175] FATAL:  sorry, too many clients already"
        " password=Sup3rS3cretValue99\n",
        "2026-12-03 06:55:09.070 UTC [176] FATAL:  sorry, too many clients already\n",
    ]
    rules = logmatch.rules_of(CATALOG, ["postgres"])
    scan = logmatch.scan(lines, rules, source="db.log", node="db", redact=Redactor().text)
    assert scan.lines == 3
    (f,) = scan.findings
    assert (f.signature, f.count, f.first_line) == ("log:postgres.too-many-clients", 2, 2)
    assert f.first_time == "2026-12-03 06:55:09.067 UTC"
    assert (f.node, f.lab, f.kind, f.source) == ("db", "postgres", "log", "db.log")
    assert "Sup3rS3cretValue99" not in f.sample and MASK in f.sample
    assert f.hint and "max_connections" in f.hint


def test_a_labs_logs_get_its_signatures_and_every_scope_any_one() -> None:
    names = {r.signature.id for r in logmatch.rules_of(CATALOG, ["sample-product"])}
    assert "ledger.entry-rejected" in names
    assert {"redis.unknown-command", "redis.oom", "redis.noauth"} <= names  # client replies
    assert "postgres.too-many-clients" not in names and "redis.rdb-version" not in names


def test_files_globs_choose_the_logs_a_signature_applies_to() -> None:
    rule = RULES["nginx.body-too-large"]  # files: [error.log]
    assert rule.applies_to("/var/log/nginx/error.log")
    assert not rule.applies_to("/var/log/nginx/access.log")
    assert RULES["postgres.too-many-clients"].applies_to("container.log")  # no files: all


def test_timestamps_of_the_catalogs_software() -> None:
    assert logmatch.timestamp("2026/12/03 06:55:39 [emerg] 7#7: x") == "2026/12/03 06:55:39"
    assert (
        logmatch.timestamp("6:M 03 Dec 2026 06:55:18.582 * Ready") == "6:M 03 Dec 2026 06:55:18.582"
    )
    assert logmatch.timestamp("2026-12-03 06:55:25,134 ERROR x") == "2026-12-03 06:55:25,134"
    assert logmatch.timestamp("curl: (35) error") is None


def _project(tmp_path: Path, signatures: str) -> Path:
    for sub in ("labs/x", "environments"):
        (tmp_path / sub).mkdir(parents=True)
    (tmp_path / "labs/x/lab.yaml").write_text(
        "name: x\nversions: {'1': {os: [debian-12]}}\nsignatures:\n" + signatures
    )
    return tmp_path


def test_a_signature_that_is_not_re2_is_refused_at_load_located(tmp_path: Path) -> None:
    root = _project(tmp_path, "  - {id: x.bad, title: t, pattern: 'a(?=b)'}\n")
    with pytest.raises(UsageError) as exc:
        load_catalog(root)
    msg = str(exc.value)
    assert "labs/x/lab.yaml:4:27: signatures.0.pattern:" in msg and "not an RE2" in msg


def test_repeated_or_malformed_signature_ids_are_refused(tmp_path: Path) -> None:
    sig = "  - {id: x.a, title: t, pattern: a}\n"
    with pytest.raises(UsageError, match=r"repeated: x\.a"):
        load_catalog(_project(tmp_path, sig + sig))


def test_unknown_signature_key_is_refused(tmp_path: Path) -> None:
    root = _project(tmp_path, "  - {id: x.a, title: t, pattern: a, regexp: b}\n")
    with pytest.raises(UsageError, match=r"signatures\.0\.regexp: Extra inputs"):
        load_catalog(root)


def test_every_known_problems_signature_is_one_lab_analyze_can_name() -> None:
    from harness.scenario.known_problems import load_known_problems

    # known problems name signatures by fnmatch pattern (`http.status:5*`): each must be able to
    # match a finding: a shipped log signature, or one of the capture families
    capture = ("tls.alert:", "tls.handshake-failed", "tcp.", "http.status:", "dns.rcode:", "icmp.")
    shipped = [f"log:{sig_id}" for sig_id in RULES]
    for problem in load_known_problems(ROOT):
        for pattern in problem.definition.signatures:
            ok = pattern.startswith(capture) or fnmatch.filter(shipped, pattern)
            assert ok, f"{problem.source}: {pattern} matches no finding lab analyze can name"
