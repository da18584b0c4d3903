"""HAProxy lab health: the package at the lab's version, a valid configuration, the master and
a worker running, every `bind` port of the configuration listening, and the health frontend
(monitor-uri) answering. Runs on every node of the topology running the haproxy lab
(docs/pytest-plugin.md); it does not need any backend server to be UP."""

from __future__ import annotations

import re
from typing import Any

from harness.pytest_plugin import Node, same_version

CFG = "/etc/haproxy/haproxy.cfg"


def test_package_at_lab_version(host: Any, node: Node) -> None:
    pkg = host.package("haproxy")
    assert pkg.is_installed
    assert node.version and same_version(pkg.version, node.version), (
        f"haproxy {pkg.version}, lab version {node.version}"
    )


def test_config_valid(host: Any) -> None:
    r = host.run(f"haproxy -c -q -f {CFG}")
    assert r.rc == 0, r.stdout + r.stderr


def test_master_and_worker_running(host: Any) -> None:
    procs = host.check_output("ps -eo args= 2>/dev/null || true")
    if not procs:  # no ps in the image: read /proc
        procs = host.check_output("cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '; echo")
    assert procs.count("haproxy -W") >= 2, procs  # the master and at least one worker


def test_listening_on_its_bind_ports(host: Any) -> None:
    cfg = host.file(CFG).content_string
    ports = {m.group(1) for m in re.finditer(r"^\s*bind\s+(?:0\.0\.0\.0|\*)?:(\d+)", cfg, re.M)}
    assert ports, f"{CFG} binds no port"
    for port in sorted(ports):
        assert host.socket(f"tcp://0.0.0.0:{port}").is_listening, f"nothing listens on {port}"


def test_health_frontend_answers(host: Any) -> None:
    cfg = host.file(CFG).content_string
    m = re.search(r"^\s*bind\s+:(\d+)\s*\n\s*monitor-uri\s+(\S+)", cfg, re.M)
    assert m, f"{CFG} has no monitor-uri frontend"
    r = host.run(f"curl -fsS -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{m[1]}{m[2]}")
    assert r.rc == 0 and r.stdout == "200", r.stdout + r.stderr
