"""The running configurations of a verification's two sides, node by node, as a diff: what the
software ran with in the baseline and with the fix (harness/run/running_config.py wrote them
into each run folder; the runs' journals say where). Read from the run folders alone."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from harness.journal_model import ConfigDump, ConfigPhase, Journal

MAX_LINES = 400  # a diff past this is cut, and says so
MAX_READ = 2 * 1024 * 1024


@dataclass
class ConfigDiff:
    """One node: the dumps compared, and their diff (empty when they are the same)."""

    node: str
    lab: str
    when: str
    diff: list[str] = field(default_factory=list)
    same: bool = False
    missing: str = ""  # why there is nothing to compare (a side did not dump it)
    cut: bool = False


def last_dumps(journal: Journal) -> dict[str, ConfigDump]:
    """node -> its last dump in the run (at the end when the run got there, else after
    configure)."""
    out: dict[str, ConfigDump] = {}
    for p in journal.phases:
        if isinstance(p, ConfigPhase):
            for d in p.dumps:
                out[d.node] = d
    return out


def _text(folder: Path, dump: ConfigDump | None) -> tuple[list[str] | None, str]:
    if dump is None:
        return None, "not dumped"
    if dump.skipped or dump.file is None:
        return None, dump.skipped or dump.error or "not dumped"
    path = folder / dump.file
    if path.is_symlink() or not path.is_file():
        return None, f"{dump.file} is missing"
    with path.open("rb") as f:
        data = f.read(MAX_READ)
    return data.decode("utf-8", "replace").splitlines(keepends=True), ""


def compare(
    base: tuple[Path, Journal | None], cand: tuple[Path, Journal | None]
) -> list[ConfigDiff]:
    """One ConfigDiff per node either side dumped, in the baseline's order."""
    b = last_dumps(base[1]) if base[1] is not None else {}
    c = last_dumps(cand[1]) if cand[1] is not None else {}
    out = []
    for node in dict.fromkeys([*b, *c]):
        bd, cd = b.get(node), c.get(node)
        one = cd if cd is not None else bd
        if one is None:
            continue
        row = ConfigDiff(node, one.lab or "", one.when or "")
        old, why_old = _text(base[0], bd)
        new, why_new = _text(cand[0], cd)
        if old is None or new is None:
            row.missing = f"baseline: {why_old}" if old is None else f"candidate: {why_new}"
            out.append(row)
            continue
        lines = list(difflib.unified_diff(old, new, f"baseline {node}", f"candidate {node}", n=2))
        row.same = not lines
        row.cut = len(lines) > MAX_LINES
        row.diff = [ln.rstrip("\n") for ln in lines[:MAX_LINES]]
        out.append(row)
    return out
