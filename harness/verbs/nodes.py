"""`lab exec` and `lab shell`: get into a node of a live run."""

from __future__ import annotations

from typing import Any

from harness.engine import client as engine
from harness.engine import objects
from harness.verbs.runs import _runs, resolve_run


def _container(run: str, node: str) -> tuple[str, Any]:
    client = engine.connect()
    run_id = resolve_run(list(_runs(client)), run)
    return run_id, objects.container_for(client, run_id, node)


def exec_in(run: str, node: str, argv: list[str]) -> dict[str, Any]:
    run_id, container = _container(run, node)
    rc, out, err = objects.exec_command(container, argv)
    return {
        "run": run_id,
        "node": node,
        "command": argv,
        "exit_code": rc,
        "stdout": out.decode(errors="replace"),
        "stderr": err.decode(errors="replace"),
    }


def shell_argv(run: str, node: str, shell: str = "sh") -> list[str]:
    _, container = _container(run, node)
    return objects.interactive_argv(container.name, shell)
