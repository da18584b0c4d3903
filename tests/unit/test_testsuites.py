"""harness/testsuites.py and the plugin's pure parts, without an engine: pytest really runs (a
subprocess, the labharness plugin loaded through its entry point) against a run folder whose
nodes no test touches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import testsuites
from harness.pytest_plugin import Lab, LabError, find_run_folder, same_version, targets
from harness.scenario.schema import SuiteItem

SUITE = """
import pytest

def test_passes(host, node):
    assert node.name in ("web", "db")

@pytest.mark.lab_node("db")
def test_fails_on_db(node):
    assert node.name != "db", "db is down on purpose"

def test_skips(lab):
    pytest.skip("nothing to see")

def test_errors_in_setup(broken):
    pass

@pytest.fixture()
def broken():
    raise RuntimeError("setup broke")

class TestGrouped:
    def test_in_class(self, lab):
        assert lab.scenario == "fake"
"""


def _project(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "project"
    (root / "suites").mkdir(parents=True)
    (root / "suites" / "test_fake.py").write_text(SUITE)
    (root / "suites" / "test_broken.py").write_text("import nonexistent_module_xyz\n")
    run = root / "reports" / "fake" / "261126-000000-abcd"
    run.mkdir(parents=True)
    nodes = [
        {"name": n, "container": f"lab-261126-000000-abcd-{n}", "addresses": {"lan": ip}}
        for n, ip in (("web", "10.0.0.2"), ("db", "10.0.0.3"))
    ]
    (run / "run.json").write_text(
        json.dumps({"run": run.name, "scenario": "fake", "state": "running", "nodes": nodes})
    )
    topo = {
        "networks": [{"name": "lan", "subnet": None}],
        "nodes": [
            {"name": "web", "lab": "nginx", "version": "1.22", "os": "debian-12"},
            {"name": "db", "lab": "postgres", "version": "15", "os": "debian-12"},
        ],
    }
    (run / "journal.json").write_text(json.dumps({"topology": topo}))
    return root, run


def test_results_per_test_with_node_names(tmp_path: Path) -> None:
    root, run = _project(tmp_path)
    calls: list[dict[str, object]] = []
    res = testsuites.run_suites(
        ["suites/test_fake.py"],
        root=root,
        run_folder=run,
        out_dir=run / "verify",
        invocations=calls,
    )
    by = {r["name"]: r for r in res}
    f = "suites/test_fake.py"
    assert set(by) == {
        f"{f}::test_passes[web]",
        f"{f}::test_passes[db]",
        f"{f}::test_fails_on_db[db]",
        f"{f}::test_skips",
        f"{f}::test_errors_in_setup",
        f"{f}::TestGrouped::test_in_class",
    }
    assert by[f"{f}::test_passes[web]"]["outcome"] == "passed"
    failed = by[f"{f}::test_fails_on_db[db]"]
    assert (failed["outcome"], failed["passed"]) == ("failed", False)
    assert "db is down on purpose" in failed["message"]
    skipped = by[f"{f}::test_skips"]
    assert (skipped["outcome"], skipped["passed"]) == ("skipped", True)
    assert skipped["message"] == "nothing to see"
    errored = by[f"{f}::test_errors_in_setup"]
    assert (errored["outcome"], errored["passed"]) == ("error", False)
    assert "setup broke" in errored["message"] + errored["output"]
    assert all(r["suite"] == f and isinstance(r["duration_s"], float) for r in res)
    assert (run / "verify" / "verify-junit.xml").is_file()
    assert any((run / "verify" / "allure-verify").iterdir())
    assert calls and calls[0]["exit_code"] == 1 and "--lab-run" in calls[0]["command"]  # type: ignore[operator]


def test_selections_and_what_cannot_run(tmp_path: Path) -> None:
    root, run = _project(tmp_path)
    res = testsuites.run_suites(
        [
            SuiteItem(suite="suites/test_fake.py", k="in_class"),
            SuiteItem(suite="suites/test_fake.py", k="no_such_test"),
            "suites/test_broken.py",
            "suites/missing.py",
        ],
        root=root,
        run_folder=run,
        out_dir=run / "verify",
    )
    names = {r["name"]: r for r in res}
    assert names["suites/test_fake.py::TestGrouped::test_in_class"]["outcome"] == "passed"
    none = names["suites/test_fake.py -k 'no_such_test'::<pytest>"]
    assert none["outcome"] == "error" and "no tests collected" in none["message"]
    # the plain paths run together: the missing file stops that pytest before collection
    plain = [r for r in res if r["suite"] == "suites/test_broken.py, suites/missing.py"]
    assert plain and all(r["outcome"] == "error" and not r["passed"] for r in plain)
    assert "missing.py" in plain[0]["message"] + plain[0]["output"]
    # one JUnit file for the whole verify phase, whatever the number of pytest runs
    assert sorted(p.name for p in (run / "verify").glob("*.xml")) == ["verify-junit.xml"]


def test_collection_error_is_an_error_entry(tmp_path: Path) -> None:
    root, run = _project(tmp_path)
    res = testsuites.run_suites(
        ["suites/test_broken.py"], root=root, run_folder=run, out_dir=run / "verify"
    )
    assert len(res) == 1 and res[0]["outcome"] == "error"
    assert "nonexistent_module_xyz" in res[0]["message"] + res[0]["output"]


def test_time_limit(tmp_path: Path) -> None:
    root, run = _project(tmp_path)
    (root / "suites" / "test_slow.py").write_text(
        "import time\ndef test_slow():\n    time.sleep(30)\n"
    )
    res = testsuites.run_suites(
        ["suites/test_slow.py"], root=root, run_folder=run, out_dir=run / "verify", timeout=3
    )
    assert [r["outcome"] for r in res] == ["error"]
    assert "did not finish within 3 s" in res[0]["message"]


def test_lab_from_folder_and_targets(tmp_path: Path) -> None:
    _, run = _project(tmp_path)
    lab = Lab.from_folder(run)
    assert (lab.run, lab.scenario, sorted(lab.nodes)) == (run.name, "fake", ["db", "web"])
    assert (lab.node("db").lab, lab.node("db").version) == ("postgres", "15")
    assert lab.networks["lan"].addresses == {"web": "10.0.0.2", "db": "10.0.0.3"}
    assert lab.address("web") == "10.0.0.2"
    with pytest.raises(LabError, match="node db has no IPv6 address"):
        lab.address6("db")
    with pytest.raises(LabError, match="no node 'nope'"):
        lab.node("nope")
    labs = Path("/p/labs")
    assert targets(lab, labs / "nginx/tests/test_health.py", [], []) == ["web"]
    assert targets(lab, labs / "redis/tests/test_health.py", [], []) == []
    assert targets(lab, Path("/p/tests/test_x.py"), [], []) == ["db", "web"]
    assert targets(lab, Path("/p/tests/test_x.py"), ["db"], ["nginx"]) == ["db", "web"]
    assert find_run_folder(run.name[:10], [run.parent.parent]) == run.resolve()
    assert find_run_folder(str(run), []) == run.resolve()
    with pytest.raises(LabError, match="no run folder"):
        find_run_folder("999999", [run.parent.parent])


def test_same_version() -> None:
    assert same_version("1.22.1-9+deb12u9", "1.22")
    assert same_version("5:7.0.15-1~deb12u7", "7.0")
    assert same_version("15.18-0+deb12u1", "15")
    assert not same_version("1.220-1", "1.22")
    assert not same_version("13.16-0+deb11u1", "15")


def test_lab_from_folder_reads_ipv6_addresses(tmp_path: Path) -> None:
    _, run = _project(tmp_path)
    state = json.loads((run / "run.json").read_text())
    state["nodes"][0]["addresses6"] = {"lan": "fd00::2"}
    (run / "run.json").write_text(json.dumps(state))
    lab = Lab.from_folder(run)
    assert lab.node("web").addresses6 == {"lan": "fd00::2"} and lab.node("db").addresses6 == {}
    assert lab.networks["lan"].addresses6 == {"web": "fd00::2"}
    assert lab.address6("web") == lab.address6("web", "lan") == "fd00::2"
    with pytest.raises(LabError, match="no IPv6 address on network 'wan'"):
        lab.address6("web", "wan")
