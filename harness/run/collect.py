"""Evidence after every run (passed, failed or interrupted): per node its output, `docker
inspect`, the lab's log files, the files the scenario put in, and the scenario's `collect.logs`.

Everything goes through the run's Redactor before it touches the disk.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.engine import execs, objects
from harness.engine.client import LABEL_NODE
from harness.run.redact import Redactor
from harness.scenario.resolved import Topology


def _safe(path: str) -> str:
    return path.strip("/").replace("..", "_")


def collect_nodes(
    client: Any,
    run_id: str,
    topology: Topology,
    extra_logs: list[str],
    folder: Path,
    redactor: Redactor,
) -> dict[str, list[str]]:
    """Write artifacts/<node>/...; returns node -> files written. Best effort, never raises."""
    wanted: dict[str, list[str]] = {}
    for node in topology.nodes:
        wanted[node.name] = [*node.log_paths, *(f.target for f in node.files)]
    for entry in extra_logs:
        node_name, _, path = entry.partition(":")
        wanted.setdefault(node_name, []).append(path)
    written: dict[str, list[str]] = {}
    try:
        containers = objects.find(client, run_id).containers
    except Exception:
        return written
    for c in containers:
        node = c.labels.get(LABEL_NODE, c.name)
        out = folder / "artifacts" / node
        files: list[str] = []
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "container.log").write_text(redactor.text(execs.logs(c)))
            files.append("container.log")
            (out / "inspect.json").write_text(
                redactor.text(json.dumps(c.attrs, indent=2, default=str))
            )
            files.append("inspect.json")
        except Exception:
            pass
        for path in dict.fromkeys(wanted.get(node, [])):
            try:
                data = execs.read_file(c, path)
            except Exception:
                data = None
            if data is None:
                continue
            dest = out / "files" / _safe(path)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(redactor.bytes_(data))
            files.append(f"files/{_safe(path)}")
        written[node] = files
    return written


def sweep(folder: Path, redactor: Redactor) -> int:
    """Redact every file under the run folder in place: the net for what third-party tools
    (ansible-runner, tcpdump) wrote themselves. Returns how many files changed."""
    changed = 0
    for f in folder.rglob("*"):
        if not f.is_file() or f.is_symlink():
            continue
        try:
            data = f.read_bytes()
        except OSError:
            continue
        clean = redactor.bytes_(data)
        if clean != data:
            f.write_bytes(clean)
            changed += 1
    return changed
