"""The configuration each node has in effect, as its lab prints it (`running_config:` in
lab.yaml: `nginx -T`, PostgreSQL's pg_settings, Redis `CONFIG GET *`), dumped after configure
and at the end of a run into artifacts/<node>/running-config/<when>.txt, redacted.

What a scenario's files say is not always what the software runs with (an include, a default,
a reload that never happened); the dump is what it runs with. A verification shows the
baseline's and the candidate's side by side as a diff. Never fatal: a node that did not start
is skipped with why, a command that fails or times out is recorded with its exit code."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness.engine.api import Engine
from harness.errors import HarnessError
from harness.run.redact import Redactor
from harness.scenario.catalog import Catalog, RunningConfig
from harness.scenario.resolved import LabImage, Topology

FOLDER = "running-config"
MAX_BYTES = 1024 * 1024  # a dump past this is cut (and says so)


def dump_file(node: str, when: str) -> str:
    """Where a node's dump lies in the run folder (relative)."""
    return f"artifacts/{node}/{FOLDER}/{when}.txt"


def wanted(topology: Topology, catalog: Catalog) -> dict[str, tuple[str, RunningConfig]]:
    """node -> (its lab, how to dump its running configuration), for the labs that say how."""
    out: dict[str, tuple[str, RunningConfig]] = {}
    for n in topology.nodes:
        if isinstance(n.image, LabImage) and n.image.lab in catalog.labs:
            how = catalog.labs[n.image.lab].definition.running_config
            if how is not None:
                out[n.name] = (n.image.lab, how)
    return out


def dump(
    engine: Engine,
    run_id: str,
    plan: dict[str, tuple[str, RunningConfig]],
    *,
    folder: Path,
    when: str,
    redactor: Redactor,
    down_reason: Callable[[str], str | None],
) -> list[dict[str, Any]]:
    """Each node's dump, in parallel; one record per node (in topology order)."""

    def one(node: str) -> dict[str, Any]:
        lab, how = plan[node]
        rec: dict[str, Any] = {"node": node, "lab": lab, "when": when, "command": how.command}
        why = down_reason(node)
        if why is not None:
            return {**rec, "skipped": why}
        try:
            res = engine.exec(run_id, node, how.command, how.timeout)
        except HarnessError as exc:
            return {**rec, "error": exc.message}
        text = res.stdout + (f"\n{res.stderr}" if res.stderr.strip() else "")
        data = redactor.text(text).encode("utf-8", "replace")
        cut = len(data) > MAX_BYTES
        data = data[:MAX_BYTES] + (b"\n[cut: the dump is over 1 MiB]\n" if cut else b"")
        target = folder / dump_file(node, when)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        rec.update(file=dump_file(node, when), exit_code=res.exit_code, bytes=len(data))
        if res.timed_out:
            rec["error"] = f"timed out after {how.timeout:g} s"
        return rec

    if not plan:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(plan))) as pool:
        return list(pool.map(one, list(plan)))
