"""unbound lab health: the package at the lab's version, a valid configuration, UDP and TCP 53
listening, queries answered over both, and every A record the configuration's local-data
declares served as declared. Runs on every node of the topology running the unbound lab
(docs/pytest-plugin.md); it needs no network beyond the node (no forwarder asked)."""

from __future__ import annotations

import re
from typing import Any

from harness.pytest_plugin import Node, same_version

CONF = "/etc/unbound/unbound.conf"
DIG = "dig +time=2 +tries=1 @127.0.0.1"


def _config(host: Any) -> str:
    """The main file and every conf.d snippet it may include."""
    return str(
        host.check_output(f"cat {CONF} /etc/unbound/unbound.conf.d/*.conf 2>/dev/null; true")
    )


def test_package_at_lab_version(host: Any, node: Node) -> None:
    pkg = host.package("unbound")
    assert pkg.is_installed
    assert node.version and same_version(pkg.version, node.version), (
        f"unbound {pkg.version}, lab version {node.version}"
    )


def test_config_valid(host: Any) -> None:
    r = host.run(f"unbound-checkconf {CONF}")
    assert r.rc == 0, r.stdout + r.stderr


def test_listening_udp_and_tcp_53(host: Any) -> None:
    cfg = _config(host)
    ports = re.findall(r"^\s*port:\s*(\d+)", cfg, re.M) or ["53"]
    addrs = re.findall(r"^\s*interface:\s*\"?([0-9.]+)\"?\s*$", cfg, re.M) or ["127.0.0.1"]
    for addr in addrs:
        for proto in ("udp", "tcp"):
            spec = f"{proto}://{addr}:{ports[-1]}"
            assert host.socket(spec).is_listening, f"nothing listens on {spec}"


def test_answers_over_udp_and_tcp(host: Any) -> None:
    for transport in ("+notcp", "+tcp"):
        r = host.run(f"{DIG} {transport} localhost. A")
        assert r.rc == 0, r.stdout + r.stderr
        assert "status: NOERROR" in r.stdout and re.search(
            r"^localhost\.\s.*\sA\s+127\.0\.0\.1$", r.stdout, re.M
        ), r.stdout


def test_serves_its_local_data(host: Any) -> None:
    records = re.findall(
        r'^\s*local-data:\s*"(\S+)\s+(?:\d+\s+)?(?:IN\s+)?A\s+([0-9.]+)"', _config(host), re.M
    )
    for name, addr in records:
        answer = host.check_output(f"{DIG} +short {name} A").split()
        assert addr in answer, f"{name} A: {answer}, the configuration says {addr}"
