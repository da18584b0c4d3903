"""Bundle a verification: the verdict on a fix (FIXED / NOT_FIXED / REGRESSION / INCONCLUSIVE)
and the two runs it was decided from, so the ticket and a replay see the fix verdict, not one
side's REPRODUCED or NOT_REPRODUCED (docs/escalations.md, "Escalating a verification").

Layout, beside a run bundle's (bundle.py)::

    bundle/manifest.json        `verification` (id, verdict, both sides' rates), `run` (the
                                baseline), `candidate` (the side with the fix)
    bundle/project/...          the scenario, its fixes and overlay, and every file either used
    bundle/runs/<verify-id>/    the verification folder (verification.json and its reports)
    bundle/runs/<run-id>/       the baseline's and the candidate's run folders

The three folders keep their names side by side, so the verification's report.html links to
each side's own page (`../<run-id>/report.html`) inside the extracted bundle too. Everything is
redacted with the redactor of every variant of the scenario (both sides' secrets), and the bytes
are as deterministic as a run bundle's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness import outcomes
from harness import verification_model as vm
from harness.errors import UsageError
from harness.escalation.bundle import (
    TOP,
    Bundle,
    Member,
    build_manifest,
    find_sources,
    folder_members,
    images_and_nodes,
    mtime_of,
    project_members,
    redacted_project_files,
    run_redactor,
    run_section,
    write_bundle,
)
from harness.escalation.signing import Signer
from harness.scenario.catalog import load_catalog

RUNS = "runs"  # under bundle/: the verification folder and both run folders, by their ids


def _side_folder(vfolder: Path, side: vm.Side) -> Path:
    """A side's run folder, as the verification names it (`../<run-id>`), which must still be
    there: a bundle without one side's evidence would not support its verdict."""
    folder = (vfolder / side.folder).resolve() if side.folder else None
    if folder is None or not (folder / "journal.json").is_file():
        raise UsageError(
            f"{vfolder}: the {side.role} run {side.run} is not there any more "
            f"(looked for {vfolder / (side.folder or side.run)})",
            hint="a verification is escalated with both its runs; rerun `lab verify-fix`",
        )
    return folder


def _side_summary(side: vm.Side) -> dict[str, Any]:
    passed = [outcomes.check_passed(c.model_dump()) for c in side.checks]
    return {
        "run": side.run,
        "fix": side.fix,
        "verdict": side.verdict,
        "rate": side.rate,
        "interval": side.interval.text if side.interval else None,
        "reason": side.reason or None,
        "checks": {"passed": passed.count(True), "failed": passed.count(False)},
    }


def verification_section(doc: vm.Verification, folder: str) -> dict[str, Any]:
    """The manifest's "verification": the verdict on the fix, why, and both sides' rates."""
    return {
        "id": doc.id,
        "verdict": doc.verdict,
        "reason": doc.reason,
        "why": list(doc.why),
        "fix": doc.overlay.fix,
        "kind": doc.overlay.kind,
        "confidence": doc.confidence,
        "started": doc.started,
        "ended": doc.ended,
        "exit_code": doc.exit_code,
        "folder": folder,
        "baseline": _side_summary(doc.baseline),
        "candidate": _side_summary(doc.candidate),
    }


def _images_union(
    baseline: list[dict[str, Any]], candidate: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each image once, with the sides (`baseline`, `candidate`) whose nodes ran it."""
    out: dict[str, dict[str, Any]] = {}
    for side, images in (("baseline", baseline), ("candidate", candidate)):
        for img in images:
            key = str(img.get("tag") or img.get("bundled_tag") or img.get("nodes"))
            rec = out.setdefault(key, {**img, "sides": []})
            rec["sides"].append(side)
            rec["nodes"] = sorted({*rec["nodes"], *img.get("nodes", [])})
    return list(out.values())


def load_verification(vfolder: Path) -> vm.Verification:
    doc = vm.load(vfolder)
    if doc is None:
        raise UsageError(
            f"{vfolder}: not a verification folder: no readable {vm.FILE}",
            hint="give the id `lab verify-fix` printed (verify-...), or a run id",
        )
    return doc


def build_verification_bundle(
    vfolder: Path,
    *,
    root: Path,
    out_dir: Path,
    note: str | None = None,
    fix_file: Path | None = None,
    signer: Signer | None = None,
) -> Bundle:
    """Bundle the verification in `vfolder`, both its runs and the project files they used
    into out_dir/<scenario>-<verify-id>-<sha10>.tar.gz. Nothing is written to the folders."""
    doc = load_verification(vfolder)
    base_folder = _side_folder(vfolder, doc.baseline)
    cand_folder = _side_folder(vfolder, doc.candidate)
    catalog = load_catalog(root)
    base = find_sources(base_folder, root, catalog)
    cand = find_sources(cand_folder, root, catalog, fix_file)
    if base.scenario != cand.scenario:
        raise UsageError(
            f"{vfolder}: its baseline ran {base.scenario} and its candidate {cand.scenario}: "
            "not one verification"
        )
    redactor = run_redactor(cand)  # every variant of the scenario: both sides' secrets
    left_out: list[dict[str, str]] = []
    members: list[Member] = project_members(cand, root, redactor)
    where = {d: f"{RUNS}/{d.name}" for d in (vfolder.resolve(), base_folder, cand_folder)}
    for folder, run_json in ((base_folder, base.run_json), (cand_folder, cand.run_json)):
        members += folder_members(folder, f"{TOP}/{where[folder]}", run_json, redactor, left_out)
    members += folder_members(vfolder, f"{TOP}/{where[vfolder.resolve()]}", {}, redactor, [])
    members.sort(key=lambda m: m.name)
    manifest = build_manifest(
        base_folder, root, base, catalog, members, note=note, redactor=redactor, left_out=left_out
    )
    manifest["run"]["folder"] = where[base_folder]
    candidate = run_section(cand, cand_folder, where[cand_folder])
    cand_images, cand_nodes = images_and_nodes(
        cand, catalog, cand_folder, redacted_project_files(members)
    )
    manifest["candidate"] = {**candidate, "nodes": cand_nodes}
    manifest["images"] = _images_union(manifest["images"], cand_images)
    manifest["verification"] = verification_section(doc, where[vfolder.resolve()])
    clean: dict[str, Any] = json.loads(redactor.text(json.dumps(manifest)))
    side = {
        name: m.data
        for m in members
        for name, path in (
            ("report.html", f"{TOP}/{where[vfolder.resolve()]}/report.html"),
            ("REPRODUCE.md", f"{TOP}/{where[base_folder]}/REPRODUCE.md"),
        )
        if m.name == path
    }
    return write_bundle(
        out_dir,
        f"{doc.scenario}-{doc.id}",
        members,
        clean,
        mtime=mtime_of({"started": doc.started}),
        signer=signer,
        redactor=redactor,
        side=side,
    )
