"""`lab up` / `ls` / `exec` / `down` / `gc` against the real engine, through the real CLI."""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jsonschema

from tests.conftest import ROOT, labelled, nothing_left, run_json, run_lab

SCEN = "tests/engine/scenarios"


def _exec(run: str, node: str, cmd: str, reports: Path) -> subprocess.CompletedProcess[str]:
    return run_lab("exec", run, node, "--", "sh", "-c", cmd, reports=reports)


def test_up_builds_the_topology_and_down_removes_every_trace(
    docker_client: Any, reports: Path, cleanup_runs: list[str]
) -> None:
    up = run_json("up", f"{SCEN}/three-nodes.yaml", reports=reports)
    schema = json.loads((ROOT / "schemas/results/up.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(up)  # the published schema holds
    run = up["run"]
    cleanup_runs.append(run)
    nodes = {n["name"]: n for n in up["nodes"]}
    assert set(nodes) == {"a", "b", "c"}
    assert nodes["a"]["addresses"]["left"] == "10.231.7.10"
    assert set(nodes["b"]["addresses"]) == {"left", "right"}

    # names and labels as DESIGN.md says
    for name in "abc":
        c = docker_client.containers.get(f"lab-{run}-{name}")
        assert c.labels["labharness.run"] == run
        assert c.labels["labharness.scenario"] == "three-nodes"
        assert c.labels["labharness.node"] == name
        assert c.status == "running"
        assert not c.attrs["HostConfig"]["Privileged"]
    nets = labelled(docker_client, run)["networks"]
    assert sorted(nets) == [f"lab-{run}-left", f"lab-{run}-right"]

    # files, env, OS generation
    assert _exec(run, "a", "cat /etc/lab/hello.txt", reports).stdout == (
        "hello from the fixtures folder\n"
    )
    assert _exec(run, "a", "echo $GREETING", reports).stdout.strip() == "hi"
    assert _exec(run, "a", "cut -d. -f1 /etc/debian_version", reports).stdout.strip() == "12"
    assert _exec(run, "c", "cut -d. -f1 /etc/debian_version", reports).stdout.strip() == "11"

    # DNS by node name on shared networks only
    assert _exec(run, "a", "getent hosts b", reports).returncode == 0
    assert _exec(run, "c", "getent hosts b", reports).returncode == 0
    assert _exec(run, "a", "getent hosts c", reports).returncode != 0
    a_ip = nodes["a"]["addresses"]["left"]
    assert _exec(run, "b", f"ping -c1 -W1 {a_ip} || getent hosts a", reports).returncode == 0

    # exec gives the command's own exit code
    assert _exec(run, "b", "exit 7", reports).returncode == 7

    listed = {r["run"]: r for r in run_json("ls", reports=reports)}
    assert listed[run]["state"] == "up"
    assert listed[run]["running"] == 3

    # the run folder tells the story
    folder = Path(up["folder"])
    state = json.loads((folder / "run.json").read_text())
    assert state["state"] == "up"
    journal = json.loads((folder / "journal.json").read_text())
    assert [p["phase"] for p in journal["phases"]] == ["build", "preflight", "up"]
    assert all(p["result"] == "ok" for p in journal["phases"])

    # gc leaves a run that `lab up` left up on purpose
    assert run not in [r["run"] for r in run_json("gc", reports=reports)]

    down = run_json("down", run, reports=reports)
    assert down[0]["removed"]["containers"] == 3
    assert nothing_left(docker_client, run)
    assert json.loads((folder / "run.json").read_text())["state"] == "down"


def test_health_timeout_carries_logs_and_hint_and_leaves_nothing(
    docker_client: Any, reports: Path, cleanup_runs: list[str]
) -> None:
    proc = run_lab("up", f"{SCEN}/wide.yaml", "-p", "stuck_timeout=2s", reports=reports)
    run = proc.stderr.split()[1]
    cleanup_runs.append(run)
    assert proc.returncode == 3, proc.stderr
    assert "node stuck not ready after 2s" in proc.stderr
    assert "last log lines of stuck" in proc.stderr
    assert "hint:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert nothing_left(docker_client, run)
    # evidence was kept before teardown
    folder = next(reports.glob(f"*/{run}"))
    assert (folder / "artifacts" / "stuck" / "inspect.json").is_file()
    assert json.loads((folder / "run.json").read_text())["state"] == "failed"


def test_no_engine_is_one_sentence_and_exit_3(reports: Path) -> None:
    proc = run_lab(
        "up", f"{SCEN}/pair.yaml", reports=reports, DOCKER_HOST="unix:///nonexistent.sock"
    )
    assert proc.returncode == 3
    assert "no Docker engine answers at unix:///nonexistent.sock" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_lab("ls", reports=reports, DOCKER_HOST="unix:///nonexistent.sock")
    assert proc.returncode == 3


def test_unknown_run_is_a_usage_error(reports: Path) -> None:
    proc = run_lab("down", "999999-999999-ffff", reports=reports)
    assert proc.returncode == 2
    assert "no run '999999-999999-ffff'" in proc.stderr


def test_two_ups_of_the_same_scenario_at_once_both_come_up(
    docker_client: Any, reports: Path, cleanup_runs: list[str]
) -> None:
    with ThreadPoolExecutor(2) as ex:
        results = list(
            ex.map(lambda _: run_lab("up", f"{SCEN}/pair.yaml", "--json", reports=reports), [1, 2])
        )
    ups = []
    for proc in results:
        if proc.stdout.strip():
            ups.append(json.loads(proc.stdout))
            cleanup_runs.append(ups[-1]["run"])
        assert proc.returncode == 0, proc.stderr
    a, b = ups
    assert a["run"] != b["run"]
    for up in ups:
        run = up["run"]
        assert len(labelled(docker_client, run)["containers"]) == 2
        assert _exec(run, "client", "getent hosts server", reports).returncode == 0
    # each run's client resolves its own server, not the other run's
    ip_a = {n["name"]: n for n in a["nodes"]}["server"]["addresses"]["net"]
    got = _exec(a["run"], "client", "getent hosts server", reports).stdout.split()[0]
    assert got == ip_a
    run_json("down", a["run"], b["run"], reports=reports)
    assert nothing_left(docker_client, a["run"]) and nothing_left(docker_client, b["run"])


def test_sigkilled_run_is_collected_by_gc(
    docker_client: Any, reports: Path, cleanup_runs: list[str]
) -> None:
    from tests.engine.test_signals import start_up, wait_for_line

    proc, lines = start_up(f"{SCEN}/wide.yaml", reports)
    run = wait_for_line(proc, lines, "run ").split()[1]
    cleanup_runs.append(run)
    wait_for_line(proc, lines, "ready in")  # some nodes exist; `stuck` never gets ready
    proc.kill()
    proc.wait(10)
    assert not nothing_left(docker_client, run)  # SIGKILL leaves things: that is gc's job
    time.sleep(0.2)
    collected = run_json("gc", reports=reports)
    assert run in [r["run"] for r in collected]
    assert nothing_left(docker_client, run)


def test_fixed_subnet_taken_by_another_run_is_a_clear_error(
    docker_client: Any, reports: Path, cleanup_runs: list[str]
) -> None:
    first = run_json("up", f"{SCEN}/three-nodes.yaml", reports=reports)
    cleanup_runs.append(first["run"])
    second = run_lab("up", f"{SCEN}/three-nodes.yaml", reports=reports)
    second_run = second.stderr.split()[1]
    cleanup_runs.append(second_run)
    assert second.returncode == 3, second.stderr
    assert "subnet 10.231.7.0/24 is already used on this engine" in second.stderr
    assert "hint:" in second.stderr
    assert nothing_left(docker_client, second_run)
    assert len(labelled(docker_client, first["run"])["containers"]) == 3  # the first is untouched


def test_images_verbs_report_the_catalog(reports: Path) -> None:
    built = run_json("images", "build", "--environments-only", reports=reports)
    assert {r["name"] for r in built} == {"debian-11", "debian-12", "debian-13"}
    assert all(r["status"] in ("built", "reused") for r in built)
    listed = run_json("images", "ls", reports=reports)
    current = {r["tag"] for r in listed if r["current"]}
    assert {r["tag"] for r in built} <= current
