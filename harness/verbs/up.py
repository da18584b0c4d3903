"""`lab up`: the scenario's run with the replay phases left out, and the lab left running.

The same `Run` as `lab reproduce` (harness/run/execute.py): build, preflight, up, capture,
impair, configure, the journal, the evidence and the redactor; `Run.execute_up` stops before the
attempts and keeps the lab.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from harness.engine.api import Engine
from harness.run.execute import Run, RunOptions
from harness.run.provision import OnEvent, _quiet
from harness.run.result import UpResult
from harness.run.trust import Trust
from harness.scenario.catalog import load_catalog
from harness.scenario.load import load_scenario


def up(
    scenario: Path,
    *,
    root: Path,
    params: dict[str, str] | None = None,
    fix: str | None = None,
    fix_file: Path | None = None,
    keep: bool = False,
    on_event: OnEvent = _quiet,
    untrusted: bool = False,
    trust: bool = False,
    engine: Engine | None = None,
) -> UpResult:
    """Bring the scenario's lab up (a fix's candidate with `fix`/`fix_file`) and leave it
    running. On any failure or signal the evidence is saved and everything made is removed
    (unless keep). An untrusted scenario (unless `trust`) is refused its configure playbooks
    and gets the default capabilities only, before anything is made (harness/run/trust.py)."""
    catalog = load_catalog(root)
    loaded = load_scenario(
        scenario, root=root, catalog=catalog, params=params, fix=fix, fix_file=fix_file
    )
    # it runs no verify suites, so only what it does run (configure playbooks) can be refused
    loaded = replace(loaded, raw=loaded.raw.model_copy(update={"verify": []}))
    opts = RunOptions(
        role="up",
        on_event=on_event,
        fix_file=str(fix_file) if fix_file else None,
        trust=Trust.of(untrusted=untrusted, trust=trust),
    )
    return Run(loaded, root, catalog, opts, engine=engine).execute_up(keep_on_failure=keep)
