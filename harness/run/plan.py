"""The journal's `plan`: what a run was asked to do, in the terms a person repeats it by hand
(images and how they are built, networks, nodes with their files, capabilities and
environment, configure items, the reproduce steps' commands, the symptom's probes).

Written into journal.json when the run finishes, so REPRODUCE.md (harness/reports/manual.py)
is built from the journal alone, like every other report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.images import EnvPlan, LabPlan, plan_image
from harness.journal_model import (
    EnvImagePlan,
    ImagePlan,
    Link,
    NodeFile,
    NodeHealth,
    Plan,
    PlanItem,
    PlanNode,
    PlanStep,
    TopologyNetwork,
)
from harness.run import probes
from harness.run.steps import describe as describe_step
from harness.run.steps import http_command
from harness.scenario.schema import (
    FaultStep,
    HttpStep,
    PlaybookItem,
    RunItem,
    RunStep,
    SleepStep,
    WaitStep,
)


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _images(run: Any) -> list[ImagePlan]:
    out: list[ImagePlan] = []
    seen: set[str] = set()
    for node in run.topology.nodes:
        plan = plan_image(run.catalog, node.image)
        if isinstance(plan, LabPlan) and plan.tag not in seen:
            seen.add(plan.tag)
            env = plan.env
            ctx = (
                plan.context.relative_to(run.root)
                if plan.context.is_relative_to(run.root)
                else plan.context
            )
            out.append(
                ImagePlan(
                    kind="lab",
                    tag=plan.tag,
                    env=EnvImagePlan(name=env.name, suite=env.suite, tag=env.tag),
                    build_args=[(str(k), str(v)) for k, v in plan.build_args],
                    dockerfile=str(plan.dockerfile),
                    context=str(ctx),
                )
            )
        elif isinstance(plan, EnvPlan) and plan.tag not in seen:
            seen.add(plan.tag)
            out.append(ImagePlan(kind="env", tag=plan.tag, name=plan.name))
    return out


def _nodes(run: Any) -> list[PlanNode]:
    return [
        PlanNode(
            name=node.name,
            networks=[Link(network=a.network, ipv4=a.ipv4, ipv6=a.ipv6) for a in node.networks],
            cap_add=list(node.cap_add),
            env=[(str(k), str(v)) for k, v in node.env],
            command=list(node.command) if node.command else None,
            files=[NodeFile(source=_rel(f.source, run.root), target=f.target) for f in node.files],
            depends_on=list(node.depends_on),
            options=node.settings.docker_flags(),
            entry_args=node.settings.entry_args(),
            health=NodeHealth(
                kind=node.health.kind,
                command=node.health.command,
                port=node.health.port,
                log=node.health.log,
                timeout=float(node.health.timeout),
            ),
        )
        for node in run.topology.nodes
    ]


def _configure(run: Any) -> tuple[list[PlanItem], dict[str, Any] | None]:
    items: list[PlanItem] = []
    inventory: dict[str, Any] | None = None
    for item in run.raw.configure:
        if isinstance(item, RunItem):
            items.append(
                PlanItem(run=item.run, on=[item.on] if isinstance(item.on, str) else list(item.on))
            )
        elif isinstance(item, PlaybookItem):
            from harness import ansible

            node_labs = ansible.node_labs_of(run.topology)
            if inventory is None:
                inventory = ansible.inventory(
                    run.topology, "manual", run.live.addresses, node_labs, run.live.addresses6
                )
            limit = ansible.resolve_hosts(run.topology, node_labs, item.hosts)
            items.append(PlanItem(playbook=str(item.playbook), limit=limit, vars=dict(item.vars)))
    return items, inventory


def _step(step: Any) -> PlanStep:
    sid = getattr(step, "id", None)
    if isinstance(step, RunStep):
        return PlanStep(
            kind="run",
            id=sid,
            on=step.on,
            command=step.run,
            background=bool(step.background),
            timeout=float(step.timeout),
            expect_exit=step.expect_exit,
        )
    if isinstance(step, HttpStep):
        return PlanStep(
            kind="http",
            id=sid,
            on=step.on,
            command=http_command(step),
            timeout=float(step.http.timeout) + 5,  # as the run's exec gives it
        )
    if isinstance(step, WaitStep):
        return PlanStep(
            kind="wait",
            id=sid,
            on=step.on,
            description=describe_step(step),
            wait=step.wait.model_dump(mode="json", exclude_none=True),
        )
    if isinstance(step, SleepStep):
        return PlanStep(kind="sleep", id=sid, seconds=float(step.sleep))
    assert isinstance(step, FaultStep)
    args = step.model_dump(mode="json", exclude_none=True, exclude={"id", "fault", "node"})
    return PlanStep(
        kind="fault",
        id=sid,
        on=step.node,
        fault=step.fault,
        description=describe_step(step),
        args=args,
    )


def _with_patterns(probe: dict[str, Any], run: Any) -> dict[str, Any]:
    """A `finding: log:...` probe with the regexes of the signatures it names (`patterns`), so
    REPRODUCE.sh can grep for them without the catalog; nested probes too."""
    import fnmatch

    for key in ("any", "all"):
        if key in probe:
            probe[key] = [_with_patterns(k, run) for k in probe[key]]
    finding, on = probe.get("finding"), probe.get("on")
    if isinstance(finding, str) and finding.startswith("log:") and isinstance(on, str):
        node = next((n for n in run.topology.nodes if n.name == on), None)
        lab = getattr(getattr(node, "image", None), "lab", None)
        probe["patterns"] = [
            sig.pattern
            for name, entry in sorted(run.catalog.labs.items())
            for sig in entry.definition.signatures
            if (name == lab or sig.scope == "any") and fnmatch.fnmatchcase(f"log:{sig.id}", finding)
        ]
    return probe


def plan_of(run: Any) -> Plan:
    """The plan of a live run (harness.run.execute.Run): its resolved topology, catalog and
    scenario, and the addresses the engine gave (for the Ansible inventory)."""
    raw = run.raw
    configure, inventory = _configure(run)
    reproduce = raw.reproduce
    return Plan(
        images=_images(run),
        networks=[
            TopologyNetwork(
                name=n.name,
                subnet=n.subnet,
                internal=bool(n.internal),
                mtu=n.mtu,
                ipv6=n.ipv6,
                subnet6=n.subnet6,
            )
            for n in run.topology.networks
        ],
        nodes=_nodes(run),
        configure=configure,
        inventory=inventory,
        attempts=reproduce.attempts if reproduce else 1,
        steps=[_step(s) for s in (reproduce.steps if reproduce else [])],
        symptom=[probes.describe(p) for p in (reproduce.symptom if reproduce else [])],
        probes=[
            _with_patterns(p.model_dump(mode="json", exclude_none=True, by_alias=True), run)
            for p in (reproduce.symptom if reproduce else [])
        ],
        fresh=bool(reproduce.fresh) if reproduce else False,
        project=str(Path(run.root).resolve()),
    )
