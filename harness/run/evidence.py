"""Keep what the nodes said before they are removed: logs and `docker inspect` per node."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.engine import objects
from harness.engine.client import LABEL_NODE


def save_node_evidence(client: Any, run_id: str, folder: Path) -> list[str]:
    """Write artifacts/<node>/{container.log,inspect.json}; best effort, never raises."""
    saved: list[str] = []
    try:
        found = objects.find(client, run_id)
    except Exception:
        return saved
    for c in found.containers:
        node = c.labels.get(LABEL_NODE, c.name)
        out = folder / "artifacts" / node
        try:
            out.mkdir(parents=True, exist_ok=True)
            (out / "container.log").write_bytes(objects.logs(c))
            (out / "inspect.json").write_text(json.dumps(c.attrs, indent=2, default=str))
            saved.append(node)
        except Exception:
            continue
    return saved
