"""`lab replay BUNDLE`: check and extract an escalation bundle, rebuild its images from the
bundled labs and rerun the reproduction as the original run had it; the original verdict is
printed beside the new one. Exit code as `lab reproduce` (0 REPRODUCED, 1 NOT_REPRODUCED,
3 ERROR); a bundle that fails a check or is unsafe: exit 2, nothing run.

The replay's project is the extracted bundle/project (labs, environments, scenario, fixtures),
so images are planned from the bundled labs: identical build inputs give identical content
tags, and an engine that has them reuses them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, UsageError
from harness.escalation.bundle import PROJECT, sha256_file
from harness.escalation.safe_extract import Limits, extract_bundle, read_manifest
from harness.run.provision import OnEvent, _quiet
from harness.run.redact import MASK


def _fresh_workdir(run_id: str) -> Path:
    base = Path.cwd() / f"replay-{run_id}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _inside(base: Path, rel: str) -> Path | None:
    target = Path(os.path.normpath(base / rel))
    return target if target.is_relative_to(base) and target != base else None


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


def _image_checks(manifest: dict[str, Any], loaded: Any, catalog: Any) -> list[dict[str, Any]]:
    """Per image of the original run: its tag then, and the tag the bundled labs give now."""
    from harness.images import plan_image

    by_node = {n.name: n.image for n in loaded.topology.nodes}
    out: list[dict[str, Any]] = []
    for img in manifest.get("images") or []:
        nodes = img.get("nodes") or []
        source = by_node.get(nodes[0]) if nodes else None
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
) -> dict[str, Any]:
    from harness.run import verdicts
    from harness.run.execute import RunOptions, run_scenario
    from harness.run.trust import Trust
    from harness.scenario.catalog import load_catalog
    from harness.scenario.load import load_scenario

    limits = limits or Limits.from_env()
    head = read_manifest(bundle, limits)  # a bad bundle is refused before a folder is made
    run = head.get("run") or {}
    dest = (workdir or _fresh_workdir(str(run.get("id") or "bundle"))).absolute()
    on_event({"event": "phase", "phase": "check and extract", "run": str(dest)})
    manifest = extract_bundle(bundle, dest, limits=limits)
    run = manifest.get("run") or {}
    project = dest / "project"
    for d in ("labs", "environments"):
        (project / d).mkdir(parents=True, exist_ok=True)
    restored = restore_secrets(project, secrets_dir) if secrets_dir is not None else []
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
    masked = sorted(k for k, v in (run.get("params") or {}).items() if MASK in str(v))
    given = {**(run.get("replay_params") or {}), **(params or {})}
    for k in masked:
        if k not in (params or {}):
            warnings.append(
                f"param {k} was redacted in the run: the scenario's default is used "
                f"(give --param {k}=VALUE)"
            )
    scenario_file = dest / str(run.get("scenario_file") or "")
    if (
        not scenario_file.is_file()
        or _inside(dest.resolve(), str(run.get("scenario_file"))) is None
    ):
        raise UsageError(
            f"{bundle}: the manifest's scenario_file {run.get('scenario_file')!r} "
            "is not in the bundle"
        )
    fix_file = dest / str(run["fix_file"]) if run.get("fix_file") else None
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
    images = _image_checks(manifest, loaded, catalog)
    result = run_scenario(
        loaded,
        root=project,
        catalog=catalog,
        opts=RunOptions(
            destroy=destroy,
            role="reproduce",
            on_event=on_event,
            # a bundle is always untrusted: no playbooks or suites here, default caps only
            trust=Trust.of(untrusted=True, trust=trust, origin="bundle"),
        ),
    )
    original = {
        "run": run.get("id"),
        "verdict": run.get("verdict"),
        "rate": run.get("rate"),
        "reason": run.get("reason"),
        "engine": manifest.get("engine"),
        "harness": (manifest.get("harness") or {}).get("run"),
    }
    return {
        "bundle": str(bundle),
        "sha256": sha256_file(bundle),
        "workdir": str(dest),
        "project": str(project),
        "scenario": run.get("scenario"),
        "fix": run.get("fix"),
        "original": original,
        "replay": result,
        "verdict": result["verdict"],
        "rate": result["rate"],
        "same_verdict": result["verdict"] == original["verdict"],
        "images": images,
        "redacted": redacted,
        "restored": restored,
        "warnings": warnings,
        "exit_code": verdicts.EXIT[result["verdict"]],
    }


def render_lines(r: dict[str, Any]) -> list[str]:
    """The original verdict beside the new one, then what could make them differ."""
    o, n = r["original"], r["replay"]
    width = max(len(str(o.get("run") or "")), len(str(n.get("run") or "")))
    lines = [
        f"original  {o['verdict']} ({o.get('rate') or '-'})  run {o.get('run')!s:<{width}}  "
        f"engine {o.get('engine')}  - {o.get('reason') or ''}",
        f"replay    {n['verdict']} ({n.get('rate') or '-'})  run {n.get('run')!s:<{width}}  "
        f"engine {n.get('engine')}  - {n.get('reason') or ''}",
        ("same verdict" if r["same_verdict"] else "DIFFERENT verdict")
        + f"; evidence: {n.get('folder')}",
    ]
    rebuilt = [i for i in r.get("images") or [] if not i.get("same_inputs")]
    if rebuilt:
        lines.append(
            "images whose build inputs differ from the original run: "
            + ", ".join(
                f"{i.get('original')} -> {i.get('replay') or i.get('error')}" for i in rebuilt
            )
        )
    lines += [f"warning: {w}" for w in r.get("warnings") or []]
    if r.get("restored"):
        lines.append(f"restored from --secrets-dir: {', '.join(r['restored'])}")
    return lines
