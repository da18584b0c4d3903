"""curl lab health: curl at the lab's version, built on the OpenSSL generation its OS ships."""

from __future__ import annotations

from typing import Any

import pytest

from harness.pytest_plugin import Node, same_version

# the OpenSSL a Debian release's curl is linked with (OpenSSL/x.y.z in `curl --version`)
OPENSSL = {"debian-11": "OpenSSL/1.1.1", "debian-12": "OpenSSL/3.0", "debian-13": "OpenSSL/3.5"}


def test_package_at_lab_version(host: Any, node: Node) -> None:
    pkg = host.package("curl")
    assert pkg.is_installed
    assert node.version and same_version(pkg.version, node.version), (
        f"curl {pkg.version}, lab version {node.version}"
    )


def test_curl_runs_with_the_os_openssl(host: Any, node: Node) -> None:
    r = host.run("curl --version")
    assert r.rc == 0, r.stderr
    assert r.stdout.startswith(f"curl {node.version}"), r.stdout
    if node.os not in OPENSSL:
        pytest.skip(f"no expected OpenSSL generation known for {node.os}")
    assert OPENSSL[node.os] in r.stdout, r.stdout.splitlines()[0]


def test_trust_store_present(host: Any) -> None:
    assert host.package("ca-certificates").is_installed
    assert host.file("/etc/ssl/certs/ca-certificates.crt").exists
