"""The Ansible inventory, limits and by-hand command: pure functions, no engine, no ansible."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from harness import ansible
from harness.errors import UsageError
from harness.scenario.resolved import (
    Attachment,
    EnvImage,
    LabImage,
    NetworkSpec,
    NodeSpec,
    Topology,
)

TOPO = Topology(
    scenario="shop",
    networks=(NetworkSpec("front"), NetworkSpec("back-end")),
    nodes=(
        NodeSpec(
            "proxy",
            LabImage("nginx", "1.22", "debian-12"),
            (Attachment("front"), Attachment("back-end")),
        ),
        NodeSpec("client", LabImage("curl", "7.88", "debian-12"), (Attachment("front"),)),
        NodeSpec("db", LabImage("postgres", "15", "debian-12"), (Attachment("back-end"),)),
        NodeSpec("bare", EnvImage("debian-11"), (Attachment("back-end"),)),
    ),
)
ADDRS = {
    "proxy": {"front": "10.1.0.2", "back-end": "10.2.0.2"},
    "client": {"front": "10.1.0.3"},
    "db": {"back-end": "10.2.0.3"},
}
LABS = {"proxy": "nginx", "client": "curl", "db": "postgres"}


def inv() -> dict[str, object]:
    return ansible.inventory(TOPO, "261126-001530-7f3a", ADDRS, LABS)


def test_one_host_per_node_reached_in_its_container() -> None:
    hosts = inv()["all"]["hosts"]  # type: ignore[index]
    assert list(hosts) == ["proxy", "client", "db", "bare"]
    proxy = hosts["proxy"]
    assert proxy["ansible_host"] == "lab-261126-001530-7f3a-proxy"
    assert proxy["ansible_connection"] == "community.docker.docker_api"
    assert proxy["ansible_python_interpreter"] == "/usr/bin/python3"
    assert proxy["lab_node"] == "proxy"
    assert proxy["lab_run"] == "261126-001530-7f3a"
    assert proxy["lab_addresses"] == {"front": "10.1.0.2", "back-end": "10.2.0.2"}
    # a node without a known address yet still has the host, with no address entry
    assert hosts["bare"]["lab_addresses"] == {}


def test_groups_per_lab_and_per_network() -> None:
    children = inv()["all"]["children"]  # type: ignore[index]
    members = {g: sorted(v["hosts"]) for g, v in children.items()}
    assert members == {
        "nginx": ["proxy"],
        "curl": ["client"],
        "postgres": ["db"],
        "net_front": ["client", "proxy"],
        "net_back_end": ["bare", "db", "proxy"],  # '-' is not valid in a group name
    }


def test_inventory_is_plain_yaml() -> None:
    text = yaml.safe_dump(inv())
    assert yaml.safe_load(text) == inv()


def test_write_inventory(tmp_path: Path) -> None:
    path = ansible.write_inventory(inv(), tmp_path / "a" / "inventory.yml")
    assert yaml.safe_load(path.read_text()) == inv()


def test_node_labs_of_topology() -> None:
    assert ansible.node_labs_of(TOPO) == LABS


@pytest.mark.parametrize(
    ("hosts", "limit"),
    [
        ("all", None),
        (["proxy", "all"], None),
        ("db", ["db"]),
        (["db", "proxy"], ["proxy", "db"]),  # topology order, no duplicates
        ("nginx", ["proxy"]),  # a lab: its nodes
        ("front", ["proxy", "client"]),  # a network: the nodes on it
        (["back-end", "client"], ["proxy", "client", "db", "bare"]),
    ],
)
def test_resolve_hosts(hosts: str | list[str], limit: list[str] | None) -> None:
    assert ansible.resolve_hosts(TOPO, LABS, hosts) == limit


def test_resolve_unknown_host_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="'nope' is neither a node, a lab nor a network"):
        ansible.resolve_hosts(TOPO, LABS, ["proxy", "nope"])


def test_manual_command_round_trips_through_a_shell() -> None:
    line = ansible.manual_command(
        Path("labs/nginx/playbooks/tls.yml"),
        Path("reports/x/inventory.yml"),
        ["proxy", "db"],
        {"protocols": "TLSv1.2 TLSv1.3", "quote": "it's"},
    )
    assert line.startswith("ansible-playbook -i reports/x/inventory.yml -l proxy,db -e ")
    argv = shlex.split(line)
    assert argv[-1] == "labs/nginx/playbooks/tls.yml"
    assert yaml.safe_load(argv[argv.index("-e") + 1]) == {
        "protocols": "TLSv1.2 TLSv1.3",
        "quote": "it's",
    }


def test_manual_command_without_limit_or_vars() -> None:
    assert ansible.manual_command("p.yml", "i.yml", None, {}) == "ansible-playbook -i i.yml p.yml"


def test_task_record_from_runner_events() -> None:
    ok = {
        "event": "runner_on_ok",
        "event_data": {
            "host": "proxy",
            "task": "TLS server block",
            "resolved_action": "ansible.builtin.template",
            "duration": 0.51234,
            "res": {"changed": True},
        },
    }
    assert ansible.task_record(ok) == {
        "host": "proxy",
        "task": "TLS server block",
        "action": "ansible.builtin.template",
        "status": "ok",
        "changed": True,
        "duration": 0.512,
        "ignored": False,
    }
    failed = {
        "event": "runner_on_failed",
        "event_data": {
            "host": "db",
            "task": "check",
            "task_action": "ansible.builtin.command",
            "res": {"rc": 2, "msg": "non-zero return code", "stderr": "boom"},
        },
    }
    rec = ansible.task_record(failed)
    assert rec is not None
    assert (rec["status"], rec["rc"], rec["msg"]) == ("failed", 2, "non-zero return code | boom")
    assert ansible.task_record({"event": "playbook_on_stats", "event_data": {}}) is None


def test_failure_summary_names_task_host_and_message() -> None:
    r = ansible.PlaybookResult(
        playbook="p.yml",
        ident="x",
        status="failed",
        rc=2,
        ok=False,
        failed=[{"host": "db", "task": "check", "msg": "boom", "kind": "failed"}],
    )
    assert r.summary() == "failed on db in task 'check': boom"
    assert r.as_dict()["failed"][0]["task"] == "check"


def test_ipv6_addresses_only_on_nodes_that_have_them() -> None:
    """lab_addresses6 on a node with an address on an IPv6 network, those networks only; the
    manual inventory reads them from LAB_ADDR6_<node>_<network>, which REPRODUCE.sh exports."""
    from harness.reports.manual_steps import manual_inventory

    six = {"proxy": {"back-end": "fd00::2"}, "client": {}}
    hosts = ansible.inventory(TOPO, "r", ADDRS, LABS, six)["all"]["hosts"]
    assert hosts["proxy"]["lab_addresses6"] == {"back-end": "fd00::2"}
    assert "lab_addresses6" not in hosts["client"] and "lab_addresses6" not in hosts["db"]
    assert (
        "lab_addresses6" not in ansible.inventory(TOPO, "r", ADDRS, LABS)["all"]["hosts"]["proxy"]
    )
    manual = manual_inventory(ansible.inventory(TOPO, "r", ADDRS, LABS, six))["all"]["hosts"]
    assert manual["proxy"]["lab_addresses6"] == {
        "back-end": "{{ lookup('env', 'LAB_ADDR6_proxy_back_end') }}"
    }
