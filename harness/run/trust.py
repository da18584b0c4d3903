"""How far a run trusts its scenario, and what an untrusted one is refused before anything starts.

A scenario is trusted when it is the engineer's own (`lab reproduce/verify-fix/up/matrix` of a
file, the default). It is untrusted when it came from elsewhere: every `lab replay` of a bundle,
and any run given `--untrusted`. A scenario file cannot mark itself: trust is about where a file
came from, which only the engineer knows, and a file that could say "trusted" would be obeyed by
exactly the files that should not be (docs/security.md).

An untrusted run, unless the engineer passes `--trust`:

- runs none of its configure playbooks (ansible-playbook runs on this machine, and
  `hosts: localhost` or `delegate_to: localhost` reaches it) and none of its verify suites
  (pytest imports them, and any conftest.py beside them, on this machine). Plain `run:`
  commands stay allowed: they execute inside the nodes;
- gets only localconfig.DEFAULT_CAPABILITIES: the local configuration's allow_capabilities are
  for the engineer's own scenarios.

Each refusal is a located Problem (file:line:col), raised together as ScenarioInvalid (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.capabilities import normalise, refused, why
from harness.errors import UsageError
from harness.localconfig import DEFAULT_CAPABILITIES, allowed_capabilities
from harness.scenario.load import LoadedScenario
from harness.scenario.problems import Problem, ScenarioInvalid, display_path
from harness.scenario.resolved import LabImage, Topology
from harness.scenario.schema import PlaybookItem, VerifyRun
from harness.scenario.yamlpos import Located, YPath, load_yaml

TRUST_HINT = "pass --trust to run it on this machine"


@dataclass(frozen=True)
class Trust:
    """Where the scenario came from, and whether the engineer chose to trust it anyway."""

    untrusted: bool = False
    override: bool = False  # --trust
    origin: str = ""  # why it is untrusted: "bundle" or "--untrusted"

    @classmethod
    def of(cls, *, untrusted: bool, trust: bool, origin: str = "--untrusted") -> Trust:
        if not untrusted:
            return cls()  # --trust alone changes nothing: the scenario is the engineer's own
        return cls(untrusted=True, override=trust, origin=origin)

    @property
    def restricted(self) -> bool:
        """True when the untrusted rules apply (untrusted, and no --trust)."""
        return self.untrusted and not self.override

    @property
    def level(self) -> str:
        if not self.untrusted:
            return "trusted"
        return "untrusted, run with --trust" if self.override else "untrusted"

    def capabilities(self) -> frozenset[str]:
        """The capabilities a node of this run may get."""
        return DEFAULT_CAPABILITIES if self.restricted else allowed_capabilities()

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.level, "origin": self.origin or None, "override": self.override}


TRUSTED = Trust()


class _Locator:
    """Positions in the scenario file (and the fix file, when one is applied)."""

    def __init__(self, loaded: LoadedScenario, fix_file: str | None) -> None:
        self.loaded = loaded
        self.file, self.tree = _located(loaded.path)
        self.fix_file, self.fix_tree = _located(Path(fix_file)) if fix_file else ("", None)

    def at(self, *paths: YPath) -> tuple[str, int, int]:
        for tree, file in ((self.tree, self.file), (self.fix_tree, self.fix_file)):
            if tree is None:
                continue
            for p in paths:
                if tree.has(p):
                    return (file, *tree.value_pos(p))
        return self.file, 1, 1

    def own_count(self, key: str) -> int:
        data = self.tree.data if self.tree is not None else None
        items = data.get(key) if isinstance(data, dict) else None
        return len(items) if isinstance(items, list) else 0


def _located(path: Path) -> tuple[str, Located | None]:
    file = display_path(path) if path.is_absolute() else str(path)
    try:
        located, _ = load_yaml(path.read_text(encoding="utf-8"), file)
    except (OSError, UnicodeDecodeError):
        return file, None
    return file, located


def host_code_problems(
    loaded: LoadedScenario, trust: Trust, fix_file: str | None = None
) -> list[Problem]:
    """Every playbook and verify suite an untrusted run would run on this machine."""
    if not trust.restricted:
        return []
    where = _Locator(loaded, fix_file)
    why_untrusted = f"this scenario is untrusted ({trust.origin or 'untrusted'})"
    out: list[Problem] = []
    own = where.own_count("configure")
    for i, item in enumerate(loaded.raw.configure):
        if not isinstance(item, PlaybookItem):
            continue
        paths: list[YPath] = [("configure", i, "playbook")] if i < own else []
        if loaded.fix is not None:
            paths.append(("fixes", loaded.fix, "configure", i - own, "playbook"))
        out.append(
            Problem(
                *where.at(*paths),
                f"configure playbook {item.playbook!r} would run ansible-playbook on this "
                f"machine (hosts: localhost or delegate_to reach it): {why_untrusted}; "
                f"{TRUST_HINT}",
            )
        )
    for i, v in enumerate(loaded.raw.verify):
        if isinstance(v, VerifyRun):
            continue  # runs inside a node
        suite = v if isinstance(v, str) else v.suite
        out.append(
            Problem(
                *where.at(("verify", i, "suite"), ("verify", i)),
                f"verify suite {suite!r} would run pytest on this machine (the suite and any "
                f"conftest.py beside it are imported here): {why_untrusted}; {TRUST_HINT}",
            )
        )
    return out


def capability_problems(
    loaded: LoadedScenario, topology: Topology, trust: Trust, fix_file: str | None = None
) -> list[Problem]:
    """Every capability a node would get beyond what this run allows, located at the node's
    cap_add item (or its `lab`, when the lab asks for it)."""
    allowed = trust.capabilities()
    where: _Locator | None = None
    out: list[Problem] = []
    for node in topology.nodes:
        for cap in refused(node.cap_add, allowed):
            where = where or _Locator(loaded, fix_file)
            npath: YPath = ("topology", "nodes", node.name)
            written = _written_caps(where, npath)
            paths: list[YPath] = [(*npath, "cap_add", k) for k, c in written if c == cap]
            lab_name = node.image.lab if isinstance(node.image, LabImage) else None
            lab = f"lab {lab_name!r} asks for {cap}; " if lab_name and not paths else ""
            paths += [(*npath, "lab"), npath]
            out.append(
                Problem(
                    *where.at(*paths),
                    f"node {node.name!r}: {lab}{why(cap, untrusted=trust.restricted)}",
                )
            )
    return out


def _written_caps(where: _Locator, npath: YPath) -> list[tuple[int, str]]:
    tree = where.tree
    if tree is None:
        return []
    node: Any = tree.data
    for key in npath:
        node = node.get(key) if isinstance(node, dict) else None
    caps = node.get("cap_add") if isinstance(node, dict) else None
    if not isinstance(caps, list):
        return []
    return [(k, normalise(c)) for k, c in enumerate(caps) if isinstance(c, str)]


def enforce(
    loaded: LoadedScenario, topology: Topology, trust: Trust, fix_file: str | None = None
) -> None:
    """Refuse, before a folder or a container exists, what this run may not do here."""
    problems = host_code_problems(loaded, trust, fix_file)
    problems += capability_problems(loaded, topology, trust, fix_file)
    if problems:
        raise ScenarioInvalid(problems)


def enforce_capabilities(
    loaded: LoadedScenario, topology: Topology, trust: Trust, fix_file: str | None = None
) -> None:
    """Only the capability part of `enforce` (`lab up` runs no playbooks or suites)."""
    problems = capability_problems(loaded, topology, trust, fix_file)
    if problems:
        raise ScenarioInvalid(problems)


def check_capabilities(topology: Topology, trust: Trust) -> None:
    """The last check before the engine creates containers (provision.bring_up): whatever path
    a topology took to get here (a bundle, a caller that skipped validation), no node gets a
    capability outside what `trust` allows."""
    allowed = trust.capabilities()
    bad = [(n.name, c) for n in topology.nodes for c in refused(n.cap_add, allowed)]
    if bad:
        raise UsageError(
            "; ".join(f"node {n!r}: {why(c, untrusted=trust.restricted)}" for n, c in bad),
            hint="nothing was created",
        )
