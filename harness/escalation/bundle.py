"""Build an escalation bundle: a run folder plus the project files that made it, redacted, with a
manifest, as one deterministic tar.gz (docs/escalations.md).

Same run, same project files, same note -> the same bytes: members in a fixed order, every
member's mtime set to the run's start, uid/gid 0 and no user names, the gzip header without a
name or time. A tracker can then tell by content that a bundle is already attached.

Layout::

    bundle/manifest.json          first member; every other member's sha256, size and mode
    bundle/manifest.sig           optional second member: the manifest's Ed25519 signature
    bundle/project/...            scenario, fix overlay, fixtures, playbooks, suites, labs,
                                  environments, schemas: a project `lab replay` runs from
    bundle/run/...                the run folder (journal, reports, captures, logs, REPRODUCE.md)
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from harness import __version__, journal_model, outcomes
from harness.errors import HarnessError, UsageError
from harness.escalation import BUNDLE_VERSION
from harness.escalation.redaction import FULL, PRECISE, ProjectRedactor
from harness.escalation.signing import Signer
from harness.images import ALWAYS_IGNORED, EnvPlan, ImagePlan, plan_image
from harness.journal_model import AnalyzePhase, BuildPhase, Journal, Reproduction
from harness.run.collect import is_masked
from harness.run.redact import MASK, Redactor, for_scenarios
from harness.scenario.catalog import Catalog, load_catalog
from harness.scenario.load import LoadedScenario, load_scenario
from harness.scenario.problems import ScenarioInvalid
from harness.scenario.resolved import EnvImage, ImageSource, LabImage
from harness.scenario.schema import PlaybookItem, SuiteItem, VerifyRun

TOP = "bundle"
MANIFEST = f"{TOP}/manifest.json"
SIGNATURE = f"{TOP}/manifest.sig"  # optional second member: an Ed25519 signature (signing.py)
PROJECT = f"{TOP}/project"
RUN = f"{TOP}/run"
KIND = "labharness-escalation"
REDACTION_NOTE = (
    "Files listed under redaction.files were redacted before bundling (their sha256 is of the "
    "redacted content): secrets in them read REDACTED (project files) or ***REDACTED*** (run "
    "folder). A replay runs with the redacted copies, which may change its verdict; give the "
    "originals with `lab replay BUNDLE --secrets-dir DIR` (DIR holds them by their path in the "
    "project, e.g. DIR/fixtures/CASE/app.conf)."
)
UNMASKED_CAPTURE = (
    "left out: this capture was never masked (its run ended without collecting, e.g."
    " SIGKILLed, or the file changed since); `lab down RUN` or `lab gc` masks it, then escalate"
    " again"
)
_SKIP_TOP = {"reports", "escalations", "node_modules"}
_MAX_WALK = 2000  # files taken from one referenced folder


@dataclass
class Member:
    name: str  # path inside the archive
    data: bytes
    mode: int
    redacted: bool = False
    rules: str = ""


@dataclass
class Bundle:
    path: Path
    sha256: str
    manifest: dict[str, Any]
    members: list[str] = field(default_factory=list)
    redactor: Redactor = field(default_factory=Redactor)
    side: dict[str, bytes] = field(default_factory=dict)  # run/REPRODUCE.md, run/report.html
    signed_by: str | None = None  # the signing key's id, when the manifest is signed

    @property
    def name(self) -> str:
        return self.path.name


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: not a JSON object")
    return data


def _ignored(rel: str) -> bool:
    import fnmatch

    return any(fnmatch.fnmatchcase(part, p) for part in rel.split("/") for p in ALWAYS_IGNORED)


class _Collector:
    """Project files by their path relative to the root, each with the redaction rules it gets."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.files: dict[str, str] = {}

    def rel(self, path: Path) -> str | None:
        full = path if path.is_absolute() else self.root / path
        full = Path(os.path.normpath(full))
        try:
            rel = full.relative_to(self.root).as_posix()
        except ValueError:
            return None
        if rel in ("", ".") or rel.split("/")[0] in _SKIP_TOP or rel.startswith("."):
            return None
        real = full.resolve()
        if real != self.root and self.root not in real.parents:
            return None  # a symlink out of the project: never bundled
        return rel

    def add(self, path: Path, rules: str = FULL) -> bool:
        rel = self.rel(path)
        if rel is None:
            return False
        full = self.root / rel
        if full.is_dir():
            return self.add_dir(full, rules)
        if not full.is_file() or _ignored(rel):
            return False
        if rel.split("/")[0] in ("labs", "environments", "schemas"):
            rules = PRECISE
        if self.files.get(rel) != PRECISE:
            self.files[rel] = rules
        return True

    def add_dir(self, folder: Path, rules: str = FULL) -> bool:
        n = 0
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not _ignored(d))
            for name in sorted(filenames):
                if n >= _MAX_WALK:
                    return True
                if self.add(Path(dirpath) / name, rules):
                    n += 1
        return n > 0


def _source_path(source: str, root: Path) -> Path:
    given = Path(source)
    for cand in [given] if given.is_absolute() else [root / given, Path.cwd() / given]:
        if cand.is_file():
            return cand.resolve()
    raise UsageError(
        f"the run's scenario {source!r} is not there any more (looked under {root})",
        hint="escalate from the project folder the run was made in (--project DIR)",
    )


def _arc_rel(path: Path, root: Path, kind: str) -> str:
    """Where a scenario or fix file goes under bundle/project/."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return f"{kind}/escalated/{path.name}"  # made outside the project: keep it beside


def _own_fixes(path: Path) -> list[str]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []
    fixes = data.get("fixes") if isinstance(data, dict) else None
    return [str(k) for k in fixes] if isinstance(fixes, dict) else []


def replay_params(params: dict[str, Any]) -> dict[str, str]:
    """The run's params as --param values; redacted ones are left to the scenario's default."""
    out: dict[str, str] = {}
    for k, v in params.items():
        if v is None or (isinstance(v, str) and MASK in v):
            continue
        out[k] = str(v).lower() if isinstance(v, bool) else str(v)
    return out


@dataclass
class RunSource:
    """What the run was made from, found from its journal and the project."""

    journal: dict[str, Any]
    run_json: dict[str, Any]
    scenario: Path
    scenario_rel: str
    fix: str | None
    fix_file: Path | None
    fix_file_rel: str | None
    params: dict[str, str]
    cell: dict[str, Any] | None
    variants: list[LoadedScenario]  # the scenario without a fix, then with each fix
    own: LoadedScenario  # as the run had it (with its fix)


def _fixes_of_run(
    source: str, scenario: Path, fix: str | None, fix_file: Path | None
) -> tuple[list[str], list[str]]:
    """The scenario's own fixes and the overlay's; refused when the run's fix is in neither."""
    own_fixes = _own_fixes(scenario)
    if fix and fix not in own_fixes and fix_file is None:
        raise UsageError(
            f"the run applied fix {fix!r}, which is not in {source}: it came from a --fix-file "
            "the journal does not name",
            hint="give the overlay file: lab escalate RUN --ticket T --fix-file FILE",
        )
    file_fixes = _own_fixes(fix_file) if fix_file is not None else []
    if fix_file is not None and fix and fix not in file_fixes and fix not in own_fixes:
        raise UsageError(f"{fix_file} has no fix {fix!r} (it has: {', '.join(file_fixes)})")
    return own_fixes, file_fixes


def find_sources(
    run_folder: Path, root: Path, catalog: Catalog, fix_file: Path | None = None
) -> RunSource:
    journal = _read_json(run_folder / "journal.json")
    run_json = _read_json(run_folder / "run.json") if (run_folder / "run.json").is_file() else {}
    source = journal.get("source") or run_json.get("source")
    if not source:
        raise UsageError(f"{run_folder}: the journal does not say which scenario ran")
    scenario = _source_path(str(source), root)
    fix = journal.get("fix")
    if fix_file is None and journal.get("fix_file"):
        fix_file = _source_path(str(journal["fix_file"]), root)
    own_fixes, file_fixes = _fixes_of_run(str(source), scenario, fix, fix_file)
    params = replay_params(dict(journal.get("params") or {}))
    cell = journal.get("matrix_cell") or None

    def load(name: str | None, with_file: bool) -> LoadedScenario:
        try:
            return load_scenario(
                scenario,
                root=root,
                catalog=catalog,
                params=params,
                cell=cell,
                fix=name,
                fix_file=fix_file if with_file else None,
            )
        except ScenarioInvalid as exc:
            first = exc.problems[0] if exc.problems else "invalid"
            raise UsageError(
                f"the run's scenario no longer loads as it ran: {first}",
                hint="escalate before changing the scenario, or restore it",
            ) from None

    variants = [load(None, False)]
    variants += [load(n, False) for n in own_fixes]
    variants += [load(n, True) for n in file_fixes if n not in own_fixes]
    own = variants[0]
    for v in variants:
        if v.fix == fix:
            own = v
    return RunSource(
        journal=journal,
        run_json=run_json,
        scenario=scenario,
        scenario_rel=_arc_rel(scenario, root, "scenarios"),
        fix=fix,
        fix_file=fix_file,
        fix_file_rel=_arc_rel(fix_file, root, "fixes") if fix_file is not None else None,
        params=params,
        cell=cell,
        variants=variants,
        own=own,
    )


def run_redactor(src: RunSource) -> Redactor:
    """Built like the run's (harness/run/redact.for_scenarios), over every variant the bundle
    carries."""
    return for_scenarios(src.variants)


def _walk_strings(data: Any) -> list[str]:
    out: list[str] = []
    if isinstance(data, dict):
        for v in data.values():
            out += _walk_strings(v)
    elif isinstance(data, list):
        for v in data:
            out += _walk_strings(v)
    elif isinstance(data, str):
        out.append(data)
    return out


def project_files(src: RunSource, root: Path) -> dict[str, str]:
    """rel path -> redaction rules, for every project file the run used."""
    c = _Collector(root)
    labs: set[str] = set()
    oses: set[str] = set()
    for v in src.variants:
        _add_node_files(c, v, labs, oses)
        _add_playbooks(c, v, root)
        _add_suites(c, v, root)
    for yf in (src.scenario, src.fix_file):
        if yf is not None:
            _add_named_paths(c, yf, root)
    for lab in sorted(labs):
        c.add_dir(root / "labs" / lab, PRECISE)
    for os_name in sorted(oses):
        c.add_dir(root / "environments" / os_name, PRECISE)
    c.add_dir(root / "schemas", PRECISE)
    # the scenario and the overlay go where the manifest says (outside the project: beside it)
    c.files.pop(_arc_rel(src.scenario, root, "scenarios"), None)
    if src.fix_file is not None and src.fix_file_rel is not None:
        c.files.pop(src.fix_file_rel, None)
    return dict(sorted(c.files.items()))


def _add_node_files(c: _Collector, v: LoadedScenario, labs: set[str], oses: set[str]) -> None:
    """Files copied into nodes; the labs and OSes the nodes are built from go in labs/oses."""
    for node in v.topology.nodes:
        for f in node.files:
            c.add(f.source)
        img = node.image
        if isinstance(img, LabImage):
            labs.add(img.lab)
            oses.add(img.os)
        elif isinstance(img, EnvImage):
            oses.add(img.os)


def _add_playbooks(c: _Collector, v: LoadedScenario, root: Path) -> None:
    """Each playbook, and its folder (templates, files, roles, vars) unless that is a lab's."""
    for item in v.raw.configure:
        if isinstance(item, PlaybookItem):
            pb = root / item.playbook
            c.add(pb)
            parent = pb.parent
            if parent.resolve() != root.resolve() and "labs" not in parent.parts:
                c.add_dir(parent)


def _add_suites(c: _Collector, v: LoadedScenario, root: Path) -> None:
    """Each verify suite and every conftest.py pytest would load for it, up to the root."""
    for s in v.raw.verify:
        if isinstance(s, VerifyRun):
            continue
        rel = s.suite if isinstance(s, SuiteItem) else s
        if c.add(root / rel):
            d = (root / rel).parent
            while d.resolve() != root.resolve() and root.resolve() in d.resolve().parents:
                c.add(d / "conftest.py")
                d = d.parent


def _add_named_paths(c: _Collector, yf: Path, root: Path) -> None:
    """Any other relative path the scenario or overlay names (a fixture a run: command
    reads...): a string that looks like a path and names a project file."""
    try:
        data = yaml.safe_load(yf.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return
    for s in _walk_strings(data):
        pathlike = "/" in s and "://" not in s and "$" not in s and len(s) < 300
        if pathlike and not s.startswith("/") and not any(ch.isspace() for ch in s):
            c.add(root / s)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode) & 0o777


def _image_ids(run_folder: Path) -> dict[str, str]:
    """node -> image id, from the `docker inspect` the run saved (artifacts/<node>/inspect.json)."""
    out: dict[str, str] = {}
    base = run_folder / "artifacts"
    if not base.is_dir():
        return out
    for f in sorted(base.glob("*/inspect.json")):
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("Image"), str):
            out[f.parent.name] = data["Image"]
    return out


def _built_tags(journal: Journal) -> dict[str, str]:
    """node -> the image tag the run's build phase used."""
    build = journal.phase("build")
    return dict(build.images) if isinstance(build, BuildPhase) else {}


def _files_of(files: Any) -> list[dict[str, Any]]:
    return [{"path": f.path, "mode": f"{f.mode:o}", "sha256": f.sha256} for f in files]


def _env_record(env: EnvPlan, folder: str) -> dict[str, Any]:
    """What rebuilds an environment image: its inputs, suite, registry image, folder, files."""
    return {
        "inputs_hash": env.inputs_hash,
        "suite": env.suite,
        "registry_image": env.registry_image,
        "folder": folder,
        "files": _files_of(env.files),
    }


def images_and_nodes(
    src: RunSource, catalog: Catalog, run_folder: Path, redacted: set[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The run's images (tag, id, build inputs) and nodes (what they ran, on which OS)."""
    tags = _built_tags(journal_model.load(run_folder / "journal.json"))
    ids = _image_ids(run_folder)
    images: dict[str, dict[str, Any]] = {}
    nodes: list[dict[str, Any]] = []
    for node in src.own.topology.nodes:
        img = node.image
        run_tag = tags.get(node.name)
        nodes.append(_node_entry(node.name, img, run_tag, ids.get(node.name), catalog))
        key = run_tag or repr(img)
        if key in images:
            images[key]["nodes"].append(node.name)
            continue
        rec: dict[str, Any] = {"tag": run_tag, "image_id": ids.get(node.name), "nodes": [node.name]}
        try:
            plan = plan_image(catalog, img)
        except HarnessError as exc:
            rec["plan_error"] = exc.message
            images[key] = rec
            continue
        touched = _image_inputs(rec, img, plan, catalog, redacted)
        rec["matches_run"] = run_tag is None or plan.tag == run_tag
        if touched:
            rec["redacted_inputs"] = sorted(touched)
        images[key] = rec
    return list(images.values()), nodes


def _node_entry(
    name: str, img: ImageSource, run_tag: str | None, image_id: str | None, catalog: Catalog
) -> dict[str, Any]:
    """What a node ran (its image as tagged and by id, lab and version) and on which OS."""
    entry: dict[str, Any] = {"name": name, "image": run_tag, "image_id": image_id}
    os_name = img.os if isinstance(img, LabImage | EnvImage) else None
    if isinstance(img, LabImage):
        entry.update(lab=img.lab, version=img.version)
    if os_name is not None:
        entry["os"] = os_name
        env = catalog.environments.get(os_name)
        if env is not None:
            d = env.definition
            entry["os_release"] = f"{d.distribution} {d.suite}"
    else:
        entry["os"] = None
        entry["os_release"] = "as in the image (not built by the harness)"
    return entry


def _image_inputs(
    rec: dict[str, Any], img: ImageSource, plan: ImagePlan, catalog: Catalog, redacted: set[str]
) -> list[str]:
    """Put the image's build inputs (by kind) into rec; return the redacted files among them."""
    if isinstance(img, LabImage):
        from harness.images import LabPlan

        assert isinstance(plan, LabPlan)
        ctx = plan.context.relative_to(catalog.root.resolve()).as_posix()
        env_rel = plan.env.folder.resolve().relative_to(catalog.root.resolve()).as_posix()
        rec.update(
            kind="lab",
            lab=plan.lab,
            version=plan.version,
            os=plan.os,
            bundled_tag=plan.tag,
            inputs_hash=plan.inputs_hash,
            context=ctx,
            dockerfile=plan.dockerfile,
            build_args=dict(plan.build_args),
            files=_files_of(plan.files),
            env={"tag": plan.env.tag, **_env_record(plan.env, env_rel)},
        )
        return [p for p in redacted if p.startswith((ctx + "/", env_rel + "/"))]
    if isinstance(img, EnvImage):
        assert isinstance(plan, EnvPlan)
        env_rel = plan.folder.resolve().relative_to(catalog.root.resolve()).as_posix()
        rec.update(
            kind="env",
            os=plan.name,
            bundled_tag=plan.tag,
            **_env_record(plan, env_rel),
        )
        return [p for p in redacted if p.startswith(env_rel + "/")]
    rec.update(kind="plain", bundled_tag=plan.tag)
    return []


def mtime_of(journal: dict[str, Any]) -> int:
    try:
        return int(datetime.fromisoformat(str(journal.get("started"))).timestamp())
    except ValueError:
        return 0


def _interval_text(rep: Reproduction) -> str | None:
    """The rate's confidence interval (`95% CI 11-60%`), computed for an older journal."""
    if rep.interval is not None:
        return rep.interval.text
    return outcomes.rate_text(rep.observed, rep.attempts).partition(", ")[2] or None


def _summary(journal: Journal, run_json: dict[str, Any]) -> dict[str, Any]:
    rep = journal.reproduction or Reproduction()
    passed = [outcomes.check_passed(c.model_dump()) for c in journal.checks]
    return {
        "verdict": rep.verdict or journal.result or run_json.get("verdict"),
        "rate": rep.rate or run_json.get("rate"),
        "interval": _interval_text(rep),
        "reason": rep.reason,
        "observed": rep.observed,
        "attempts": rep.attempts,
        "planned": rep.planned,
        "checks": {"passed": passed.count(True), "failed": passed.count(False)},
        "findings": findings_summary(journal),
    }


def findings_summary(journal: Journal) -> list[dict[str, Any]]:
    """The run's error and warning findings (its analyze phase, schema 1.6) for the ticket
    comment: signature, severity, count and where first, worst first, in a fixed order so the
    same run gives the same manifest bytes."""
    rows: list[dict[str, Any]] = []
    for phase in journal.of_kind("analyze"):
        for src in phase.sources if isinstance(phase, AnalyzePhase) else []:
            rows += [
                {
                    "signature": f.signature,
                    "severity": f.severity,
                    "count": f.count,
                    "where": f.where,
                }
                for f in src.findings
                if f.severity in ("error", "warning")
            ]
    order = ("error", "warning")
    return sorted(
        rows, key=lambda r: (order.index(r["severity"]), -r["count"], r["signature"], r["where"])
    )


def _is_capture(rel: str) -> bool:
    return rel.startswith("captures/") and rel.endswith(".pcap") and rel.count("/") == 1


def project_members(src: RunSource, root: Path, redactor: Redactor) -> list[Member]:
    """The scenario, its overlay and every project file the run used, redacted by its rules."""
    proj = ProjectRedactor(redactor)
    members: list[Member] = []

    def add_project(rel: str, path: Path, rules: str) -> None:
        raw = path.read_bytes()
        data = proj.bytes_(raw, rules)
        members.append(Member(f"{PROJECT}/{rel}", data, _mode(path), data != raw, rules))

    add_project(src.scenario_rel, src.scenario, FULL)
    if src.fix_file is not None and src.fix_file_rel is not None:
        add_project(src.fix_file_rel, src.fix_file, FULL)
    for rel, rules in project_files(src, root).items():
        add_project(rel, root / rel, rules)
    return members


def folder_members(
    folder: Path,
    prefix: str,
    run_json: dict[str, Any],
    redactor: Redactor,
    left_out: list[dict[str, str]],
) -> list[Member]:
    """A run (or verification) folder under `prefix`, every file through the run's redactor;
    a capture run.json does not record as masked is left out (appended to `left_out`)."""
    members: list[Member] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.is_symlink() or not p.is_file():
                continue
            rel = p.relative_to(folder).as_posix()
            raw = p.read_bytes()
            if _is_capture(rel) and not is_masked(rel, raw, run_json):
                left_out.append({"path": f"{prefix}/{rel}", "why": UNMASKED_CAPTURE})
                continue
            data = redactor.bytes_(raw)
            members.append(Member(f"{prefix}/{rel}", data, _mode(p), data != raw, "run"))
    return members


def collect_members(
    run_folder: Path, root: Path, src: RunSource, left_out: list[dict[str, str]] | None = None
) -> tuple[list[Member], Redactor]:
    """The bundle's members. A pcap that run.json does not record as masked, exactly these
    bytes, is left out (appended to `left_out` with why): the capture of a run that never
    collected (SIGKILLed) until `lab down`/`lab gc` masks it, or one changed since."""
    left_out = [] if left_out is None else left_out
    redactor = run_redactor(src)
    members = project_members(src, root, redactor)
    members += folder_members(run_folder, RUN, src.run_json, redactor, left_out)
    members.sort(key=lambda m: m.name)
    return members, redactor


def run_section(src: RunSource, run_folder: Path, folder: str = "run") -> dict[str, Any]:
    """The manifest's "run": what ran, from which files, with which values, and its outcome;
    `folder` is where the run folder is in the bundle (relative to bundle/)."""
    j = src.journal
    return {
        "id": j.get("run"),
        "scenario": j.get("scenario"),
        "title": j.get("title"),
        "role": j.get("role"),
        "cell": j.get("cell"),
        "scenario_file": f"project/{src.scenario_rel}",
        "fix": src.fix,
        "fix_file": f"project/{src.fix_file_rel}" if src.fix_file_rel else None,
        "params": j.get("params") or {},
        "replay_params": src.params,
        "matrix_cell": j.get("matrix_cell") or {},
        "started": j.get("started"),
        "ended": j.get("ended"),
        "folder": folder,
        **_summary(journal_model.load(run_folder / "journal.json"), src.run_json),
    }


def redacted_project_files(members: list[Member]) -> set[str]:
    """The project files (paths under project/) the bundle carries redacted."""
    return {m.name.removeprefix(PROJECT + "/") for m in members if m.redacted and m.rules != "run"}


def build_manifest(
    run_folder: Path,
    root: Path,
    src: RunSource,
    catalog: Catalog,
    members: list[Member],
    *,
    note: str | None,
    redactor: Redactor,
    left_out: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    j = src.journal
    images, nodes = images_and_nodes(src, catalog, run_folder, redacted_project_files(members))
    case = {k: v for k, v in (j.get("case") or {}).items() if v is not None}
    manifest: dict[str, Any] = {
        "kind": KIND,
        "bundle_version": BUNDLE_VERSION,
        "harness": {"bundled_by": __version__, "run": j.get("harness")},
        "engine": j.get("engine"),
        "case": case,
        "note": redactor.text(note) if note else None,
        "run": run_section(src, run_folder),
        "nodes": nodes,
        "images": images,
        "redaction": {
            "note": REDACTION_NOTE,
            "patterns": [p.pattern for p in redactor.extra],
            "files": [{"path": m.name, "rules": m.rules} for m in members if m.redacted],
            **({"left_out": left_out} if left_out else {}),
        },
        "files": [
            {
                "path": m.name,
                "sha256": sha256_bytes(m.data),
                "size": len(m.data),
                "mode": f"{m.mode:o}",
            }
            for m in members
        ],
    }
    clean: dict[str, Any] = json.loads(redactor.text(json.dumps(manifest)))
    return clean


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The manifest member's exact bytes (what a signature covers)."""
    return json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8") + b"\n"


def write_tar(
    path: Path,
    members: list[Member],
    manifest: dict[str, Any],
    mtime: int,
    signer: Signer | None = None,
) -> None:
    """The archive, byte for byte the same for the same members, manifest and key (Ed25519
    signatures are deterministic). A signature goes right after the manifest."""
    head = manifest_bytes(manifest)
    entries = [Member(MANIFEST, head, 0o644)]
    if signer is not None:
        entries.append(Member(SIGNATURE, signer.sign(head), 0o644))
    entries += members
    with (
        path.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        for m in entries:
            ti = tarfile.TarInfo(m.name)
            ti.size = len(m.data)
            ti.mode = m.mode
            ti.mtime = mtime
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            ti.type = tarfile.REGTYPE
            tar.addfile(ti, io.BytesIO(m.data))


def build_bundle(
    run_folder: Path,
    *,
    root: Path,
    out_dir: Path,
    note: str | None = None,
    fix_file: Path | None = None,
    signer: Signer | None = None,
) -> Bundle:
    """Bundle `run_folder` (and the project files under `root` it used) into out_dir/
    <scenario>-<run>-<sha10>.tar.gz, its manifest signed when a signer is given. Nothing is
    written to the run folder."""
    catalog = load_catalog(root)
    src = find_sources(run_folder, root, catalog, fix_file)
    left_out: list[dict[str, str]] = []
    members, redactor = collect_members(run_folder, root, src, left_out)
    manifest = build_manifest(
        run_folder, root, src, catalog, members, note=note, redactor=redactor, left_out=left_out
    )
    side = {
        m.name.removeprefix(RUN + "/"): m.data
        for m in members
        if m.name in (f"{RUN}/REPRODUCE.md", f"{RUN}/report.html")
    }
    stem = f"{src.journal.get('scenario')}-{src.journal.get('run')}"
    return write_bundle(
        out_dir,
        stem,
        members,
        manifest,
        mtime=mtime_of(src.journal),
        signer=signer,
        redactor=redactor,
        side=side,
    )


def write_bundle(
    out_dir: Path,
    stem: str,
    members: list[Member],
    manifest: dict[str, Any],
    *,
    mtime: int,
    signer: Signer | None,
    redactor: Redactor,
    side: dict[str, bytes],
) -> Bundle:
    """out_dir/<stem>-<sha10>.tar.gz, written then renamed, and the Bundle describing it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".bundle-{os.getpid()}.tmp"
    write_tar(tmp, members, manifest, mtime, signer)
    digest = sha256_file(tmp)
    final = out_dir / f"{stem}-{digest[:10]}.tar.gz"
    tmp.replace(final)
    head = [MANIFEST, SIGNATURE] if signer is not None else [MANIFEST]
    return Bundle(
        final,
        digest,
        manifest,
        [*head, *(m.name for m in members)],
        redactor,
        side,
        signer.key_id if signer is not None else None,
    )
