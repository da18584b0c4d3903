"""Issue 14 point 8: no function in harness/ over 60 lines without a comment saying why.

A function's length is its body's: from the first statement (the docstring counts) to its last
line, so neither decorators nor a signature of one keyword-only parameter per line count. A
longer function passes only with a comment containing MARKER ("long because ...") on its `def`
line(s) or in the first 3 lines of its body (docs/architecture.md, "The contracts that hold
them"). The scanner is tested on small sources first, so this test can fail.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[2] / "harness"
MAX_LINES = 60
MARKER = "long because"
MARKER_WITHIN = 3  # body lines in which the marker may sit


def _comments(source: str) -> dict[int, str]:
    """Line number -> the comment on it (tokenize: a '#' inside a string is not one)."""
    out: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string
    return out


def long_functions(source: str, max_lines: int = MAX_LINES) -> list[tuple[int, str, int]]:
    """(line of the def, qualified name, body lines) of every function or method whose body
    spans over max_lines and carries no MARKER comment where the rule says."""
    comments = _comments(source)
    found: list[tuple[int, str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = f"{prefix}{getattr(child, 'name', '')}"
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                first = child.body[0].lineno
                span = (child.end_lineno or first) - first + 1
                window = range(child.lineno, first + MARKER_WITHIN)
                marked = any(MARKER in comments.get(n, "").lower() for n in window)
                if span > max_lines and not marked:
                    found.append((child.lineno, name, span))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def _function(name: str, body_lines: int, head: str = "") -> str:
    body = [f"    x{i} = {i}" for i in range(body_lines)]
    return "\n".join([f"def {name}(a: int) -> None:{head}", *body, ""])


def test_the_scanner_flags_a_61_line_body_and_only_that() -> None:
    source = _function("short", 60) + _function("long", 61)
    assert long_functions(source) == [(62, "long", 61)]


def test_the_scanner_sees_methods_nested_functions_and_a_docstring() -> None:
    method = "class C:\n" + "".join("    " + line + "\n" for line in _function("m", 61).split("\n"))
    assert long_functions(method) == [(2, "C.m", 61)]
    nested = "def outer() -> None:\n" + "".join(
        "    " + line + "\n" for line in _function("inner", 61).split("\n")
    )
    assert [name for _, name, _ in long_functions(nested)] == ["outer", "outer.inner"]
    documented = 'def d() -> None:\n    """Doc."""\n' + "\n".join("    pass" for _ in range(60))
    assert long_functions(documented) == [(1, "d", 61)]


def test_the_marker_excuses_only_near_the_top_and_only_in_a_comment() -> None:
    on_def = _function("a", 70, head="  # long because one table")
    assert long_functions(on_def) == []
    lines = _function("b", 70).split("\n")
    in_body = "\n".join([lines[0], "    # Long because: the steps read in order", *lines[1:]])
    assert long_functions(in_body) == []
    too_late = "\n".join([*lines[:4], "    # long because it is", *lines[4:]])
    assert long_functions(too_late) == [(1, "b", 71)]
    in_a_string = "\n".join([lines[0], '    s = "# long because"', *lines[1:]])
    assert long_functions(in_a_string) == [(1, "b", 71)]


def test_no_function_in_harness_is_over_60_lines_without_saying_why() -> None:
    over = [
        f"harness/{path.relative_to(HARNESS)}:{line} {name}: {span} lines"
        for path in sorted(HARNESS.rglob("*.py"))
        for line, name, span in long_functions(path.read_text(encoding="utf-8"))
    ]
    assert HARNESS.is_dir() and len(list(HARNESS.rglob("*.py"))) > 50
    assert not over, (
        f"over {MAX_LINES} lines: split into named helpers, or put a `# {MARKER} ...` "
        "comment in its first lines:\n  " + "\n  ".join(over)
    )
