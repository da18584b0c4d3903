"""What `lab analyze PATH...` reads in each path: a file as it is; a run folder's captures
and node logs (container.log, steps.log: what its steps printed, collected log files; each
node's lab from journal.json); a diagnostic report's var/log; any other
folder's captures and log files, recursively. What is not read is listed, with why.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.analysis.evidence import BadEvidence, Sniffed, sniff
from harness.findings_model import Skipped

# file names that are logs: *.log, rotated *.log.1 / *.log.2.gz, syslog, messages; in a plain
# folder (a customer's upload) also *.out and *.txt
_LOG_NAME = re.compile(r"(\.log|^syslog|^messages|^daemon|^kern)(\.\d+)?(\.gz)?$")
_UPLOAD_NAME = re.compile(r"(\.log|\.out|\.txt|^syslog|^messages|^daemon|^kern)(\.\d+)?(\.gz)?$")
_WALK_MAX = 100_000  # files looked at under one folder


@dataclass(frozen=True)
class Task:
    """One file to read, and what is known of it."""

    path: Path
    sniffed: Sniffed
    node: str | None = None
    network: str | None = None
    labs: tuple[str, ...] | None = None  # None: every lab's signatures
    # the log's path in its node or host (run folders, diagnostic reports): a signature's
    # `files:` choose by it; "" (a customer's own file, name unknown to us): every signature
    in_node: str = ""


@dataclass
class Plan:
    tasks: list[Task] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _files(folder: Path) -> Iterator[Path]:
    """Regular files under folder, sorted, symlinks not followed (a loop cannot hang it)."""
    n = 0
    for here, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            p = Path(here) / name
            if p.is_file() and not p.is_symlink():
                n += 1
                if n > _WALK_MAX:
                    return
                yield p


def _add(
    plan: Plan,
    path: Path,
    explicit: bool,
    *,
    node: str | None = None,
    network: str | None = None,
    labs: tuple[str, ...] | None = None,
    in_node: str = "",
) -> None:
    """A file the user named (explicit: not evidence is a problem) or found in a folder (not
    evidence is skipped, saying why)."""
    try:
        s = sniff(path)
    except BadEvidence as exc:
        if explicit:
            plan.problems.append(exc.message)
        else:
            plan.skipped.append(Skipped(path=str(path), why=exc.message.split(": ", 1)[-1]))
        return
    if s.kind in ("capture", "log"):
        plan.tasks.append(Task(path, s, node, network, labs, in_node))
    elif explicit:
        plan.problems.append(f"{path}: {s.why}")
    else:
        plan.skipped.append(Skipped(path=str(path), why=s.why))


def _node_labs(run: Path) -> dict[str, str]:
    """node -> lab, from the run's journal.json header (an unreadable one: no labs known)."""
    try:
        data = json.loads((run / "journal.json").read_text(encoding="utf-8"))
        nodes = data.get("topology", {}).get("nodes", [])
        return {str(n["name"]): str(n["lab"]) for n in nodes if n.get("lab")}
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return {}


def _run_folder(plan: Plan, run: Path) -> None:
    labs = _node_labs(run)
    for p in _files(run / "captures"):
        _add(plan, p, False, network=p.name.split(".")[0])
    for p in _files(run / "artifacts"):
        node, *rest = p.relative_to(run / "artifacts").parts
        if rest[:1] == ["files"]:  # a file copied out of the node: files/<its path>
            in_node = "/" + "/".join(rest[1:])
        elif rest == ["container.log"]:  # the node's output
            in_node = "container.log"
        elif rest == ["steps.log"]:  # what the steps run on the node printed (run/collect.py)
            in_node = "steps.log"
        else:  # inspect.json, running-config/, Ansible artifacts: the harness's, not logs
            plan.skipped.append(Skipped(path=str(p), why="not a log (written by the harness)"))
            continue
        if (
            in_node in ("container.log", "steps.log")
            or _LOG_NAME.search(p.name)
            or "/log/" in in_node
        ):
            lab = labs.get(node)
            _add(plan, p, False, node=node, in_node=in_node, labs=(lab,) if lab else None)
        else:
            plan.skipped.append(Skipped(path=str(p), why="not a log (a file the scenario put in)"))


def _report_folder(plan: Plan, report: Path) -> None:
    """An imported diagnostic report (sosreport): its var/log and collected journal logs."""
    for sub in ("var/log", "sos_commands/logs"):
        for p in _files(report / sub):
            _add(plan, p, False, in_node="/" + str(p.relative_to(report)))


def _folder(plan: Plan, folder: Path) -> None:
    for p in _files(folder):
        if _UPLOAD_NAME.search(p.name) or p.suffix in (".pcap", ".pcapng", ".cap"):
            _add(plan, p, False)
            continue
        try:
            s = sniff(p)
        except BadEvidence as exc:
            plan.skipped.append(Skipped(path=str(p), why=exc.message.split(": ", 1)[-1]))
            continue
        if s.kind == "capture":
            plan.tasks.append(Task(p, s))
        else:
            why = s.why or "text, but not a log by its name (*.log, *.txt, *.out, syslog...)"
            plan.skipped.append(Skipped(path=str(p), why=why))


def plan(paths: list[str]) -> Plan:
    """Every file to read under `paths`; a path that is missing or not evidence is a problem."""
    out = Plan()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            out.problems.append(f"{raw}: no such file or folder")
        elif path.is_dir():
            if (path / "journal.json").is_file():
                _run_folder(out, path)
            elif (path / "sos_commands").is_dir() or (path / "var" / "log").is_dir():
                _report_folder(out, path)
            else:
                _folder(out, path)
        elif not path.is_file():
            out.problems.append(f"{raw}: not a regular file (a fifo or device is not evidence)")
        else:
            _add(out, path, True)
    return out
