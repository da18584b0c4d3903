"""Configure through Ansible against a real topology: real engine, real ansible-runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness import ansible
from harness.scenario.catalog import load_catalog
from harness.scenario.load import load_scenario
from harness.scenario.resolved import Topology
from tests.conftest import ROOT, nothing_left

SCENARIO = ROOT / "tests/engine/scenarios/ansible-configure.yaml"
PLAYBOOKS = ROOT / "tests/engine/playbooks"
TLS = ROOT / "labs/nginx/playbooks/tls.yml"
PG_SETTINGS = ROOT / "labs/postgres/playbooks/settings.yml"


@dataclass
class Lab:
    run: str
    topology: Topology
    inventory: dict[str, Any]
    node_labs: dict[str, str]
    private: Path
    client: Any

    def container(self, node: str) -> Any:
        return self.client.containers.get(f"lab-{self.run}-{node}")

    def sh(self, node: str, cmd: str) -> tuple[int, str]:
        rc, (out, err) = self.container(node).exec_run(["sh", "-c", cmd], demux=True)
        return int(rc), (out or b"").decode() + (err or b"").decode()

    def play(self, playbook: Path, hosts: str | list[str], ident: str, **extra: Any) -> Any:
        limit = ansible.resolve_hosts(self.topology, self.node_labs, hosts)
        return ansible.run_playbook(
            playbook,
            inventory=self.inventory,
            limit=limit,
            extra_vars=extra,
            private_dir=self.private,
            ident=ident,
            timeout=300,
        )


@pytest.fixture(scope="module")
def lab(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    from harness.verbs.runs import down
    from harness.verbs.up import up

    reports = tmp_path_factory.mktemp("ansible-reports")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABHARNESS_REPORTS", str(reports))
        result = up(SCENARIO, root=ROOT)
        run = result.run
        try:
            topo = load_scenario(SCENARIO, root=ROOT, catalog=load_catalog(ROOT)).topology
            labs = ansible.node_labs_of(topo)
            addrs = {n.name: n.addresses for n in result.nodes}
            yield Lab(
                run=run,
                topology=topo,
                inventory=ansible.inventory(topo, run, addrs, labs),
                node_labs=labs,
                private=Path(result.folder) / "ansible",
                client=docker_client,
            )
        finally:
            down([run])
            assert nothing_left(docker_client, run)


def test_a_playbook_writes_a_file_on_the_nodes_it_targets(lab: Lab) -> None:
    seen: list[dict[str, Any]] = []
    r = lab.play(PLAYBOOKS / "write-file.yml", "front", "write", greeting="hi")
    assert r.ok, r.summary()
    assert (r.status, r.rc) == ("successful", 0)
    for node in ("proxy", "client"):
        rc, out = lab.sh(node, "cat /tmp/labharness-hello.txt")
        assert rc == 0 and out == f"hello {node} of {lab.run}: hi front\n", out
    rc, _ = lab.sh("db", "test -e /tmp/labharness-hello.txt")  # not on network front
    assert rc != 0
    # per-task results, from runner events
    by = {(t["host"], t["task"]): t for t in r.tasks}
    assert set(by) == {
        (h, t)
        for h in ("proxy", "client")
        for t in ("marker file", "read it back", "fail on demand")
    }
    assert by["proxy", "marker file"]["changed"] is True
    assert by["proxy", "marker file"]["action"] == "ansible.builtin.copy"
    assert by["proxy", "read it back"] == {**by["proxy", "read it back"], "changed": False, "rc": 0}
    assert by["client", "fail on demand"]["status"] == "skipped"
    assert r.stats["changed"] == {"proxy": 1, "client": 1}
    assert r.failed == []

    # again, same ident asked for: a fresh one is used, nothing changes (idempotent), and each
    # call's artifacts hold only its own events
    r2 = ansible.run_playbook(
        PLAYBOOKS / "write-file.yml",
        inventory=lab.inventory,
        limit=["proxy", "client"],
        extra_vars={"greeting": "hi"},
        private_dir=lab.private,
        ident="write",
        on_event=seen.append,
    )
    assert r2.ok, r2.summary()
    assert r2.ident != r.ident and r2.artifacts != r.artifacts
    assert [t["changed"] for t in r2.tasks if t["task"] == "marker file"] == [False, False]
    assert {e["task"] for e in seen} == {"marker file", "read it back", "fail on demand"}
    assert all(e["event"] == "task" for e in seen) and len(seen) == len(r2.tasks) == 6
    for res in (r, r2):
        events = list((Path(res.artifacts) / "job_events").glob("*.json"))
        oks = [json.loads(p.read_text()) for p in events]
        assert sum(1 for e in oks if e["event"] == "runner_on_ok") == 4  # 2 tasks x 2 hosts
    assert Path(r.inventory_path).is_file()


def test_the_manual_command_does_the_same_by_hand(lab: Lab) -> None:
    r = lab.play(PLAYBOOKS / "write-file.yml", "client", "write-by-hand", greeting="by-hand")
    assert r.ok, r.summary()
    assert "-l client" in r.command and r.command.startswith("ansible-playbook -i ")
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}"}
    cmd = r.command.replace('"greeting":"by-hand"', '"greeting":"typed"')
    proc = subprocess.run(cmd, shell=True, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _, out = lab.sh("client", "cat /tmp/labharness-hello.txt")
    assert out.startswith("hello client of") and "typed" in out, out


def test_a_failing_task_gives_ok_false_with_task_host_and_message(lab: Lab) -> None:
    r = lab.play(
        PLAYBOOKS / "write-file.yml", ["proxy", "db"], "fail", greeting="x", fail_on=["db"]
    )
    assert not r.ok
    assert r.status == "failed" and r.rc != 0
    assert r.failed == [
        {"host": "db", "task": "fail on demand", "msg": r.failed[0]["msg"], "kind": "failed"}
    ]
    assert "the customer config is broken" in r.failed[0]["msg"]
    assert "db" in r.summary() and "fail on demand" in r.summary()
    assert r.stats["failures"] == {"db": 1}
    failing = next(t for t in r.tasks if t["status"] == "failed")
    assert (failing["host"], failing["rc"]) == ("db", 3)


def test_a_playbook_that_does_not_parse_is_not_ok_with_a_clear_message(lab: Lab) -> None:
    r = lab.play(PLAYBOOKS / "broken-syntax.yml", "all", "broken")
    assert not r.ok and r.tasks == [] and r.failed == []
    assert r.error is not None and "broken-syntax.yml" in r.error, r.error
    assert "ERROR" in r.error
    missing = lab.play(PLAYBOOKS / "no-such.yml", "all", "missing")
    assert not missing.ok and "does not exist" in (missing.error or "")


def _curl(lab: Lab, version: str) -> tuple[int, str]:
    return lab.sh("client", f"curl -sSk --tlsv{version} --tls-max {version} https://proxy/health")


def test_tls_playbook_sets_the_protocols_nginx_accepts(lab: Lab) -> None:
    r = lab.play(TLS, "nginx", "tls12", protocols="TLSv1.2")
    assert r.ok, r.summary()
    changed = {t["task"] for t in r.tasks if t["changed"]}
    assert {"TLS server block", "reload nginx"} <= changed
    rc, out = _curl(lab, "1.2")
    assert rc == 0 and out == "ok\n", out
    rc, out = _curl(lab, "1.3")
    assert rc == 35, out  # TLS handshake refused: the customer's symptom
    _, conf = lab.sh("proxy", "cat /etc/nginx/conf.d/labharness-tls.conf")
    assert "ssl_protocols       TLSv1.2;" in conf

    same = lab.play(TLS, "proxy", "tls12-again", protocols="TLSv1.2")
    assert same.ok and not any(t["changed"] for t in same.tasks), same.tasks

    both = lab.play(TLS, "proxy", "tls13", protocols="TLSv1.2 TLSv1.3")
    assert both.ok, both.summary()
    assert {t["task"] for t in both.tasks if t["changed"]} == {"TLS server block", "reload nginx"}
    rc, out = _curl(lab, "1.3")
    assert rc == 0 and out == "ok\n", out


def test_postgres_settings_playbook_restarts_when_needed(lab: Lab) -> None:
    before = lab.container("db").id
    r = lab.play(
        PG_SETTINGS, "postgres", "pg", settings={"max_connections": 150, "work_mem": "8MB"}
    )
    assert r.ok, r.summary()
    changed = {t["task"] for t in r.tasks if t["changed"]}
    assert "Settings in postgresql.conf" in changed
    assert "Restart the node's container (settings that apply only at server start)" in changed
    psql = "psql -h /var/run/postgresql -U postgres -Atc"
    rc, out = lab.sh("db", f"{psql} 'SHOW max_connections' && {psql} 'SHOW work_mem'")
    assert rc == 0 and out.split() == ["150", "8MB"], out
    assert lab.container("db").id == before  # restarted, not recreated

    # a reload-only setting: no restart; and a second identical run changes nothing
    r = lab.play(PG_SETTINGS, "db", "pg-reload", settings={"work_mem": "16MB"})
    assert r.ok, r.summary()
    skipped = {t["task"] for t in r.tasks if t["status"] == "skipped"}
    assert "Restart the node's container (settings that apply only at server start)" in skipped
    rc, out = lab.sh("db", f"{psql} 'SHOW work_mem'")
    assert out.strip() == "16MB", out
    again = lab.play(PG_SETTINGS, "db", "pg-again", settings={"work_mem": "16MB"})
    assert again.ok and not any(t["changed"] for t in again.tasks), again.tasks


def test_a_playbook_past_its_timeout_is_stopped_and_not_ok(lab: Lab) -> None:
    limit = ansible.resolve_hosts(lab.topology, lab.node_labs, "client")
    r = ansible.run_playbook(
        PLAYBOOKS / "sleep.yml",
        inventory=lab.inventory,
        limit=limit,
        extra_vars={},
        private_dir=lab.private,
        ident="slow",
        timeout=3,
    )
    assert not r.ok and r.status == "timeout", r.as_dict()
    assert r.duration < 30
    assert "did not finish within 3" in r.summary()
