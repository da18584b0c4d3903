"""REPRODUCE.md: the exact steps a person can follow by hand, with docker and ansible commands,
to rebuild the same lab and see the same thing, without the harness.

Built from journal.json alone, like the other reports: the run writes its `plan` (what it was
asked to do, harness/run/plan.py) into the journal; a journal without one (an older run, or a
run killed before it finished) gets the steps its header and phases allow."""

from __future__ import annotations

import shlex
from pathlib import Path

from harness import outcomes
from harness.journal_model import (
    AttemptPhase,
    BuildPhase,
    ConfigurePhase,
    ImagePlan,
    ImpairPhase,
    Journal,
    Plan,
    PlanItem,
    PlanNode,
    PlanStep,
    Reproduction,
)

PREFIX = "lab-manual"
INVENTORY = "REPRODUCE-inventory.yml"
FAULT_VERBS = ("stop", "kill", "pause", "unpause", "restart")


def _name(node: str) -> str:
    return f"{PREFIX}-{node}"


def _q(argv: list[str]) -> str:
    return shlex.join(argv)


def _exec(node: str, command: str) -> str:
    return _q(["docker", "exec", _name(node), "sh", "-c", command])


def _images(plans: list[ImagePlan]) -> list[str]:
    lines: list[str] = []
    seen: set[str] = set()
    for plan in plans:
        if plan.tag in seen:
            continue
        seen.add(plan.tag)
        if plan.kind == "built":
            lines.append(f"# {plan.tag}: built by the run (this journal holds no recipe)")
            continue
        if plan.kind == "env":
            lines.append(f"lab images build --os {plan.name} --environments-only   # -> {plan.tag}")
            continue
        env = plan.env
        if env is not None and env.tag not in seen:
            seen.add(env.tag)
            lines.append(f"# base OS: {env.name} ({env.suite}); built offline by:")
            lines.append(f"lab images build --os {env.name} --environments-only   # -> {env.tag}")
        args = [a for k, v in plan.build_args for a in ("--build-arg", f"{k}={v}")]
        ctx = Path(plan.context or ".")
        dockerfile = str(ctx / (plan.dockerfile or "Dockerfile"))
        lines.append(_q(["docker", "build", "-t", plan.tag, *args, "-f", dockerfile, str(ctx)]))
    return lines


def _node_lines(node: PlanNode, image: str) -> list[str]:
    if not node.networks:
        return []
    first, *rest = node.networks
    argv = [
        "docker",
        "create",
        "--init",
        "--name",
        _name(node.name),
        "--hostname",
        node.name,
        "--network",
        _name(first.network),
        "--network-alias",
        node.name,
    ]
    if first.ipv4:
        argv += ["--ip", first.ipv4]
    for cap in node.cap_add:
        argv += ["--cap-add", cap]
    for k, v in node.env:
        argv += ["-e", f"{k}={v}"]
    argv.append(image)
    if node.command:
        argv += list(node.command)
    lines = [_q(argv)]
    for att in rest:
        extra = ["--ip", att.ipv4] if att.ipv4 else []
        lines.append(
            _q(
                [
                    "docker",
                    "network",
                    "connect",
                    *extra,
                    "--alias",
                    node.name,
                    _name(att.network),
                    _name(node.name),
                ]
            )
        )
    for f in node.files:
        lines.append(_q(["docker", "cp", f.source, f"{_name(node.name)}:{f.target}"]))
    return lines


def _start_order(nodes: list[PlanNode]) -> list[str]:
    done: list[str] = []
    pending = list(nodes)
    while pending:
        ready = [n for n in pending if all(d in done for d in n.depends_on)]
        if not ready:  # a cycle (validation refuses it) or a dependency not in the journal
            ready = pending[:1]
        for n in ready:
            done.append(n.name)
            pending.remove(n)
    return done


def _topology(plan: Plan, images: dict[str, str]) -> list[str]:
    lines: list[str] = []
    for net in plan.networks:
        argv = ["docker", "network", "create"]
        if net.subnet:
            argv += ["--subnet", net.subnet]
        if net.internal:
            argv.append("--internal")
        lines.append(_q([*argv, _name(net.name)]))
    for node in plan.nodes:
        lines += _node_lines(node, images.get(node.name, "IMAGE"))
    lines += [_q(["docker", "start", _name(n)]) for n in _start_order(plan.nodes)]
    return lines


def _step(step: PlanStep) -> list[str]:
    on = step.on or "NODE"
    if step.kind == "run":
        cmd = _exec(on, step.command or "")
        return [
            cmd + ("   # in the background, while the next steps run" if step.background else "")
        ]
    if step.kind == "http":
        return [_exec(on, step.command or "") + "   # last line printed: the HTTP status"]
    if step.kind == "wait":
        return [f"# {step.description}: repeat until it holds"]
    if step.kind == "sleep":
        return [f"sleep {step.seconds or 0:g}"]
    if step.kind == "fault" and step.fault in FAULT_VERBS:
        return [_q(["docker", step.fault, _name(on)])]
    return [
        f"# {step.description}: the tc/iptables commands the harness ran are in "
        "journal.json (phase attempt-N, step fault.commands)"
    ]


def _configure(items: list[PlanItem]) -> list[str]:
    from harness import ansible

    lines: list[str] = []
    for item in items:
        if item.playbook is not None:
            lines.append(ansible.manual_command(item.playbook, INVENTORY, item.limit, item.vars))
        else:
            lines += [_exec(node, item.run or "") for node in item.on]
    return lines


def _seen(j: Journal) -> list[str]:
    lines: list[str] = []
    for phase in j.phases:
        if isinstance(phase, AttemptPhase) and phase.phase.startswith("attempt-"):
            state = outcomes.attempt_state(phase.error, phase.observed).lower()
            lines.append(f"- {phase.phase}: symptom {state}")
            for kid in phase.symptom.children if phase.symptom else []:
                lines += [f"  - {kid.probe}: {ev}" for ev in kid.evidence]
    return lines


def _header(j: Journal) -> list[str]:
    """The title, the case and what this run gave."""
    rep = j.reproduction or Reproduction(
        verdict=outcomes.INCOMPLETE, rate="-", reason="the run did not finish"
    )
    lines: list[str] = [f"# Reproduce `{j.scenario}` by hand", ""]
    if j.title:
        lines += [j.title, ""]
    case = j.case.model_dump(mode="json", exclude_unset=True)
    if case:
        lines += ["Case: " + ", ".join(f"{k} {v}" for k, v in case.items()), ""]
    return [
        *lines,
        f"This run ({j.run}, engine {j.engine}) gave **{rep.verdict}** "
        f"({rep.rate}): {rep.reason}." + (f" Fix applied: `{j.fix}`." if j.fix else ""),
        "",
        "Run these from the project folder, as a user who can use the Docker engine. Names start",
        f"with `{PREFIX}-` so they never clash with the harness's own runs.",
        "",
    ]


def render(j: Journal) -> str:
    """The text of REPRODUCE.md for this journal."""
    plan = j.plan or plan_from_phases(j)
    build = j.phase("build")
    images = build.images if isinstance(build, BuildPhase) else {}
    lines = _header(j)
    lines += [
        "## 1. Images",
        "",
        "```sh",
        *_images(plan.images),
        "```",
        "",
        "## 2. Networks and nodes",
        "",
        "```sh",
        *_topology(plan, images),
        "```",
        "",
    ]
    if j.topology.impairments:
        lines += ["## 3. Impairments", "", "Inside the nodes (they have NET_ADMIN):", "```sh"]
        impair = next((p for p in j.phases if isinstance(p, ImpairPhase)), None)
        for applied in impair.applied if impair else []:
            for cmd in applied.all_commands():
                text = cmd if isinstance(cmd, str) else shlex.join(cmd)
                lines.append(_exec(applied.node or "NODE", text))
        lines += ["```", ""]
    if plan.configure:
        lines += ["## 4. Configure (as the customer has it)", "", "```sh"]
        lines += [*_configure(plan.configure), "```", ""]
    lines += [f"## 5. What the customer did ({plan.attempts} time(s))", "", "```sh"]
    for step in plan.steps:
        lines += _step(step)
    lines += ["```", "", "## 6. The symptom to look for", ""]
    lines += [f"- {p}" for p in plan.symptom]
    lines += ["", "What this run saw:", "", *_seen(j)]
    if j.checks:
        lines += ["", "## 7. Checks that must stay green", ""]
        for c in j.checks:
            passed = outcomes.check_passed(c.model_dump())
            lines.append(f"- `{c.name}`: {'passed' if passed else 'FAILED'}")
    lines += [
        "",
        "## Clean up",
        "",
        "```sh",
        _q(["docker", "rm", "-f", *[_name(n.name) for n in plan.nodes]]),
        _q(["docker", "network", "rm", *[_name(n.name) for n in plan.networks]]),
        "```",
        "",
    ]
    return "\n".join(lines)


def plan_from_phases(j: Journal) -> Plan:
    """The plan a journal without one implies: its topology, the commands its first attempt
    ran, the playbooks its configure phase ran. No image recipes: the tags built are shown."""
    build = j.phase("build")
    tags = sorted(set(build.images.values())) if isinstance(build, BuildPhase) else []
    attempts = [p for p in j.phases if isinstance(p, AttemptPhase)]
    steps: list[PlanStep] = []
    symptom: list[str] = []
    if attempts:
        first = attempts[0]
        for s in first.steps:
            steps.append(
                PlanStep(
                    kind=s.kind or "run",
                    id=s.id,
                    on=s.node,
                    command=s.command,
                    background=bool(s.background),
                    description=s.description,
                    fault=s.fault.get("action") if isinstance(s.fault, dict) else None,
                )
            )
        if first.symptom is not None:
            symptom = [c.probe or "" for c in first.symptom.children] or [first.symptom.probe or ""]
    configure = next((p for p in j.phases if isinstance(p, ConfigurePhase)), None)
    items: list[PlanItem] = []
    for item in configure.items if configure else []:
        if item.playbook is not None:
            items.append(PlanItem(playbook=item.playbook, limit=item.limit, vars=item.extra_vars))
        elif item.run is not None:
            on = [item.on] if isinstance(item.on, str) else list(item.on or [])
            items.append(PlanItem(run=item.run, on=on))
    rep = j.reproduction
    return Plan(
        images=[ImagePlan(kind="built", tag=t) for t in tags],
        networks=list(j.topology.networks),
        nodes=[
            PlanNode(name=n.name, networks=n.networks, depends_on=n.depends_on)
            for n in j.topology.nodes
        ],
        configure=items,
        attempts=(rep.planned or rep.attempts or 1) if rep else max(len(attempts), 1),
        steps=steps,
        symptom=symptom,
    )


def write_manual(j: Journal, folder: Path) -> Path:
    """REPRODUCE.md (and REPRODUCE-inventory.yml when a playbook needs it) in `folder`."""
    if (
        j.plan is not None
        and j.plan.inventory is not None
        and any(i.playbook is not None for i in j.plan.configure)
    ):
        from harness import ansible

        ansible.write_inventory(j.plan.inventory, folder / INVENTORY)
    out = folder / "REPRODUCE.md"
    out.write_text(render(j))
    return out
