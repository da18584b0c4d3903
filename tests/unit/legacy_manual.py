"""The REPRODUCE.md writer as it was before it moved to harness/reports/manual.py (built from
the live run then, from journal.json now), kept verbatim but for the Reproduction import, so
tests/unit/test_journal_model.py can prove the new writer gives the same text."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from harness.images import EnvPlan, LabPlan, plan_image
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

PREFIX = "lab-manual"


def _name(node: str) -> str:
    return f"{PREFIX}-{node}"


def _q(argv: list[str]) -> str:
    return shlex.join(argv)


def _images(run: Any) -> list[str]:
    lines: list[str] = []
    seen: set[str] = set()
    for node in run.topology.nodes:
        plan = plan_image(run.catalog, node.image)
        if isinstance(plan, LabPlan) and plan.tag not in seen:
            seen.add(plan.tag)
            env = plan.env
            if env.tag not in seen:
                seen.add(env.tag)
                lines.append(f"# base OS: {env.name} ({env.suite}); built offline by:")
                lines.append(
                    f"lab images build --os {env.name} --environments-only   # -> {env.tag}"
                )
            args = [a for k, v in plan.build_args for a in ("--build-arg", f"{k}={v}")]
            ctx = (
                plan.context.relative_to(run.root)
                if plan.context.is_relative_to(run.root)
                else plan.context
            )
            lines.append(
                _q(
                    [
                        "docker",
                        "build",
                        "-t",
                        plan.tag,
                        *args,
                        "-f",
                        str(ctx / plan.dockerfile),
                        str(ctx),
                    ]
                )
            )
        elif isinstance(plan, EnvPlan) and plan.tag not in seen:
            seen.add(plan.tag)
            lines.append(f"lab images build --os {plan.name} --environments-only   # -> {plan.tag}")
    return lines


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _topology(run: Any) -> tuple[list[str], list[str]]:
    up: list[str] = []
    for net in run.topology.networks:
        argv = ["docker", "network", "create"]
        if net.subnet:
            argv += ["--subnet", net.subnet]
        if net.internal:
            argv.append("--internal")
        up.append(_q([*argv, _name(net.name)]))
    starts: list[str] = []
    order = _start_order(run.topology.nodes)
    for node in run.topology.nodes:
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
        argv.append(run.images.get(node.name, "IMAGE"))
        if node.command:
            argv += list(node.command)
        up.append(_q(argv))
        for att in rest:
            extra = ["--ip", att.ipv4] if att.ipv4 else []
            up.append(
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
            up.append(
                _q(["docker", "cp", _rel(f.source, run.root), f"{_name(node.name)}:{f.target}"])
            )
    for name in order:
        starts.append(_q(["docker", "start", _name(name)]))
    return up, starts


def _start_order(nodes: Any) -> list[str]:
    done: list[str] = []
    pending = list(nodes)
    while pending:
        for n in list(pending):
            if all(d in done for d in n.depends_on):
                done.append(n.name)
                pending.remove(n)
    return done


def _exec(node: str, command: str) -> str:
    return _q(["docker", "exec", _name(node), "sh", "-c", command])


def _step(step: Any) -> list[str]:
    if isinstance(step, RunStep):
        cmd = _exec(step.on, step.run)
        return [
            cmd + ("   # in the background, while the next steps run" if step.background else "")
        ]
    if isinstance(step, HttpStep):
        return [_exec(step.on, http_command(step)) + "   # last line printed: the HTTP status"]
    if isinstance(step, WaitStep):
        return [f"# {describe_step(step)}: repeat until it holds"]
    if isinstance(step, SleepStep):
        return [f"sleep {step.sleep:g}"]
    assert isinstance(step, FaultStep)
    if step.fault in ("stop", "kill", "pause", "unpause", "restart"):
        return [_q(["docker", step.fault, _name(step.node)])]
    return [
        f"# {describe_step(step)}: the tc/iptables commands the harness ran are in "
        "journal.json (phase attempt-N, step fault.commands)"
    ]


def write_reproduce_md(run: Any, repro: Any, checks: list[dict[str, Any]]) -> Path:
    raw = run.raw
    lines: list[str] = [f"# Reproduce `{raw.scenario}` by hand", ""]
    if raw.title:
        lines += [raw.title, ""]
    if raw.case:
        lines += [
            "Case: "
            + ", ".join(f"{k} {v}" for k, v in raw.case.model_dump(exclude_none=True).items()),
            "",
        ]
    lines += [
        f"This run ({run.run_id}, engine {run.engine_version}) gave **{repro.verdict}** "
        f"({repro.rate}): {repro.reason}."
        + (f" Fix applied: `{run.loaded.fix}`." if run.loaded.fix else ""),
        "",
        "Run these from the project folder, as a user who can use the Docker engine. Names start",
        f"with `{PREFIX}-` so they never clash with the harness's own runs.",
        "",
        "## 1. Images",
        "",
        "```sh",
        *_images(run),
        "```",
        "",
        "## 2. Networks and nodes",
        "",
    ]
    up, starts = _topology(run)
    lines += ["```sh", *up, *starts, "```", ""]
    if raw.topology.impairments:
        lines += ["## 3. Impairments", "", "Inside the nodes (they have NET_ADMIN):", "```sh"]
        for phase in run.journal.data.get("phases", []):
            if phase.get("phase", "").startswith("impair"):
                for applied in phase.get("applied", []):
                    for cmd in _commands(applied):
                        lines.append(_exec(applied.get("node", "NODE"), cmd))
                break
        lines += ["```", ""]
    if raw.configure:
        lines += ["## 4. Configure (as the customer has it)", "", "```sh"]
        for item in raw.configure:
            if isinstance(item, RunItem):
                for node in [item.on] if isinstance(item.on, str) else item.on:
                    lines.append(_exec(node, item.run))
            elif isinstance(item, PlaybookItem):
                lines.append(_playbook_line(run, item))
        lines += ["```", ""]
    repro_steps = raw.reproduce.steps if raw.reproduce else []
    lines += [
        f"## 5. What the customer did ({raw.reproduce.attempts if raw.reproduce else 1} time(s))",
        "",
        "```sh",
    ]
    for step in repro_steps:
        lines += _step(step)
    lines += ["```", "", "## 6. The symptom to look for", ""]
    for p in raw.reproduce.symptom if raw.reproduce else []:
        lines.append(f"- {probes.describe(p)}")
    lines += ["", "What this run saw:", ""]
    for phase in run.journal.data.get("phases", []):
        if phase.get("phase", "").startswith("attempt-"):
            sym = phase.get("symptom", {})
            state = (
                "error"
                if phase.get("error")
                else ("observed" if phase.get("observed") else "absent")
            )
            lines.append(f"- {phase['phase']}: symptom {state}")
            for kid in sym.get("children", []):
                for ev in kid.get("evidence", []):
                    lines.append(f"  - {kid['probe']}: {ev}")
    if checks:
        lines += ["", "## 7. Checks that must stay green", ""]
        for c in checks:
            lines.append(f"- `{c['name']}`: {'passed' if c.get('passed') else 'FAILED'}")
    lines += [
        "",
        "## Clean up",
        "",
        "```sh",
        _q(["docker", "rm", "-f", *[_name(n.name) for n in run.topology.nodes]]),
        _q(["docker", "network", "rm", *[_name(n.name) for n in run.topology.networks]]),
        "```",
        "",
    ]
    out: Path = run.folder.path / "REPRODUCE.md"
    out.write_text(run.redactor.text("\n".join(lines)))
    return out


def _commands(applied: dict[str, Any]) -> list[str]:
    cmds = applied.get("commands")
    if isinstance(cmds, list):
        return [c if isinstance(c, str) else shlex.join(c) for c in cmds]
    out: list[str] = []
    for side in ("a", "b"):
        if isinstance(applied.get(side), dict):
            out += _commands(applied[side])
    return out


def _playbook_line(run: Any, item: PlaybookItem) -> str:
    from harness import ansible

    node_labs = ansible.node_labs_of(run.topology)
    inv = ansible.inventory(run.topology, "manual", run.live.addresses, node_labs)
    inv_path = run.folder.path / "REPRODUCE-inventory.yml"
    ansible.write_inventory(inv, inv_path)
    limit = ansible.resolve_hosts(run.topology, node_labs, item.hosts)
    return ansible.manual_command(item.playbook, inv_path.name, limit, dict(item.vars))
