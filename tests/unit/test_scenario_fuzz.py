"""Property: whatever the bytes of a scenario file, validate_file returns located problems (or
none) and load_scenario returns a scenario or raises ScenarioInvalid. Never another exception,
never "internal error". Three sources of input: arbitrary text, random trees of scenario-ish
keys dumped as YAML (with anchors and aliases), and real scenarios mutated byte by byte.

Strategies fill the last parameters (hypothesis fills positional strategies from the right).
Bounded for CI: a fixed number of examples per property and a per-example deadline; the three
together take well under 60 s.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.scenario.catalog import Catalog
from harness.scenario.load import load_scenario, validate_file
from harness.scenario.problems import ScenarioInvalid

REPO = Path(__file__).resolve().parents[2]
SEEDS = (
    sorted((REPO / "tests" / "unit" / "catalog" / "scenarios").glob("*.yaml"))
    + sorted((REPO / "tests" / "scenarios" / "malformed").glob("*.yaml"))[:12]
)
SEED_TEXTS = [p.read_text(encoding="utf-8") for p in SEEDS]

FUZZ = settings(
    max_examples=150,
    deadline=3000,  # ms per example; the slowest real inputs take ~0.1 s
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)

KEYS = [
    "scenario", "topology", "networks", "nodes", "lab", "os", "version", "image", "files",
    "env", "subnet", "address", "depends_on", "matrix", "include", "exclude", "params",
    "reproduce", "steps", "symptom", "run", "on", "id", "wait", "port", "timeout", "fault",
    "target", "impairments", "loss", "delay", "fixes", "kind", "configure", "playbook",
    "hosts", "verify", "collect", "logs", "capture", "cap_add", "health", "attempts", "<<",
]  # fmt: skip
NAMES = ["web", "lan", "a", "client", "debian-12", "${params.x}", "${matrix.os}", "${nope.y}"]
# placeholders _dump() swaps for what safe_dump cannot write: past-the-limit YAML
BIG = {"HUGE_INT": "9" * 5000, "DEEP_LIST": "[" * 300 + "]" * 300, "LONG_TEXT": "x" * 70_000}
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([*NAMES, "10%", "5s", "10.80.0.0/24", "fixtures/SUP-1", "../../etc/passwd"]),
    st.sampled_from(list(BIG)),
    st.text(max_size=20),
)
TREES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.sampled_from(KEYS + NAMES), inner, max_size=6),
    ),
    max_leaves=40,
)
SPICE = [
    "\t", "\x00", "\x07", ":", ": ", "- ", "[", "{", "}", "]", "&a ", "*a", "\n", "'", '"',
    "#", "${", "\ufeff", "!!python/object:os.system ", "9" * 5000, "\nx: " + "9" * 5000 + "\n",
]  # fmt: skip


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def check(text: str, workdir: Path, root: Path, catalog: Catalog) -> None:
    path = workdir / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    problems = validate_file(path, root=root, catalog=catalog)
    for p in problems:
        assert "internal error" not in p.message, (p, text[:300])
        assert p.line >= 1 and p.col >= 1
    try:
        load_scenario(path, root=root, catalog=catalog)
    except ScenarioInvalid as exc:
        assert exc.exit_code == 2
        assert exc.problems
        assert not any("internal error" in p.message for p in exc.problems), text[:300]
    else:
        assert problems == [], "validate found problems that load did not"


def _dump(tree: Any, alias: bool) -> str:
    text = yaml.safe_dump(tree, default_flow_style=None, allow_unicode=True, sort_keys=False)
    for name, value in BIG.items():
        text = text.replace(name, value)
    if alias and "\n" in text:
        first, rest = text.split("\n", 1)
        text = f"{first.replace(': ', ': &a ', 1)}\n{rest.replace(': ', ': *a ', 1)}"
    return text


@FUZZ
@given(st.text(max_size=400))
def test_arbitrary_text(
    workdir: Path, catalog_root: Path, test_catalog: Catalog, text: str
) -> None:
    check(text, workdir, catalog_root, test_catalog)


@FUZZ
@given(TREES, st.booleans())
def test_random_scenario_shaped_trees(
    workdir: Path, catalog_root: Path, test_catalog: Catalog, tree: Any, alias: bool
) -> None:
    if isinstance(tree, dict) and tree:
        tree = {"scenario": "fuzz", **tree}
    check(_dump(tree, alias), workdir, catalog_root, test_catalog)


@FUZZ
@given(
    st.sampled_from(range(len(SEED_TEXTS))),
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=10**5),
            st.integers(min_value=0, max_value=40),
            st.sampled_from(SPICE),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_real_scenarios(
    workdir: Path,
    catalog_root: Path,
    test_catalog: Catalog,
    seed: int,
    edits: list[tuple[int, int, str]],
) -> None:
    text = SEED_TEXTS[seed]
    for at, cut, insert in edits:
        at %= len(text) + 1
        text = text[:at] + insert + text[at + cut :]
    check(text, workdir, catalog_root, test_catalog)
