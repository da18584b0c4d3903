"""nginx lab health: the package at the lab's version, a valid config, every port it declares
listening. Runs on every node of the topology running the nginx lab (docs/pytest-plugin.md)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from harness.pytest_plugin import Node, same_version


def test_package_at_lab_version(host: Any, node: Node) -> None:
    pkg = host.package("nginx-core")
    assert pkg.is_installed
    assert node.version and same_version(pkg.version, node.version), (
        f"nginx-core {pkg.version}, lab version {node.version}"
    )


def test_config_valid(host: Any) -> None:
    r = host.run("nginx -t")
    assert r.rc == 0, r.stderr


def _listen_ports(config: str) -> set[str]:
    """IPv4 `listen` targets of the running config (`80`, `443`, `127.0.0.1:8080`)."""
    out = set()
    for m in re.finditer(r"^\s*listen\s+([^\s;]+)", config, re.M):
        target = m.group(1)
        if not target.startswith("[") and not target.startswith("unix:"):
            out.add(target)
    return out


def test_listening_on_its_ports(host: Any) -> None:
    dump = host.run("nginx -T")
    if dump.rc != 0:  # config unreadable (test_config_valid says why): nginx must still listen
        assert '"nginx"' in host.check_output("ss -Hltnp"), "nginx listens on no TCP port"
        return
    ports = _listen_ports(dump.stdout)
    assert ports, "nginx -T shows no listen directive"
    for target in sorted(ports):
        address = target if ":" in target else f"0.0.0.0:{target}"
        assert host.socket(f"tcp://{address}").is_listening, f"nothing listens on {address}"


def test_serves_http(host: Any) -> None:
    if not host.socket("tcp://0.0.0.0:80").is_listening:
        pytest.skip("nginx does not serve plain HTTP on port 80 here")
    r = host.run("curl -sS -o /dev/null -w '%{http_code}' http://127.0.0.1/")
    assert r.rc == 0 and r.stdout.strip().isdigit(), r.stderr
