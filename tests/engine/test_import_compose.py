"""`lab import compose` end to end on the real engine: a compose file (nginx + PostgreSQL + a
client, anchors, env_file, a healthcheck, a static address, a bind-mounted nginx.conf) is
imported, passes `lab validate`, comes up with `lab up` and goes with `lab down`."""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, nothing_left, run_json, run_lab

pytestmark = [pytest.mark.engine]

SHOP = "tests/engine/compose/shop/compose.yaml"
SECRET = "Rm4vQ8zT2kLw9Xp1"  # shop's db.env


@pytest.fixture
def name() -> Iterator[str]:
    """A scenario name of this test's own; its fixtures folder goes afterwards."""
    chosen = f"ic-{os.getpid()}"
    yield chosen
    shutil.rmtree(ROOT / "fixtures" / chosen, ignore_errors=True)


def test_an_imported_compose_file_validates_comes_up_and_goes(
    docker_client: Any, reports: Path, cleanup_runs: list[str], tmp_path: Path, name: str
) -> None:
    scenario = tmp_path / f"{name}.yaml"
    imported = run_json(
        "import", "compose", SHOP, "--name", name, "-o", str(scenario), reports=reports
    )
    kinds = {n["name"]: (n["lab"], n["version"]) for n in imported["nodes"]}
    assert kinds == {
        "proxy": ("nginx", "1.22"),
        "db": ("postgres", "15"),
        "client": ("curl", "7.88"),
    }
    assert imported["params"] == ["postgres_password"]
    assert SECRET not in scenario.read_text()
    assert run_lab("validate", str(scenario), reports=reports).returncode == 0

    up = run_json("up", str(scenario), reports=reports)
    run = up["run"]
    cleanup_runs.append(run)
    addresses = {n["name"]: n["addresses"] for n in up["nodes"]}
    assert addresses["proxy"]["front"] == "10.231.77.10"
    # the client reaches nginx (the customer's nginx.conf) and PostgreSQL by name
    page = run_lab("exec", run, "client", "--", "curl", "-sS", "http://proxy/", reports=reports)
    assert page.stdout == "shop front\n", page.stderr
    # and this machine reaches it where `lab up` said: compose's port, on 127.0.0.1 only
    published = {n["name"]: n.get("published", {}) for n in up["nodes"]}
    address = published["proxy"]["80/tcp"]
    assert address.startswith("127.0.0.1:"), published
    with urllib.request.urlopen(f"http://{address}/", timeout=10) as answer:
        assert answer.read() == b"shop front\n"
    port = run_lab(
        "exec", run, "client", "--", "nc", "-z", "-w", "5", "db", "5432", reports=reports
    )
    assert port.returncode == 0, port.stderr
    # PostgreSQL got the env_file's user and database and the param's placeholder password
    sql = "PGPASSWORD=REDACTED psql -h 127.0.0.1 -U shop -d shop -Atc 'select 40+2'"
    got = run_lab("exec", run, "db", "--", "sh", "-c", sql, reports=reports)
    assert got.stdout.strip() == "42", got.stderr
    for f in Path(up["folder"]).rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f
    down = run_json("down", run, reports=reports)
    assert down[0]["run"] == run
    assert nothing_left(docker_client, run)
    assert json.loads((Path(up["folder"]) / "run.json").read_text())["state"] != "up"
