"""`${params.x}` and `${matrix.x}` in string values, on the raw tree (so positions stay valid).

- A string that is exactly one `${...}` takes the variable's value with its type (a number stays
  a number); inside a longer string the value is written as text (true/false, empty for null).
- `$${` writes a literal `${` and is not interpolated.
- The `params` and `matrix` sections themselves are not interpolated.
"""

from __future__ import annotations

import re
from typing import Any

from harness.scenario.problems import Problem
from harness.scenario.suggest import did_you_mean
from harness.scenario.yamlpos import Located, YPath

NAMESPACES = ("params", "matrix")
_EXPR = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_-]*)\s*$")
_SKIP_TOP = frozenset(NAMESPACES)


def as_text(value: Any) -> str:
    """A value as it reads in YAML: true/false, '' for null, numbers as written."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Unresolved(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


def _lookup(expr: str, variables: dict[str, dict[str, Any]]) -> Any:
    m = _EXPR.match(expr)
    if m is None:
        raise _Unresolved(
            f"cannot read '${{{expr}}}'; expected ${{params.NAME}} or ${{matrix.NAME}}", 0
        )
    ns, name = m.group(1), m.group(2)
    if ns not in variables:
        hint = did_you_mean(ns, NAMESPACES)
        tail = hint or "expected params or matrix"
        raise _Unresolved(f"unknown namespace {ns!r} in '${{{expr}}}'; {tail}", 0)
    scope = variables[ns]
    if name not in scope:
        what = "param" if ns == "params" else "matrix axis"
        if not scope:
            where = "this scenario declares no params" if ns == "params" else "no matrix"
            raise _Unresolved(f"unknown {what} {name!r} in '${{{expr}}}'; {where}", 0)
        hint = did_you_mean(name, scope)
        known = ", ".join(sorted(scope))
        tail = hint or f"known: {known}"
        raise _Unresolved(f"unknown {what} {name!r} in '${{{expr}}}'; {tail}", 0)
    return scope[name]


def interpolate_string(text: str, variables: dict[str, dict[str, Any]]) -> Any:
    """Substitute one string; raises _Unresolved with the first problem."""
    stripped = text.strip()
    if (
        stripped.startswith("${")
        and stripped.endswith("}")
        and stripped.count("${") == 1
        and "$${" not in stripped
        and stripped.index("}") == len(stripped) - 1
    ):
        return _lookup(stripped[2:-1], variables)
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$${", i):
            out.append("${")
            i += 3
        elif text.startswith("${", i):
            end = text.find("}", i + 2)
            if end < 0:
                raise _Unresolved("unterminated '${' (write '$${' for a literal '${')", i)
            try:
                out.append(as_text(_lookup(text[i + 2 : end], variables)))
            except _Unresolved as exc:
                exc.offset = i
                raise
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def interpolate(
    located: Located, variables: dict[str, dict[str, Any]], file: str
) -> tuple[Any, list[Problem]]:
    """A copy of the data with every string value substituted, and the problems found."""
    problems: list[Problem] = []

    def walk(value: Any, path: YPath) -> Any:
        if isinstance(value, dict):
            return {
                k: (v if not path and k in _SKIP_TOP else walk(v, (*path, k)))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [walk(v, (*path, i)) for i, v in enumerate(value)]
        if isinstance(value, str) and "${" in value:
            try:
                return interpolate_string(value, variables)
            except _Unresolved as exc:
                line, col = located.value_pos(path)
                problems.append(Problem(file, line, col, exc.message))
                return value
        return value

    return walk(located.data, ()), problems
