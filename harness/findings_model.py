"""Findings: what `lab analyze` read in a capture or a log, as one pure, serialisable model.

Pure (pydantic only, no I/O) so the journal, the reports, probes and triage can carry and
compare findings later. A finding's `signature` is its stable key: `tls.alert:protocol_version`,
`tcp.reset`, `http.status:502`, `dns.rcode:NXDOMAIN`, `icmp.unreachable:port`,
`log:nginx.body-too-large` (docs/analyze.md lists them all).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["capture", "log"]
Severity = Literal["error", "warning", "info"]
SourceKind = Literal["capture", "log"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Finding(_Model):
    """One signature seen in one source: how often, where first, and a (redacted) sample."""

    signature: str
    kind: Kind
    severity: Severity
    title: str
    count: int = Field(ge=1)
    source: str  # the file it was read from
    first_frame: int | None = None  # capture: frame number of the first occurrence
    first_line: int | None = None  # log: 1-based line number of the first occurrence
    first_time: str | None = None  # capture: ISO-8601 UTC; log: the line's own timestamp text
    first_epoch: float | None = None  # capture: seconds since the epoch
    first_relative: float | None = None  # capture: seconds since the capture's first packet
    conversation: str | None = None  # capture: "src ip:port -> dst ip:port" of the first one
    # capture: the distinct conversations it was seen in (HTTP: the requests' URIs), first 10
    distinct: list[str] = Field(default_factory=list)
    network: str | None = None  # capture in a run folder: the network it was taken on
    node: str | None = None  # log in a run folder: the node it came from
    lab: str | None = None  # log: the lab whose signature matched
    hint: str | None = None  # what usually fixes it (a lab signature's `hint`)
    sample: str = ""  # the first matching line or packet summary, redacted

    @property
    def where(self) -> str:
        """Where it was first seen: `captures/dmz.pcap frame 12`, `proxy/error.log:3`."""
        if self.kind == "capture":
            return f"{self.source} frame {self.first_frame}" if self.first_frame else self.source
        return f"{self.source}:{self.first_line}" if self.first_line else self.source


class Source(_Model):
    """One file read: what it was taken for, how much of it was read, what it showed."""

    path: str
    kind: SourceKind
    node: str | None = None
    network: str | None = None
    labs: list[str] = Field(default_factory=list)  # whose signatures applied (logs)
    units: int = 0  # frames (capture) or lines (log) read
    findings: list[Finding] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class Skipped(_Model):
    """A file inside a folder that was not read, and why."""

    path: str
    why: str
