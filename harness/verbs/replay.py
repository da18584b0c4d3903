"""`lab replay BUNDLE`: check and extract an escalation bundle, rebuild its images from the
bundled labs and rerun the reproduction as the original run had it; the original verdict is
printed beside the new one. Exit code as `lab reproduce` (0 REPRODUCED, 1 NOT_REPRODUCED,
3 ERROR); a bundle that fails a check or is unsafe: exit 2, nothing run.

A verification's bundle (escalation/verification_bundle.py) reruns both sides through verify-fix
and prints the original verdict on the fix beside the new one; exit code as `lab verify-fix`.

The replay's project is the extracted bundle/project (labs, environments, scenario, fixtures),
so images are planned from the bundled labs: identical build inputs give identical content
tags, and an engine that has them reuses them.

Before a folder exists: the manifest's paths, run id and sizes (escalation/manifest_check.py)
and its signature against the team's keys (escalation/signing.py). A bundle one of those keys
signed is trusted; any other is untrusted (run/trust.py), and refused outright when keys are
configured, unless --trust. Any failure after extraction (a refusal, a scenario that does not
load, the engine, Ctrl-C) removes what was extracted.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import outcomes
from harness.errors import HarnessError, UsageError
from harness.escalation.bundle import PROJECT, sha256_file
from harness.escalation.manifest_check import BundleRefused
from harness.escalation.safe_extract import (
    BundleHead,
    Limits,
    extract_bundle,
    read_head,
    remove_extracted,
)
from harness.escalation.signing import Verification
from harness.run.folder import now_iso, reports_root
from harness.run.provision import OnEvent, _quiet
from harness.run.redact import MASK
from harness.verbs.results import ReplayOriginal, ReplayResult, RunResult, VerifyFixResult

if TYPE_CHECKING:
    from harness.run.trust import Trust
    from harness.scenario.catalog import Catalog
    from harness.scenario.load import LoadedScenario

log = logging.getLogger(__name__)


def _fresh_workdir(run_id: str) -> Path:
    base = Path.cwd() / f"replay-{run_id}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def check_signature(bundle: Path, head: BundleHead, trust: bool) -> tuple[Verification, str | None]:
    """The signature against the team's keys (local configuration bundle_public_keys), and the
    warning to print. With keys configured, a bundle none of them signed is refused (exit 2)
    unless --trust: its origin is what the keys vouch for."""
    from harness.escalation.signing import UNCHECKED, UNSIGNED, load_public_keys, verify
    from harness.localconfig import config_path, load_local_config

    cfg = load_local_config()
    keys = load_public_keys(cfg.bundle_public_keys)
    v = verify(head.raw, head.signature, keys)
    if v.verified:
        return v, None
    if keys:
        why = f"{v.status}: {v.detail}" if v.detail else v.status
        if not trust:
            raise BundleRefused(
                f"{bundle}: {why}; bundle_public_keys are configured "
                f"({cfg.source or config_path()}), so only a bundle one of them signed replays",
                hint="nothing was extracted; ask its author for a signed bundle, or pass --trust "
                "to replay it anyway (its playbooks and suites then run on this machine)",
            )
        return v, f"{why}: replayed anyway because of --trust"
    state = "unsigned" if v.status == UNSIGNED else f"{v.status} ({v.detail})"
    if v.status == UNCHECKED:
        state = f"signed by {v.key_id}, but no bundle_public_keys are configured to check it"
    how = (
        "replayed with --trust, as you chose"
        if trust
        else "replayed as untrusted (no playbooks, suites or extra capabilities without --trust; "
        "docs/escalations.md, Signing)"
    )
    return v, f"bundle {state}: its origin is unverified; {how}"


def _discard(dest: Path, created: bool) -> None:
    """A failed replay removes what it extracted; the replay run's own evidence (a journal under
    project/reports/) stays."""
    project = dest / "project"
    if not (project / "reports").is_dir():
        remove_extracted(dest, created)
        return
    for child in [*dest.iterdir(), *project.iterdir()]:
        if child in (project, project / "reports"):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _inside(base: Path, rel: str) -> Path | None:
    target = Path(os.path.normpath(base / rel))
    return target if target.is_relative_to(base) and target != base else None


def _bundled(bundle: Path, dest: Path, key: str, rel: object) -> Path:
    """A file the manifest names, which must be a regular file inside the extraction folder."""
    target = _inside(dest.resolve(), str(rel)) if isinstance(rel, str) and rel else None
    if target is None or not target.resolve().is_relative_to(dest.resolve()):
        raise BundleRefused(f"{bundle}: manifest.json: {key} {rel!r}: not a path in the bundle")
    if target.is_symlink() or not target.is_file():
        raise BundleRefused(f"{bundle}: manifest.json: {key} {rel!r}: not a file in the bundle")
    return target


def restore_secrets(project: Path, secrets_dir: Path) -> list[str]:
    """Copy the originals in secrets_dir over the bundled (redacted) copies, by relative path;
    only regular files, only inside the project. Returns the project paths replaced."""
    if not secrets_dir.is_dir():
        raise UsageError(f"--secrets-dir {secrets_dir}: not a folder")
    restored: list[str] = []
    base = project.resolve()
    for dirpath, dirnames, filenames in os.walk(secrets_dir):
        dirnames.sort()
        for name in sorted(filenames):
            src = Path(dirpath) / name
            if src.is_symlink() or not src.is_file():
                continue
            rel = src.relative_to(secrets_dir).as_posix()
            target = _inside(base, rel)
            if target is None:
                continue
            mode = target.stat().st_mode & 0o777 if target.is_file() else 0o644
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink():
                target.unlink()
            shutil.copyfile(src, target)
            os.chmod(target, mode)
            restored.append(rel)
    return restored


def _image_checks(
    manifest: dict[str, Any], loaded: dict[str, LoadedScenario], catalog: Catalog
) -> list[dict[str, Any]]:
    """Per image of the original run (a verification's: of the side that ran it): its tag then,
    and the tag the bundled labs give now."""
    from harness.images import plan_image

    by_node = {
        side: {n.name: n.image for n in scenario.topology.nodes}
        for side, scenario in loaded.items()
    }
    out: list[dict[str, Any]] = []
    for img in manifest.get("images") or []:
        nodes = img.get("nodes") or []
        side = (img.get("sides") or ["baseline"])[0]
        source = by_node.get(side, {}).get(nodes[0]) if nodes else None
        rec: dict[str, Any] = {"nodes": nodes, "original": img.get("tag")}
        if source is not None:
            try:
                rec["replay"] = plan_image(catalog, source).tag
            except HarnessError as exc:
                rec["error"] = exc.message
        rec["same_inputs"] = rec.get("replay") is not None and rec.get("replay") == img.get("tag")
        out.append(rec)
    return out


def replay(
    bundle: Path,
    *,
    workdir: Path | None = None,
    destroy: str = "always",
    secrets_dir: Path | None = None,
    params: dict[str, str] | None = None,
    limits: Limits | None = None,
    on_event: OnEvent = _quiet,
    trust: bool = False,
) -> ReplayResult:
    """Replay `bundle`; any failure on the way (a refusal, a scenario that does not load, the
    engine, Ctrl-C or SIGTERM: exit 130/143) removes what was extracted."""
    from harness.run.signals import interrupts_raise

    with interrupts_raise():  # Ctrl-C before the run's own handling is an interrupt too
        started = now_iso()
        result = _replay(
            bundle,
            workdir=workdir,
            destroy=destroy,
            secrets_dir=secrets_dir,
            params=params,
            limits=limits,
            on_event=on_event,
            trust=trust,
        )
    keep_replay(reports_root(Path.cwd()), started, result)
    return result


def keep_replay(reports: Path, started: str, result: ReplayResult) -> None:
    """<reports>/replays/<run>/replay.json, in the reports root of where `lab replay` ran (the
    replay's own run lives in its workdir), and both in the results store. Never fails the
    replay: its verdict is printed whatever happens here."""
    from harness.store.readers import read_run
    from harness.store.record import index_folder, index_rows

    folder = reports / "replays" / (result.replay.run or "bundle")
    doc = {"id": folder.name, "started": started, "ended": now_iso()}
    doc |= result.model_dump(mode="json", exclude={"exit_code", "verification"})
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / ".replay.json.tmp"
        tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(folder / "replay.json")
    except OSError as exc:
        log.warning("replay.json not written: %s", exc)
        return
    index_folder(reports, folder)
    run = Path(result.replay.folder) if result.replay.folder else None
    if run is not None and (run / "journal.json").is_file():
        row = read_run(run, reports)
        index_rows(reports, [row.model_copy(update={"parent": folder.name})] if row else [])


def _replay(
    bundle: Path,
    *,
    workdir: Path | None,
    destroy: str,
    secrets_dir: Path | None,
    params: dict[str, str] | None,
    limits: Limits | None,
    on_event: OnEvent,
    trust: bool,
) -> ReplayResult:
    limits = limits or Limits.from_env()
    # a bad or unsigned-where-keys-are-configured bundle is refused before a folder is made
    head = read_head(bundle, limits)
    signature, unverified = check_signature(bundle, head, trust)
    if unverified:
        on_event({"event": "phase", "phase": f"warning: {unverified}"})
    named = head.manifest.get("verification") or head.manifest.get("run") or {}
    dest = (workdir or _fresh_workdir(str(named.get("id") or "bundle"))).absolute()
    on_event({"event": "phase", "phase": "check and extract", "run": str(dest)})
    created = not dest.exists()
    manifest = extract_bundle(bundle, dest, limits=limits, expect=head)
    try:
        return _replay_extracted(
            bundle,
            dest,
            manifest,
            secrets_dir=secrets_dir,
            params=params,
            destroy=destroy,
            on_event=on_event,
            trust=trust,
            signature=signature,
            unverified=unverified,
            created=created,
        )
    except BaseException:  # a refusal, a scenario that does not load, the engine, Ctrl-C
        from harness.run.signals import shielded

        with shielded():  # a second Ctrl-C does not cut the cleanup short
            _discard(dest, created)
        raise


def _replay_extracted(
    bundle: Path,
    dest: Path,
    manifest: dict[str, Any],
    *,
    secrets_dir: Path | None,
    params: dict[str, str] | None,
    destroy: str,
    on_event: OnEvent,
    trust: bool,
    signature: Verification,
    unverified: str | None,
    created: bool,
) -> ReplayResult:
    run = manifest.get("run") or {}
    project = _project(dest)
    restored = restore_secrets(project, secrets_dir) if secrets_dir is not None else []
    redacted, unrestored = _redaction_warnings(manifest, restored)
    given, masked = _replay_params(run, params)
    warnings = [*([unverified] if unverified else []), *unrestored, *masked]
    level = _replay_trust(signature, trust)
    if manifest.get("verification"):
        fix_result, images = _verify_again(
            bundle, dest, manifest, project, params, level=level, destroy=destroy, on_event=on_event
        )
        result, verdict, rate = fix_result.candidate, fix_result.verdict, fix_result.rate_text()
        failed = outcomes.ERROR in (verdict, fix_result.baseline.verdict, result.verdict)
        original = _original_verification(manifest)
        exit_code = outcomes.exit_code("verify-fix", verdict)
    else:
        result, images = _reproduce_again(
            bundle, dest, project, manifest, given, level=level, destroy=destroy, on_event=on_event
        )
        fix_result, verdict, rate = None, result.verdict, result.rate
        failed = verdict == outcomes.ERROR
        original = _original(manifest)
        exit_code = outcomes.exit_code("replay", verdict)
    if failed:
        _discard(dest, created)  # the engine failed: the extraction goes, the journal stays
        warnings.append(f"the replay ended in ERROR: what was extracted into {dest} is removed")
    return ReplayResult(
        bundle=str(bundle),
        sha256=sha256_file(bundle),
        workdir=str(dest),
        project=str(project),
        scenario=run.get("scenario"),
        fix=(manifest.get("candidate") or run).get("fix"),
        original=original,
        replay=result,
        verdict=verdict,
        rate=rate,
        same_verdict=verdict == original.verdict,
        images=images,
        redacted=redacted,
        restored=restored,
        warnings=warnings,
        signature=signature.as_dict(),
        verification=fix_result,
        exit_code=exit_code,
    )


def _reproduce_again(
    bundle: Path,
    dest: Path,
    project: Path,
    manifest: dict[str, Any],
    given: dict[str, str],
    *,
    level: Trust,
    destroy: str,
    on_event: OnEvent,
) -> tuple[RunResult, list[dict[str, Any]]]:
    """A run bundle: the run again, as the original had it (its fix and overlay too)."""
    from harness.run.execute import RunOptions, run_scenario

    loaded, catalog = _load_bundled(bundle, dest, project, manifest.get("run") or {}, given)
    images = _image_checks(manifest, {"baseline": loaded}, catalog)
    result = run_scenario(
        loaded,
        root=project,
        catalog=catalog,
        opts=RunOptions(destroy=destroy, role="reproduce", on_event=on_event, trust=level),
    )
    return result, images


def _verify_again(
    bundle: Path,
    dest: Path,
    manifest: dict[str, Any],
    project: Path,
    params: dict[str, str] | None,
    *,
    level: Trust,
    destroy: str,
    on_event: OnEvent,
) -> tuple[VerifyFixResult, list[dict[str, Any]]]:
    """A verification bundle: both sides again, through verify-fix (the same verdict rule),
    into a new verification folder beside the replay's runs."""
    from harness.verbs.reproduce import verify_loaded

    check_bundled_verification(bundle, dest, manifest)
    run, cand = manifest.get("run") or {}, manifest.get("candidate") or {}
    if not cand.get("fix"):
        raise BundleRefused(f"{bundle}: manifest.json: candidate.fix: a verification needs one")
    base_loaded, catalog = _load_bundled(
        bundle,
        dest,
        project,
        {**run, "fix": None, "fix_file": None},
        _replay_params(run, params)[0],
    )
    cand_loaded, _ = _load_bundled(
        bundle, dest, project, cand, _replay_params(cand, params)[0], key="candidate"
    )
    images = _image_checks(manifest, {"baseline": base_loaded, "candidate": cand_loaded}, catalog)
    fix_file = (
        _bundled(bundle, dest, "candidate.fix_file", cand["fix_file"])
        if cand.get("fix_file")
        else None
    )
    result = verify_loaded(
        base_loaded,
        cand_loaded,
        root=project,
        level=level,
        fix_file=fix_file,
        destroy=destroy,
        on_event=on_event,
    )
    return result, images


def check_bundled_verification(bundle: Path, dest: Path, manifest: dict[str, Any]) -> None:
    """The extracted verification.json is the one the manifest describes (its id and both
    runs), and both run folders are there: an untrusted bundle's members must agree with its
    manifest before either side runs."""
    from harness import verification_model as vm

    v, run = manifest.get("verification") or {}, manifest.get("run") or {}
    cand = manifest.get("candidate") or {}
    file = _bundled(bundle, dest, "verification.folder", f"{v.get('folder')}/{vm.FILE}")
    doc = vm.load(file)
    if doc is None:
        raise BundleRefused(f"{bundle}: {v.get('folder')}/{vm.FILE}: not a verification")
    said = (doc.id, doc.baseline.run, doc.candidate.run)
    if said != (v.get("id"), run.get("id"), cand.get("id")):
        raise BundleRefused(
            f"{bundle}: {v.get('folder')}/{vm.FILE} is verification {doc.id} of runs "
            f"{doc.baseline.run} and {doc.candidate.run}, not what manifest.json says "
            f"({v.get('id')} of {run.get('id')} and {cand.get('id')})",
            hint="nothing was run; get the bundle again from the ticket",
        )
    for key, section in (("run", run), ("candidate", cand)):
        _bundled(bundle, dest, f"{key}.folder", f"{section.get('folder')}/journal.json")


def _project(dest: Path) -> Path:
    """The extracted project, with the folders a catalog needs even when the run used none."""
    project = dest / "project"
    for d in ("labs", "environments"):
        (project / d).mkdir(parents=True, exist_ok=True)
    return project


def _original_verification(manifest: dict[str, Any]) -> ReplayOriginal:
    """The bundled verification's verdict on the fix and both sides' rates."""
    from harness.verbs.escalate import escalated_outcome

    v = manifest.get("verification") or {}
    outcome = escalated_outcome(manifest)
    return ReplayOriginal(
        run=str(v.get("id")),
        verdict=outcome["verdict"],
        rate=outcome["rate"],
        reason=v.get("reason"),
        engine=None if manifest.get("engine") is None else str(manifest.get("engine")),
        harness=(manifest.get("harness") or {}).get("run"),
    )


def _original(manifest: dict[str, Any]) -> ReplayOriginal:
    """The bundled run's verdict and where it ran, to set beside the replay's."""
    run = manifest.get("run") or {}

    def text(v: object) -> str | None:
        return None if v is None else str(v)

    return ReplayOriginal(
        run=text(run.get("id")),
        verdict=text(run.get("verdict")),
        rate=text(run.get("rate")),
        reason=text(run.get("reason")),
        engine=text(manifest.get("engine")),
        harness=text((manifest.get("harness") or {}).get("run")),
    )


def _redaction_warnings(
    manifest: dict[str, Any], restored: list[str]
) -> tuple[list[str], list[str]]:
    """The project files the bundle carries redacted, and a warning when some of them were not
    restored from --secrets-dir (the replay then uses the redacted copies)."""
    redacted = [
        f["path"].removeprefix(PROJECT + "/")
        for f in (manifest.get("redaction") or {}).get("files") or []
        if str(f.get("path", "")).startswith(PROJECT + "/")
    ]
    still = [p for p in redacted if p not in restored]
    warnings: list[str] = []
    if still:
        warnings.append(
            f"{len(still)} project file(s) were redacted in the bundle ({', '.join(still[:4])}"
            f"{', ...' if len(still) > 4 else ''}): the replay uses the redacted copies, which "
            "may change its verdict; --secrets-dir DIR supplies the originals by relative path"
        )
    return redacted, warnings


def _replay_params(
    run: dict[str, Any], params: dict[str, str] | None
) -> tuple[dict[str, str], list[str]]:
    """The run's replay params under the --param values given, and a warning per param the
    run redacted that is not given again (the scenario's default is used then)."""
    masked = sorted(k for k, v in (run.get("params") or {}).items() if MASK in str(v))
    given = {**(run.get("replay_params") or {}), **(params or {})}
    warnings = [
        f"param {k} was redacted in the run: the scenario's default is used "
        f"(give --param {k}=VALUE)"
        for k in masked
        if k not in (params or {})
    ]
    return given, warnings


def _load_bundled(
    bundle: Path,
    dest: Path,
    project: Path,
    run: dict[str, Any],
    given: dict[str, str],
    *,
    key: str = "run",
) -> tuple[LoadedScenario, Catalog]:
    """The bundled scenario (with its fix and overlay) loaded from the extracted project, as
    the run (manifest section `key`) had it; refused when it has nothing to replay."""
    from harness.scenario.catalog import load_catalog
    from harness.scenario.load import load_scenario

    scenario_file = _bundled(bundle, dest, f"{key}.scenario_file", run.get("scenario_file"))
    fix_file = (
        _bundled(bundle, dest, f"{key}.fix_file", run["fix_file"]) if run.get("fix_file") else None
    )
    catalog = load_catalog(project)
    loaded = load_scenario(
        scenario_file,
        root=project,
        catalog=catalog,
        params=given,
        cell=run.get("matrix_cell") or None,
        fix=run.get("fix"),
        fix_file=fix_file,
    )
    if loaded.raw.reproduce is None or not loaded.raw.reproduce.steps:
        raise UsageError(f"{scenario_file}: no `reproduce:` steps: there is nothing to replay")
    return loaded, catalog


def _replay_trust(signature: Verification, trust: bool) -> Trust:
    """A bundle is untrusted (no playbooks or suites here, default caps only) unless one of the
    team's keys signed it, or --trust."""
    from harness.run.trust import Trust

    if signature.verified:
        return Trust(origin=f"bundle signed by {signature.key_id}")
    return Trust.of(untrusted=True, trust=trust, origin="bundle")


def _verdict_lines(r: ReplayResult) -> list[str]:
    """original and replay, one line each: a run's verdict, or a verification's on the fix."""
    o, n, v = r.original, r.replay, r.verification
    if v is None:
        width = max(len(o.run or ""), len(n.run))
        return [
            f"original  {o.verdict} ({o.rate or '-'})  run {o.run!s:<{width}}  "
            f"engine {o.engine}  - {o.reason or ''}",
            f"replay    {n.verdict} ({n.rate or '-'})  run {n.run!s:<{width}}  "
            f"engine {n.engine}  - {n.reason or ''}",
            ("same verdict" if r.same_verdict else "DIFFERENT verdict") + f"; evidence: {n.folder}",
        ]
    return [
        f"original  {o.verdict}  verification {o.run}  {o.rate}  engine {o.engine}"
        f"  - {o.reason or ''}",
        f"replay    {v.verdict}  verification {v.verification}  {v.rate_text()}  "
        f"engine {n.engine}  - {v.reason}",
        ("same verdict on the fix" if r.same_verdict else "DIFFERENT verdict on the fix")
        + f"; evidence: {v.verification_folder}",
        *(f"  {w}" for w in v.why),
    ]


def render_lines(r: ReplayResult) -> list[str]:
    """The original verdict beside the new one, then what could make them differ."""
    lines = _verdict_lines(r)
    rebuilt = [i for i in r.images if not i.get("same_inputs")]
    if rebuilt:
        lines.append(
            "images whose build inputs differ from the original run: "
            + ", ".join(
                f"{i.get('original')} -> {i.get('replay') or i.get('error')}" for i in rebuilt
            )
        )
    sig = r.signature
    if sig.get("status") == "verified":
        lines.append(f"signature verified: {sig.get('key_id')} ({sig.get('key')})")
    lines += [f"warning: {w}" for w in r.warnings]
    if r.restored:
        lines.append(f"restored from --secrets-dir: {', '.join(r.restored)}")
    return lines
