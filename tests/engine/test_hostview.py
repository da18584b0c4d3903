"""Reading a local node's files from this host (harness/engine/hostview.py), against the real
engine: plain files come back without engine work, and nothing on the way may lead out of the
node: a symlink to a host path is refused here and read the engine's way instead."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.engine import execs, hostview
from harness.engine.images import ensure_environment
from harness.scenario.catalog import load_catalog

SETUP = (
    "mkdir -p /srv/logs /srv/real && echo hello-from-node > /srv/logs/app.log"
    " && head -c 5000 /dev/zero > /srv/logs/big.bin"
    " && ln -s /etc/hostname /srv/logs/host-link"  # absolute: from the host, the host's file
    " && echo inside-real > /srv/real/x.log && ln -s /srv/real /srv/linkdir"
    " && mkfifo /srv/logs/fifo && touch /srv/file && sleep infinity"
)


@pytest.fixture()
def node(docker_client: Any, root: Path) -> Iterator[Any]:
    image = ensure_environment(docker_client, load_catalog(root), "debian-12")
    c = docker_client.containers.run(
        image,
        ["sh", "-c", SETUP],
        detach=True,
        name=f"lab-test-hostview-{uuid.uuid4().hex[:6]}",
        labels={"labharness.test": "hostview"},
    )
    try:
        for _ in range(100):
            rc, _ = c.exec_run(["test", "-p", "/srv/logs/fifo"])
            if rc == 0:
                break
        c.reload()
        yield c
    finally:
        c.remove(force=True)


def test_plain_file_is_read_from_the_host(node: Any) -> None:
    assert hostview.read_file(node, "/srv/logs/app.log", 1 << 20) == b"hello-from-node\n"
    assert hostview.read_file(node, "srv/./logs/app.log", 1 << 20) == b"hello-from-node\n"


def test_absent_and_oversized_files_are_none(node: Any) -> None:
    assert hostview.read_file(node, "/srv/logs/nope.log", 1 << 20) is None
    assert hostview.read_file(node, "/srv/file/under-a-file", 1 << 20) is None
    assert hostview.read_file(node, "/srv/logs/big.bin", 4999) is None
    assert hostview.read_file(node, "/srv/logs/big.bin", 5000) == b"\0" * 5000


def test_symlinks_and_odd_files_are_left_to_the_engine(node: Any) -> None:
    for path in ("/srv/logs/host-link", "/srv/linkdir/x.log", "/srv/logs/fifo", "/srv/../etc"):
        with pytest.raises(hostview.NotHere):
            hostview.read_file(node, path, 1 << 20)


def test_read_file_goes_the_engine_s_way_where_the_host_cannot(node: Any) -> None:
    # the link itself, not the host's /etc/hostname: the engine archives a link as a link
    assert execs.read_file(node, "/srv/logs/host-link") is None
    # a symlinked directory is followed inside the node
    assert execs.read_file(node, "/srv/linkdir/x.log") == b"inside-real\n"
    assert execs.read_file(node, "/srv/logs/app.log") == b"hello-from-node\n"


def test_a_stopped_node_is_not_read_from_the_host(docker_client: Any, node: Any) -> None:
    node.stop(timeout=0)
    node.reload()
    with pytest.raises(hostview.NotHere):
        hostview.read_file(node, "/srv/logs/app.log", 1 << 20)
    assert execs.read_file(node, "/srv/logs/app.log") == b"hello-from-node\n"


def test_a_pid_that_is_not_the_node_s_is_refused(node: Any) -> None:
    node.attrs["State"]["Pid"] = 1  # this host's init: its cgroup does not name the node
    with pytest.raises(hostview.NotHere):
        hostview.read_file(node, "/srv/logs/app.log", 1 << 20)
    with pytest.raises(hostview.NotHere):
        hostview.proc_net_tcp(node)
