"""backend lab health: app.py at the lab's version with its Python dependencies, listening,
and /health answering "ok"."""

from __future__ import annotations

from typing import Any

from harness.pytest_plugin import Node


def test_app_at_lab_version(host: Any, node: Node) -> None:
    assert host.check_output("python3 /opt/backend/app.py --version") == node.version


def test_dependencies_installed(host: Any) -> None:
    for pkg in ("python3", "python3-psycopg2", "python3-redis"):
        assert host.package(pkg).is_installed, pkg


def test_listening(host: Any) -> None:
    port = host.check_output("echo ${PORT:-8080}")
    assert host.socket(f"tcp://0.0.0.0:{port}").is_listening


def test_health_endpoint(host: Any) -> None:
    r = host.run('curl -fsS "http://127.0.0.1:${PORT:-8080}/health"')
    assert r.rc == 0 and r.stdout.strip() == "ok", r.stderr
