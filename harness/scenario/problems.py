"""A located problem in an input file: what `lab validate` prints, one per line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int  # 1-based
    col: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "col": self.col, "message": self.message}


class ScenarioInvalid(UsageError):
    """Every problem found in one or more files; exit 2."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def display_path(path: Path, root: Path | None = None) -> str:
    """Paths in messages are relative to the project when they can be, so they read the same
    anywhere."""
    try:
        return str(path.resolve().relative_to((root or Path.cwd()).resolve()))
    except ValueError:
        return str(path)
