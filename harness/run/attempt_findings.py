"""The findings a `finding:` symptom probe reads at the end of an attempt: the same analyzers
as `lab analyze` (tshark on the network's capture, the labs' log signatures on a node's output
or log file), limited to what the attempt produced (a capture's frames since the attempt
started; a node's output since then). tcpdump writes packet by packet (-U), so the capture on
disk is current when the attempt ends."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from harness.analysis import capture, logmatch, tshark
from harness.errors import HarnessError
from harness.run.probes import Seen
from harness.scenario.catalog import Catalog


def _epoch(row: dict[str, str]) -> float:
    try:
        return float(row.get("frame.time_epoch") or 0.0)
    except ValueError:
        return 0.0


def in_capture(pcap: Path, since: datetime, folder: Path) -> list[Seen] | str:
    """The capture's findings in the frames since `since`; why not, as text."""
    rel = pcap.relative_to(folder).as_posix() if pcap.is_relative_to(folder) else str(pcap)
    try:
        read = tshark.read(pcap, timeout=60.0)
    except HarnessError as exc:
        return f"{rel}: {exc.message}"
    if read.error and not read.truncated:  # a last packet still being written: the rest counts
        return f"{rel}: {read.error}"
    t0 = since.timestamp()
    rows = [r for r in read.rows if _epoch(r) >= t0]
    names = tshark.value_names() if rows else {}
    found = capture.findings(rows, names, source=rel)
    return [Seen(f.signature, f.count, f"{rel} frame {f.first_frame}") for f in found]


def in_log(text: str, catalog: Catalog, lab: str | None, node: str, path: str) -> list[Seen]:
    """A node's output (`path` "output") or log file's findings, with its lab's signatures
    (and every lab's `scope: any` ones), those whose `files:` apply to that file."""
    in_node = "container.log" if path == "output" else path
    rules = [r for r in logmatch.rules_of(catalog, [lab] if lab else None) if r.applies_to(in_node)]
    scan = logmatch.scan(text.splitlines(), rules, source=f"{node}:{path}", node=node)
    return [Seen(f.signature, f.count, f"{node} {path} line {f.first_line}") for f in scan.findings]
