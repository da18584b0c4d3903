"""Read a run's journal.json defensively: reports are built from it alone, and a run killed at
any moment leaves a partial journal (docs/journal.md), so every accessor tolerates a missing
or mistyped key and returns an empty value instead of raising."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import outcomes

INFRA_PHASES = ("build", "preflight", "up", "capture", "impair")
TEARDOWN_PHASES = ("collect", "down")
SEVERITY_NAMES = {1: "blocker", 2: "critical", 3: "normal", 4: "minor", 5: "trivial"}
ALLURE_SEVERITIES = ("blocker", "critical", "normal", "minor", "trivial")


def load(folder: Path) -> dict[str, Any]:
    """The journal of a run folder; {} when it is missing or unreadable (never raises)."""
    try:
        data = json.loads((folder / "journal.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def ls(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def s(value: Any, default: str = "") -> str:
    if value is None:
        return default
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def num(value: Any) -> float:
    if isinstance(value, bool):
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return 0.0


def fmt_time(seconds: Any) -> str:
    return f"{num(seconds):.3f}"


@dataclass
class Run:
    """The journal with the derived facts every report needs."""

    journal: dict[str, Any]
    folder: Path
    phases: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.phases = [p for p in ls(self.journal.get("phases")) if isinstance(p, dict)]

    # -- identity -------------------------------------------------------------------------
    @property
    def scenario(self) -> str:
        return s(self.journal.get("scenario")) or self.folder.parent.name or "run"

    @property
    def run_id(self) -> str:
        return s(self.journal.get("run")) or self.folder.name

    @property
    def role(self) -> str:
        return s(self.journal.get("role")) or s(self.journal.get("verb")) or "reproduce"

    @property
    def fix(self) -> str:
        return s(self.journal.get("fix"))

    @property
    def case(self) -> dict[str, Any]:
        return d(self.journal.get("case"))

    @property
    def cell(self) -> str:
        """The matrix cell as `k=v,k=v` (or the label the run gave it); '' outside a matrix."""
        label = self.journal.get("cell")
        if isinstance(label, str) and label:
            return label
        cell = d(self.journal.get("matrix_cell"))
        return ",".join(f"{k}={s(v)}" for k, v in sorted(cell.items()))

    @property
    def label(self) -> str:
        """Scenario plus what tells this run apart in a merged report: cell, fix."""
        out = self.scenario
        if self.cell:
            out += f"[{self.cell}]"
        if self.fix:
            out += f"+{self.fix}"
        elif self.role in ("baseline", "candidate"):
            out += f"+{self.role}"
        return out

    @property
    def severity(self) -> str:
        """The case severity as an Allure severity name ('' when unknown)."""
        sev = self.case.get("severity")
        if isinstance(sev, int) and not isinstance(sev, bool):
            return SEVERITY_NAMES.get(sev, "")
        text = s(sev).lower()
        if text.isdigit():
            return SEVERITY_NAMES.get(int(text), "")
        return text if text in ALLURE_SEVERITIES else ""

    # -- outcome --------------------------------------------------------------------------
    @property
    def reproduction(self) -> dict[str, Any]:
        return d(self.journal.get("reproduction"))

    @property
    def verdict(self) -> str:
        v = s(self.reproduction.get("verdict")) or s(self.journal.get("result"))
        return outcomes.recorded_verdict(v, bool(self.journal.get("ended")))

    @property
    def rate(self) -> str:
        return s(self.reproduction.get("rate"))

    @property
    def reason(self) -> str:
        return s(self.reproduction.get("reason"))

    @property
    def interrupted(self) -> bool:
        return not self.journal.get("ended") or any(
            p.get("result") == "interrupted" for p in self.phases
        )

    @property
    def hopes_absent(self) -> bool:
        return outcomes.hopes_absent(self.role)

    # -- phases ---------------------------------------------------------------------------
    def phase(self, name: str) -> dict[str, Any] | None:
        for p in self.phases:
            if p.get("phase") == name:
                return p
        return None

    def attempts(self) -> list[dict[str, Any]]:
        return [p for p in self.phases if s(p.get("phase")).startswith("attempt-")]

    def checks(self) -> list[dict[str, Any]]:
        top = [c for c in ls(self.journal.get("checks")) if isinstance(c, dict)]
        if top:
            return top
        verify = self.phase("verify") or {}
        return [c for c in ls(verify.get("checks")) if isinstance(c, dict)]

    def addresses(self) -> dict[str, dict[str, str]]:
        """node -> network -> IPv4, from the last `up`/`up-N` phase, then static addresses."""
        out: dict[str, dict[str, str]] = {}
        for node in ls(d(self.journal.get("topology")).get("nodes")):
            for net in ls(d(node).get("networks")):
                net = d(net)
                ip = s(net.get("ipv4") or net.get("address"))
                if ip and net.get("network"):
                    out.setdefault(s(d(node).get("name")), {})[s(net["network"])] = ip
        for p in self.phases:
            if p.get("phase") == "up" or s(p.get("phase")).startswith("up-"):
                for node in ls(p.get("nodes")):
                    node = d(node)
                    for net, ip in d(node.get("addresses")).items():
                        if ip:
                            out.setdefault(s(node.get("name")), {})[s(net)] = s(ip)
        return out

    def images(self) -> dict[str, str]:
        out = {s(k): s(v) for k, v in d((self.phase("build") or {}).get("images")).items()}
        for node in ls((self.phase("up") or {}).get("nodes")):
            node = d(node)
            if node.get("name") and node.get("image"):
                out.setdefault(s(node["name"]), s(node["image"]))
        return out

    # -- files ----------------------------------------------------------------------------
    def rel(self, path: Any) -> str | None:
        """A path the journal names, relative to the run folder, if it lies inside it."""
        text = s(path)
        if not text:
            return None
        p = Path(text)
        if not p.is_absolute():
            return p.as_posix()
        try:
            return p.relative_to(self.folder.resolve()).as_posix()
        except ValueError:
            pass
        # The folder may have moved (copied, or the journal came from elsewhere): keep the
        # part from a known top-level folder on.
        parts = p.parts
        for top in ("artifacts", "captures", "verify"):
            if top in parts:
                return Path(*parts[parts.index(top) :]).as_posix()
        return None

    def artifacts(self) -> list[tuple[str, str, str]]:
        """(group, label, path relative to the folder) for every collected file that exists:
        node files from the collect phase, captures, REPRODUCE.md, verify suites' output."""
        out: list[tuple[str, str, str]] = []
        seen: set[str] = set()

        def add(group: str, label: str, rel: str | None) -> None:
            if rel and rel not in seen and (self.folder / rel).is_file():
                seen.add(rel)
                out.append((group, label, rel))

        collect = self.phase("collect") or {}
        for node, files in d(collect.get("nodes")).items():
            for f in ls(files):
                add(s(node), s(f), f"artifacts/{s(node)}/{s(f)}")
        for cap in ls(collect.get("captures")) + ls((self.phase("capture") or {}).get("captures")):
            cap = d(cap)
            rel = self.rel(cap.get("path"))
            add("captures", rel.split("/")[-1] if rel else "", rel)
        add("run", "REPRODUCE.md", "REPRODUCE.md")
        add("run", "REPRODUCE-inventory.yml", "REPRODUCE-inventory.yml")
        add("verify", "verify-junit.xml", "verify/verify-junit.xml")
        # Node folders written before teardown even when collect did not run (docs/runs.md).
        art = self.folder / "artifacts"
        if art.is_dir():
            for node_dir in sorted(p for p in art.iterdir() if p.is_dir()):
                for name in ("container.log", "inspect.json"):
                    add(node_dir.name, name, f"artifacts/{node_dir.name}/{name}")
        return out

    def ansible_artifacts(self) -> list[str]:
        out: list[str] = []
        for item in ls((self.phase("configure") or {}).get("items")):
            rel = self.rel(d(item).get("artifacts"))
            if rel:
                for name in ("stdout", "stderr"):
                    if (self.folder / rel / name).is_file():
                        out.append(f"{rel}/{name}")
        return out


def is_log(rel: str) -> bool:
    return rel.endswith((".log", "/stdout", "/stderr")) or "/log/" in rel


def relpath(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target, start)).as_posix()


# -- outcomes shared by the JUnit and Allure writers ---------------------------------------
# status: passed | failed | skipped | error. `error` is an infrastructure error (the verdict
# would be ERROR: the run could not do what it meant to); `failed` is a product failure.


@dataclass
class Outcome:
    status: str
    message: str = ""
    detail: str = ""


def symptom_evidence(symptom: Any, depth: int = 0) -> list[str]:
    """The probe tree as indented lines: `[held] probe`, then its evidence."""
    node = d(symptom)
    if not node:
        return []
    pad = "  " * depth
    mark = "held" if node.get("held") else "not held"
    lines = [f"{pad}[{mark}] {s(node.get('probe'), 'symptom')}"]
    lines += [f"{pad}  - {s(e)}" for e in ls(node.get("evidence"))]
    for child in ls(node.get("children")):
        lines += symptom_evidence(child, depth + 1)
    return lines


def attempt_outcome(run: Run, attempt: dict[str, Any]) -> Outcome:
    """Whether this attempt went as the run hoped.

    reproduce/baseline/cell hope to observe the symptom; a candidate hopes it is absent.
    An attempt that could not run is an error. An attempt where the symptom was absent in a
    run that still reproduced it (k of n, intermittent) is skipped, not failed: the verdict
    REPRODUCED k/n is what CI should go by.
    """
    evidence = "\n".join(symptom_evidence(attempt.get("symptom")))
    result = s(attempt.get("result"))
    if attempt.get("error") or result in ("error", "interrupted"):
        msg = s(attempt.get("error")) or f"attempt {result or 'did not finish'}"
        return Outcome("error", f"ERROR: {msg}", evidence)
    observed = attempt.get("observed")
    if observed is None:
        observed = result == "observed"
    if not attempt.get("end") and result not in ("observed", "absent"):
        return Outcome("error", "ERROR: attempt did not finish (run interrupted)", evidence)
    if outcomes.attempt_as_hoped(run.role, bool(observed)):
        return Outcome("passed", "symptom observed" if observed else "symptom absent", evidence)
    if run.hopes_absent:
        return Outcome("failed", "symptom observed: the fix did not remove it", evidence)
    if run.verdict == outcomes.REPRODUCED:
        return Outcome(
            "skipped",
            f"symptom absent in this attempt (intermittent: reproduced {run.rate} overall)",
            evidence,
        )
    return Outcome("failed", "symptom absent: not reproduced in this attempt", evidence)


def step_outcome(step: dict[str, Any]) -> Outcome:
    if step.get("error"):
        return Outcome("error", f"ERROR: {s(step.get('error'))}")
    if not step.get("end") and not step.get("background"):
        return Outcome("error", "ERROR: step did not finish (run interrupted)")
    return Outcome("passed")


def step_output(step: dict[str, Any]) -> str:
    parts: list[str] = []
    if step.get("command"):
        parts.append(f"$ {s(step['command'])}")
    for key in ("condition", "status", "exit_code", "timed_out"):
        if key in step and step[key] is not None:
            parts.append(f"{key}: {s(step[key])}")
    if step.get("fault"):
        parts.append(f"fault: {s(step['fault'])}")
    for key in ("stdout", "stderr"):
        if s(step.get(key)):
            parts.append(f"--- {key}\n{s(step[key]).rstrip()}")
    if step.get("error"):
        parts.append(f"error: {s(step['error'])}")
    return "\n".join(parts)


def check_outcome(check: dict[str, Any]) -> Outcome:
    """Command checks carry passed/exit_code/expected/output; pytest suites' checks carry
    passed/outcome/message. `error` (either form) is infrastructure, a failed check a product
    failure."""
    outcome = s(check.get("outcome")).lower()
    message = s(check.get("message"))
    detail = s(check.get("output"))
    if check.get("error") or outcome in ("error", "broken"):
        return Outcome(
            "error", f"ERROR: {s(check.get('error')) or message or 'check errored'}", detail
        )
    if outcome in ("skipped", "xfailed", "deselected"):
        return Outcome("skipped", message or outcome, detail)
    if check.get("passed") is True or outcome in ("passed", "xpassed"):
        return Outcome("passed", message, detail)
    if not message and "exit_code" in check:
        message = f"exit code {s(check.get('exit_code'))} (expected {s(check.get('expected'))})"
    return Outcome("failed", message or "check failed", detail)


@dataclass
class Item:
    """One configure unit: an Ansible task on a host, or a `run:` command on a node."""

    name: str
    outcome: Outcome
    duration: float
    output: str


def configure_items(phase: dict[str, Any]) -> list[Item]:
    out: list[Item] = []
    for n, item in enumerate(ls(phase.get("items")), 1):
        item = d(item)
        if "playbook" in item:
            book = Path(s(item.get("playbook"))).name or f"playbook-{n}"
            tasks = [d(t) for t in ls(item.get("tasks"))]
            for t in tasks:
                status = s(t.get("status"))
                name = f"{book}: {s(t.get('task'))} [{s(t.get('host'))}]"
                text = "\n".join(
                    f"{k}: {s(t[k])}"
                    for k in ("action", "changed", "rc", "msg", "stdout", "stderr")
                    if t.get(k) not in (None, "")
                )
                if status in ("failed", "unreachable") and not t.get("ignored"):
                    oc = Outcome("error", f"ERROR: task {status}: {s(t.get('msg'))}".rstrip(": "))
                elif status == "skipped":
                    oc = Outcome("skipped", "task skipped")
                else:
                    oc = Outcome("passed")
                out.append(Item(name, oc, num(t.get("duration")), text))
            bad = (
                item.get("error")
                or (item.get("ok") is False)
                or s(item.get("status")) in ("failed", "timeout", "canceled")
            )
            if bad and not any(i.outcome.status == "error" for i in out):
                msg = (
                    s(item.get("error"))
                    or f"playbook {s(item.get('status'))} rc={s(item.get('rc'))}"
                )
                out.append(
                    Item(
                        book,
                        Outcome("error", f"ERROR: {msg}"),
                        num(item.get("duration")),
                        s(item.get("command")),
                    )
                )
            elif not tasks:
                out.append(
                    Item(book, Outcome("passed"), num(item.get("duration")), s(item.get("command")))
                )
        else:
            command = s(item.get("run")) or s(item.get("command")) or f"item-{n}"
            results = [d(r) for r in ls(item.get("results"))]
            for r in results:
                text = "\n".join(
                    x
                    for x in (
                        f"$ {command}",
                        f"exit_code: {s(r.get('exit_code'))}",
                        s(r.get("stdout")).rstrip(),
                        s(r.get("stderr")).rstrip(),
                    )
                    if x
                )
                code = r.get("exit_code")
                if r.get("error") or (code not in (0, None)):
                    msg = s(r.get("error")) or f"exit code {s(code)}"
                    oc = Outcome("error", f"ERROR: {msg}")
                else:
                    oc = Outcome("passed")
                out.append(
                    Item(f"{s(r.get('node'))}$ {command}", oc, num(r.get("duration_s")), text)
                )
            if not results:
                oc = (
                    Outcome("error", f"ERROR: {s(item.get('error'))}")
                    if item.get("error")
                    else Outcome("passed")
                )
                out.append(Item(f"$ {command}", oc, 0.0, ""))
    if phase.get("result") in ("error", "interrupted") and not any(
        i.outcome.status == "error" for i in out
    ):
        out.append(
            Item(
                "configure",
                Outcome("error", f"ERROR: {s(phase.get('error')) or s(phase.get('result'))}"),
                0.0,
                "",
            )
        )
    return out


def phase_outcome(phase: dict[str, Any]) -> Outcome:
    result = s(phase.get("result"))
    if result in ("error", "interrupted") or phase.get("error"):
        return Outcome("error", f"ERROR: {s(phase.get('error')) or result}")
    if not phase.get("end"):
        return Outcome("error", "ERROR: phase did not finish (run interrupted)")
    return Outcome("passed")
