"""What a live lab was built from, and what a changed scenario needs done to it.

`lab-state.json` (beside a kept or `lab up` run's run.json) records, per node, the image tag it
runs, a digest of its settings, the names of its env keys and a content hash of each of its
`files:`; and digests of the networks, `configure:` (with its playbooks' folders) and the
topology's impairments. No value of the scenario is written, only digests and key names: an env
value is compared with the running container's own environment instead.

`plan_sync` compares that record with the scenario as it reads now and says what a live rerun
(`lab reproduce --on RUN`) does before its steps: files to copy in (the node then reloads the way
its lab says, or restarts), nodes to replace (a changed image, env, command, network address...),
whether configure runs again, or why the change cannot be applied live (refused: rerun fresh).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness.scenario.resolved import FileSpec, NodeSpec, Topology
from harness.scenario.schema import PlaybookItem, Scenario

STATE_FILE = "lab-state.json"
FRESH_HINT = "run `lab reproduce FILE` for a fresh lab (and `lab down RUN` for this one)"
STATE_VERSION = 1
_MAX_PLAYBOOK_FILES = 2000  # a playbook folder bigger than this is hashed by its first files
# next to a playbook kept at the project's root, only these folders are its inputs
_ROOT_PLAYBOOK_DIRS = ("roles", "templates", "files", "group_vars", "host_vars", "vars", "tasks")


class NodeState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: str  # the image tag it runs (content-hash tags: a changed lab or OS is a new tag)
    settings: str  # digest of its settings other than files and env values
    env_keys: list[str] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict)  # target -> "mode:sha256"


class LabState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = STATE_VERSION
    networks: str  # digest of the networks (names, subnets, internal)
    nodes: dict[str, NodeState]
    configure: str  # digest of configure: and every file its playbooks read
    impairments: str  # digest of topology.impairments
    # nodes a sync was changing when it stopped: in an unknown state, replaced next time
    dirty: list[str] = Field(default_factory=list)

    @classmethod
    def read(cls, folder: Path) -> LabState | None:
        """The record of the lab in `folder`; None when there is none or it cannot be read
        (a run from before this record existed: `lab reproduce --on` says to rerun fresh)."""
        try:
            return cls.model_validate_json((folder / STATE_FILE).read_bytes())
        except (OSError, ValueError):
            return None

    def write(self, folder: Path) -> None:
        tmp = folder / (STATE_FILE + ".tmp")
        tmp.write_text(self.model_dump_json(indent=2))
        tmp.replace(folder / STATE_FILE)


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def file_hash(f: FileSpec) -> str:
    """A file's mode, owner and content hash, as the node holds it once copied in."""
    h = hashlib.sha256()
    with open(f.source, "rb") as fh:
        mode = f.mode if f.mode is not None else os.fstat(fh.fileno()).st_mode & 0o777
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return f"{mode:04o}:{f.uid}:{f.gid}:{h.hexdigest()}"


def _settings(node: NodeSpec) -> str:
    """Everything of a node but its files and env values (compared on their own)."""
    data = asdict(node)
    data.pop("files", None)
    data.pop("env", None)
    return _digest(data)


def _tree(folder: Path) -> Iterable[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return files[:_MAX_PLAYBOOK_FILES]


def configure_digest(raw: Scenario, root: Path) -> str:
    """configure: as written, and the content of every file its playbooks can read: the
    playbook's folder (at the project root: the playbook and its roles/templates/... folders)."""
    h = hashlib.sha256(_digest([i.model_dump(mode="json") for i in raw.configure]).encode())
    for item in raw.configure:
        if not isinstance(item, PlaybookItem):
            continue
        book = (root / item.playbook).resolve()
        folder = book.parent
        if folder == root.resolve():
            paths: list[Path] = [book]
            for d in _ROOT_PLAYBOOK_DIRS:
                if (folder / d).is_dir():
                    paths += _tree(folder / d)
        else:
            paths = list(_tree(folder))
        for p in paths:
            try:
                h.update(
                    f"{p.relative_to(folder)}\0".encode() + hashlib.sha256(p.read_bytes()).digest()
                )
            except OSError:
                h.update(f"{p}\0unreadable".encode())
    return h.hexdigest()


def lab_state(topology: Topology, images: dict[str, str], raw: Scenario, root: Path) -> LabState:
    """The record of a lab built from `topology` with `images` (node -> tag)."""
    return LabState(
        networks=_digest([asdict(n) for n in topology.networks]),
        nodes={
            n.name: NodeState(
                image=images.get(n.name, ""),
                settings=_settings(n),
                env_keys=sorted(k for k, _ in n.env),
                files={f.target: file_hash(f) for f in n.files},
            )
            for n in topology.nodes
        },
        configure=configure_digest(raw, root),
        impairments=_digest([i.model_dump(mode="json") for i in raw.topology.impairments]),
    )


@dataclass
class SyncPlan:
    """What a live rerun does to the lab before its steps (empty: the lab already matches)."""

    refused: list[str] = field(default_factory=list)  # cannot be applied live: rerun fresh
    replace: dict[str, str] = field(default_factory=dict)  # node -> why it is recreated
    copy: dict[str, tuple[FileSpec, ...]] = field(default_factory=dict)  # node -> changed files
    configure: str | None = None  # why configure runs again (None: its inputs did not change)

    def as_dict(self) -> dict[str, Any]:
        return {
            "replace": dict(self.replace),
            "copy": {n: [f.target for f in fs] for n, fs in self.copy.items()},
            "configure": self.configure,
        }

    def empty(self) -> bool:
        return not (self.replace or self.copy or self.configure)


def _node_change(
    old: NodeState, new: NodeState, spec: NodeSpec, live_env: dict[str, str] | None
) -> str | None:
    """Why this node must be recreated (None: at most its files changed)."""
    if old.image != new.image:
        return "its image changed (lab, version or OS)"
    if old.settings != new.settings:
        return "its settings changed (command, networks, health, capabilities or depends_on)"
    gone = sorted(set(old.env_keys) - set(new.env_keys))
    if gone:
        return f"env {', '.join(gone)} removed"
    if live_env is None:
        return "its environment cannot be read"
    changed = sorted(k for k, v in spec.env if live_env.get(k) != v)
    if changed:
        return f"env {', '.join(changed)} changed"  # names only: a value may be a secret
    removed = sorted(set(old.files) - set(new.files))
    if removed:
        return f"files {', '.join(removed)} no longer in the scenario"
    return None


def plan_sync(
    old: LabState,
    new: LabState,
    topology: Topology,
    live_env: Callable[[str], dict[str, str] | None],
    not_running: Iterable[str] = (),
) -> SyncPlan:
    """Compare the lab's record with the scenario now. `live_env(node)`: the running
    container's environment (None when it cannot be read); `not_running`: nodes that are
    not running on the engine (recreated, as a fresh run would start them)."""
    plan = SyncPlan()
    if old.networks != new.networks:
        plan.refused.append("the networks changed (a network added, removed or renumbered)")
    added = sorted(set(new.nodes) - set(old.nodes))
    gone = sorted(set(old.nodes) - set(new.nodes))
    if added:
        plan.refused.append(f"node(s) added: {', '.join(added)}")
    if gone:
        plan.refused.append(f"node(s) removed: {', '.join(gone)}")
    if old.impairments != new.impairments:
        plan.refused.append("topology.impairments changed")
    if plan.refused:
        return plan
    down = set(not_running)
    for spec in topology.nodes:
        name = spec.name
        o, n = old.nodes[name], new.nodes[name]
        why = (
            "a previous live rerun stopped while changing it"
            if name in old.dirty
            else "it is not running"
            if name in down
            else _node_change(o, n, spec, live_env(name))
        )
        if why is not None:
            plan.replace[name] = why
            continue
        changed = tuple(f for f in spec.files if o.files.get(f.target) != n.files[f.target])
        if changed:
            plan.copy[name] = changed
    if old.configure != new.configure:
        plan.configure = "configure: or a file its playbooks read changed"
    elif plan.replace and has_configure(new):
        plan.configure = "node(s) recreated: " + ", ".join(plan.replace)
    return plan


_EMPTY = hashlib.sha256(_digest([]).encode()).hexdigest()  # configure_digest of no configure:


def has_configure(state: LabState) -> bool:
    return state.configure != _EMPTY


def rerun_key(state: LabState, raw: Scenario, params: dict[str, Any]) -> str:
    """What a live rerun's verdict depends on: the lab it ran on (as the scenario made it) and
    the replay, verify and collect sections with the params. Two reruns with the same key ran
    the same thing on the same lab (verify-fix --on reuses a recorded baseline by it)."""
    return _digest(
        {
            "lab": state.model_dump(exclude={"dirty"}),
            "reproduce": raw.reproduce.model_dump(mode="json") if raw.reproduce else None,
            "verify": [v if isinstance(v, str) else v.model_dump(mode="json") for v in raw.verify],
            "collect": raw.collect.model_dump(mode="json") if raw.collect else None,
            "params": params,
        }
    )


def refuse(plan: SyncPlan, run: str) -> None:
    """A change that cannot be applied to a live lab: UsageError (exit 2), rerun fresh."""
    from harness.errors import UsageError

    if plan.refused:
        raise UsageError(
            f"the scenario changed in a way lab {run} cannot take live:\n  "
            + "\n  ".join(plan.refused),
            hint=FRESH_HINT,
        )


def refuse_early(old: LabState, topology: Topology, raw: Scenario, root: Path, run: str) -> None:
    """What no live rerun can take (networks, nodes added or removed, impairments), refused
    before the rerun makes a folder or touches the lab."""
    refuse(plan_sync(old, lab_state(topology, {}, raw, root), topology, lambda _: {}), run)
