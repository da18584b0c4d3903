"""sample-product lab health: ledger at the lab's version with its Python dependencies,
listening, /health answering "ok", /version naming the lab's version, and Redis reachable
through the product (GET /balances answers 200)."""

from __future__ import annotations

import json
from typing import Any

from harness.pytest_plugin import Node

PORT = "${PORT:-8080}"


def test_ledger_at_lab_version(host: Any, node: Node) -> None:
    assert host.check_output("python3 /opt/ledger/ledger.py --version") == node.version


def test_dependencies_installed(host: Any) -> None:
    for pkg in ("python3", "python3-redis"):
        assert host.package(pkg).is_installed, pkg


def test_listening(host: Any) -> None:
    port = host.check_output(f"echo {PORT}")
    assert host.socket(f"tcp://0.0.0.0:{port}").is_listening


def test_health_endpoint(host: Any) -> None:
    r = host.run(f'curl -fsS "http://127.0.0.1:{PORT}/health"')
    assert r.rc == 0 and r.stdout.strip() == "ok", r.stderr


def test_version_endpoint(host: Any, node: Node) -> None:
    reply = json.loads(host.check_output(f'curl -fsS "http://127.0.0.1:{PORT}/version"'))
    assert reply == {"product": "ledger", "version": node.version}


def test_reaches_redis(host: Any) -> None:
    r = host.run(f'curl -sS -w "\\n%{{http_code}}" "http://127.0.0.1:{PORT}/balances"')
    body, _, status = r.stdout.rpartition("\n")
    assert r.rc == 0 and status == "200", f"GET /balances: {status} {body} {r.stderr}"
    assert "balances" in json.loads(body)


def test_packaged_ledger_is_the_lab_version(host: Any, node: Node) -> None:
    """A version delivered as a vendor's .deb (1.5) is dpkg's package `ledger` at the lab's
    version, owning /opt/ledger/ledger.py; the others are plain files, owned by no package."""
    r = host.run("dpkg-query -W -f='${Version}\\n' ledger && dpkg -S /opt/ledger/ledger.py")
    if r.rc != 0:  # no package: a release copied from versions/<v>/
        assert "ledger" not in host.run("dpkg-query -W -f='${Package}\\n'").stdout.split()
        return
    version = r.stdout.split("\n")[0].split(":")[-1].rsplit("-", 1)[0]
    assert version == node.version or version.startswith(f"{node.version}."), r.stdout
    assert "ledger: /opt/ledger/ledger.py" in r.stdout, r.stdout
