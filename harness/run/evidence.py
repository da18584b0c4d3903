"""Keep what the nodes said before they are removed: logs and `docker inspect` per node."""

from __future__ import annotations

import json
from pathlib import Path

from harness.engine.api import Engine


def save_node_evidence(engine: Engine, run_id: str, folder: Path) -> list[str]:
    """Write artifacts/<node>/{container.log,inspect.json}; best effort, never raises."""
    saved: list[str] = []
    try:
        found = engine.find(run_id)
    except Exception:
        return saved
    for c in found.containers:
        node = c.node
        out = folder / "artifacts" / node
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "container.log").write_bytes(engine.logs(run_id, node))
            inspect = engine.inspect(run_id, node)
            (out / "inspect.json").write_text(json.dumps(inspect, indent=2, default=str))
            saved.append(node)
        except Exception:
            continue
    return saved
