"""A run's folder under reports/: run.json (state, nodes, addresses) and the journal beside it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.errors import UsageError

# provisioning -> up (lab up finished; the lab stays) -> down
# provisioning -> failed | interrupted (torn down) ; any -> running (a verb's own run)
LIVE_STATES = ("up", "kept")  # left up on purpose: gc leaves them


def reports_root(project: Path) -> Path:
    env = os.environ.get("LABHARNESS_REPORTS")
    return Path(env) if env else project / "reports"


def only_one(found: list[Path], *, none: str, hint: str, what: str) -> Path:
    """The one folder an id (or prefix) names; exit 2 saying so when it names none or several."""
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(none, hint=hint)
    raise UsageError(
        f"{what} is ambiguous: " + ", ".join(str(p) for p in found[:5]),
        hint="give more of the id, or the folder",
    )


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class RunFolder:
    path: Path

    @classmethod
    def create(cls, reports: Path, scenario: str, run_id: str) -> RunFolder:
        path = reports / scenario / run_id
        path.mkdir(parents=True, exist_ok=False)
        return cls(path)

    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    def read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.run_json.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def write(self, **fields: Any) -> dict[str, Any]:
        """Merge fields into run.json atomically, so a kill never leaves half a file."""
        data = self.read()
        data.update(fields)
        data["updated"] = now_iso()
        tmp = self.run_json.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        tmp.replace(self.run_json)
        return data


def run_state(folder: str | None) -> str | None:
    if not folder:
        return None
    return RunFolder(Path(folder)).read().get("state")
