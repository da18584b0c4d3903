"""Node faults against real containers: each observable in the container's state and by exec."""

from __future__ import annotations

from collections.abc import Iterator

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
