"""journal.json: every phase with start, end and result, written as it happens.

Rewritten whole after each event (it is small), so whatever kills the run, what happened up to
then is on disk.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, Interrupted
from harness.run.folder import now_iso

JOURNAL_VERSION = 1  # docs/journal.md; bump on any incompatible change


class Journal:
    def __init__(
        self,
        path: Path,
        header: dict[str, Any],
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.path = path
        self.redact = redact or (lambda text: text)
        self.data: dict[str, Any] = {
            "journal_version": JOURNAL_VERSION,
            **header,
            "started": now_iso(),
            "phases": [],
        }
        self.flush()

    def flush(self) -> None:
        # compact while the run lives: json's C encoder skips any indented output, and this runs
        # at every phase edge; the last write, once `ended` is set, is indented for people
        indent = 2 if "ended" in self.data else None
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(self.redact(json.dumps(self.data, indent=indent, default=str)))
        tmp.replace(self.path)

    def set(self, **fields: Any) -> None:
        self.data.update(fields)
        self.flush()

    @contextmanager
    def phase(self, name: str, **info: Any) -> Iterator[dict[str, Any]]:
        """Record a phase; the yielded dict takes details. Failures are recorded, then re-raised."""
        rec: dict[str, Any] = {"phase": name, "start": now_iso(), "result": "running", **info}
        self.data["phases"].append(rec)
        self.flush()
        t0 = time.monotonic()
        try:
            yield rec
        except BaseException as exc:
            rec["result"] = (
                "interrupted" if isinstance(exc, Interrupted | KeyboardInterrupt) else "error"
            )
            rec["error"] = str(exc) if isinstance(exc, HarnessError) else repr(exc)
            raise
        else:
            rec["result"] = rec.get("result_override", "ok")
            rec.pop("result_override", None)
        finally:
            rec["end"] = now_iso()
            rec["duration_s"] = round(time.monotonic() - t0, 3)
            self.flush()
