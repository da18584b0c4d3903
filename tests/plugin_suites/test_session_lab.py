"""Run by tests/engine/test_pytest_plugin.py against tests/engine/scenarios/pair.yaml (two bare
debian-12 nodes, `server` and `client`), never by the main run (norecursedirs)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from harness.pytest_plugin import Lab, Node


def test_lab_knows_the_topology(lab: Lab) -> None:
    assert set(lab.nodes) == {"server", "client"}
    assert (lab.folder / "run.json").is_file()
    assert lab.scenario == "pair"
    server = lab.node("server")
    assert server.container == f"lab-{lab.run}-server"
    assert server.os == "debian-12" and server.lab is None
    assert set(lab.networks["net"].addresses) == {"server", "client"}
    assert lab.address("client", "net") == lab.node("client").addresses["net"]


def test_host_on_every_node(host: Any, node: Node) -> None:
    assert host.file("/etc/os-release").contains("bookworm")
    assert host.check_output("hostname") == node.name


@pytest.mark.lab_node("client")
def test_marked_node_only(host: Any, node: Node, lab: Lab) -> None:
    assert node.name == "client"
    assert host.run("getent hosts server").rc == 0
    assert lab.address("server") in host.check_output("getent hosts server")


def test_exec_through_the_engine(lab: Lab) -> None:
    r = lab.node("client").exec("echo hi; echo oops >&2; exit 3")
    assert (r.exit_code, r.stdout, r.stderr) == (3, "hi\n", "oops\n")
    assert lab.node("server").exec(["echo", "a b"]).stdout == "a b\n"
    assert lab.host("server").run("true").rc == 0


@pytest.mark.skipif(not os.environ.get("PLUGIN_SUITE_FAIL"), reason="fails only when asked")
def test_fails_when_asked(lab: Lab) -> None:
    raise AssertionError("failing on purpose")


@pytest.mark.skipif(not os.environ.get("PLUGIN_SUITE_SLEEP"), reason="sleeps only when asked")
def test_sleeps_when_asked(lab: Lab) -> None:
    # the outer test sends SIGTERM once this file exists
    with open(os.environ["PLUGIN_SUITE_SLEEP"], "w") as f:
        f.write(lab.run)
    import time

    time.sleep(60)
