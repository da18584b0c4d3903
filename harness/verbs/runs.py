"""`lab ls`, `lab down`, `lab gc`: runs as the engine knows them, found by label alone."""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.engine.api import LABEL_FOLDER, LABEL_OWNER, LABEL_SCENARIO, Engine, RunObjects
from harness.engine.connection import connect_engine
from harness.errors import UsageError
from harness.run.folder import LIVE_STATES, RunFolder, run_state
from harness.run.ids import owner_alive
from harness.verbs.results import DownResult, GcResult, ListedRun

if TYPE_CHECKING:  # imported where used: `lab ls`/`down`/`gc` start without the redactor,
    # the scenario loader and the journal model unless a run left a pcap to mask
    from harness.run.live import LiveLab
    from harness.run.redact import Redactor


def _runs(engine: Engine) -> dict[str, RunObjects]:
    found = engine.find()
    return {run: found.of_run(run) for run in sorted(found.runs())}


def _labels(objs: RunObjects) -> dict[str, str]:
    return objs.labels()


def _describe(run: str, objs: RunObjects) -> dict[str, Any]:
    labels = _labels(objs)
    folder = labels.get(LABEL_FOLDER)
    owner = labels.get(LABEL_OWNER, "")
    return {
        "run": run,
        "scenario": labels.get(LABEL_SCENARIO, "?"),
        "state": run_state(folder) or "unknown",
        "owner_alive": owner_alive(owner),
        "nodes": sorted({"name": c.node, "status": c.status}.items() for c in objs.containers),
        "containers": len(objs.containers),
        "running": sum(1 for c in objs.containers if c.status == "running"),
        "networks": len(objs.networks),
        "folder": folder,
    }


def list_runs(engine: Engine | None = None) -> list[ListedRun]:
    engine = engine or connect_engine()
    out = [_describe(r, objs) for r, objs in sorted(_runs(engine).items())]
    for d in out:
        d["nodes"] = [dict(pairs) for pairs in d["nodes"]]
    return [ListedRun.model_validate(d) for d in out]


def resolve_run(runs: list[str], wanted: str) -> str:
    """A run id or a unique prefix of one."""
    if wanted in runs:
        return wanted
    hits = [r for r in runs if r.startswith(wanted)]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise UsageError(
            f"no run {wanted!r} on this engine", hint="`lab ls` lists the runs that are up"
        )
    raise UsageError(f"run {wanted!r} is ambiguous: {', '.join(hits)}")


def find_live(engine: Engine, wanted: str, scenario: str) -> LiveLab:
    """`--on RUN`: the lab of that run (an id or unique prefix) on this engine, checked for a
    live rerun of `scenario` (harness/run/live.py); exit 2 saying why not."""
    from harness.run.live import LiveLab

    runs = _runs(engine)
    run = resolve_run(list(runs), wanted)
    folder = _labels(runs[run]).get(LABEL_FOLDER)
    if not folder or not Path(folder).is_dir():
        raise UsageError(
            f"run {run} has no run folder on this machine ({folder or 'no folder label'})",
            hint="rerun it fresh with `lab reproduce FILE`",
        )
    return LiveLab.of(run, Path(folder), scenario)


def _scenario_redactor(folder: Path) -> tuple[Redactor, str]:
    """The run's redactor, built again from the scenario its run.json names (with the run's
    fix, params and matrix cell, as far as the journal has them: a param given on the command
    line and redacted in the journal falls back to the scenario's default); the detector
    rules alone when the scenario no longer loads. Never raises."""
    from harness import journal_model
    from harness.run.redact import MASK, Redactor, for_scenarios
    from harness.scenario.catalog import find_project_root, load_catalog
    from harness.scenario.load import load_scenario

    rf = RunFolder(folder)
    run_json = rf.read()
    journal = journal_model.load(folder / "journal.json")
    source = str(run_json.get("source") or journal.source or "")
    if not source:
        return Redactor(), "detector rules only: run.json names no scenario"
    project = run_json.get("project")
    bases = [Path(project)] if project else []
    bases.append(Path.cwd())
    given = Path(source)
    tries = [given] if given.is_absolute() else [b / given for b in bases]
    if run_json.get("scenario_file"):  # absolute, as the run had it
        tries.insert(0, Path(str(run_json["scenario_file"])))
    path = next((p for p in tries if p.is_file()), None)
    if path is None:
        return Redactor(), f"detector rules only: the scenario {source!r} is not there any more"
    try:
        root = Path(project) if project else find_project_root(path.parent)
        catalog = load_catalog(root)
        params = {
            str(k): str(v)
            for k, v in journal.params.items()
            if v is not None and MASK not in str(v)
        }
        fix_file = journal.fix_file
        kwargs: dict[str, Any] = {"root": root, "catalog": catalog, "params": params}
        kwargs["cell"] = journal.matrix_cell or None
        variants = [load_scenario(path, **kwargs)]
        fix = run_json.get("fix") or journal.fix
        if fix:
            ff = Path(fix_file) if fix_file else None
            if ff is not None and not ff.is_absolute():
                ff = root / ff
            with suppress(Exception):
                variants.append(load_scenario(path, fix=str(fix), fix_file=ff, **kwargs))
        return for_scenarios(variants), f"scenario {source}"
    except Exception as exc:  # a scenario changed since, a project moved: the rules still run
        reason = exc.__class__.__name__
        return (
            Redactor(),
            f"detector rules only: the scenario {source!r} no longer loads ({reason})",
        )


def _mask_captures(folder: Path) -> dict[str, Any] | None:
    """Mask the pcaps a run left unmasked (it was SIGKILLed: collect never ran), in place: each
    read once, the scenario's redactor built only when one needs it."""
    d = folder / "captures"
    if not d.is_dir() or not any(d.glob("*.pcap")):  # most runs: nothing to read, load nothing
        return None
    from harness.run import collect

    how: list[str] = []

    def redactor() -> Redactor:
        made, said = _scenario_redactor(folder)
        how.append(said)
        return made

    captures = collect.mask_captures(folder, redactor)
    return (
        {"captures": captures, "with": how[0] if how else "nothing to mask"} if captures else None
    )


def _remove(engine: Engine, objs: RunObjects, folder: str | None) -> dict[str, Any]:
    """Remove a run's objects, end its captures and mask the pcaps they left; a stuck network is
    said, never fatal (exit 0): it must not fail this command, a later run, or CI."""
    masked = None
    if folder and Path(folder).is_dir():
        engine.stop_orphan_captures(Path(folder))  # a SIGKILLed run's tcpdumps
        try:
            masked = _mask_captures(Path(folder))
        except OSError as exc:  # the lab still goes; the pcap stays out of any bundle
            masked = {"captures": [], "error": f"could not mask the captures: {exc.strerror}"}
    removal = engine.remove(objs)
    out: dict[str, Any] = {"removed": removal.counts}
    if masked is not None:
        out["masked"] = masked
    if removal.stuck:
        out["stuck"] = [s.as_dict() for s in removal.stuck]
    if removal.disconnected:
        out["disconnected"] = list(removal.disconnected)
    return out


def down(wanted: list[str], engine: Engine | None = None) -> list[DownResult]:
    engine = engine or connect_engine()
    runs = _runs(engine)
    results = []
    for w in wanted:
        run = resolve_run(list(runs), w)
        objs = runs[run]
        folder = _labels(objs).get(LABEL_FOLDER)
        done = _remove(engine, objs, folder)
        if folder and Path(folder).is_dir():
            RunFolder(Path(folder)).write(state="down", removed=done["removed"])
        results.append(DownResult.model_validate({"run": run, **done}))
    return results


def gc_engine_url(wanted: str | None, targets: Path | None = None) -> str | None:
    """`lab gc --engine E [--targets F]`: the URL of that engine (a URL or a targets name);
    None (the local engine) without --engine."""
    if not wanted:
        return None
    from harness.engine.connection import resolve

    return resolve(wanted, targets).url


def gc(
    *,
    remove_all: bool = False,
    dry_run: bool = False,
    engine_url: str | None = None,
    owner: str | None = None,
    runs: list[str] | None = None,
    engine: Engine | None = None,
) -> list[GcResult]:
    """Remove runs whose owning process is gone and that were not left up on purpose.

    `engine_url`: on that engine (default: the local one). `owner`, `runs`: only runs created by
    that process (host:pid:start) or with those ids (a dead scale-out worker's cell)."""
    engine = engine or connect_engine(engine_url)
    results = []
    for run, objs in sorted(_runs(engine).items()):
        labels = _labels(objs)
        if runs is not None and run not in runs and labels.get(LABEL_OWNER) != owner:
            continue
        if runs is None and owner is not None and labels.get(LABEL_OWNER) != owner:
            continue
        state = run_state(labels.get(LABEL_FOLDER))
        alive = owner_alive(labels.get(LABEL_OWNER, ""))
        if not remove_all and (alive or state in LIVE_STATES):
            continue
        reason = "all" if remove_all else f"owner gone, state {state or 'unknown'}"
        folder = labels.get(LABEL_FOLDER)
        done: dict[str, Any] = {"removed": {}} if dry_run else _remove(engine, objs, folder)
        if not dry_run and folder and Path(folder).is_dir():
            RunFolder(Path(folder)).write(state="collected", removed=done["removed"])
        results.append(
            GcResult.model_validate({"run": run, "reason": reason, **done, "dry_run": dry_run})
        )
    return results
