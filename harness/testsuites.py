"""pytest for the harness: run a scenario's `verify` suites against a run's own topology.

The one module that runs pytest. Each suite runs in a `python -m pytest` subprocess (this
interpreter, so this environment's plugins: labharness, testinfra, allure-pytest) attached to
the run with `--lab-run <run folder>`; the results come back from pytest's JUnit XML, one entry
per test:

    {name, suite, passed, outcome, duration_s, message, output}

- `name` is the test's node id (`labs/nginx/tests/test_health.py::test_config_valid[proxy]`):
  the node's name is in it, never a run id or container name, so a baseline and a candidate
  run of one scenario give the same names (verify-fix compares them).
- `outcome` is passed, failed, error or skipped. A skipped test is not a failure (`passed` is
  true) but is reported as skipped: a suite for a lab the topology does not run skips itself.
- A suite that could not run (a missing path, a collection error, no test selected, pytest
  itself failing, the time limit) gives an entry with outcome error and pytest's own words.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.scenario.schema import SuiteItem

OUTPUT_LIMIT = 4000
JUNIT = "verify-junit.xml"
ALLURE = "allure-verify"
# pytest exit codes
_OK, _TESTS_FAILED, _NO_TESTS = 0, 1, 5


def describe(item: str | SuiteItem) -> str:
    """The suite as written in the scenario, on one line."""
    if isinstance(item, str):
        return item
    out = item.suite
    if item.k:
        out += f" -k {item.k!r}"
    if item.marker:
        out += f" -m {item.marker!r}"
    return out


def _group(items: Sequence[str | SuiteItem]) -> list[tuple[str, list[str], list[str]]]:
    """Invocations: every plain path together; each selection (-k / -m) on its own."""
    plain = [i if isinstance(i, str) else i.suite for i in items if _is_plain(i)]
    out: list[tuple[str, list[str], list[str]]] = []
    if plain:
        out.append((", ".join(plain), plain, []))
    for i in items:
        if isinstance(i, SuiteItem) and not _is_plain(i):
            sel: list[str] = []
            if i.k:
                sel += ["-k", i.k]
            if i.marker:
                sel += ["-m", i.marker]
            out.append((describe(i), [i.suite], sel))
    return out


def _is_plain(item: str | SuiteItem) -> bool:
    return isinstance(item, str) or not (item.k or item.marker)


def pytest_command(
    paths: list[str],
    selection: list[str],
    *,
    root: Path,
    run_folder: Path,
    junit: Path,
    alluredir: Path,
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        *paths,
        *selection,
        "--lab-run",
        str(run_folder),
        f"--junitxml={junit}",
        "-o",
        "junit_suite_name=verify",
        "-o",
        "junit_family=xunit1",  # testcases carry file=, so names can be node ids
        "--alluredir",
        str(alluredir),
        "-p",
        "no:cacheprovider",
        "--import-mode=importlib",  # every lab's tests/test_health.py, side by side
        "--rootdir",
        str(root),
        "-q",
        "-rN",
        "--color=no",
    ]


def run_suites(
    items: Sequence[str | SuiteItem],
    *,
    root: Path,
    run_folder: Path,
    out_dir: Path,
    timeout: float = 600,
    invocations: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Run the suites against the run in `run_folder`; one result per test (module doc).

    JUnit XML goes to out_dir/verify-junit.xml (one file, every invocation merged), Allure
    results to out_dir/allure-verify/. `invocations`, when given, receives per pytest run its
    command, exit code, duration and output tail (for the journal).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    alluredir = out_dir / ALLURE
    groups = _group(items)
    results: list[dict[str, Any]] = []
    junits: list[Path] = []
    deadline = time.monotonic() + timeout
    for idx, (suite, paths, selection) in enumerate(groups):
        junit = out_dir / (JUNIT if len(groups) == 1 else f".verify-junit-{idx + 1}.xml")
        junit.unlink(missing_ok=True)
        cmd = pytest_command(
            paths, selection, root=root, run_folder=run_folder, junit=junit, alluredir=alluredir
        )
        t0 = time.monotonic()
        code, output = _run_pytest(cmd, root, max(deadline - t0, 1.0))
        seconds = round(time.monotonic() - t0, 3)
        tests = parse_junit(junit, suite) if junit.is_file() else []
        if junit.is_file():
            junits.append(junit)
        problem = _problem(code, tests, timeout if code is None else None)
        if problem is not None:
            tests.append(_pytest_error(suite, seconds, problem, output))
        results += tests
        if invocations is not None:
            invocations.append(
                {
                    "suite": suite,
                    "command": cmd,
                    "exit_code": code,
                    "duration_s": seconds,
                    "tests": len(tests),
                    "junit": str(out_dir / JUNIT) if junit.is_file() else None,
                    "output": output,
                }
            )
    if len(groups) > 1 and junits:
        _merge(junits, out_dir / JUNIT)
        for part in junits:
            part.unlink()
    return results


def _run_pytest(cmd: list[str], root: Path, timeout: float) -> tuple[int | None, str]:
    """pytest's exit code (None: it ran out of time) and the tail of what it printed."""
    try:
        proc = subprocess.run(
            cmd, cwd=root, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        return None, _text(exc.stdout)[-OUTPUT_LIMIT:] + _text(exc.stderr)[-OUTPUT_LIMIT:]
    return proc.returncode, (proc.stdout + proc.stderr)[-OUTPUT_LIMIT:]


def _pytest_error(suite: str, seconds: float, problem: str, output: str) -> dict[str, Any]:
    """A result row for a pytest run that went wrong beyond its tests (see _problem)."""
    return {
        "name": f"{suite}::<pytest>",
        "suite": suite,
        "passed": False,
        "outcome": "error",
        "duration_s": seconds,
        "message": problem,
        "output": _last_lines(output),
    }


def _problem(code: int | None, tests: list[dict[str, Any]], timeout: float | None) -> str | None:
    """Why a pytest run is an error beyond its tests' own results (None: nothing to add)."""
    if code is None:
        return f"pytest did not finish within {timeout:g} s"
    if code in (_OK, _TESTS_FAILED):
        return None
    if code == _NO_TESTS:
        return "no tests collected: the path or the -k / marker selection matches nothing"
    if any(t["outcome"] == "error" for t in tests):
        return None  # collection errors are already entries of their own
    return {
        2: "pytest was interrupted (collection errors?)",
        3: "pytest failed internally",
        4: "pytest refused its command line (a missing path, a bad option or selection)",
    }.get(code, f"pytest exited {code}")


def _text(data: Any) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else str(data)


def _last_lines(text: str, n: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def _node_id(file: str | None, classname: str, name: str) -> str:
    """pytest's node id back from a JUnit testcase (xunit1: file, classname, name)."""
    if not file:
        return f"{classname}::{name}" if classname else name
    module = file[:-3].replace("/", ".") if file.endswith(".py") else file
    rest = classname[len(module) + 1 :] if classname.startswith(module + ".") else ""
    parts = [file, *(p for p in rest.split(".") if p), name]
    return "::".join(parts)


def parse_junit(path: Path, suite: str) -> list[dict[str, Any]]:
    """One entry per testcase in pytest's JUnit XML."""
    from junitparser import JUnitXml, TestCase, TestSuite

    xml = JUnitXml.fromfile(str(path))
    suites: list[Any] = [xml] if isinstance(xml, TestSuite) else list(xml)
    out: list[dict[str, Any]] = []
    for ts in suites:
        for case in ts:
            if isinstance(case, TestCase):
                out.append(_case(case, suite))
    return out


def _case(case: Any, suite: str) -> dict[str, Any]:
    from junitparser import Error, Failure, Skipped

    outcome, message, text = "passed", "", ""
    for r in case.result:
        if isinstance(r, Error):
            outcome = "error"
        elif isinstance(r, Failure):
            outcome = "failed"
        elif isinstance(r, Skipped):
            outcome = "skipped"
        else:
            continue
        message, text = r.message or "", r.text or ""
        break
    captured = (case.system_out or "") + (case.system_err or "")
    output = text + ("\n" + captured if captured else "")
    return {
        "name": _node_id(case._elem.get("file"), case.classname or "", case.name or ""),
        "suite": suite,
        "passed": outcome in ("passed", "skipped"),
        "outcome": outcome,
        "duration_s": round(float(case.time or 0.0), 3),
        "message": message,
        "output": output[-OUTPUT_LIMIT:],
    }


def _merge(files: list[Path], target: Path) -> None:
    from junitparser import JUnitXml, TestSuite

    merged = JUnitXml(name="verify")
    for f in files:
        xml = JUnitXml.fromfile(str(f))
        for ts in [xml] if isinstance(xml, TestSuite) else list(xml):
            if isinstance(ts, TestSuite):
                merged.add_testsuite(ts)
    merged.write(str(target))
