"""Hostile scenario files through the real `lab validate` CLI, one process per file: exit 2
with a located message (or 0 when valid), never an internal error, under 5 s and 300 MB.

The malformed corpus is committed; inputs too big or too special to commit (a 50 MB file, a
fifo, a socket, a symlink loop, /dev/zero, NUL bytes, 10,000+ values) are made in tmp_path.
Each child's peak RSS is read by a tiny parent process with RUSAGE_CHILDREN, so nothing else
this test session spawned counts; an address-space cap turns a regression into a failure
rather than a machine that swaps.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.scenario import limits

REPO = Path(__file__).resolve().parents[2]
CATALOG = REPO / "tests" / "unit" / "catalog"
MALFORMED = sorted((REPO / "tests" / "scenarios" / "malformed").glob("*.yaml"))
MAX_SECONDS = 5.0
MAX_RSS_KB = 300 * 1024

# The parent: runs `lab validate --json FILE` under a 2 GB address-space cap, reports the
# child's wall time, peak RSS (KiB), exit code and output as one JSON line.
_PARENT = r"""
import json, resource, subprocess, sys, time
def cap():
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
t = time.monotonic()
r = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=60, preexec_fn=cap)
seconds = time.monotonic() - t
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"rc": r.returncode, "seconds": seconds, "rss": rss,
                  "out": r.stdout, "err": r.stderr}))
"""


_MAIN = "import sys; from harness.cli import main; sys.argv[0] = 'lab'; main()"


@dataclass(frozen=True)
class Outcome:
    rc: int
    seconds: float
    rss_kb: int
    out: str
    err: str

    @property
    def problems(self) -> list[dict[str, object]]:
        files = json.loads(self.out)["files"]
        return [p for ps in files.values() for p in ps]


def lab_validate(path: Path | str) -> Outcome:
    script = Path(sys.executable).with_name("lab")  # the installed console script
    lab = [str(script)] if script.exists() else [sys.executable, "-c", _MAIN]
    cmd = [*lab, "validate", "--project", str(CATALOG), "--json", str(path)]
    done = subprocess.run(
        [sys.executable, "-c", _PARENT, *cmd],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=True,
    )
    r = json.loads(done.stdout)
    return Outcome(r["rc"], r["seconds"], r["rss"], r["out"], r["err"])


def assert_refused(o: Outcome, *fragments: str) -> None:
    """Exit 2, a located message containing each fragment, within the time and memory."""
    assert o.seconds < MAX_SECONDS, f"{o.seconds:.1f} s"
    assert o.rss_kb < MAX_RSS_KB, f"{o.rss_kb // 1024} MB"
    assert o.rc == 2, (o.rc, o.err[-2000:])
    assert "internal error" not in o.out + o.err
    assert "Traceback" not in o.err
    problems = o.problems
    assert problems, o.out
    for p in problems:
        assert isinstance(p["line"], int) and p["line"] >= 1
        assert isinstance(p["col"], int) and p["col"] >= 1
    text = " | ".join(str(p["message"]) for p in problems)
    for fragment in fragments:
        assert fragment in text, text


def test_the_cli_runs_and_reports_json() -> None:
    assert lab_validate(REPO / "nope.yaml").problems[0]["message"] == "file not found"


@pytest.mark.parametrize("path", MALFORMED, ids=[f.stem for f in MALFORMED])
def test_every_malformed_file_is_refused_quickly_in_little_memory(path: Path) -> None:
    assert_refused(lab_validate(path))


def test_a_shadow_style_file_is_not_echoed_back() -> None:
    path = REPO / "tests" / "scenarios" / "malformed" / "not-a-scenario.yaml"
    o = lab_validate(path)
    assert_refused(o, "this is not a scenario file")
    for secret in ("$6$", "Zm9vYmFyYmF6", "alice", "daemon"):
        assert secret not in o.out + o.err


# -- inputs made here ---------------------------------------------------------------------------

HEAD = (
    "scenario: x\ntopology:\n  networks:\n    lan: {}\n  nodes:\n"
    "    a: {lab: web, networks: [lan]}\n"
)


def _values(tmp: Path) -> Path:
    body = "".join(f"    V{i}: x\n" for i in range(limits.MAX_YAML_NODES))
    return _write(tmp, HEAD + "params:\n" + body.replace("    ", "  "))


def _chain(tmp: Path) -> Path:
    nodes = "".join(f"    n{i}: {{lab: web, depends_on: [n{i + 1}]}}\n" for i in range(3000))
    return _write(tmp, "scenario: x\ntopology:\n  nodes:\n" + nodes + "    n3000: {lab: web}\n")


def _cycle_at_the_limit(tmp: Path) -> Path:
    n = limits.MAX_TOPOLOGY_NODES
    nodes = "".join(
        f"    n{i}: {{lab: web, networks: [lan], depends_on: [n{(i + 1) % n}]}}\n" for i in range(n)
    )
    return _write(tmp, "scenario: x\ntopology:\n  networks:\n    lan: {}\n  nodes:\n" + nodes)


def _nodes5000(tmp: Path) -> Path:
    nodes = "".join(f"    n{i}: {{lab: web}}\n" for i in range(5000))
    return _write(tmp, "scenario: x\ntopology:\n  nodes:\n" + nodes)


def _deep(tmp: Path) -> Path:
    return _write(tmp, HEAD + "params:\n  p: " + "{a: " * 1000 + "1" + "}" * 1000 + "\n")


def _big_matrix(tmp: Path) -> Path:
    axes = "".join(f"  ax{i}: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n" for i in range(8))
    return _write(tmp, HEAD + "matrix:\n" + axes)


def _six_axes(tmp: Path) -> Path:
    axes = "".join(f"  ax{i}: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n" for i in range(6))
    return _write(tmp, HEAD + "matrix:\n" + axes)


def _nul(tmp: Path) -> Path:
    return _write(tmp, HEAD + "title: a\x00b\n")


def _huge_file(tmp: Path) -> Path:
    path = tmp / "huge.yaml"
    with path.open("w", encoding="utf-8") as f:
        f.write(HEAD + "description: |\n")
        f.write(("  " + "x" * 98 + "\n") * 500_000)  # 50 MB
    return path


def _just_over_a_mebibyte(tmp: Path) -> Path:
    return _write(tmp, HEAD + "#" * (limits.MAX_FILE_BYTES - len(HEAD)) + "\n")


def _long_text(tmp: Path) -> Path:
    return _write(tmp, HEAD + "title: " + "x" * (limits.MAX_SCALAR_CHARS + 1) + "\n")


def _long_key(tmp: Path) -> Path:
    return _write(tmp, HEAD + "k" * (limits.MAX_KEY_CHARS + 1) + ": 1\n")


def _not_utf8(tmp: Path) -> Path:
    path = tmp / "latin1.yaml"
    path.write_bytes(HEAD.encode() + b"title: caf\xe9\n")
    return path


def _fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "fifo.yaml")
    return tmp / "fifo.yaml"


def _socket(tmp: Path) -> Path:
    path = tmp / "sock.yaml"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
    return path


def _folder(tmp: Path) -> Path:
    (tmp / "folder.yaml").mkdir()
    return tmp / "folder.yaml"


def _loop(tmp: Path) -> Path:
    os.symlink("loop.yaml", tmp / "loop.yaml")
    return tmp / "loop.yaml"


def _write(tmp: Path, text: str) -> Path:
    path = tmp / "made.yaml"
    path.write_text(text, encoding="utf-8")
    return path


MADE: dict[str, tuple[Callable[[Path], Path | str], str]] = {
    "10000-values": (_values, "limit MAX_YAML_NODES"),
    "3000-long-depends-on-chain": (_chain, "limit MAX_YAML_NODES"),
    "5000-nodes": (_nodes5000, "limit MAX_YAML_NODES"),
    "depends-on-cycle-of-64": (_cycle_at_the_limit, "depends_on makes a cycle: n0 -> n1 -> n2"),
    "1000-deep": (_deep, "limit MAX_DEPTH"),
    "8-axis-matrix": (_big_matrix, "limit MAX_MATRIX_AXES"),
    "10^6-cell-matrix": (_six_axes, "1,000,000 cells"),
    "nul-byte": (_nul, "control character U+0000"),
    "50-MB-file": (_huge_file, "limit MAX_FILE_BYTES"),
    "1-MiB-plus-one": (_just_over_a_mebibyte, "limit MAX_FILE_BYTES"),
    "64-KiB-text": (_long_text, "limit MAX_SCALAR_CHARS"),
    "long-key": (_long_key, "limit MAX_KEY_CHARS"),
    "not-utf8": (_not_utf8, "not UTF-8 text"),
    "fifo": (_fifo, "this is a fifo (named pipe), not a scenario file"),
    "socket": (_socket, "this is a socket, not a scenario file"),
    "folder": (_folder, "this is a folder, not a scenario file"),
    "symlink-loop": (_loop, "symlink loop"),
    "dev-zero": (lambda _: "/dev/zero", "this is a character device, not a scenario file"),
}


@pytest.mark.parametrize("name", list(MADE))
def test_generated_hostile_input_is_refused_with_the_limit_named(name: str, tmp_path: Path) -> None:
    make, fragment = MADE[name]
    assert_refused(lab_validate(make(tmp_path)), fragment)


def test_a_scenario_just_under_the_limits_is_valid(tmp_path: Path) -> None:
    """The limits refuse only the oversized: 64 nodes and a 256-cell matrix validate (exit 0)."""
    n = limits.MAX_TOPOLOGY_NODES
    nodes = "".join(f"    n{i}: {{lab: web, networks: [lan]}}\n" for i in range(n))
    matrix = "matrix:\n  a: [" + ", ".join(map(str, range(16))) + "]\n"
    matrix += "  b: [" + ", ".join(map(str, range(16))) + "]\n"
    text = "scenario: x\n" + matrix + "topology:\n  networks:\n    lan: {}\n  nodes:\n" + nodes
    o = lab_validate(_write(tmp_path, text))
    assert o.rc == 0, o.out
    assert o.seconds < MAX_SECONDS and o.rss_kb < MAX_RSS_KB
