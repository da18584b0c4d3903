"""tshark's columns (tshark.FIELDS, one dict per frame) into findings: pure, so each rule is
tested on rows alone. One finding per signature per capture: its count, its first frame,
time and conversation, and that frame's summary line (tshark's Info column) as the sample.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from harness.findings_model import Finding, Severity

Row = dict[str, str]
Names = dict[str, dict[str, str]]  # tshark -G values: field -> value -> name

# DNS RCODE mnemonics (IANA "DNS RCODEs", RFC 1035/2136/6895): the stable key of dns.rcode:*
_RCODES = [
    "NOERROR",
    "FORMERR",
    "SERVFAIL",
    "NXDOMAIN",
    "NOTIMP",
    "REFUSED",
    "YXDOMAIN",
    "YXRRSET",
    "NXRRSET",
    "NOTAUTH",
    "NOTZONE",
    "DSOTYPENI",
]
# ICMP destination unreachable codes (RFC 792, RFC 1812) and ICMPv6's (RFC 4443), by name
_ICMP = [
    "net",
    "host",
    "protocol",
    "port",
    "fragmentation-needed",
    "source-route-failed",
    "net-unknown",
    "host-unknown",
    "source-host-isolated",
    "net-prohibited",
    "host-prohibited",
    "net-tos",
    "host-tos",
    "admin-prohibited",
    "host-precedence",
    "precedence-cutoff",
]
_ICMP6 = [
    "no-route",
    "admin-prohibited",
    "beyond-scope",
    "address",
    "port",
    "source-policy",
    "reject-route",
    "source-routing-header",
]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


@dataclass(frozen=True)
class Hit:
    """One frame's signature, before counting."""

    signature: str
    severity: Severity
    title: str
    row: Row
    ports: bool = True  # the conversation has ports (not for ICMP)


def _tls_alert(row: Row, names: Names) -> list[Hit]:
    code = row["tls.alert_message.desc"]
    if not code:
        return []
    name = names.get("tls.alert_message.desc", {}).get(code, f"alert {code}")
    level = row["tls.alert_message.level"]
    sev: Severity = "error" if level == "2" else "warning"
    if code == "0":  # close_notify: the normal end of a TLS connection
        sev = "info"
    lvl = names.get("tls.alert_message.level", {}).get(level, level or "?").lower()
    return [Hit(f"tls.alert:{_slug(name)}", sev, f"TLS alert {name} ({lvl})", row)]


def _tcp(row: Row, names: Names) -> list[Hit]:
    hits = []
    if row["tcp.flags.reset"] == "1":
        hits.append(Hit("tcp.reset", "warning", "TCP connection reset (RST)", row))
    if row["tcp.analysis.retransmission"] or row["tcp.analysis.fast_retransmission"]:
        hits.append(Hit("tcp.retransmission", "warning", "TCP retransmission", row))
    if row["tcp.analysis.zero_window"]:
        hits.append(
            Hit("tcp.zero-window", "warning", "TCP zero window (receiver not reading)", row)
        )
    return hits


def _http(row: Row, names: Names) -> list[Hit]:
    code = row["http.response.code"]
    if not code.isdigit():
        return []
    n = int(code)
    sev: Severity = "error" if n >= 500 else "warning" if n >= 400 else "info"
    return [Hit(f"http.status:{n}", sev, f"HTTP status {n}", row)]


def _dns(row: Row, names: Names) -> list[Hit]:
    code = row["dns.flags.rcode"]
    if not code.isdigit() or code == "0":
        return []
    n = int(code)
    key = _RCODES[n] if n < len(_RCODES) else f"RCODE{n}"
    name = names.get("dns.flags.rcode", {}).get(code, key)
    sev: Severity = "error" if key == "SERVFAIL" else "warning"
    return [Hit(f"dns.rcode:{key}", sev, f"DNS response {key} ({name})", row)]


def _icmp(row: Row, names: Names) -> list[Hit]:
    for typ, want, table in (("icmp", "3", _ICMP), ("icmpv6", "1", _ICMP6)):
        code = row[f"{typ}.code"]
        if row[f"{typ}.type"] == want and code.isdigit():
            n = int(code)
            name = table[n] if n < len(table) else f"code-{n}"
            title = f"{typ.upper()} destination unreachable ({name})"
            return [Hit(f"icmp.unreachable:{name}", "error", title, row, ports=False)]
    return []


RULES: tuple[Callable[[Row, Names], list[Hit]], ...] = (_tls_alert, _tcp, _http, _dns, _icmp)


def conversation(row: Row, ports: bool = True) -> str:
    """`src ip:port -> dst ip:port` of the frame (no ports for ICMP)."""

    def end(side: str) -> str:
        ip = row[f"ip.{side}"] or row[f"ipv6.{side}"]
        port = row[f"tcp.{side}port"] or row[f"udp.{side}port"] if ports else ""
        if ip and ":" in ip and port:
            ip = f"[{ip}]"
        return f"{ip}:{port}" if port else ip or "?"

    return f"{end('src')} -> {end('dst')}"


def _handshakes(rows: list[Row]) -> list[Hit]:
    """A TCP stream with a ClientHello and no ServerHello: the handshake failed."""
    hello: dict[str, Row] = {}
    answered: set[str] = set()
    for row in rows:
        kinds = row["tls.handshake.type"].split(",")
        if "1" in kinds:
            hello.setdefault(row["tcp.stream"], row)
        if "2" in kinds:
            answered.add(row["tcp.stream"])
    title = "TLS handshake failed (ClientHello never answered by a ServerHello)"
    return [
        Hit("tls.handshake-failed", "error", title, row)
        for stream, row in hello.items()
        if stream not in answered
    ]


DISTINCT_MAX = 10  # distinct conversations (or request URIs) kept per finding


@dataclass
class _Tally:
    hit: Hit
    count: int = 0
    distinct: list[str] = field(default_factory=list)

    def add(self, h: Hit) -> None:
        self.count += 1
        uri = h.row["http.response_for.uri"] if h.signature.startswith("http.") else ""
        what = uri or conversation(h.row, h.ports)
        if what not in self.distinct and len(self.distinct) < DISTINCT_MAX:
            self.distinct.append(what)


def findings(
    rows: list[Row],
    names: Names,
    *,
    source: str,
    network: str | None = None,
    redact: Callable[[str], str] = lambda s: s,
) -> list[Finding]:
    """One finding per signature: count, first frame, its time and conversation, its summary."""
    hits = [h for row in rows for rule in RULES for h in rule(row, names)]
    hits += _handshakes(rows)
    tallies: dict[str, _Tally] = {}
    for h in sorted(hits, key=lambda h: int(h.row["frame.number"] or 0)):
        tallies.setdefault(h.signature, _Tally(h)).add(h)
    return [_finding(t, source, network, redact) for t in tallies.values()]


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _finding(t: _Tally, source: str, network: str | None, redact: Callable[[str], str]) -> Finding:
    row = t.hit.row
    epoch = _float(row["frame.time_epoch"])
    uri = row["http.response_for.uri"]
    sample = row["_ws.col.Info"].strip() + (f" (for {uri})" if uri else "")
    return Finding(
        signature=t.hit.signature,
        kind="capture",
        severity=t.hit.severity,
        title=t.hit.title,
        count=t.count,
        source=source,
        first_frame=int(row["frame.number"]) if row["frame.number"].isdigit() else None,
        first_time=datetime.fromtimestamp(epoch, UTC).isoformat() if epoch is not None else None,
        first_epoch=epoch,
        first_relative=_float(row["frame.time_relative"]),
        conversation=conversation(row, t.hit.ports),
        distinct=[redact(d) for d in t.distinct],
        network=network,
        sample=redact(sample[:400]),
    )
