"""The ticket comment that goes with a bundle: what a person reads before opening anything.

Verdict and reproduction rate, versions, the case metadata, the note, the first steps of
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
    verdict = run.get("verdict") or "?"
    rate = run.get("rate") or "-"
    if run.get("interval"):
        rate = f"{rate}, {run['interval']}"
    lines = [
        f"labharness escalation for {ticket}: scenario {run.get('scenario')}, run {run.get('id')}",
        "",
        f"Verdict: {verdict} ({rate}){' - ' + run['reason'] if run.get('reason') else ''}",
    ]
    if run.get("title"):
        lines.append(f"Problem: {run['title']}")
    checks = run.get("checks") or {}
    if checks.get("passed") or checks.get("failed"):
        lines.append(f"Checks: {checks.get('passed', 0)} passed, {checks.get('failed', 0)} failed")
    if run.get("fix"):
        lines.append(f"Fix applied: {run['fix']} (role {run.get('role')})")
    lines += [
        f"Case: {_case_line(manifest.get('case') or {})}",
        f"Versions: labharness {harness.get('run')} (bundled by {harness.get('bundled_by')}), "
        f"Docker engine {manifest.get('engine')}",
        "Nodes: " + "; ".join(_node_line(n) for n in manifest.get("nodes") or []),
    ]
    if run.get("params"):
        lines.append("Params: " + ", ".join(f"{k}={v}" for k, v in sorted(run["params"].items())))
    if manifest.get("note"):
        lines += ["", f"Note: {manifest['note']}"]
    steps = first_steps(reproduce_md)
    if steps:
        lines += ["", "First steps of REPRODUCE.md:", "", *steps, "..."]
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
