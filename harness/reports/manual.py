"""REPRODUCE.md and REPRODUCE.sh: the exact steps a person can follow by hand, with docker and
ansible commands, to rebuild the same lab and see the same thing, without the harness; the
script is the same commands as one file (`sh REPRODUCE.sh`), so the steps are proven by running
them (tests/engine/test_reproduce_script.py). Both come from one model (manual_steps.py).

Built from journal.json alone, like the other reports: the run writes its `plan` (what it was
asked to do, harness/run/plan.py) into the journal; a journal without one (an older run, or a
run killed before it finished) gets the steps its header and phases allow."""

from __future__ import annotations

from collections.abc import Sequence
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
from harness.reports import manual_steps as steps_model
from harness.reports.manual_steps import INVENTORY, Manual, Part

__all__ = ["INVENTORY", "SCRIPT", "plan_from_phases", "render", "render_script", "write_manual"]

SCRIPT = "REPRODUCE.sh"


def _manual(j: Journal) -> Manual:
    plan = j.plan or plan_from_phases(j)
    build = j.phase("build")
    tags = build.images if isinstance(build, BuildPhase) else {}
    return steps_model.build(
        plan, tags, list(j.topology.impairments), j.run or "", delay_backends(j)
    )


def delay_backends(j: Journal) -> list[str]:
    """The delay backends the run's impair phase used (netem, nfqueue), in order."""
    found = [
        a.backend
        for p in j.phases
        if isinstance(p, ImpairPhase)
        for a in p.applied
        if a.backend is not None
    ]
    return list(dict.fromkeys(found))


def _body(lines: list[str]) -> list[str]:
    return lines or [":"]


def _seen(j: Journal) -> list[str]:
    lines: list[str] = []
    for phase in j.phases:
        if isinstance(phase, AttemptPhase) and phase.phase.startswith("attempt-"):
            state = outcomes.attempt_state(phase.error, phase.observed).lower()
            lines.append(f"- {phase.phase}: symptom {state}")
            for kid in phase.symptom.children if phase.symptom else []:
                lines += [f"  - {kid.probe}: {ev}" for ev in kid.evidence]
    return lines


def _rate(rep: Reproduction) -> str:
    """k/n with its interval, as every report prints it (computed for an older journal)."""
    if rep.interval is not None:
        return f"{rep.rate}, {rep.interval.text}"
    return outcomes.rate_text(rep.observed, rep.attempts) or str(rep.rate)


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
        f"({_rate(rep)}): {rep.reason}." + (f" Fix applied: `{j.fix}`." if j.fix else ""),
        "",
        f"**How to run it.** `sh {SCRIPT}` (beside this file) runs every command below, from",
        "any folder, as a user who can use the Docker engine: it prints each probe and `symptom",
        "observed` or `symptom absent` per attempt, then the verdict (exit 0 REPRODUCED, 1",
        "NOT_REPRODUCED, 3 when a step could not run), and removes what it made on exit, Ctrl-C",
        "included. Settings, from the environment: `PREFIX` (the names on the engine; fresh for",
        "each execution, so two copies never collide), `PROJECT` (the project folder the labs,",
        "fixtures and playbooks come from), `ATTEMPTS`, `HIDDEN` (the value the journal shows as",
        "`***REDACTED***`).",
        "",
        "By hand: paste the blocks in order into a POSIX shell (sh or bash) opened in this",
        "file's folder.",
        "",
    ]


def _block(
    number: str, part: Part, before: Sequence[str] = (), after: Sequence[str] = ()
) -> list[str]:
    lines = [f"## {number}. {part.title}" if number else f"## {part.title}", ""]
    if part.text:
        lines += [*part.text, ""]
    return [*lines, "```sh", *before, *part.lines, *after, "```", ""]


def render(j: Journal) -> str:
    """The text of REPRODUCE.md for this journal."""
    m = _manual(j)
    p = m.parts
    lines = _header(j)
    lines += _settings_block(m)
    lines += _block("1", p["images"])
    lines += _block("2", p["topology"])
    if p["impair"].lines:
        lines += _block("3", p["impair"])
    if p["configure"].lines:
        lines += _block("4", p["configure"])
    lines += _block("5", p["steps"], ['OUT=$WORK/attempt-1; mkdir -p "$OUT"; T0=$(now)'])
    if p["undo"].lines:
        lines += ["Before the next attempt, the faults undone:", "", "```sh", *p["undo"].lines]
        lines += ["```", ""]
    lines += _block(
        "6",
        p["symptom"],
        ["SEEN=yes"],
        ['say "symptom $([ "$SEEN" = yes ] && echo observed || echo absent)"'],
    )
    lines += ["The probes:", "", *[f"- {d}" for d in m.plan.symptom]]
    lines += ["", "What this run saw:", "", *_seen(j)]
    if j.checks:
        lines += ["", "## 7. Checks that must stay green", ""]
        for c in j.checks:
            passed = outcomes.check_passed(c.model_dump())
            lines.append(f"- `{c.name}`: {'passed' if passed else 'FAILED'}")
    lines += ["", *_block("", p["cleanup"]), *_helpers_block(m)]
    return "\n".join(lines)


def _settings_block(m: Manual) -> list[str]:
    """Block 0: the settings, the work folder (and, for a delay, the helper's program)."""
    program = [
        "# a delay where the kernel has no netem: the helper's program from labharness",
        'cp /path/to/labharness/harness/engine/nfqdelay.py "$WORK/"',
    ]
    return [
        "The settings (block 0); then paste the block of *Helpers* at the end of this file:",
        "the commands below use them.",
        "",
        "```sh",
        "HERE=$(pwd)   # the folder holding this file",
        *m.settings,
        "WORK=$(mktemp -d)   # the step outputs the probes read",
        *(program if m.delays else []),
        "```",
        "",
    ]


def _helpers_block(m: Manual) -> list[str]:
    carried = (
        "; `nfq_delay` runs the program REPRODUCE.sh carries, harness/engine/nfqdelay.py"
        " in labharness)."
    )
    return [
        "## Helpers",
        "",
        "Shell functions the commands above call (REPRODUCE.sh has the same ones"
        + (carried if m.delays else ")."),
        "",
        "```sh",
        steps_model.helpers(m.delays or m.duplicates),
        "```",
        "",
    ]


def render_script(j: Journal) -> str:
    """The text of REPRODUCE.sh: the same commands as REPRODUCE.md, as one script."""
    m = _manual(j)
    p = m.parts
    head = _script_head(j, m.settings, m.delays, m.duplicates)
    funcs: list[str] = []
    for name, lines in (
        ("make_images", p["images"].lines),
        ("up", [*p["topology"].lines, *p["impair"].lines, *p["configure"].lines]),
        ("customer_steps", p["steps"].lines),
        ("undo_faults", p["undo"].lines),
        ("symptom", p["symptom"].lines),
    ):
        funcs += [f"{name}() {{", *_body(lines), "}", ""]
    return "\n".join([*head, *funcs, *_script_main(m.plan.fresh)]) + "\n"


def _script_head(
    j: Journal, settings: list[str], delays: bool = False, duplicates: bool = False
) -> list[str]:
    """The script's header: what it is, its settings, the helpers and the cleanup trap (and,
    for a delay, the delay helper's program)."""
    return [
        "#!/bin/sh",
        f"# {SCRIPT}: `{j.scenario}` rebuilt on a Docker engine, the customer's steps replayed",
        f"# and the symptom looked for, from run {j.run} (see REPRODUCE.md beside it).",
        f"#   sh {SCRIPT}      from any folder; prints `symptom observed` or `symptom absent`",
        "#                     per attempt, then the verdict: exit 0 REPRODUCED,",
        "#                     1 NOT_REPRODUCED, 3 when a step could not run",
        "# Settings from the environment: PREFIX (names on the engine, fresh by default),",
        "# PROJECT (the project folder), ATTEMPTS, HIDDEN (what the journal redacted).",
        "# Everything it creates is removed on exit (success, failure, Ctrl-C).",
        "set -eu",
        'HERE=$(cd "$(dirname "$0")" && pwd)',
        *settings,
        'WORK=$(mktemp -d "${TMPDIR:-/tmp}/reproduce.XXXXXX")',
        *(steps_model.nfqdelay_lines() if delays else []),
        steps_model.helpers(delays or duplicates),
        "finish() {",
        "  rc=$?",
        "  trap - EXIT",
        "  down",
        '  rm -rf "$WORK"',
        '  if [ -z "${VERDICT:-}" ]; then say "stopped (exit $rc); $PREFIX-* removed"; fi',
        '  exit "$rc"',
        "}",
        "trap finish EXIT",
        "trap 'exit 130' INT",
        "trap 'exit 143' TERM",
        "# unpacked from a bundle (bundle/run/ beside bundle/project/): its own project",
        'if [ ! -d "$PROJECT" ] && [ -d "$HERE/../project/labs" ]; then',
        '  PROJECT=$(cd "$HERE/../project" && pwd)',
        "fi",
        '[ -d "$PROJECT" ] || die "PROJECT=$PROJECT is not a folder: set PROJECT to the project'
        ' folder (the one with labs/ and fixtures/)"',
        'command -v docker >/dev/null || die "docker is not on PATH"',
        "",
    ]


def _script_main(fresh: bool) -> list[str]:
    """The attempts loop and the verdict, as the harness counts them."""
    between = ["  down", "  up"] if fresh else ["  undo_faults"]
    return [
        'say "prefix $PREFIX, project $PROJECT"',
        "make_images",
        "up",
        "K=0 N=1",
        'while [ "$N" -le "$ATTEMPTS" ]; do',
        '  if [ "$N" -gt 1 ]; then',
        *[f"  {b}" for b in between],
        "  fi",
        "  OUT=$WORK/attempt-$N",
        '  mkdir -p "$OUT"',
        "  T0=$(now)",
        '  say "attempt $N:"',
        "  customer_steps",
        "  SEEN=yes",
        "  symptom",
        '  if [ "$SEEN" = yes ]; then',
        "    K=$((K + 1))",
        '    say "attempt $N: symptom observed"',
        "  else",
        '    say "attempt $N: symptom absent"',
        "  fi",
        "  N=$((N + 1))",
        "done",
        'if [ "$K" -gt 0 ]; then VERDICT=REPRODUCED; else VERDICT=NOT_REPRODUCED; fi',
        'say "$VERDICT ($K/$ATTEMPTS): symptom observed in $K of $ATTEMPTS attempt(s)"',
        'if [ "$K" -gt 0 ]; then exit 0; fi',
        "exit 1",
    ]


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
    """REPRODUCE.md and REPRODUCE.sh (and REPRODUCE-inventory.yml when a playbook needs it)
    in `folder`; the path of REPRODUCE.md."""
    if (
        j.plan is not None
        and j.plan.inventory is not None
        and any(i.playbook is not None for i in j.plan.configure)
    ):
        from harness import ansible

        inv = steps_model.manual_inventory(j.plan.inventory)
        ansible.write_inventory(inv, folder / INVENTORY)
    script = folder / SCRIPT
    script.write_text(render_script(j))
    script.chmod(0o755)
    out = folder / "REPRODUCE.md"
    out.write_text(render(j))
    return out
