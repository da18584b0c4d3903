"""journal.json: every phase with start, end and result, written as it happens.

Rewritten whole after each event (it is small), so whatever kills the run, what happened up to
then is on disk.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.errors import HarnessError, Interrupted
from harness.journal_model import JOURNAL_VERSION, Header, Plan, parse
from harness.run.folder import now_iso

__all__ = ["JOURNAL_VERSION", "Journal"]

log = logging.getLogger(__name__)


class Journal:
    def __init__(
        self,
        path: Path,
        header: Header | Mapping[str, Any],
        redact: Callable[[str], str] | None = None,
    ) -> None:
        """`header`: the run's identity (harness.journal_model.Header), checked against the
        model here, so a mistyped header fails at the start of a run, not in a report."""
        self.path = path
        self.redact = redact or (lambda text: text)
        if isinstance(header, Header):
            fields = header.model_dump(mode="json", exclude_unset=True)
        else:  # kept as given (its key order too), once checked against the model
            fields = dict(header)
            Header.model_validate(json.loads(json.dumps(fields, default=str)))
        fields.pop("journal_version", None)
        self.data: dict[str, Any] = {
            "journal_version": JOURNAL_VERSION,
            **fields,
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
        if "ended" in fields:
            self.check()
        self.flush()

    def set_plan(self, plan: Plan) -> None:
        """What the run was asked to do, as REPRODUCE.md tells a person (reports/manual.py)."""
        self.set(plan=plan.model_dump(mode="json"))

    def check(self) -> bool:
        """Whether what was written fits the journal model (harness.journal_model); a misfit is
        a harness bug, logged, never a reason to lose the run's evidence."""
        try:
            parse(json.loads(json.dumps(self.data, default=str)))
        except ValidationError as exc:
            log.warning("journal %s does not fit the journal model: %s", self.path, exc)
            return False
        return True

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
