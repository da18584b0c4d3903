"""A live rerun (`lab reproduce FILE --on RUN`): the lab a `lab up` or a kept run left, brought
in line with the scenario as it reads now, then replayed like a fresh run.

What changed is decided in harness/run/labstate.py from the lab's lab-state.json; this module
applies it through the engine seam: changed files copied in and the node reloaded the way its
lab says (`reload:` in lab.yaml; a restart where none is given, or when it fails), changed nodes
recreated, and the topology's impairments applied again to every node that was restarted or
recreated (a restart gives a node a new network namespace). Each rerun is journaled in its own
folder, `<lab's folder>/live/<n>/`, with its reports; the lab's run.json lists them.
"""

from __future__ import annotations

import json
import posixpath
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.engine.api import Engine, RunLabels
from harness.errors import UsageError
from harness.run import faults
from harness.run.folder import LIVE_STATES, RunFolder, now_iso
from harness.run.labstate import FRESH_HINT, LabState, SyncPlan, lab_state, rerun_key
from harness.run.provision import NodeUp, OnEvent, replace_nodes, restart_node
from harness.run.trust import Trust
from harness.scenario.catalog import Catalog
from harness.scenario.load import LoadedScenario
from harness.scenario.resolved import LabImage, NodeSpec, Topology
from harness.scenario.schema import Impairment

RERUNS = "live"  # the reruns' folders, under the lab's own
RESULT_FILE = "result.json"  # a rerun's RunResult, redacted, beside its journal


@dataclass(frozen=True)
class LiveLab:
    """A lab that is up, as `lab reproduce --on` found it: its run, folder and owner."""

    run: str
    folder: Path
    owner: str
    scenario: str
    state: LabState

    @classmethod
    def of(cls, run: str, folder: Path, scenario: str) -> LiveLab:
        """The lab of run `run` (its folder from the engine's labels), checked for a rerun of
        `scenario`: left up on purpose, the same scenario, with its lab-state.json."""
        data = RunFolder(folder).read()
        state = data.get("state")
        if state not in LIVE_STATES:
            raise UsageError(
                f"run {run} is not a lab left up (state {state or 'unknown'})",
                hint="`lab up FILE` (or a kept run) makes one; `lab ls` lists them",
            )
        if data.get("scenario") != scenario:
            raise UsageError(
                f"run {run} is a lab of scenario {data.get('scenario')!r}, not {scenario!r}",
                hint=FRESH_HINT,
            )
        lab = LabState.read(folder)
        if lab is None:
            raise UsageError(
                f"run {run} has no record of what its lab was built from ({folder}/"
                "lab-state.json): it cannot be brought in line live",
                hint=FRESH_HINT,
            )
        return cls(run, folder, str(data.get("owner") or ""), scenario, lab)

    def labels(self) -> RunLabels:
        return RunLabels(self.run, self.scenario, self.owner, str(self.folder.resolve()))

    def next_folder(self) -> RunFolder:
        """`live/<n>/` for this rerun: the next free number (two reruns never share one)."""
        base = self.folder / RERUNS
        base.mkdir(exist_ok=True)
        n = 1 + max((int(p.name) for p in base.iterdir() if p.name.isdigit()), default=0)
        while True:
            path = base / str(n)
            try:
                path.mkdir()
                return RunFolder(path)
            except FileExistsError:
                n += 1

    def record(self, rerun: RunFolder, **fields: Any) -> None:
        """The rerun listed in the lab's run.json (what `lab ls` and verify-fix --on read)."""
        lab = RunFolder(self.folder)
        data = lab.read()
        reruns = [r for r in data.get("reruns") or [] if r.get("folder") != str(rerun.path)]
        reruns.append({"folder": str(rerun.path), "rerun": rerun.path.name, **fields})
        lab.write(reruns=reruns, last_rerun=now_iso())


def recorded_baseline(lab: LiveLab, key: str) -> tuple[Path, dict[str, Any]] | None:
    """The newest rerun of this lab that ran exactly what a baseline would run now (same
    rerun_key: the lab as the scenario makes it, the replay, verify, collect, params), with no
    fix, and ended with a verdict: its folder and its result.json; None when there is none."""
    for r in reversed(RunFolder(lab.folder).read().get("reruns") or []):
        if r.get("key") != key or r.get("fix") or r.get("role") not in ("reproduce", "baseline"):
            continue
        folder = Path(str(r.get("folder") or ""))
        if RunFolder(folder).read().get("state") != "done":
            continue
        try:
            data = json.loads((folder / RESULT_FILE).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("verdict") not in (None, "ERROR"):
            return folder, data
    return None


def key_now(loaded: LoadedScenario, root: Path, catalog: Catalog) -> str:
    """The rerun_key a rerun of `loaded` would record, worked out without running it: the
    topology as Run adjusts it (NET_ADMIN where impairments need it) and the image tags the
    catalog gives (content hashes, as the build would find them)."""
    from harness.images import plan_image
    from harness.scenario.schema import Reproduce

    raw = loaded.raw
    repro = raw.reproduce or Reproduce()
    topology = faults.run_topology(loaded.topology, raw.topology.impairments, repro.steps)
    images = {n.name: plan_image(catalog, n.image).tag for n in topology.nodes}
    state = lab_state(topology, images, raw, root)
    return rerun_key(state, raw, dict(loaded.params))


def live_env(engine: Engine, run: str, node: str) -> dict[str, str] | None:
    """The running container's environment (what a node's env is compared with)."""
    try:
        env = (engine.inspect(run, node).get("Config") or {}).get("Env") or []
    except Exception:  # the node is gone or the engine does not say: it is recreated
        return None
    return dict(e.split("=", 1) for e in env if "=" in e)


def not_running(engine: Engine, run: str) -> set[str]:
    """The lab's nodes the engine does not show running (recreated, as fresh would start)."""
    found = {c.node: c.status for c in engine.find(run).containers}
    return {n for n, status in found.items() if status != "running"}


@dataclass
class Sync:
    """Applies a SyncPlan to the live lab; what it did goes into the `sync` phase."""

    engine: Engine
    topology: Topology
    images: dict[str, str]
    labels: RunLabels
    catalog: Catalog
    cancel: threading.Event
    emit: OnEvent
    trust: Trust
    may_fail: frozenset[str]
    # node -> when its reload ended: what it printed before is the old configuration's
    reloaded: dict[str, datetime] = field(default_factory=dict)

    def apply(self, plan: SyncPlan) -> tuple[list[dict[str, Any]], list[NodeUp], set[str]]:
        """Replace, then copy and reload. Returns the actions, the nodes that were recreated
        or restarted (NodeUp, some maybe not ready as the symptom allows), and their names."""
        actions: list[dict[str, Any]] = []
        fresh: list[NodeUp] = []
        if plan.replace:
            t0 = time.monotonic()
            for name in plan.replace:
                self.emit({"event": "sync", "node": name, "action": "replace"})
            ups = replace_nodes(
                self.engine,
                self.topology,
                self.images,
                self.labels,
                self.cancel,
                names=list(plan.replace),
                on_event=self.emit,
                trust=self.trust,
                may_fail=self.may_fail,
            )
            fresh += ups
            took = round(time.monotonic() - t0, 3)
            for name, why in plan.replace.items():
                actions.append({"node": name, "action": "replaced", "why": why, "seconds": took})
        for name, files in plan.copy.items():
            actions.append(self._copy(self.topology.node(name), files, fresh))
        return actions, fresh, {u.name for u in fresh}

    def _copy(self, spec: NodeSpec, files: Any, fresh: list[NodeUp]) -> dict[str, Any]:
        t0 = time.monotonic()
        run = self.labels.run
        self.emit({"event": "sync", "node": spec.name, "action": "copy", "files": len(files)})
        self.engine.put_files(run, spec.name, tuple(files))
        rec: dict[str, Any] = {"node": spec.name, "files": [f.target for f in files]}
        command = self._reload_command(spec)
        if command is not None:
            res = self.engine.exec(run, spec.name, command, 60.0)
            rec["reload"] = {
                "command": command,
                "exit_code": res.exit_code,
                "output": (res.stderr or res.stdout)[-2000:],
            }
            if res.exit_code == 0:
                rec.update(action="copied+reloaded", seconds=round(time.monotonic() - t0, 3))
                self.reloaded[spec.name] = datetime.now(UTC)
                return rec
        up = restart_node(
            self.engine,
            spec,
            self.labels,
            self.cancel,
            image=self.images[spec.name],
            on_event=self.emit,
            may_fail=self.may_fail,
        )
        fresh.append(up)
        why = "its lab has no reload" if command is None else "its reload did not exit 0"
        rec.update(action="copied+restarted", why=why, seconds=round(time.monotonic() - t0, 3))
        return rec

    def _reload_command(self, spec: NodeSpec) -> str | None:
        img = spec.image
        if isinstance(img, LabImage) and img.lab in self.catalog.labs:
            return self.catalog.labs[img.lab].definition.reload
        return None


def impairments_for(impairments: list[Impairment], nodes: set[str]) -> list[Impairment]:
    """The topology impairments a restarted or recreated node lost (its side of them)."""
    return [i for i in impairments if i.node in nodes or (i.partition or "") in nodes]


def apply_impairments(
    engine: Engine,
    run: str,
    impairments: list[Impairment],
    nodes: set[str],
    addresses: dict[str, dict[str, str]],
) -> list[dict[str, Any]]:
    todo = impairments_for(impairments, nodes)
    return faults.topology_impairments(engine, run, todo, addresses) if todo else []


def log_sizes(
    engine: Engine, run: str, topology: Topology, extra_logs: list[str]
) -> dict[str, dict[str, int]]:
    """node -> log file -> its size now, before a rerun: collect then copies only what was
    appended (a fresh run's logs hold that run alone). One `find` per node, in parallel."""
    import shlex
    from concurrent.futures import ThreadPoolExecutor

    paths: dict[str, list[str]] = {n.name: list(n.log_paths) for n in topology.nodes}
    for entry in extra_logs:
        node, _, path = entry.partition(":")
        if node in paths and path:
            paths[node].append(path)

    def one(node: str) -> tuple[str, dict[str, int]]:
        quoted = " ".join(shlex.quote(p) for p in dict.fromkeys(paths[node]))
        try:
            res = engine.exec(
                run, node, f"find {quoted} -type f -printf '%s %p\\n' 2>/dev/null; true", 10.0
            )
        except Exception:  # the node is not running: it is recreated, its files start empty
            return node, {}
        sizes: dict[str, int] = {}
        for line in res.stdout.splitlines():
            size, _, path = line.partition(" ")
            if size.isdigit() and path:
                sizes[posixpath.normpath(path)] = int(size)
        return node, sizes

    todo = [n for n, p in paths.items() if p]
    if not todo:
        return {}
    with ThreadPoolExecutor(max_workers=len(todo)) as pool:
        return dict(pool.map(one, todo))
