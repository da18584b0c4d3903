"""The ticket comment that goes with a bundle: what a person reads before opening anything.

Verdict and reproduction rate (for a verification: the verdict on the fix, then the baseline's
and the candidate's rates), versions, the case metadata, the note, the first steps of
REPRODUCE.md, the attachments' names and how to replay. Plain text (trackers render it as is);
it passes through the run's redactor like everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

FIRST_STEPS_LINES = 30


def first_steps(reproduce_md: str, max_lines: int = FIRST_STEPS_LINES) -> list[str]:
    """The numbered sections of REPRODUCE.md from the first one, cut at a section boundary
    (or within the first section when it alone is longer), code fences kept balanced."""
    lines = reproduce_md.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith("## ")), None)
    if start is None:
        return lines[:max_lines]
    body = lines[start:]
    out: list[str] = []
    for i, ln in enumerate(body):
        if ln.startswith("## ") and out and len(out) + _section_len(body, i) > max_lines:
            break
        out.append(ln)
        if len(out) >= max_lines and not ln.startswith("## "):
            break
    if sum(1 for ln in out if ln.startswith("```")) % 2:
        out.append("```")
    while out and not out[-1].strip():
        out.pop()
    return out


def _section_len(lines: list[str], i: int) -> int:
    n = 1
    for ln in lines[i + 1 :]:
        if ln.startswith("## "):
            break
        n += 1
    return n


def _case_line(case: dict[str, Any]) -> str:
    names = ("ticket", "customer", "severity", "product_version")
    parts = [f"{k.replace('_', ' ')} {case[k]}" for k in names if case.get(k) not in (None, "")]
    parts += [f"{k} {v}" for k, v in case.items() if k not in names and v not in (None, "")]
    return ", ".join(parts) or "(none in the scenario)"


def _node_line(n: dict[str, Any]) -> str:
    what = f"{n['lab']} {n['version']}" if n.get("lab") else (n.get("image") or "image")
    where = f" on {n['os']}" if n.get("os") else ""
    return f"{n['name']}: {what}{where}"


def _rate(section: dict[str, Any]) -> str:
    rate = section.get("rate") or "-"
    return f"{rate}, {section['interval']}" if section.get("interval") else rate


def _checks(section: dict[str, Any]) -> str | None:
    checks = section.get("checks") or {}
    if checks.get("passed") or checks.get("failed"):
        return f"checks {checks.get('passed', 0)} passed, {checks.get('failed', 0)} failed"
    return None


def _side_line(name: str, side: dict[str, Any]) -> str:
    """`Baseline: REPRODUCED 3/3 (95% CI 44-100%), run R; checks 2 passed, 0 failed`."""
    checks = _checks(side)
    interval = f" ({side['interval']})" if side.get("interval") else ""
    rate = f"{side.get('rate') or '-'}{interval}"
    return f"{name}: {side.get('verdict')} {rate}, run {side.get('run')}" + (
        f"; {checks}" if checks else ""
    )


def _verification_head(ticket: str, run: dict[str, Any], v: dict[str, Any]) -> list[str]:
    """A verification's comment leads with the verdict on the fix and both sides' rates."""
    fix = f"{v.get('fix')} ({v.get('kind')})" if v.get("kind") else str(v.get("fix"))
    lines = [
        f"labharness escalation for {ticket}: scenario {run.get('scenario')}, "
        f"verification {v.get('id')} of fix {fix}",
        "",
        f"Verification: {v.get('verdict')}{' - ' + v['reason'] if v.get('reason') else ''}",
        _side_line("Baseline (without the fix)", v.get("baseline") or {}),
        _side_line(f"Candidate (with {v.get('fix')})", v.get("candidate") or {}),
    ]
    lines += [f"  {w}" for w in v.get("why") or []]
    return lines


def _run_head(ticket: str, run: dict[str, Any]) -> list[str]:
    lines = [
        f"labharness escalation for {ticket}: scenario {run.get('scenario')}, run {run.get('id')}",
        "",
        f"Verdict: {run.get('verdict') or '?'} ({_rate(run)})"
        f"{' - ' + run['reason'] if run.get('reason') else ''}",
    ]
    checks = run.get("checks") or {}
    if checks.get("passed") or checks.get("failed"):
        lines.append(f"Checks: {checks.get('passed', 0)} passed, {checks.get('failed', 0)} failed")
    if run.get("fix"):
        lines.append(f"Fix applied: {run['fix']} (role {run.get('role')})")
    return lines


FINDINGS_MAX = 10  # findings named on the comment's line; the rest are counted


def findings_line(run: dict[str, Any], label: str = "Findings") -> str | None:
    """`Findings: tls.alert:protocol_version x2 (captures/dmz.pcap frame 6); ...` from the
    manifest's run section (error and warning findings, worst first); None without any."""
    found = run.get("findings") or []
    if not found:
        return None
    parts = [f"{f.get('signature')} x{f.get('count')} ({f.get('where')})" for f in found]
    more = len(parts) - FINDINGS_MAX
    tail = f"; and {more} more" if more > 0 else ""
    return f"{label}: " + "; ".join(parts[:FINDINGS_MAX]) + tail


def ticket_comment(
    manifest: dict[str, Any],
    *,
    ticket: str,
    bundle_name: str,
    bundle_sha256: str,
    attachments: list[str],
    reproduce_md: str,
    redact: Callable[[str], str],
) -> str:
    run = manifest.get("run") or {}
    harness = manifest.get("harness") or {}
    v = manifest.get("verification")
    lines = _verification_head(ticket, run, v) if v else _run_head(ticket, run)
    if run.get("title"):
        # after the verdict; a verification's after both sides' rates
        lines.insert(len(lines) if v else 3, f"Problem: {run['title']}")
    found = findings_line(run, "Findings of the baseline" if v else "Findings")
    if found:
        lines.append(found)
    lines += [
        f"Case: {_case_line(manifest.get('case') or {})}",
        f"Versions: labharness {harness.get('run')} (bundled by {harness.get('bundled_by')}), "
        f"Docker engine {manifest.get('engine')}",
        "Nodes: " + "; ".join(_node_line(n) for n in manifest.get("nodes") or []),
    ]
    cand_nodes = (manifest.get("candidate") or {}).get("nodes")
    if v and cand_nodes and cand_nodes != manifest.get("nodes"):
        lines.append("Nodes with the fix: " + "; ".join(_node_line(n) for n in cand_nodes))
    if run.get("params"):
        lines.append("Params: " + ", ".join(f"{k}={v}" for k, v in sorted(run["params"].items())))
    if manifest.get("note"):
        lines += ["", f"Note: {manifest['note']}"]
    steps = first_steps(reproduce_md)
    if steps:
        which = "REPRODUCE.md (the baseline's)" if v else "REPRODUCE.md"
        lines += ["", f"First steps of {which}:", "", *steps, "..."]
    lines += [
        "",
        "Attachments: " + ", ".join(attachments),
        f"Bundle: {bundle_name} (sha256 {bundle_sha256})",
        f"Replay it anywhere: lab replay {bundle_name}",
    ]
    redacted = (manifest.get("redaction") or {}).get("files") or []
    if redacted:
        lines.append(
            f"Redacted in the bundle: {len(redacted)} file(s) (see manifest.json); a replay "
            "with the redacted copies may differ: lab replay BUNDLE --secrets-dir DIR"
        )
    for f in (manifest.get("redaction") or {}).get("left_out") or []:
        lines.append(f"Not in the bundle: {f.get('path')}: {f.get('why')}")
    return redact("\n".join(lines) + "\n")
