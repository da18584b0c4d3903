"""The node settings real recreates need (issue 18, point 4), each proved inside the node on the
real engine: extra_hosts and dns (a resolver node of the scenario answers customer.corp),
cpus and memory (the cgroup's limits; a node past its memory limit is ended by the OOM killer
and a readiness probe observes it), tmpfs with a size (a full disk), sysctls, ulimits, user,
workdir, entrypoint, a network's MTU, and a folder as a `files:` source with its mode and owner."""

from __future__ import annotations

import socket
import urllib.request
from typing import Any

import pytest

from tests.conftest import nothing_left, run_json, run_lab

pytestmark = pytest.mark.engine
SCENARIO = "tests/engine/scenarios/node-settings.yaml"
PORTS = "tests/engine/scenarios/published-ports.yaml"


def _sh(container: Any, command: str) -> str:
    rc, out = container.exec_run(["sh", "-c", command])
    text = out.decode(errors="replace").strip()
    assert rc == 0, f"{command}: exit {rc}: {text}"
    return str(text)


def _cgroup(container: Any, v2: str, v1: str) -> str:
    """A cgroup file of the node: the unified hierarchy's, or cgroup v1's."""
    return _sh(container, f"cat /sys/fs/cgroup/{v2} 2>/dev/null || cat /sys/fs/cgroup/{v1}")


def test_node_settings_take_effect_inside_the_node(
    reports: Any, docker_client: Any, cleanup_runs: list[str]
) -> None:
    r = run_json("reproduce", SCENARIO, "--destroy", "never", reports=reports)
    cleanup_runs.append(r["run"])
    assert r["verdict"] == "REPRODUCED", r
    held = {p["probe"]: p["evidence"] for p in r["attempt_results"][0]["symptom"]["children"]}
    assert any("killed by the OOM killer: yes" in " ".join(e) for e in held.values()), held
    app = docker_client.containers.get(f"lab-{r['run']}-app")
    # cpus 0.5: a quota of half the period; memory 96m, swap the same (no swap)
    quota = _cgroup(app, "cpu.max", "cpu/cpu.cfs_quota_us").split()[0]
    assert quota == "50000", quota
    assert _cgroup(app, "memory.max", "memory/memory.limit_in_bytes") == str(96 << 20)
    assert _sh(app, "cat /proc/sys/net/core/somaxconn") == "64"
    assert _sh(app, "cat /sys/class/net/eth0/mtu") == "1400"  # the network's mtu
    assert _sh(app, "ulimit -n") == "1024" and _sh(app, "ulimit -Hn") == "2048"
    assert _sh(app, "grep 'Max processes' /proc/self/limits").split()[2:4] == ["512", "512"]
    assert _sh(app, "id -un") == "nobody"
    assert _sh(app, "pwd") == "/tmp"
    assert _sh(app, "df -k /data | tail -1").split()[1] == "1024"  # 1m of tmpfs
    # a folder source: every file under it, with the mode and owner given
    assert _sh(app, "stat -c '%a %u:%g' /etc/app/app.conf") == "640 65534:65534"
    assert _sh(app, "cat /etc/app/sub/logging.conf") == "level debug"
    logs = app.logs().decode(errors="replace")
    assert "started-by-the-entrypoint" in logs
    inspect = app.attrs["HostConfig"]
    assert inspect["Dns"] == ["10.87.0.53"] and inspect["Init"] is True
    hog = docker_client.containers.get(f"lab-{r['run']}-hog")
    assert hog.attrs["State"]["OOMKilled"] is True
    run_lab("down", r["run"], reports=reports, check=True)
    assert nothing_left(docker_client, r["run"])


def test_an_unnamespaced_sysctl_fails_at_start_with_the_engines_reason(
    tmp_path: Any, reports: Any, docker_client: Any, cleanup_runs: list[str]
) -> None:
    """The schema cannot know which sysctls the engine allows: the engine's refusal is an
    infrastructure error (exit 3) that says which one, and nothing is left."""
    from tests.conftest import ROOT

    scenario = ROOT / "tests/engine/scenarios/node-settings-bad-sysctl.yaml"
    proc = run_lab("up", str(scenario), "--json", reports=reports)
    assert proc.returncode == 3, proc.stderr
    assert "vm.swappiness" in proc.stderr and "Traceback" not in proc.stderr
    assert not docker_client.containers.list(
        all=True, filters={"label": "labharness.scenario=node-settings-bad-sysctl"}
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ports_are_published_on_loopback_only(
    reports: Any, docker_client: Any, cleanup_runs: list[str]
) -> None:
    """`ports:` (issue 18 point 4): reachable from this machine at the address `lab up` prints,
    bound to 127.0.0.1 and nothing else (not 0.0.0.0, not ::), engine-picked or fixed."""
    fixed = _free_port()
    r = run_json("up", PORTS, "-p", f"fixed={fixed}", reports=reports)
    cleanup_runs.append(r["run"])
    nodes = {n["name"]: n for n in r["nodes"]}
    assert nodes["pinned"]["published"] == {"80/tcp": f"127.0.0.1:{fixed}"}, nodes
    assert set(nodes["web"]["published"]) == {"80/tcp", "443/tcp"}, nodes
    for node, address in (
        ("web", nodes["web"]["published"]["80/tcp"]),
        ("pinned", f"127.0.0.1:{fixed}"),
    ):
        with urllib.request.urlopen(f"http://{address}/", timeout=10) as answer:
            assert answer.status == 200, (node, address)
        container = docker_client.containers.get(f"lab-{r['run']}-{node}")
        bound = [b for bs in container.attrs["NetworkSettings"]["Ports"].values() for b in bs or []]
        assert bound and {b["HostIp"] for b in bound} == {"127.0.0.1"}, bound
    run_lab("down", r["run"], reports=reports, check=True)
    assert nothing_left(docker_client, r["run"])
