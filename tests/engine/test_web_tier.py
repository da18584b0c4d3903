"""The example end to end: what must work works, and what must not reach, does not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import nothing_left, run_json, run_lab

SCENARIO = "scenarios/examples/web-tier.yaml"


@pytest.fixture(scope="module")
def web_tier(
    docker_client: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    reports = tmp_path_factory.mktemp("web-tier-reports")
    up = run_json("up", SCENARIO, reports=reports)
    up["reports"] = reports
    try:
        yield up
    finally:
        run_lab("down", up["run"], reports=reports)
        assert nothing_left(docker_client, up["run"])


def sh(up: dict[str, Any], node: str, cmd: str) -> tuple[int, str]:
    p = run_lab("exec", up["run"], node, "--", "sh", "-c", cmd, reports=up["reports"])
    return p.returncode, p.stdout + p.stderr


def addr(up: dict[str, Any], node: str, net: str) -> str:
    return str(next(n for n in up["nodes"] if n["name"] == node)["addresses"][net])


def test_every_node_came_up_on_its_networks(web_tier: dict[str, Any]) -> None:
    nets = {n["name"]: set(n["addresses"]) for n in web_tier["nodes"]}
    assert nets == {
        "client": {"front"},
        "proxy": {"front", "back"},
        "backend": {"back", "data"},
        "db": {"data"},
        "cache": {"data"},
    }


def test_client_reaches_backend_through_the_proxy(web_tier: dict[str, Any]) -> None:
    rc, out = sh(web_tier, "client", "curl -fsS http://proxy/health")
    assert rc == 0 and out.strip() == "ok", out
    # the proxy's config is the fixture, not the lab's default site
    rc, out = sh(
        web_tier,
        "proxy",
        "grep -c 'proxy_pass http://backend:8080' /etc/nginx/sites-enabled/default",
    )
    assert rc == 0 and out.strip() == "1", out


def test_backend_reaches_the_database_and_the_cache(web_tier: dict[str, Any]) -> None:
    rc, out = sh(web_tier, "client", "curl -fsS http://proxy/db")
    assert rc == 0, out
    assert json.loads(out)["version"].startswith("PostgreSQL 15"), out
    counts = []
    for _ in range(2):
        rc, out = sh(web_tier, "client", "curl -fsS http://proxy/cache")
        assert rc == 0, out
        counts.append(json.loads(out)["count"])
    assert counts[1] == counts[0] + 1


def test_client_cannot_reach_what_it_should_not(web_tier: dict[str, Any]) -> None:
    # not by name (no shared network, no DNS) ...
    rc, _ = sh(web_tier, "client", "getent hosts db")
    assert rc != 0
    # ... and not by address either
    rc, out = sh(web_tier, "client", f"nc -z -w 2 {addr(web_tier, 'db', 'data')} 5432")
    assert rc != 0, out
    rc, out = sh(
        web_tier, "client", f"curl -sS -m 3 http://{addr(web_tier, 'backend', 'back')}:8080/health"
    )
    assert rc != 0, out
    # while the backend, which shares the data network, can
    probe = "import socket; socket.create_connection(('db', 5432), 2)"
    rc, out = sh(web_tier, "backend", f'python3 -c "{probe}"')
    assert rc == 0, out


def test_run_folder_records_the_topology(web_tier: dict[str, Any]) -> None:
    folder = Path(web_tier["folder"])
    state = json.loads((folder / "run.json").read_text())
    assert state["state"] == "up"
    assert {n["name"] for n in state["nodes"]} == {"client", "proxy", "backend", "db", "cache"}
