"""`lab escalate RUN --ticket T [--tracker NAME] [--note TEXT]`: bundle a run and attach it.
RUN may be a verification id (verify-...): the bundle then carries the verification and both its
runs, and the comment leads with the verdict on the fix (escalation/verification_bundle.py).

The bundle always goes to the `local` tracker first (escalations/<ticket>/), so nothing is lost
whatever the named tracker does; then to the named tracker. Attached files: the bundle, and
for people who will not extract it, the run's report.html and REPRODUCE.md (redacted copies).
A tracker that is down after its retries: exit 3, saying exactly what was and was not attached
where. A bad token or an unknown ticket: exit 2. The trackers record every file that reached a
ticket in their index (<escalations>/index.json); this verb adds one line per escalation to
<escalations>/ledger.json (run, verdict, bundle, and what failed where), which
`lab escalations` shows beside the index.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import outcomes
from harness.errors import HarnessError, InfraError, UsageError
from harness.escalation.bundle import Bundle, build_bundle
from harness.escalation.comment import ticket_comment
from harness.escalation.signing import Signer
from harness.escalation.verification_bundle import build_verification_bundle
from harness.verbs.report import find_run_folder
from harness.verbs.results import (
    EscalatedSide,
    EscalatedVerification,
    EscalateResult,
    TrackerAttached,
)
from harness.verbs.verification import find_verification_folder

if TYPE_CHECKING:
    from harness.trackers import Tracker

LEDGER = "ledger.json"
_TICKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._#-]{0,127}$")


def escalations_root(root: Path) -> Path:
    """Where the local tracker keeps tickets and the index (harness.trackers.config): the ledger
    of escalations goes beside them."""
    from harness.trackers.config import escalations_dir

    return escalations_dir(root)


def _names(res: Any, key: str) -> list[str]:
    return [str(x) for x in (getattr(res, key, None) or [])]


# -- the verb ----------------------------------------------------------------------------------


def escalate(
    run: str,
    *,
    ticket: str,
    root: Path,
    tracker: str | None = None,
    note: str | None = None,
    fix_file: Path | None = None,
    trackers_file: Path | None = None,
    signing_key: Path | None = None,
) -> EscalateResult:
    local, remote = _trackers(ticket, tracker, root, trackers_file)
    signer = _signer(signing_key)
    vfolder = find_verification_folder(run, root)
    folder = vfolder if vfolder is not None else find_run_folder(run, root)
    with tempfile.TemporaryDirectory(prefix="lab-escalate-") as tmp:
        out = Path(tmp)
        build = build_verification_bundle if vfolder is not None else build_bundle
        bundle = build(folder, root=root, out_dir=out, note=note, fix_file=fix_file, signer=signer)
        run_id = escalated_id(bundle.manifest)
        known = known_as(folder, root)  # what `lab triage` will know it by
        files = [bundle.path, *_side_files(bundle, out)]
        names = [f.name for f in files]
        comment = ticket_comment(
            bundle.manifest,
            ticket=ticket,
            bundle_name=bundle.name,
            bundle_sha256=bundle.sha256,
            attachments=names,
            reproduce_md=bundle.side.get("REPRODUCE.md", b"").decode("utf-8", "replace"),
            redact=bundle.redactor.text,
        )
        lres = local.attach(ticket, files, comment)
        results: list[dict[str, Any]] = [_record(local.name, names, lres)]
        if remote is not None:
            try:
                rres = remote.attach(ticket, files, comment)
            except UsageError as exc:
                # a refusal (bad key, no such ticket, a redirect elsewhere): the ledger says
                # so, and what reached the ticket before it (Jira: one request per file)
                results.append(_not_attached(remote.name, names, exc))
                _ledger_add(root, _entry(ticket, bundle, folder, results, note, known=known))
                raise _refused(remote.name, names, exc, kept=results[0].get("url")) from None
            except InfraError as exc:
                results.append(_not_attached(remote.name, names, exc))
            else:
                results.append(_record(remote.name, names, rres))
        _ledger_add(root, _entry(ticket, bundle, folder, results, note, known=known))
        size = bundle.path.stat().st_size
    return _result(
        ticket=ticket,
        run_id=run_id,
        folder=folder,
        bundle=bundle,
        size=size,
        signer=signer,
        names=names,
        results=results,
        comment=comment,
        root=root,
    )


def _trackers(
    ticket: str, tracker: str | None, root: Path, trackers_file: Path | None
) -> tuple[Tracker, Tracker | None]:
    """The local tracker and the remote one asked for; an unknown tracker, a missing token
    variable or a malformed ticket id exit 2 here, before anything is built."""
    if not _TICKET.match(ticket):
        raise UsageError(
            f"--ticket {ticket!r}: expected a ticket id like SUP-48213 (letters, digits, . _ - #)"
        )
    from harness.trackers import get_tracker

    local = get_tracker(None, root=root, config=trackers_file)
    remote = (
        None
        if tracker in (None, "local")
        else get_tracker(tracker, root=root, config=trackers_file)
    )
    return local, remote


def _result(
    *,
    ticket: str,
    run_id: str,
    folder: Path,
    bundle: Bundle,
    size: int,
    signer: Signer | None,
    names: list[str],
    results: list[dict[str, Any]],
    comment: str,
    root: Path,
) -> EscalateResult:
    """What the verb prints: the bundle, where it went, and the error of a tracker that failed
    (the bundle is kept in local then, and the exit code says so)."""
    outcome = escalated_outcome(bundle.manifest)
    failed = [r for r in results if r.get("error")]
    return EscalateResult.model_validate(
        {
            "ticket": ticket,
            "run": run_id,
            "scenario": bundle.manifest["run"].get("scenario"),
            "folder": str(folder),
            "verdict": outcome["verdict"],
            "rate": outcome["rate"],
            "verification": escalated_verification(bundle.manifest),
            "bundle": bundle.name,
            "sha256": bundle.sha256,
            "size": size,
            "signed_by": bundle.signed_by,
            "signing_key": str(signer.path) if signer is not None else None,
            "attachments": names,
            "trackers": results,
            "redacted": [f["path"] for f in bundle.manifest["redaction"]["files"]],
            "comment": comment,
            "error": (
                f"{failed[0]['tracker']}: {failed[0]['error']}; the bundle is kept in local "
                f"({results[0].get('url') or escalations_root(root) / ticket}); rerun this command "
                "when the tracker is back"
                if failed
                else None
            ),
            "exit_code": outcomes.exit_code("escalate", outcomes.escalate_result(bool(failed))),
        }
    )


def escalated_id(manifest: dict[str, Any]) -> str:
    """What was escalated: the verification's id, else the run's."""
    return str((manifest.get("verification") or manifest["run"])["id"])


def escalated_outcome(manifest: dict[str, Any]) -> dict[str, str | None]:
    """The verdict the ledger and the result carry: a verification's verdict on the fix with
    both sides' rates (`baseline 3/3, candidate 0/3`), else the run's verdict and rate."""
    v = manifest.get("verification")
    if not v:
        run = manifest["run"]
        return {"verdict": run.get("verdict"), "rate": run.get("rate")}
    sides = [(k, v.get(k) or {}) for k in ("baseline", "candidate")]
    return {
        "verdict": v.get("verdict"),
        "rate": ", ".join(f"{k} {s.get('rate') or '-'}" for k, s in sides),
    }


def escalated_verification(manifest: dict[str, Any]) -> EscalatedVerification | None:
    v = manifest.get("verification")
    if not v:
        return None

    def side(s: dict[str, Any]) -> EscalatedSide:
        rate = s.get("rate")
        shown = f"{rate}, {s['interval']}" if rate and s.get("interval") else rate
        return EscalatedSide(run=str(s.get("run")), verdict=s.get("verdict"), rate=shown)

    return EscalatedVerification(
        id=str(v["id"]),
        verdict=str(v.get("verdict")),
        reason=v.get("reason"),
        fix=v.get("fix"),
        baseline=side(v.get("baseline") or {}),
        candidate=side(v.get("candidate") or {}),
    )


def _side_files(bundle: Bundle, out: Path) -> list[Path]:
    """report.html and REPRODUCE.md beside the bundle, for a reader without the harness: a
    run's own, or a verification's report.html and its baseline's REPRODUCE.md."""
    manifest = bundle.manifest
    run_id = str(manifest["run"]["id"])
    report_of = escalated_id(manifest)
    files = []
    for rel, stem in (("report.html", report_of), ("REPRODUCE.md", run_id)):
        if rel in bundle.side:
            p = out / f"{stem}-{rel}"
            p.write_bytes(bundle.side[rel])
            files.append(p)
    return files


def _not_attached(tracker: str, names: list[str], exc: HarnessError) -> dict[str, Any]:
    """The ledger's record of a tracker that failed: what reached it before (Jira: one request
    per file), what did not, and why."""
    got = [str(n) for n in getattr(exc, "attached", [])]
    return {
        "tracker": tracker,
        "attached": got,
        "already": [],
        "not_attached": [n for n in names if n not in got],
        "comment": None,
        "url": None,
        "error": exc.message,
    }


def _refused(tracker: str, names: list[str], exc: UsageError, *, kept: str | None) -> UsageError:
    """A tracker's refusal as the verb's: what it got before that, and where the bundle is."""
    got = [str(n) for n in getattr(exc, "attached", [])]
    sent = (
        f"attached to {tracker} before that: {', '.join(got)}; not attached: "
        f"{', '.join(n for n in names if n not in got) or 'nothing'}"
        if got
        else f"nothing was attached to {tracker}"
    )
    return UsageError(
        f"{tracker}: {exc.message}\n{sent}; the bundle is kept in local: {kept or ''}",
        hint=exc.hint,
    )


def _signer(signing_key: Path | None) -> Signer | None:
    """--signing-key, else the local configuration's bundle_signing_key, else unsigned."""
    from harness.escalation.signing import load_signer
    from harness.localconfig import load_local_config

    if signing_key is not None:
        return load_signer(signing_key)
    configured = load_local_config().bundle_signing_key
    return load_signer(configured) if configured else None


def _record(tracker: str, names: list[str], res: Any) -> dict[str, Any]:
    attached, already = _names(res, "attached"), _names(res, "already")
    return {
        "tracker": tracker,
        "attached": attached,
        "already": already,
        "not_attached": [n for n in names if n not in attached and n not in already],
        "comment": getattr(res, "comment", None),
        "url": getattr(res, "url", None),
        "error": None,
    }


def known_as(folder: Path, root: Path) -> dict[str, Any]:
    """What `lab triage` knows this escalation by: the error and warning signatures `lab
    analyze` finds in the run that showed the problem (a verification's baseline), and the fix
    a verification found FIXED. Never fails the escalation: without tshark, say, the ledger
    records why there are no signatures."""
    from harness import verification_model as vm
    from harness.verbs.analyze import analyze

    doc = vm.load(folder)
    run_folder = (folder / doc.baseline.folder).resolve() if doc is not None else folder
    fix = None
    if doc is not None and doc.verdict == outcomes.FIXED:
        fix = f"{doc.overlay.fix} ({doc.overlay.kind or 'fix'}, verified FIXED in {doc.id})"
    try:
        found = analyze([str(run_folder)], root=root, partial=True)
    except HarnessError as exc:
        return {"signatures": [], "signatures_error": exc.message, "fix": fix}
    signatures = sorted(
        {f.signature for s in found.sources for f in s.findings if f.severity != "info"}
    )
    return {"signatures": signatures, "fix": fix}


def _entry(
    ticket: str,
    bundle: Any,
    folder: Path,
    results: list[dict[str, Any]],
    note: str | None,
    *,
    known: dict[str, Any],
) -> dict[str, Any]:
    run = bundle.manifest["run"]
    verification = escalated_verification(bundle.manifest)
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "ticket": ticket,
        "run": escalated_id(bundle.manifest),
        "scenario": run.get("scenario"),
        **escalated_outcome(bundle.manifest),
        **({"verification": verification.model_dump(mode="json")} if verification else {}),
        "bundle": bundle.name,
        "sha256": bundle.sha256,
        "signed_by": bundle.signed_by,
        "folder": str(folder),
        "note": bundle.redactor.text(note) if note else None,
        "title": run.get("title"),
        **known,
        "trackers": [
            {
                k: r.get(k)
                for k in ("tracker", "attached", "already", "not_attached", "url", "error")
            }
            for r in results
        ],
    }


def ledger_path(root: Path) -> Path:
    return escalations_root(root) / LEDGER


def read_ledger(root: Path) -> list[dict[str, Any]]:
    path = ledger_path(root)
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    entries = data.get("escalations") if isinstance(data, dict) else None
    return [e for e in entries or [] if isinstance(e, dict)]


def _ledger_add(root: Path, entry: dict[str, Any]) -> None:
    """Append under a lock (two escalations at once both land), written then renamed."""
    import fcntl

    path = ledger_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / f".{LEDGER}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        entries = read_ledger(root)
        entries.append(entry)
        tmp = path.with_name(f".{LEDGER}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"ledger_version": 1, "escalations": entries}, indent=2))
        tmp.replace(path)
    from harness.run.folder import reports_root
    from harness.store.record import index_escalations

    index_escalations(reports_root(root), [entry])  # the results store (lab serve)


def render_lines(r: EscalateResult) -> list[str]:
    """For a person: the bundle, then per tracker exactly what was and was not attached."""
    what = "verification" if r.verification else "run"
    lines = [
        f"{r.ticket}: {r.scenario} {what} {r.run}, {r.verdict} ({r.rate or '-'})",
        f"bundle    {r.bundle}  sha256 {r.sha256}  {r.size or 0} bytes",
        (
            f"signed    by {r.signed_by} ({r.signing_key})"
            if r.signed_by
            else "signed    no (no bundle_signing_key configured, no --signing-key)"
        ),
    ]
    for t in r.trackers:
        lines += _tracker_lines(t)
    if r.redacted:
        lines.append(f"redacted  {len(r.redacted)} file(s) in the bundle (manifest.json)")
    if r.error:
        lines.append(f"error: {r.error}")
    return lines


def _tracker_lines(t: TrackerAttached) -> list[str]:
    where = f"  ({t.url})" if t.url else ""
    if t.error:
        return [f"{t.tracker:<9} NOT attached: {', '.join(t.not_attached)}", f"{'':<9} {t.error}"]
    lines = []
    if t.attached:
        lines.append(f"{t.tracker:<9} attached: {', '.join(t.attached)}{where}")
    if t.already:
        lines.append(
            f"{t.tracker:<9} already there, not added again: {', '.join(t.already)}{where}"
        )
    if t.not_attached:
        lines.append(f"{t.tracker:<9} NOT attached: {', '.join(t.not_attached)}")
    return lines
