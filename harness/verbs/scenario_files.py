"""Write a scenario and its fixtures so that nothing half-written is ever left behind.

The fixtures are copied into a temporary folder beside their final one and renamed into place;
the scenario is written to a temporary file beside its final path, checked, and renamed last.
Any failure (a copy that fails, a scenario that does not validate, Ctrl-C) removes what this
write made and puts back what `force` was replacing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError


@dataclass(frozen=True)
class FileCopy:
    source: Path  # on this machine
    dest: str  # relative to the fixtures folder
    data: bytes | None = None  # what to write instead of the source's bytes (redacted)


def _refuse_existing(paths: list[Path], force: bool) -> None:
    there = [p for p in paths if p.exists() or p.is_symlink()]
    if there and not force:
        raise UsageError(
            f"{there[0]} already exists; nothing was written",
            hint="pass --force to replace it, or --name for another scenario name",
        )


def _stage(folder: Path, copies: list[FileCopy]) -> Path:
    """The fixtures copied into a temporary folder beside `folder`."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.import-", dir=folder.parent))
    for c in copies:
        dest = staging / c.dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        if c.data is None:
            shutil.copyfile(c.source, dest)
        else:
            dest.write_bytes(c.data)
    return staging


def _remove(path: Path | None) -> None:
    if path is None:
        return
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with suppress(OSError):
            path.unlink()


def write_scenario(
    scenario: Path,
    text: str,
    *,
    fixtures: Path,
    copies: list[FileCopy],
    force: bool = False,
    check: Callable[[Path], None] = lambda path: None,
) -> None:
    """Write `text` to `scenario` and `copies` under `fixtures/`, all or nothing. `check` is
    given the scenario (at a temporary path, its fixtures already in place) and raises to
    refuse it."""
    _refuse_existing([scenario, *([fixtures] if copies else [])], force)
    staging = old = tmp = None
    placed = False
    try:
        if copies:
            staging = _stage(fixtures, copies)
            if fixtures.exists():
                old = fixtures.with_name(f".{fixtures.name}.replaced-{os.getpid()}")
                fixtures.rename(old)
            staging.rename(fixtures)
            staging, placed = None, True
        scenario.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(
            prefix=f".{scenario.stem}.", suffix=".yaml", dir=scenario.parent
        )
        tmp = Path(name)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        check(tmp)
        tmp.replace(scenario)
        tmp = None
    except BaseException:
        _remove(tmp)
        _remove(staging)
        if placed:
            _remove(fixtures)
        if old is not None:
            old.rename(fixtures)
            old = None
        raise
    _remove(old)
