"""Node faults against real containers: each observable in the container's state and by exec."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.engine import faults
from harness.errors import InfraError, UsageError
from tests.engine.netlab import Lab, lab


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with lab("net-faults", tmp_path_factory.mktemp("reports")) as lb:
        yield lb


def _status(net: Lab, node: str) -> str:
    c = net.containers[node]
    c.reload()
    return str(c.status)


def test_pause_freezes_and_unpause_thaws(net: Lab) -> None:
    v = net.containers["victim"]
    res = faults.inject(v, "victim", "pause")
    assert res == {**res, "action": "pause", "node": "victim", "ok": True, "status": "paused"}
    assert _status(net, "victim") == "paused"
    with pytest.raises(InfraError, match="paused"):
        from harness.engine.objects import exec_command

        exec_command(v, ["true"])
    # the rest of the topology goes on
    assert net.sh("bystander", "true")[0] == 0
    res = faults.unpause(v, "victim")
    assert res["ok"] and res["status"] == "running"
    assert net.sh("victim", "echo alive") == (0, "alive\n")


def test_restart_starts_a_fresh_process(net: Lab) -> None:
    net.sh("victim", "touch /tmp/marker; sleep 1000 & echo $! > /tmp/pid")
    res = faults.restart(net.containers["victim"], "victim", timeout=1)
    assert res["ok"] and res["restarted"] and res["status"] == "running", res
    assert net.sh("victim", "test -f /tmp/marker")[0] == 0  # same container, same filesystem
    _, out = net.sh("victim", "pgrep -x sleep | wc -l")
    assert out.strip() == "1"  # only the node's own command: the background sleep is gone


def test_stop_then_kill(net: Lab) -> None:
    v = net.containers["victim"]
    res = faults.stop(v, "victim", timeout=2)
    assert res["ok"] and res["status"] == "exited", res
    assert "exited" in res["detail"]
    with pytest.raises(InfraError):
        from harness.engine.objects import exec_command

        exec_command(v, ["true"])
    v.start()
    res = faults.kill(v, "victim")
    assert res["ok"] and res["status"] == "exited" and "137" in res["detail"], res
    assert _status(net, "bystander") == "running"


def test_network_faults_and_unknown_ones_are_refused_clearly(net: Lab) -> None:
    with pytest.raises(UsageError, match="network fault"):
        faults.inject(net.containers["victim"], "victim", "partition")
    with pytest.raises(UsageError, match="unknown fault"):
        faults.inject(net.containers["victim"], "victim", "explode")


def test_a_fault_on_a_removed_node_is_an_infra_error(net: Lab) -> None:
    c = net.client.containers.create(
        net.containers["bystander"].image.id,
        ["sleep", "infinity"],
        labels={"labharness.run": net.run},
    )
    c.remove(force=True)
    with pytest.raises(InfraError, match="engine refused to pause node ghost"):
        faults.pause(c, "ghost")


OPTS = ("--json", "--destroy", "always")  # always: the run tries to tear down a dead engine


def test_engine_dying_mid_reproduce_is_error_keeps_the_journal_and_gc_cleans_after(
    tmp_path: Path,
) -> None:
    """A local `reproduce` whose engine is SIGKILLed mid-step (a second dockerd in its own
    network namespace): verdict ERROR, exit 3, the journal complete; once the engine is back,
    `lab gc --engine URL` removes what the run left there."""
    import json
    import os
    import signal
    import subprocess
    import time

    from tests.conftest import LAB, ROOT, lab_env
    from tests.engine import second_engine as se
    from tests.engine.conftest_cluster import engine_leftovers

    scenario = tmp_path / "project" / "scenario.yaml"
    shutil.copytree(ROOT / "environments", scenario.parent / "environments")
    scenario.write_text(
        "scenario: engine-dies\ntopology:\n  networks: {net: {}}\n  nodes:\n"
        "    a: {os: debian-12, networks: [net], command: [sleep, infinity]}\n"
        "reproduce:\n  steps:\n    - {id: long, on: a, run: 'sleep 120', timeout: 300s}\n"
        "  symptom:\n    - {step: long, exit_code: 0}\n"
    )
    from harness.engine.client import connect
    from harness.engine.images import ensure_images
    from harness.scenario.catalog import load_catalog
    from harness.scenario.load import load_scenario

    catalog = load_catalog(scenario.parent)
    loaded = load_scenario(scenario, root=scenario.parent, catalog=catalog)
    tags = sorted(set(ensure_images(connect(), loaded.topology, catalog).values()))
    reports = tmp_path / "reports"
    reports.mkdir()
    eng, proc = se.start(f"labdies{os.getpid()}")
    restarted: subprocess.Popen[bytes] | None = None
    try:
        se.copy_images(eng.url, tags)
        env = {**lab_env(reports), "DOCKER_HOST": eng.url}
        lab = subprocess.Popen(
            [*LAB, "reproduce", "scenario.yaml", "--project", str(scenario.parent), *OPTS],
            cwd=scenario.parent,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        journal_path = None
        while time.monotonic() < deadline:  # until the long step is running
            journal_path = next(reports.glob("*/*/journal.json"), None)
            if journal_path and '"attempt-1"' in journal_path.read_text():
                break
            assert lab.poll() is None, lab.communicate()
            time.sleep(0.1)
        assert journal_path is not None
        time.sleep(1)
        pid = eng.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        out, err = lab.communicate(timeout=180)
        assert lab.returncode == 3, err[-3000:]
        assert time.monotonic() - t0 < 60, "the run hung on its dead engine"
        assert "Traceback" not in err
        journal = json.loads(journal_path.read_text())
        assert journal["result"] == "ERROR" and journal.get("ended"), journal
        attempt = next(p for p in journal["phases"] if p["phase"] == "attempt-1")
        assert "engine" in json.dumps(attempt["steps"]).lower(), attempt
        down = next(p for p in journal["phases"] if p["phase"] == "down")
        assert down["result"] == "error" and f"lab gc --engine {eng.url}" in down["error"]
        assert f"lab gc --engine {eng.url}" in json.loads(out)["teardown_error"]
        run_json = json.loads((journal_path.parent / "run.json").read_text())
        assert run_json["verdict"] == "ERROR" and run_json["state"] == "failed"

        proc.wait(30)  # the killed dockerd's wrapper shell ends with it
        # its containerd died too, as a zombie nobody reaps here: a stale pid file would make
        # the new dockerd wait for it forever
        (eng.base / "exec" / "containerd" / "containerd.pid").unlink(missing_ok=True)
        restarted = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                eng.netns,
                "sh",
                "-c",
                se._mount_script(eng.base, eng.socket, eng.pidfile),
            ],
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ok = subprocess.run(["docker", "-H", eng.url, "version"], capture_output=True)
            if ok.returncode == 0:
                break
            time.sleep(0.5)
        assert engine_leftovers(eng.url), "the dead engine's run should have left its objects"
        gc = subprocess.run(
            [*LAB, "gc", "--engine", eng.url, "--json"],
            cwd=ROOT,
            env=lab_env(reports),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert gc.returncode == 0, gc.stderr
        assert [r["run"] for r in json.loads(gc.stdout)] == [journal["run"]]
        assert engine_leftovers(eng.url) == []
    finally:
        se.stop(eng, restarted or proc)
