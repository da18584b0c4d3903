"""report.html: one self-contained page (inline CSS, inline SVG, no script, nothing fetched),
opened from file://. The verdict first, then the case, the topology picture, every phase and
step with timings and output, the symptom evidence per attempt, the checks, and links to the
collected artifacts (relative, so the folder can move). Jinja2 autoescaping escapes every
value from the journal. See docs/reports.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from harness import outcomes
from harness.journal_model import EvidencePhase, ImpairPhase, Journal, UpPhase
from harness.reports.journal import (
    Run,
    attempt_outcome,
    check_outcome,
    configure_items,
    idempotence_lines,
    num,
    phase_outcome,
    s,
    step_outcome,
    step_output,
    symptom_evidence,
)
from harness.reports.topology import impairment_text, render_svg

_ENV: Environment | None = None


def template_env() -> Environment:
    global _ENV
    if _ENV is None:
        _ENV = Environment(
            loader=PackageLoader("harness.reports", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        _ENV.filters["href"] = lambda rel: quote(s(rel), safe="/")
        _ENV.filters["secs"] = lambda v: f"{num(v):.2f} s"
    return _ENV


def verdict_class(run: Run) -> str:
    got = outcomes.role_result(run.role, run.verdict)
    return {"hoped": "good", "not hoped": "bad", "error": "error"}[got]


def _attempt_rows(run: Run) -> list[dict[str, Any]]:
    """One row per reproduce attempt, with its steps, for the template's attempts table."""
    attempts = []
    for p in run.attempts():
        steps = [
            {
                "id": s(step.id),
                "kind": s(step.kind),
                "node": s(step.node),
                "description": s(step.description),
                "duration": step.duration_s,
                "exit_code": step.exit_code,
                "status": step_outcome(step).status,
                "output": step_output(step),
                "error": s(step.error),
            }
            for step in p.steps
        ]
        oc = attempt_outcome(run, p)
        attempts.append(
            {
                "phase": p.phase,
                "attempt": s(p.attempt),
                "result": s(p.result),
                "status": oc.status,
                "message": oc.message,
                "duration": p.duration_s,
                "steps": steps,
                "evidence": symptom_evidence(p.symptom),
                "error": s(p.error),
                "undo": [s(u) for u in p.undo],
            }
        )
    return attempts


def clock_text(seconds: int) -> str:
    """A node's clock offset as a person says it: +2h, -1m 30s, +1d 2h 3m 4s."""
    sign, rest = ("+" if seconds >= 0 else "-"), abs(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return sign + (" ".join(parts) or "0s")


def _node_rows(run: Run) -> list[dict[str, str]]:
    """One row per node: what it runs, its image and its addresses."""
    addresses = run.addresses()
    images = run.images()
    return [
        {
            "name": n.name,
            "lab": " ".join(x for x in (n.lab, n.version) if x),
            "os": (n.os or n.image or "")
            + (f" (clock {clock_text(n.clock_s)})" if n.clock_s else ""),
            "image": images.get(n.name, ""),
            "addresses": ", ".join(f"{k} {v}" for k, v in addresses.get(n.name, {}).items()),
        }
        for n in run.model.topology.nodes
    ]


def _not_ready_rows(run: Run) -> list[dict[str, str]]:
    """The nodes that did not start, as the symptom allowed (the last `up` phase's records)."""
    ups = [p for p in run.phases if isinstance(p, UpPhase)]
    rows = []
    for node in ups[-1].nodes if ups else []:
        rec = node.not_ready
        if rec is not None:
            rows.append(
                {
                    "name": node.name,
                    "state": s(rec.state),
                    "exit_code": s(rec.exit_code),
                    "reason": s(rec.reason),
                    "log_tail": s(rec.log_tail),
                }
            )
    return rows


def _customer_rows(run: Run) -> dict[str, Any] | None:
    """The customer's evidence beside the lab's: each of the customer's error and warning
    signatures, where their files show it, and whether the lab showed it (and where)."""
    match = run.model.evidence_match
    phase = run.phase("evidence")
    if match is None or not isinstance(phase, EvidencePhase):
        return None
    theirs = {f.signature: f for src in phase.sources for f in src.findings}
    ours = {f.signature: f for f in run.findings()}
    rows = [
        {
            "signature": sig,
            "title": theirs[sig].title if sig in theirs else "",
            "theirs": f"{theirs[sig].where} x{theirs[sig].count}" if sig in theirs else "",
            "shown": sig in match.shown,
            "ours": f"{ours[sig].where} x{ours[sig].count}" if sig in ours else "",
        }
        for sig in match.signatures
    ]
    return {"text": match.text, "rows": rows, "files": [src.path for src in phase.sources]}


def _finding_rows(run: Run) -> dict[str, Any]:
    """The Findings section: error and warning rows, info rows apart (folded), and the
    sources that could not be read or were read in part; `ran` false without an analyze phase."""
    if run.phase("analyze") is None:
        return {"ran": False}
    rows = [
        {
            "severity": f.severity,
            "signature": f.signature,
            "title": f.title,
            "count": f.count,
            "where": f.where,
            "on": f.node or f.network or "",
            "hint": s(f.hint),
            "sample": f.sample,
        }
        for f in run.findings()
    ]
    notes = [("not read", f"{src.path}: {src.error}") for src in run.analyzed() if src.error]
    notes += [("partly read", f"{src.path}: {w}") for src in run.analyzed() for w in src.warnings]
    return {
        "ran": True,
        "rows": [r for r in rows if r["severity"] != "info"],
        "info": [r for r in rows if r["severity"] == "info"],
        "sources": len(run.analyzed()),
        "notes": notes,
    }


def context(run: Run) -> dict[str, Any]:
    # long because it is one flat mapping the template reads, key by key
    j = run.model
    phases = [
        {
            "phase": p.phase,
            "result": s(p.result) or "(running)",
            "status": attempt_outcome(run, p).status
            if p.phase.startswith("attempt-")
            else phase_outcome(p).status,
            "start": s(p.start),
            "duration": p.duration_s,
            "error": s(p.error),
        }
        for p in run.phases
    ]
    configure = run.phase("configure")
    groups: dict[str, list[tuple[str, str]]] = {}
    for group, label, rel in run.artifacts():
        groups.setdefault(group, []).append((label, rel))
    for rel in run.ansible_artifacts():
        groups.setdefault("ansible", []).append((rel.split("/", 2)[-1], rel))
    return {
        "run": run,
        "j": j,
        "case": run.case,
        "verdict_class": verdict_class(run),
        "title": s(j.title),
        "svg": Markup(render_svg(run)),  # built escaped by topology.render_svg
        "phases": phases,
        "attempts": _attempt_rows(run),
        "findings": _finding_rows(run),
        "customer": _customer_rows(run),
        "configure": configure_items(configure) if configure is not None else None,
        "idempotence": idempotence_lines(run.phase("idempotence")),
        "checks": [
            {
                "name": s(c.name),
                "outcome": check_outcome(c),
                "duration": c.duration_s,
                "output": s(c.output),
            }
            for c in run.checks()
        ],
        "artifacts": groups,
        "nodes": _node_rows(run),
        "not_ready": _not_ready_rows(run),
        "impairments": impairment_lines(j),
        "params": {s(k): s(v) for k, v in j.params.items()},
        "reports": [
            r
            for r in (
                "junit.xml",
                "topology.svg",
                "allure-results/",
                "verify/verify-junit.xml",
                "report.png",
            )
            if (run.folder / r.rstrip("/")).exists()
            or r in ("junit.xml", "topology.svg", "allure-results/")
        ],
    }


def render_html(run: Run) -> str:
    return template_env().get_template("report.html.j2").render(**context(run))


def write_html(run: Run, folder: Path) -> Path:
    path = folder / "report.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render_html(run), encoding="utf-8")
    tmp.replace(path)
    return path


# how each delay backend works, for the line that names it (docs/impairments.md)
DELAY_BACKENDS = {
    "netem": "tc netem, on what the node sends",
    "nfqueue": "NFQUEUE and a helper, on what the node receives",
}


def impairment_lines(j: Journal) -> list[str]:
    """The scenario's impairments, each with the delay backend the run used for it (the probe
    picks netem or nfqueue per engine: a reader of the ticket must see which)."""
    used: dict[tuple[str | None, str | None], str] = {}
    for p in j.phases:
        if isinstance(p, ImpairPhase):
            for a in p.applied:
                if a.backend:
                    used[(a.node, a.network)] = a.backend
                    used.setdefault((a.node, None), a.backend)
    out = []
    for i in j.topology.impairments:
        node, net = i.get("node"), i.get("network")
        text = impairment_text(i) + f" on {s(node)}" + (f"/{s(net)}" if net else "")
        backend = used.get((node, net)) if i.get("delay") else None
        if backend:
            text += f" (delay by {backend}: {DELAY_BACKENDS.get(backend, backend)})"
        out.append(text)
    return out
