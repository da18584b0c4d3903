"""`lab exec` and `lab shell`: get into a node of a live run."""

from __future__ import annotations

from harness.engine.api import Engine
from harness.engine.connection import connect_engine
from harness.verbs.results import ExecResult
from harness.verbs.runs import _runs, resolve_run


def _run_on(run: str, engine: Engine | None) -> tuple[str, Engine]:
    engine = engine or connect_engine()
    return resolve_run(list(_runs(engine)), run), engine


def exec_in(run: str, node: str, argv: list[str], engine: Engine | None = None) -> ExecResult:
    run_id, engine = _run_on(run, engine)
    rc, out, err = engine.exec_argv(run_id, node, argv)
    return ExecResult(
        run=run_id,
        node=node,
        command=argv,
        exit_code=rc,
        stdout=out.decode(errors="replace"),
        stderr=err.decode(errors="replace"),
    )


def shell_argv(run: str, node: str, shell: str = "sh", engine: Engine | None = None) -> list[str]:
    run_id, engine = _run_on(run, engine)
    return engine.interactive_argv(run_id, node, shell)
