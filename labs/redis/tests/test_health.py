"""Redis lab health: redis-server at the lab's version, listening on 6379, answering PING, and
configured as the lab means it (reachable from the lab network)."""

from __future__ import annotations

from typing import Any

from harness.pytest_plugin import Node, same_version


def test_package_at_lab_version(host: Any, node: Node) -> None:
    pkg = host.package("redis-server")
    assert pkg.is_installed
    assert node.version and same_version(pkg.version, node.version), (
        f"redis-server {pkg.version}, lab version {node.version}"
    )


def test_listening(host: Any) -> None:
    assert host.socket("tcp://0.0.0.0:6379").is_listening


def test_answers_ping(host: Any) -> None:
    assert host.check_output("redis-cli -h 127.0.0.1 ping") == "PONG"


def test_config(host: Any) -> None:
    assert host.check_output("redis-cli -h 127.0.0.1 config get protected-mode").split() == [
        "protected-mode",
        "no",
    ]
    assert "0.0.0.0" in host.check_output("redis-cli -h 127.0.0.1 config get bind")
