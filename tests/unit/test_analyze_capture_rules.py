"""tshark's columns into findings (harness/analysis/capture.py), rule by rule on rows alone,
with tshark's own value names (`tshark -G values`, read from the real tshark)."""

from __future__ import annotations

import os
import subprocess
import sys

from harness.analysis import capture, tshark
from harness.findings_model import Finding
from tests.conftest import ROOT

NAMES = tshark.value_names()


def row(**cols: str) -> dict[str, str]:
    r = dict.fromkeys(tshark.FIELDS, "")
    r.update({"frame.number": "1", "frame.time_epoch": "1796278786.5", "ip.src": "10.0.0.3"})
    r.update({"ip.dst": "10.0.0.2", "_ws.col.Info": "info"})
    r.update({k.replace("__", "."): v for k, v in cols.items()})
    return r


def sigs(*rows: dict[str, str]) -> dict[str, Finding]:
    return {f.signature: f for f in capture.findings(list(rows), NAMES, source="t.pcap")}


def test_tls_alert_names_and_levels_come_from_tshark() -> None:
    found = sigs(
        row(tls__alert_message__desc="40", tls__alert_message__level="2"),
        row(tls__alert_message__desc="0", tls__alert_message__level="1"),
        row(tls__alert_message__desc="48", tls__alert_message__level="2"),
    )
    assert found["tls.alert:handshake_failure"].severity == "error"
    assert found["tls.alert:close_notify"].severity == "info"  # the normal end of a session
    assert "Unknown CA (fatal)" in found["tls.alert:unknown_ca"].title


def test_handshake_failed_only_when_no_server_hello_answered_the_stream() -> None:
    hello = {"tls__handshake__type": "1"}
    found = sigs(
        row(tcp__stream="0", **hello),
        row(tcp__stream="1", **hello),
        row(tcp__stream="1", tls__handshake__type="2"),
    )
    assert found["tls.handshake-failed"].count == 1


def test_dns_rcode_mnemonics_and_icmp_and_icmpv6_codes() -> None:
    found = sigs(
        row(dns__flags__rcode="2"),
        row(dns__flags__rcode="5"),
        row(icmp__type="3", icmp__code="1"),
        row(icmpv6__type="1", icmpv6__code="4", ip__src="", ipv6__src="fd00::3"),
    )
    assert found["dns.rcode:SERVFAIL"].severity == "error"
    assert "Server failure" in found["dns.rcode:SERVFAIL"].title
    assert found["dns.rcode:REFUSED"].severity == "warning"
    assert "icmp.unreachable:host" in found
    assert found["icmp.unreachable:port"].conversation == "fd00::3 -> 10.0.0.2"


def test_counts_first_frame_and_ipv6_conversation() -> None:
    v6 = {"ip__src": "", "ipv6__src": "fd00::3", "tcp__srcport": "443", "tcp__dstport": "5000"}
    found = sigs(
        row(frame__number="7", tcp__flags__reset="1", **v6),
        row(frame__number="3", tcp__flags__reset="1", ip__dst="10.0.0.9"),
        row(frame__number="9", http__response__code="503", http__response_for__uri="/db"),
    )
    reset = found["tcp.reset"]
    assert (reset.count, reset.first_frame) == (2, 3)
    assert capture.conversation(row(**v6)) == "[fd00::3]:443 -> 10.0.0.2:5000"
    assert found["http.status:503"].sample == "info (for /db)"
    assert found["http.status:503"].severity == "error"
    assert found["http.status:503"].distinct == ["/db"]  # the requests, not the conversations
    assert found["tcp.reset"].distinct == ["10.0.0.3 -> 10.0.0.9", "[fd00::3]:443 -> 10.0.0.2:5000"]
    assert found["tcp.reset"].first_time == "2026-12-03T06:19:46.500000+00:00"


def test_no_tshark_is_an_infrastructure_error_exit_3() -> None:
    env = {**os.environ, "PATH": "/nonexistent"}
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "analyze",
            str(ROOT / "tests/data/analyze/evidence.pcap"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 3, p.stderr
    assert "tshark is not installed" in p.stderr and "apt-get install" in p.stderr
    assert "Traceback" not in p.stderr
