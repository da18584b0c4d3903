"""`lab analyze` on real captures (tests/data/analyze/*.pcap, made from real traffic by
make_pcaps.sh) through the real tshark, on logs, folders and run folders; and bad evidence:
exit 2 with a located message, never a traceback."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_lab

DATA = Path(__file__).resolve().parents[1] / "data" / "analyze"
PG = "2026-12-03 06:55:09.067 UTC [175] FATAL:  sorry, too many clients already\n"
NGINX = (
    "2026/12/03 07:01:02 [error] 30#30: *9 client intended to send too large body: 2097152 "
    'bytes, client: 10.0.0.2, server: _, request: "POST /upload HTTP/1.1", host: "proxy"\n'
)
CAPTURE_SIGNATURES = {
    "tls.handshake-failed": (1, 4),  # signature: (count, first frame)
    "tls.alert:protocol_version": (1, 6),
    "http.status:200": (2, 18),
    "http.status:404": (1, 30),
    "http.status:502": (1, 40),
    "tcp.reset": (2, 46),
    "icmp.unreachable:port": (1, 48),
    "dns.rcode:NXDOMAIN": (1, 50),
    "tcp.zero-window": (3, 86),
    "tcp.retransmission": (1, 91),
}


def analyze(*args: str | Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return run_lab("analyze", *map(str, args), reports=tmp_path / "reports", timeout=120)


def analyze_json(*args: str | Path, tmp_path: Path) -> Any:
    p = analyze(*args, "--json", tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def bad(p: subprocess.CompletedProcess[str], *words: str) -> None:
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr + p.stdout
    for w in words:
        assert w in p.stderr, p.stderr


def by_signature(source: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["signature"]: f for f in source["findings"]}


@pytest.mark.parametrize("name", ["evidence.pcap", "evidence.pcapng"])
def test_capture_findings_through_tshark(name: str, tmp_path: Path) -> None:
    r = analyze_json(DATA / name, tmp_path=tmp_path)
    (src,) = r["sources"]
    assert (src["kind"], src["units"]) == ("capture", 95)
    found = by_signature(src)
    assert {k: (f["count"], f["first_frame"]) for k, f in found.items()} == CAPTURE_SIGNATURES
    alert = found["tls.alert:protocol_version"]
    assert alert["conversation"] == "127.0.0.1:443 -> 127.0.0.1:34890"
    assert alert["severity"] == "error" and "Protocol Version" in alert["title"]
    assert alert["first_time"].startswith("20") and alert["first_epoch"] > 1.7e9
    assert found["http.status:502"]["sample"].endswith("(for http://127.0.0.1/upstream)")
    assert found["icmp.unreachable:port"]["conversation"] == "127.0.0.1 -> 127.0.0.1"
    assert found["http.status:200"]["distinct"] == [
        "http://127.0.0.1/",
        "http://127.0.0.1:8080/big.bin",
    ]
    assert r["signatures"]["tcp.reset"] == 2 and r["findings"] == len(CAPTURE_SIGNATURES)


def test_a_capture_with_a_pcap_name_but_not_a_capture_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "customer.pcap"
    f.write_bytes(os.urandom(3000).replace(b"\0", b"\1")[:100] + b"\0" + os.urandom(100))
    bad(
        analyze(f, tmp_path=tmp_path),
        str(f),
        "neither a pcap/pcapng capture nor a text log",
        "it starts",
    )


def test_truncated_capture_exit_2_or_partial_findings_with_a_warning(tmp_path: Path) -> None:
    cut = DATA / "truncated.pcap"
    bad(
        analyze(cut, tmp_path=tmp_path),
        str(cut),
        "cut short in the middle of a packet",
        "--partial",
    )
    p = analyze(cut, "--partial", "--json", tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr
    (src,) = json.loads(p.stdout)["sources"]
    assert "cut short" in src["warnings"][0] and "tcp.reset" in by_signature(src)
    assert src["units"] == 94


def test_pcap_header_alone_is_truncated(tmp_path: Path) -> None:
    f = tmp_path / "x.cap"
    f.write_bytes((DATA / "evidence.pcap").read_bytes()[:30])
    bad(analyze(f, tmp_path=tmp_path), str(f), "cut short")


def test_binary_log_empty_file_missing_path_and_fifo(tmp_path: Path) -> None:
    binlog = tmp_path / "error.log"
    binlog.write_bytes(b"2026/12/03 ok\n\0\0\x07\x08binary")
    empty = tmp_path / "empty.log"
    empty.write_text("")
    fifo = tmp_path / "pipe.log"
    os.mkfifo(fifo)
    p = analyze(binlog, empty, tmp_path / "nope.log", fifo, tmp_path=tmp_path)
    bad(p, f"{binlog}: neither", "NUL byte at offset 14", f"{empty}: an empty file")
    bad(p, f"{tmp_path / 'nope.log'}: no such file or folder", f"{fifo}: not a regular file")
    pj = analyze(binlog, "--json", tmp_path=tmp_path)
    assert pj.returncode == 2 and json.loads(pj.stdout)["exit_code"] == 2


def test_log_file_with_every_labs_signatures_and_gzip(tmp_path: Path) -> None:
    log = tmp_path / "customer-error.log"
    log.write_text("noise\n" + NGINX + NGINX + PG)
    gz = tmp_path / "old.log.1.gz"
    gz.write_bytes(gzip.compress(PG.encode()))
    r = analyze_json(log, gz, tmp_path=tmp_path)
    plain, zipped = r["sources"]
    found = by_signature(plain)
    assert found["log:nginx.body-too-large"]["count"] == 2
    assert found["log:nginx.body-too-large"]["first_line"] == 2
    assert found["log:postgres.too-many-clients"]["first_line"] == 4
    assert "nginx" in plain["labs"] and "postgres" in plain["labs"]
    assert list(by_signature(zipped)) == ["log:postgres.too-many-clients"]


def test_gzip_cut_short_is_refused(tmp_path: Path) -> None:
    gz = tmp_path / "old.log.gz"
    gz.write_bytes(gzip.compress((PG * 2000).encode())[:-40])
    bad(analyze(gz, tmp_path=tmp_path), str(gz), "cut short or damaged")


def test_folder_reads_captures_and_logs_and_says_what_it_skipped(tmp_path: Path) -> None:
    up = tmp_path / "upload"
    (up / "nested").mkdir(parents=True)
    shutil.copy(DATA / "evidence.pcap", up / "nested" / "trace")  # a capture by magic, no suffix
    (up / "app.log").write_text(PG)
    (up / "core.bin").write_bytes(b"\0\1\2" * 100)
    (up / "empty.log").write_text("")
    (up / "notes.md").write_text("see the log\n")
    r = analyze_json(up, tmp_path=tmp_path)
    kinds = {Path(s["path"]).name: s["kind"] for s in r["sources"]}
    assert kinds == {"app.log": "log", "trace": "capture"}
    skipped = {Path(s["path"]).name: s["why"] for s in r["skipped"]}
    assert set(skipped) == {"core.bin", "empty.log", "notes.md"}
    assert "binary" in skipped["core.bin"] and "empty" in skipped["empty.log"]


def _run_folder(tmp_path: Path) -> Path:
    run = tmp_path / "reports" / "case" / "261203-070000-abcd"
    (run / "captures").mkdir(parents=True)
    shutil.copy(DATA / "evidence.pcap", run / "captures" / "dmz.pcap")
    nodes = [{"name": "db", "lab": "postgres"}, {"name": "proxy", "lab": "nginx"}]
    (run / "journal.json").write_text(json.dumps({"run": run.name, "topology": {"nodes": nodes}}))
    db = run / "artifacts" / "db"
    db.mkdir(parents=True)
    (db / "container.log").write_text(PG + NGINX)  # nginx's text in PostgreSQL's log: not nginx's
    (db / "inspect.json").write_text("{}")
    logs = run / "artifacts" / "proxy" / "files" / "var" / "log" / "nginx"
    logs.mkdir(parents=True)
    (logs / "error.log").write_text(NGINX + PG)
    (logs / "access.log").write_text(NGINX)  # the signature is for error.log only
    return run


def test_run_folder_each_node_with_its_labs_signatures(tmp_path: Path) -> None:
    run = _run_folder(tmp_path)
    r = analyze_json(run, tmp_path=tmp_path)
    src = {str(Path(s["path"]).relative_to(run)): s for s in r["sources"]}
    assert src["captures/dmz.pcap"]["network"] == "dmz"
    assert by_signature(src["captures/dmz.pcap"])["tcp.reset"]["network"] == "dmz"
    db = src["artifacts/db/container.log"]
    # mosquitto, redis: their scope any signatures only (a client's error text)
    assert (db["node"], db["labs"]) == ("db", ["mosquitto", "postgres", "redis"])
    assert list(by_signature(db)) == ["log:postgres.too-many-clients"]
    err = src["artifacts/proxy/files/var/log/nginx/error.log"]
    assert list(by_signature(err)) == ["log:nginx.body-too-large"]
    assert by_signature(err)["log:nginx.body-too-large"]["node"] == "proxy"
    assert not src["artifacts/proxy/files/var/log/nginx/access.log"]["findings"]
    assert [Path(s["path"]).name for s in r["skipped"]] == ["inspect.json"]


def test_table_groups_findings_by_source(tmp_path: Path) -> None:
    p = analyze(_run_folder(tmp_path), tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "captures/dmz.pcap (capture network dmz, 95 frames, 10 finding(s))" in p.stdout
    assert "log:postgres.too-many-clients" in p.stdout
    assert "skipped 1 file(s):" in p.stdout and "finding(s) in 4 source(s)" in p.stdout


def test_diagnostic_report_folder_reads_var_log(tmp_path: Path) -> None:
    sos = tmp_path / "sosreport-host-2026"
    (sos / "sos_commands" / "logs").mkdir(parents=True)
    (sos / "var" / "log" / "postgresql").mkdir(parents=True)
    (sos / "var" / "log" / "postgresql" / "postgresql-15-main.log").write_text(PG)
    (sos / "etc").mkdir()
    (sos / "etc" / "hosts").write_text("sorry, too many clients already\n")  # not a log
    r = analyze_json(sos, tmp_path=tmp_path)
    (src,) = r["sources"]
    assert list(by_signature(src)) == ["log:postgres.too-many-clients"]


def test_secrets_in_a_matching_line_are_redacted_in_the_table_and_json(tmp_path: Path) -> None:
    log = tmp_path / "db.log"
    secret = "Zq8vN3xLw2Rt6YpK"
    log.write_text(PG.rstrip("\n") + f" password={secret}\n")
    for args in ((log,), (log, "--json")):
        p = analyze(*args, tmp_path=tmp_path)
        assert p.returncode == 0, p.stderr
        assert "too many clients" in p.stdout and secret not in p.stdout + p.stderr


def test_tshark_that_never_finishes_is_stopped_at_the_timeout(tmp_path: Path) -> None:
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    fake = bin_ / "tshark"  # stands in for a tshark stuck on a huge capture
    fake.write_text("#!/bin/sh\nsleep 30\n")
    fake.chmod(0o755)
    env = {"PATH": f"{bin_}:/usr/bin:/bin"}
    cap = DATA / "evidence.pcap"
    p = run_lab("analyze", str(cap), "--timeout", "1", reports=tmp_path, timeout=20, **env)
    bad(p, f"{cap}: tshark did not finish within 1 s", "editcap")


def test_tshark_failing_without_a_word_is_still_a_failure(tmp_path: Path) -> None:
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "tshark").write_text("#!/bin/sh\nexit 1\n")
    (bin_ / "tshark").chmod(0o755)
    cap = DATA / "evidence.pcap"
    p = run_lab("analyze", str(cap), reports=tmp_path, timeout=20, PATH=f"{bin_}:/usr/bin:/bin")
    bad(p, f"{cap}: not a readable capture: tshark exited 1")
