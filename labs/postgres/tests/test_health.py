"""PostgreSQL lab health: the server package at the lab's version, listening on 5432, ready,
answering SQL with that version, and no errors in postgresql.conf or pg_hba.conf."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.pytest_plugin import Node, same_version

# local connections are trusted (labs/postgres/pg-entrypoint): no password needed from inside
PSQL = "psql -h /var/run/postgresql -U postgres -d postgres -X -tAc"


def test_package_at_lab_version(host: Any, node: Node) -> None:
    pkg = host.package(f"postgresql-{node.version}")
    assert pkg.is_installed, f"postgresql-{node.version} is not installed"
    assert node.version and same_version(pkg.version, node.version), pkg.version


def test_listening(host: Any) -> None:
    assert host.socket("tcp://0.0.0.0:5432").is_listening


def test_ready_and_answering(host: Any, node: Node) -> None:
    assert host.run("pg_isready -q -h 127.0.0.1 -p 5432").rc == 0
    version = host.check_output(f"{PSQL} 'show server_version'")
    assert same_version(version.split()[0], str(node.version)), version


def test_config_valid(host: Any) -> None:
    bad = host.check_output(
        f"{PSQL} 'select count(*) from pg_file_settings where error is not null'"
    )
    assert bad.strip() == "0", host.run(f"{PSQL} 'select * from pg_file_settings'").stdout
    bad = host.check_output(
        f"{PSQL} 'select count(*) from pg_hba_file_rules where error is not null'"
    )
    assert bad.strip() == "0", host.run(f"{PSQL} 'select * from pg_hba_file_rules'").stdout


def test_health_waits_for_the_pid_file_before_connecting(host: Any) -> None:
    """The lab's probe must not connect while the server starts up (that logs a finding the
    harness would cause): with postmaster.pid saying `starting` it fails though TCP answers."""
    probe = yaml.safe_load((Path(__file__).parents[1] / "lab.yaml").read_text())["health"]
    command = str(probe["command"])
    assert host.run(command).rc == 0, "the probe fails on a ready server"
    pgdata = host.check_output('printf %s "${PGDATA:-/var/lib/postgresql/data}"')
    fake = "/tmp/labharness-starting"
    host.check_output(
        f"mkdir -p {fake} && sed '8s/.*/starting/' {pgdata}/postmaster.pid > {fake}/postmaster.pid"
    )
    try:
        assert host.run("pg_isready -q -h 127.0.0.1 -p 5432").rc == 0
        assert host.run(f"PGDATA={fake}; export PGDATA; {command}").rc != 0
    finally:
        host.run(f"rm -rf {fake}")
