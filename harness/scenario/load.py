"""The public API of the scenario core: load a scenario for a run, or validate a file.

Pipeline: read YAML with positions -> interpolate ${params.x}/${matrix.x} on the raw tree ->
(apply a fix) -> schema (pydantic) -> cross-reference checks -> resolve to resolved.Topology.
Every problem is located; no exception escapes as a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.scenario.catalog import Catalog
from harness.scenario.interpolate import interpolate
from harness.scenario.limits import MAX_CHECKED_NODES, MAX_MATRIX_CELLS
from harness.scenario.matrix import cell_label, expand, too_big
from harness.scenario.modelerrors import problems_from
from harness.scenario.overlay import merge_fix
from harness.scenario.problems import Problem, ScenarioInvalid, display_path
from harness.scenario.readfile import Unreadable, read_text
from harness.scenario.resolve import resolve_topology
from harness.scenario.resolved import Topology
from harness.scenario.schema import FaultStep, FixFile, RunStep, Scenario, WaitStep
from harness.scenario.suggest import nearest, unknown
from harness.scenario.validate import Checker
from harness.scenario.yamlpos import Located, load_yaml


@dataclass(frozen=True)
class LoadedScenario:
    path: Path
    raw: Scenario  # the validated model, after interpolation (and the fix, when one is applied)
    topology: Topology
    params: dict[str, Any]  # resolved params
    matrix_cell: dict[str, Any]  # values used for ${matrix.x}; {} when no matrix
    fix: str | None = None  # the fix or workaround applied, if any


def _file_name(path: Path) -> str:
    if not path.is_absolute():
        return str(path)
    try:
        return display_path(path)
    except (OSError, RuntimeError):  # a symlink loop cannot be resolved; name it as given
        return str(path)


def _read(path: Path, file: str) -> tuple[Located | None, list[Problem]]:
    try:
        text = read_text(path)
    except Unreadable as exc:
        return None, [Problem(file, 1, 1, exc.message)]
    located, problems = load_yaml(text, file)
    if located is not None and not isinstance(located.data, dict):
        what = "empty" if located.data is None else f"a {type(located.data).__name__}"
        problems.append(
            Problem(
                file,
                *located.value_pos(()),
                f"the scenario is {what}; expected a mapping with 'scenario' and 'topology'",
            )
        )
        return None, problems
    if located is not None and _foreign(located.data):
        return None, [
            Problem(
                file,
                1,
                1,
                f"this is not a scenario file: none of its {len(located.data)} top-level keys is "
                "a scenario key (expected 'scenario' and 'topology'); its content is not shown",
            )
        ]
    return located, problems


def _foreign(data: dict[Any, Any]) -> bool:
    """Some other file (a password file, a config): no top-level key is, or nearly is, a
    scenario key. Its keys are not echoed back, as they may well be secrets."""
    known = list(Scenario.model_fields)
    return bool(data) and all(
        not isinstance(k, str) or (k not in known and nearest(k, known) is None) for k in data
    )


def _matrix_problem(located: Located, file: str) -> Problem | None:
    """The matrix's size, computed before any cell is built (an 8 x 10 matrix is 10^8 cells)."""
    why = too_big(located.data.get("matrix"))
    if why is None:
        return None
    line, col = located.key_pos(("matrix",))
    return Problem(file, line, col, why)


def _scalar_params(data: dict[str, Any]) -> dict[str, Any]:
    params = data.get("params")
    if not isinstance(params, dict):
        return {}
    return {
        k: v
        for k, v in params.items()
        if isinstance(k, str) and (v is None or isinstance(v, str | int | float | bool))
    }


def _coerce(default: Any, text: str) -> Any:
    if isinstance(default, bool):
        low = text.strip().lower()
        if low in ("true", "yes", "on", "1"):
            return True
        if low in ("false", "no", "off", "0"):
            return False
        raise ValueError("expected true or false")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ValueError("expected an integer") from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise ValueError("expected a number") from None
    return text


def _override_params(
    located: Located, declared: dict[str, Any], given: dict[str, str], file: str
) -> tuple[dict[str, Any], list[Problem]]:
    params = dict(declared)
    problems: list[Problem] = []
    for name, text in given.items():
        if name not in declared:
            line, col = located.key_pos(("params",))
            msg = (
                unknown("param", name, declared)
                if declared
                else (f"unknown param {name!r}; this scenario declares no params")
            )
            problems.append(Problem(file, line, col, f"--param {name}={text}: {msg}"))
            continue
        try:
            params[name] = _coerce(declared[name], text)
        except ValueError as exc:
            line, col = located.value_pos(("params", name))
            problems.append(Problem(file, line, col, f"--param {name}={text}: {exc}"))
    return params, problems


def _default_step_ids(model: Scenario) -> None:
    lists = [model.reproduce.steps] if model.reproduce else []
    for fix in model.fixes.values():
        if fix.reproduce is not None and fix.reproduce.steps is not None:
            lists.append(fix.reproduce.steps)
    for steps in lists:
        for i, step in enumerate(steps):
            if isinstance(step, RunStep | WaitStep | FaultStep) and step.id is None:
                step.id = f"step-{i + 1}"


def _check(
    located: Located,
    variables: dict[str, dict[str, Any]],
    file: str,
    root: Path,
    catalog: Catalog,
    *,
    fix: str | None = None,
) -> tuple[Scenario | None, list[Problem]]:
    data, interpolation = interpolate(located, variables, file)
    problems: list[Problem] = []
    view = located
    if fix is not None:
        data, pairs = merge_fix(data, fix)
        view = located.remapped(data, pairs)
    model: Scenario | None = None
    try:
        model = Scenario.model_validate(data)
    except ValidationError as exc:
        problems += problems_from(exc, view, data, file)
    problems += Checker(data, view, file, root, catalog).run()
    if fix is None:
        fixes = data.get("fixes")
        for name in fixes if isinstance(fixes, dict) else {}:
            merged, pairs = merge_fix(data, name)
            remapped = located.remapped(merged, pairs)
            problems += Checker(merged, remapped, file, root, catalog).run()
    unresolved = {(p.line, p.col) for p in interpolation}  # later checks would repeat these
    problems = interpolation + [p for p in problems if (p.line, p.col) not in unresolved]
    unique = list(dict.fromkeys(problems))
    return (model if not unique else None), unique


def validate_file(path: Path, *, root: Path, catalog: Catalog) -> list[Problem]:
    """Every problem in one scenario file, sorted by position; [] when it is valid."""
    file = _file_name(path)
    try:
        return _validate(path, file, root, catalog)
    except Exception as exc:  # never a traceback for bad input
        return [Problem(file, 1, 1, f"internal error while validating: {exc!r}")]


def _validate(path: Path, file: str, root: Path, catalog: Catalog) -> list[Problem]:
    located, problems = _read(path, file)
    if located is None or problems:
        return sorted(problems)
    data: dict[str, Any] = located.data
    params = _scalar_params(data)
    big = _matrix_problem(located, file)
    if big is not None:
        return [big]
    cells = expand(data.get("matrix"), limit=MAX_MATRIX_CELLS)
    if not cells:
        line, col = located.key_pos(("matrix",))
        return [Problem(file, line, col, "the matrix has no cells: exclude removes every one")]
    fixes = data.get("fixes")
    passes = len(cells) * (1 + (len(fixes) if isinstance(fixes, dict) else 0))
    if passes * len(located.values) > MAX_CHECKED_NODES:
        line, col = located.key_pos(("matrix",) if len(cells) > 1 else ("fixes",))
        return [
            Problem(
                file,
                line,
                col,
                f"{len(cells)} matrix cell(s) x (1 + fixes) = {passes} checks of "
                f"{len(located.values):,} values each is too much to check: at most "
                f"{MAX_CHECKED_NODES:,} in all (limit MAX_CHECKED_NODES); use fewer cells or "
                "fixes, or a smaller scenario",
            )
        ]
    per_cell: list[list[Problem]] = []
    for cell in cells:
        _, found = _check(located, {"params": params, "matrix": cell}, file, root, catalog)
        per_cell.append(found)
    everywhere = set(per_cell[0]).intersection(*per_cell[1:])
    result: list[Problem] = []
    for cell, found in zip(cells, per_cell, strict=True):
        for p in found:
            if p not in everywhere and len(cells) > 1:
                p = Problem(p.file, p.line, p.col, f"{p.message} (matrix cell {cell_label(cell)})")
            if p not in result:
                result.append(p)
    # one message per location and text, even when several cells share it in different words
    return sorted(result)


def load_scenario(
    path: Path,
    *,
    root: Path,
    catalog: Catalog,
    params: dict[str, str] | None = None,
    cell: dict[str, Any] | None = None,
    fix: str | None = None,
    fix_file: Path | None = None,
) -> LoadedScenario:
    """Load one scenario for a run (one matrix cell; the first when `cell` is None), optionally
    with a fix or workaround applied, from the scenario's `fixes:` or from `fix_file` (a YAML
    file with its own `fixes:` mapping, kept apart from the scenario). Raises ScenarioInvalid
    with every problem."""
    file = _file_name(path)
    try:
        extra: dict[str, Any] = {}
        if fix_file is not None:
            extra, fix = _read_fix_file(fix_file, fix)
        return _load(path, file, root, catalog, params or {}, cell=cell, fix=fix, extra_fixes=extra)
    except ScenarioInvalid:
        raise
    except Exception as exc:  # never a traceback for bad input
        raise ScenarioInvalid(
            [Problem(file, 1, 1, f"internal error while loading: {exc!r}")]
        ) from None


def _read_fix_file(path: Path, fix: str | None) -> tuple[dict[str, Any], str]:
    """The `fixes:` of an overlay file, and which one to apply (the only one, or `fix`)."""
    file = _file_name(path)
    located, problems = _read(path, file)
    if located is None or problems:
        raise ScenarioInvalid(problems)
    data = located.data
    fixes = data.get("fixes") if isinstance(data, dict) else None
    if not isinstance(fixes, dict) or not fixes or set(data) - {"fixes"}:
        line, col = located.value_pos(())
        raise ScenarioInvalid(
            [
                Problem(
                    file, line, col, "expected a mapping with one key, 'fixes': {name: {kind: ...}}"
                )
            ]
        )
    try:
        FixFile.model_validate(data)
    except ValidationError as exc:
        raise ScenarioInvalid(problems_from(exc, located, data, file)) from None
    if fix is None:
        if len(fixes) != 1:
            line, col = located.key_pos(("fixes",))
            raise ScenarioInvalid(
                [
                    Problem(
                        file,
                        line,
                        col,
                        f"several fixes here ({', '.join(fixes)}): name one with --fix",
                    )
                ]
            )
        fix = str(next(iter(fixes)))
    elif fix not in fixes:
        line, col = located.key_pos(("fixes",))
        raise ScenarioInvalid(
            [Problem(file, line, col, unknown("fix", fix, [str(k) for k in fixes]))]
        )
    return fixes, fix


def _load(
    path: Path,
    file: str,
    root: Path,
    catalog: Catalog,
    given: dict[str, str],
    *,
    cell: dict[str, Any] | None,
    fix: str | None,
    extra_fixes: dict[str, Any] | None = None,
) -> LoadedScenario:
    located, problems = _read(path, file)
    if located is None or problems:
        raise ScenarioInvalid(problems)
    data: dict[str, Any] = located.data
    if extra_fixes:
        own = data.get("fixes")
        data["fixes"] = {**(own if isinstance(own, dict) else {}), **extra_fixes}
    resolved_params, problems = _override_params(located, _scalar_params(data), given, file)
    big = _matrix_problem(located, file)
    if big is not None:
        raise ScenarioInvalid([big])
    if cell is None:
        cells = expand(data.get("matrix"), limit=1)
        if not cells:
            line, col = located.key_pos(("matrix",))
            problems.append(Problem(file, line, col, "the matrix has no cells"))
        cell = cells[0] if cells else {}
    fixes = data.get("fixes")
    if fix is not None and (not isinstance(fixes, dict) or fix not in fixes):
        line, col = located.key_pos(("fixes",))
        names = [str(k) for k in fixes] if isinstance(fixes, dict) else []
        problems.append(Problem(file, line, col, unknown("fix", fix, names)))
    if problems:
        raise ScenarioInvalid(problems)
    variables = {"params": resolved_params, "matrix": dict(cell)}
    model, problems = _check(located, variables, file, root, catalog, fix=fix)
    if model is None:
        raise ScenarioInvalid(problems)
    _default_step_ids(model)
    topology = resolve_topology(model, catalog=catalog, root=root, source=path)
    return LoadedScenario(path, model, topology, resolved_params, dict(cell), fix)
