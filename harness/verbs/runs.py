"""`lab ls`, `lab down`, `lab gc`: runs as the engine knows them, found by label alone."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from harness.engine import capture, objects
from harness.engine import client as engine
from harness.engine.client import LABEL_FOLDER, LABEL_NODE, LABEL_OWNER, LABEL_RUN, LABEL_SCENARIO
from harness.errors import UsageError
from harness.run.folder import LIVE_STATES, RunFolder, run_state
from harness.run.ids import owner_alive


def _runs(client: Any) -> dict[str, objects.RunObjects]:
    found = objects.find(client)
    by_run: dict[str, objects.RunObjects] = defaultdict(objects.RunObjects)
    for c in found.containers:
        by_run[c.labels[LABEL_RUN]].containers.append(c)
    for n in found.networks:
        by_run[n.attrs.get("Labels", {})[LABEL_RUN]].networks.append(n)
    for v in found.volumes:
        by_run[v.attrs.get("Labels", {})[LABEL_RUN]].volumes.append(v)
    return dict(by_run)


def _labels(objs: objects.RunObjects) -> dict[str, str]:
    for c in objs.containers:
        return dict(c.labels)
    for n in objs.networks:
        return dict(n.attrs.get("Labels", {}))
    for v in objs.volumes:
        return dict(v.attrs.get("Labels", {}))
    return {}


def _describe(run: str, objs: objects.RunObjects) -> dict[str, Any]:
    labels = _labels(objs)
    folder = labels.get(LABEL_FOLDER)
    owner = labels.get(LABEL_OWNER, "")
    return {
        "run": run,
        "scenario": labels.get(LABEL_SCENARIO, "?"),
        "state": run_state(folder) or "unknown",
        "owner_alive": owner_alive(owner),
        "nodes": sorted(
            {"name": c.labels.get(LABEL_NODE, c.name), "status": c.status}.items()
            for c in objs.containers
        ),
        "containers": len(objs.containers),
        "running": sum(1 for c in objs.containers if c.status == "running"),
        "networks": len(objs.networks),
        "folder": folder,
    }


def list_runs() -> list[dict[str, Any]]:
    client = engine.connect()
    out = [_describe(r, objs) for r, objs in sorted(_runs(client).items())]
    for d in out:
        d["nodes"] = [dict(pairs) for pairs in d["nodes"]]
    return out


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


def _remove(client: Any, objs: objects.RunObjects, folder: str | None) -> dict[str, Any]:
    """Remove a run's objects and end its captures; a stuck network is said, never fatal
    (exit 0): it must not fail this command, a later run, or CI."""
    if folder and Path(folder).is_dir():
        capture.stop_orphans(Path(folder))  # a SIGKILLed run's tcpdumps
    removal = objects.remove_all(client, objs)
    out: dict[str, Any] = {"removed": removal.counts}
    if removal.stuck:
        out["stuck"] = [s.as_dict() for s in removal.stuck]
    if removal.disconnected:
        out["disconnected"] = removal.disconnected
    return out


def down(wanted: list[str]) -> list[dict[str, Any]]:
    client = engine.connect()
    runs = _runs(client)
    results = []
    for w in wanted:
        run = resolve_run(list(runs), w)
        objs = runs[run]
        folder = _labels(objs).get(LABEL_FOLDER)
        done = _remove(client, objs, folder)
        if folder and Path(folder).is_dir():
            RunFolder(Path(folder)).write(state="down", removed=done["removed"])
        results.append({"run": run, **done})
    return results


def gc(
    remove_all: bool = False,
    dry_run: bool = False,
    engine_url: str | None = None,
    owner: str | None = None,
    runs: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Remove runs whose owning process is gone and that were not left up on purpose.

    `engine_url`: on that engine (default: the local one). `owner`, `runs`: only runs created by
    that process (host:pid:start) or with those ids (a dead scale-out worker's cell)."""
    client = engine.connect(engine_url)
    results = []
    for run, objs in sorted(_runs(client).items()):
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
        done: dict[str, Any] = {"removed": {}} if dry_run else _remove(client, objs, folder)
        if not dry_run and folder and Path(folder).is_dir():
            RunFolder(Path(folder)).write(state="collected", removed=done["removed"])
        results.append({"run": run, "reason": reason, **done, "dry_run": dry_run})
    return results
