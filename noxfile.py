"""Sessions run in the project's own .venv (scripts/setup.sh makes it): no second install."""

from __future__ import annotations

import sys
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
PY = sys.executable


@nox.session(python=False)
def tests(session: nox.Session) -> None:
    """The whole suite against the real engine. pytest exit 5 (no tests ran) fails it."""
    # the 30 slowest listed: where a CI run's time goes, for keeping it under 30 minutes
    args = ("-q", "-p", "no:cacheprovider", "-rs", "--durations=30")
    session.run(PY, "-m", "pytest", *args, *session.posargs)


@nox.session(python=False)
def lint(session: nox.Session) -> None:
    session.run(PY, "-m", "ruff", "check", "harness", "tests", "bench", "noxfile.py")
    session.run(PY, "-m", "ruff", "format", "--check", "harness", "tests", "bench", "noxfile.py")
    session.run(PY, "-m", "mypy", "harness")
    session.run(str(Path(PY).parent / "lint-imports"))  # the layering contracts in pyproject.toml
    # no function in harness/ over 60 lines without a comment saying why (ruff has no such rule)
    session.run(
        PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit/test_function_length.py"
    )


@nox.session(python=False)
def demo(session: nox.Session) -> None:
    """Bring the example web tier up, prove client -> proxy -> backend -> db, take it down."""
    session.run(PY, "scripts/demo.py", *session.posargs)


@nox.session(python=False)
def bench(session: nox.Session) -> None:
    """Bring-up/teardown against the SDK floor and docker compose, `lab --help` start-up, an
    8-cell matrix at -j1/-j2/-j4 beside its engine floor (the same engine calls, no harness),
    one engine vs two, and a saved edit to the verdict on a live lab vs a fresh run."""
    session.run(PY, "-m", "compileall", "-q", "harness")  # as an installed package would be
    session.run(PY, "bench/bring_up.py", *session.posargs)
    session.run(PY, "bench/matrix.py")
    session.run(PY, "bench/scale_out.py")  # one engine vs two, through Dask
    session.run(PY, "bench/live.py")  # edit -> verdict: a live lab (lab watch) vs fresh
