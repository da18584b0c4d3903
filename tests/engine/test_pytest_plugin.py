"""The pytest plugin and verify suites against the real engine, real pytest, real testinfra.

(a) `pytest --lab-scenario`: the topology up for the session, down at the end per the destroy
    policy; `--lab-run` attaches to a live run.
(b) `lab reproduce` with suites in `verify`: per-test results in the journal.
(c) `lab verify-fix` whose fix breaks what the nginx lab's health suite checks: REGRESSION.
(d) every lab's health suite passes against the web tier, on debian-11, debian-12 and debian-13.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, lab_env, nothing_left, run_lab

PAIR = "tests/engine/scenarios/pair.yaml"
SESSION_SUITE = "tests/plugin_suites/test_session_lab.py"
SUITE_VERIFY = "tests/engine/scenarios/suite-verify.yaml"
LAB_SUITES = [f"labs/{lab}/tests" for lab in ("curl", "nginx", "backend", "postgres", "redis")]


def pytest_run(
    *args: str, reports: Path, timeout: float = 600, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", *args],
        cwd=ROOT,
        env=lab_env(reports, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def session_runs(reports: Path, scenario: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(reports.glob(f"{scenario}/*/run.json"))]


def down(run: str) -> None:
    from harness.verbs.runs import down as lab_down

    lab_down([run])


def test_session_up_and_down(docker_client: Any, reports: Path) -> None:
    p = pytest_run("--lab-scenario", PAIR, SESSION_SUITE, reports=reports)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    [state] = session_runs(reports, "pair")
    # the host fixture ran once per node, the node's name in the test id
    for node in ("client", "server"):
        assert f"test_host_on_every_node[{node}] PASSED" in out
    assert "test_marked_node_only[client] PASSED" in out
    assert "test_marked_node_only[server]" not in out
    assert f"labharness: run {state['run']} removed" in out
    assert state["state"] == "down"
    assert nothing_left(docker_client, state["run"])


def test_destroy_never_keeps_it_and_lab_run_attaches(docker_client: Any, reports: Path) -> None:
    p = pytest_run("--lab-scenario", PAIR, "--lab-destroy", "never", SESSION_SUITE, reports=reports)
    [state] = session_runs(reports, "pair")
    run = state["run"]
    try:
        assert p.returncode == 0, p.stdout + p.stderr
        assert f"run {run} kept (--lab-destroy never)" in p.stdout
        assert state["state"] == "up"  # kept on purpose: `lab gc` leaves it
        assert len(docker_client.containers.list(filters={"label": f"labharness.run={run}"})) == 2
        # a second session attaches to the live run by id prefix, and leaves it up
        again = pytest_run("--lab-run", run[:15], SESSION_SUITE, reports=reports)
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"labharness: run {run} (pair)" in again.stdout
        assert not nothing_left(docker_client, run)
    finally:
        down(run)
    assert nothing_left(docker_client, run)


def test_a_failing_test_keeps_the_lab(docker_client: Any, reports: Path) -> None:
    p = pytest_run("--lab-scenario", PAIR, SESSION_SUITE, reports=reports, PLUGIN_SUITE_FAIL="1")
    [state] = session_runs(reports, "pair")
    run = state["run"]
    try:
        assert p.returncode == 1, p.stdout + p.stderr
        assert "test_fails_when_asked FAILED" in p.stdout
        assert f"run {run} kept (1 failed): lab shell {run} client" in p.stdout
        assert not nothing_left(docker_client, run)
    finally:
        down(run)
    # with --lab-destroy always, the same failure still takes it down
    p = pytest_run(
        "--lab-scenario",
        PAIR,
        "--lab-destroy",
        "always",
        SESSION_SUITE,
        reports=reports,
        PLUGIN_SUITE_FAIL="1",
    )
    assert p.returncode == 1
    latest = session_runs(reports, "pair")
    assert all(nothing_left(docker_client, s["run"]) for s in latest)


def test_sigterm_tears_down(docker_client: Any, reports: Path, tmp_path: Path) -> None:
    started = tmp_path / "started"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--lab-scenario",
            PAIR,
            SESSION_SUITE,
            "-k",
            "sleeps",
        ],
        cwd=ROOT,
        env=lab_env(reports, PLUGIN_SUITE_SLEEP=str(started)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert started.exists(), proc.stdout.read() if proc.stdout else ""
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    run = started.read_text()
    assert f"run {run} removed" in out, out
    assert nothing_left(docker_client, run)


def test_inert_without_options(reports: Path) -> None:
    p = pytest_run("tests/plugin_suites/test_inert_lab.py", reports=reports)
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    assert "test_plain PASSED" in out and "test_testinfra_host_is_local[local] PASSED" in out
    assert "the `lab` fixture needs a topology: run pytest with --lab-run" in out
    assert "Traceback" not in out
    assert not any(reports.iterdir())  # nothing brought up, nothing written


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lab-run", "x", "--lab-scenario", PAIR], "not both"),
        (["--lab-scenario", PAIR, "--lab-destroy", "sometimes"], "expected one of"),
        (["--lab-scenario", PAIR, "--lab-param", "novalue"], "expected NAME=VALUE"),
        (["--lab-run", "000000-nope"], "no run folder and no run with that id"),
        (["--lab-scenario", "no/such.yaml"], "no such file"),
    ],
)
def test_bad_options(args: list[str], message: str, reports: Path) -> None:
    p = pytest_run(*args, SESSION_SUITE, reports=reports)
    assert p.returncode == 4, p.stdout + p.stderr
    assert message in p.stderr


def _journal(folder: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((Path(folder) / "journal.json").read_text())
    return data


def test_reproduce_runs_verify_suites(reports: Path, cleanup_runs: list[str]) -> None:
    p = run_lab("reproduce", SUITE_VERIFY, "--json", reports=reports)
    r = json.loads(p.stdout)
    cleanup_runs.append(r["run"])
    assert (p.returncode, r["verdict"]) == (0, "REPRODUCED"), r["reason"]
    [verify] = [ph for ph in _journal(r["folder"])["phases"] if ph["phase"] == "verify"]
    checks = {c["name"]: c for c in verify["checks"]}
    nginx = "labs/nginx/tests/test_health.py"
    mine = "tests/plugin_suites/test_verify_lab.py"
    for name in (
        "client$ curl -fsS http://proxy/health",  # the command check, first
        f"{nginx}::test_package_at_lab_version[proxy]",
        f"{nginx}::test_config_valid[proxy]",
        f"{nginx}::test_listening_on_its_ports[proxy]",
        "labs/curl/tests/test_health.py::test_curl_runs_with_the_os_openssl[client]",
        f"{mine}::test_client_reaches_the_proxy[client]",
        f"{mine}::test_nginx_nodes_by_lab[proxy]",
    ):
        assert checks[name]["passed"], checks.get(name)
    suite_checks = [c for c in verify["checks"] if "suite" in c]
    assert all({"outcome", "duration_s", "message", "passed"} <= set(c) for c in suite_checks)
    assert checks[f"{mine}::test_skipped_on_purpose"]["outcome"] == "skipped"
    assert checks[f"{mine}::test_skipped_on_purpose"]["message"].startswith("reported as skipped")
    assert not any("test_deselected" in n for n in checks)  # -k "not deselected"
    assert not any(r["run"] in n for n in checks)  # names stable across runs
    assert [s["exit_code"] for s in verify["suites"]] == [0, 0]
    assert (Path(r["folder"]) / "verify" / "verify-junit.xml").is_file()
    assert any((Path(r["folder"]) / "verify" / "allure-verify").iterdir())
    assert r["checks"] == verify["checks"]


def test_verify_fix_regression_from_a_suite(
    docker_client: Any, reports: Path, cleanup_runs: list[str]
) -> None:
    p = run_lab(
        "verify-fix",
        SUITE_VERIFY,
        "--fix",
        "serve-missing-broken",
        "--destroy",
        "always",
        "--json",
        reports=reports,
    )
    r = json.loads(p.stdout)
    cleanup_runs += [r["baseline"]["run"], r["candidate"]["run"]]
    # the symptom is gone, but nginx's config no longer passes `nginx -t`
    assert r["candidate"]["verdict"] == "NOT_REPRODUCED", r["candidate"]["reason"]
    assert (p.returncode, r["verdict"]) == (1, "REGRESSION"), r["reason"]
    assert "labs/nginx/tests/test_health.py::test_config_valid[proxy]" in r["reason"]
    failing = {c["name"]: c for c in r["candidate"]["checks"] if not c["passed"]}
    bad = failing["labs/nginx/tests/test_health.py::test_config_valid[proxy]"]
    assert bad["outcome"] == "failed" and "this_is_not_a_directive" in bad["message"]
    # the running nginx still listens: only what the config check sees is broken
    assert set(failing) == {"labs/nginx/tests/test_health.py::test_config_valid[proxy]"}
    for run in cleanup_runs:
        assert nothing_left(docker_client, run)


@pytest.mark.parametrize("os_name", ["debian-11", "debian-12", "debian-13"])
def test_lab_health_suites_on_web_tier(os_name: str, docker_client: Any, reports: Path) -> None:
    p = pytest_run(
        "--lab-scenario",
        "scenarios/examples/web-tier.yaml",
        "--lab-param",
        f"os={os_name}",
        "--import-mode=importlib",
        *LAB_SUITES,
        reports=reports,
    )
    out = p.stdout + p.stderr
    [state] = session_runs(reports, "web-tier")
    assert p.returncode == 0, out
    for node in ("client", "proxy", "backend", "db", "cache"):
        assert f"[{node}] PASSED" in out
    assert " FAILED" not in out and " SKIPPED" not in out
    assert nothing_left(docker_client, state["run"])


@pytest.mark.parametrize("os_name", ["debian-11", "debian-12", "debian-13"])
def test_haproxy_health_suite(os_name: str, docker_client: Any, reports: Path) -> None:
    """The haproxy lab's suite on the haproxy case (its servers DOWN: the suite needs none UP)."""
    p = pytest_run(
        "--lab-scenario",
        "scenarios/cases/haproxy-healthcheck-path.yaml",
        "--lab-param",
        f"os={os_name}",
        "--import-mode=importlib",
        "labs/haproxy/tests",
        reports=reports,
    )
    out = p.stdout + p.stderr
    [state] = session_runs(reports, "haproxy-healthcheck-path")
    assert p.returncode == 0, out
    assert out.count("[lb] PASSED") == 5, out
    assert " FAILED" not in out and " SKIPPED" not in out
    assert nothing_left(docker_client, state["run"])


@pytest.mark.parametrize("os_name", ["debian-11", "debian-12", "debian-13"])
def test_openssh_health_suite(os_name: str, docker_client: Any, reports: Path) -> None:
    """The openssh lab's suite on the openssh case: on the server (the customer's
    authorized_keys: the suite logs nobody in) and on the client node (the same lab)."""
    p = pytest_run(
        "--lab-scenario",
        "scenarios/cases/openssh-rsa-sha1-refused.yaml",
        "--lab-param",
        f"os={os_name}",
        "--import-mode=importlib",
        "labs/openssh/tests",
        reports=reports,
    )
    out = p.stdout + p.stderr
    [state] = session_runs(reports, "openssh-rsa-sha1-refused")
    assert p.returncode == 0, out
    assert out.count("[server] PASSED") == 7 and out.count("[nas01] PASSED") == 7, out
    assert " FAILED" not in out and " SKIPPED" not in out
    assert nothing_left(docker_client, state["run"])


@pytest.mark.parametrize("os_name", ["debian-11", "debian-12", "debian-13"])
def test_unbound_health_suite(os_name: str, docker_client: Any, reports: Path) -> None:
    """The unbound lab's suite on the unbound case's two resolvers (the branch's, whose static
    zone is the symptom, and HQ's): 5 tests each."""
    p = pytest_run(
        "--lab-scenario",
        "scenarios/cases/unbound-static-local-zone.yaml",
        "--lab-param",
        f"os={os_name}",
        "--import-mode=importlib",
        "labs/unbound/tests",
        reports=reports,
    )
    out = p.stdout + p.stderr
    [state] = session_runs(reports, "unbound-static-local-zone")
    assert p.returncode == 0, out
    assert out.count("[resolver] PASSED") == 5 and out.count("[hq] PASSED") == 5, out
    assert " FAILED" not in out and " SKIPPED" not in out
    assert nothing_left(docker_client, state["run"])


@pytest.mark.parametrize("os_name", ["debian-11", "debian-12", "debian-13"])
def test_mosquitto_health_suite(os_name: str, docker_client: Any, reports: Path) -> None:
    """The mosquitto lab's suite on the mosquitto case: on the broker that refuses anonymous
    clients (the customer's file) and on the sensor's default broker that allows them."""
    p = pytest_run(
        "--lab-scenario",
        "scenarios/cases/mosquitto-anonymous-refused.yaml",
        "--lab-param",
        f"os={os_name}",
        "--import-mode=importlib",
        "labs/mosquitto/tests",
        reports=reports,
    )
    out = p.stdout + p.stderr
    [state] = session_runs(reports, "mosquitto-anonymous-refused")
    assert p.returncode == 0, out
    assert out.count("[broker] PASSED") == out.count("[sensor] PASSED") == 5, out
    assert " FAILED" not in out and " SKIPPED" not in out
    assert nothing_left(docker_client, state["run"])


@pytest.mark.parametrize("os_name", ["debian-11", "debian-12", "debian-13"])
def test_sample_product_health_suite_on_the_vendor_package(
    os_name: str, docker_client: Any, reports: Path
) -> None:
    """ledger 1.5, installed from the vendor's .deb in the lab folder, passes the sample
    product's suite (dpkg's package `ledger` at the lab version among its checks)."""
    p = pytest_run(
        "--lab-scenario",
        "scenarios/cases/sample-product-separator.yaml",
        "--lab-param",
        f"os={os_name}",
        "--lab-param",
        "product_version=1.5",
        "--import-mode=importlib",
        "labs/sample-product/tests",
        reports=reports,
    )
    out = p.stdout + p.stderr
    [state] = session_runs(reports, "sample-product-separator")
    assert p.returncode == 0, out
    assert out.count("[product] PASSED") == 7, out
    assert "test_packaged_ledger_is_the_lab_version[product] PASSED" in out, out
    assert " FAILED" not in out and " SKIPPED" not in out
    assert nothing_left(docker_client, state["run"])


@pytest.mark.parametrize("os_name", ["debian-11", "debian-12", "debian-13"])
def test_openldap_health_suite(os_name: str, docker_client: Any, reports: Path) -> None:
    """The openldap lab's suite on the openldap case: on the directory (the customer's access
    rules: the suite reads only the root DSE) and on the client node (the same lab)."""
    p = pytest_run(
        "--lab-scenario",
        "scenarios/cases/openldap-anonymous-lookup.yaml",
        "--lab-param",
        f"os={os_name}",
        "--import-mode=importlib",
        "labs/openldap/tests",
        reports=reports,
    )
    out = p.stdout + p.stderr
    [state] = session_runs(reports, "openldap-anonymous-lookup")
    assert p.returncode == 0, out
    assert out.count("[directory01] PASSED") == 7 and out.count("[app01] PASSED") == 7, out
    assert " FAILED" not in out and " SKIPPED" not in out
    assert nothing_left(docker_client, state["run"])
