"""OpenSSH lab health: the package at the lab's version, a configuration sshd accepts, the
listener running, every configured port listening, the privilege separation folder, the host
keys sshd is told to use (present, root's only), and sshd speaking SSH with those keys
(ssh-keyscan: a full key exchange, no login). Runs on every node of the topology running the
openssh lab (docs/pytest-plugin.md); it logs nobody in, so it holds whatever a scenario did to
the users' keys."""

from __future__ import annotations

import re
from typing import Any

from harness.pytest_plugin import Node


def _effective(host: Any) -> list[tuple[str, str]]:
    """sshd -T: every setting in effect, as (keyword, value)."""
    out = host.check_output("/usr/sbin/sshd -T")
    return [(k, v) for k, _, v in (line.partition(" ") for line in out.splitlines())]


def test_package_at_lab_version(host: Any, node: Node) -> None:
    pkg = host.package("openssh-server")
    assert pkg.is_installed
    m = re.match(r"(?:\d+:)?(\d+(?:\.\d+)*)p\d", pkg.version)
    assert m and node.version == m[1], f"openssh-server {pkg.version}, lab version {node.version}"


def test_config_valid(host: Any) -> None:
    r = host.run("/usr/sbin/sshd -t")
    assert r.rc == 0, r.stdout + r.stderr


def test_listener_running(host: Any) -> None:
    procs = host.check_output("ps -eo args= 2>/dev/null || true")
    assert re.search(r"^(sshd: )?/usr/sbin/sshd -D", procs, re.M), procs


def test_listening_on_its_ports(host: Any) -> None:
    ports = sorted({v for k, v in _effective(host) if k == "port"})
    assert ports, "sshd -T names no port"
    for port in ports:
        assert host.socket(f"tcp://0.0.0.0:{port}").is_listening, f"nothing listens on {port}"


def test_privilege_separation_folder(host: Any) -> None:
    d = host.file("/run/sshd")
    assert d.is_directory and d.user == "root" and not d.mode & 0o022, oct(d.mode)


def test_host_keys_are_roots_only(host: Any) -> None:
    keys = [v for k, v in _effective(host) if k == "hostkey"]
    found = [k for k in keys if host.file(k).exists]
    assert found, f"none of the host keys exists: {keys}"
    for key in found:
        f = host.file(key)
        assert f.user == "root" and not f.mode & 0o077, f"{key}: {f.user} {oct(f.mode)}"


def test_speaks_ssh_with_its_host_key(host: Any) -> None:
    port = next(v for k, v in _effective(host) if k == "port")
    r = host.run(f"ssh-keyscan -T 5 -t ed25519 -p {port} 127.0.0.1")
    assert r.rc == 0 and "ssh-ed25519 " in r.stdout, r.stdout + r.stderr
    offered = r.stdout.split()[-1]
    assert offered in host.file("/etc/ssh/ssh_host_ed25519_key.pub").content_string
