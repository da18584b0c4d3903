"""IPv6 on lab networks (issue 18 point 4): `subnet6:` and `ipv6: true` on a network, a node's
static `ipv6:`. From the scenario to the engine's create options, REPRODUCE.md's commands, each
located error (file:line, the key, what was expected; exit 2), and the run layer recording the
addresses (on the in-memory engine). The effect on the real engine is tests/engine/test_ipv6.py."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.engine import objects
from harness.engine.api import RunLabels
from harness.engine.fake import FakeEngine
from harness.errors import InfraError, UsageError
from harness.journal_model import TopologyNetwork
from harness.reports.manual_steps import _network
from harness.run.execute import Run, RunOptions
from harness.scenario.catalog import Catalog
from harness.scenario.load import load_scenario
from harness.scenario.resolved import Attachment, NetworkSpec
from tests.unit.conftest import CATALOG_ROOT

REPO = Path(__file__).resolve().parents[2]


def _scenario(
    lan: str = '{subnet6: "fd00:90::/64"}',
    other: str = '{subnet6: "fd00:91::/64"}',
    a6: str = '"fd00:90::10"',
    b6: str = '"fd00:90::20"',
    bnet: str = "lan",
) -> str:
    return f"""\
scenario: v6
topology:
  networks:
    lan: {lan}
    other: {other}
    plain: {{}}
    bare: {{}}
  nodes:
    a:
      os: debian-12
      networks:
        lan: {{ipv6: {a6}}}
    b:
      os: debian-12
      networks:
        {bnet}: {{ipv6: {b6}}}
        plain:
"""


def _load(tmp_path: Path, catalog: Catalog, text: str) -> Any:
    path = tmp_path / "v6.yaml"
    path.write_text(text)
    return load_scenario(path, root=CATALOG_ROOT, catalog=catalog)


def _error(tmp_path: Path, catalog: Catalog, text: str) -> str:
    with pytest.raises(UsageError) as err:
        _load(tmp_path, catalog, text)
    assert err.value.exit_code == 2
    return str(err.value)


def test_subnet6_and_static_addresses_resolve(tmp_path: Path, test_catalog: Catalog) -> None:
    loaded = _load(tmp_path, test_catalog, _scenario(other="{ipv6: true}"))
    nets = {n.name: n for n in loaded.topology.networks}
    assert nets["lan"] == NetworkSpec("lan", ipv6=True, subnet6="fd00:90::/64")
    assert nets["other"] == NetworkSpec("other", ipv6=True)  # a subnet picked per run
    assert nets["plain"] == NetworkSpec("plain")
    b = next(n for n in loaded.topology.nodes if n.name == "b")
    assert b.networks == (
        Attachment("lan", None, "fd00:90::20", has_ipv6=True),
        Attachment("plain"),
    )


@pytest.mark.parametrize(
    ("kwargs", "where", "expected"),
    [
        ({"a6": '"fd00:99::10"'}, "v6.yaml:12:", "address fd00:99::10 is outside network 'lan'"),
        ({"b6": '"fd00:90::10"'}, "v6.yaml:16:", "fd00:90::10 on network 'lan' is already used"),
        ({"a6": '"10.0.0.5"'}, "v6.yaml:12:", "expected an IPv6 address like fd00:90::a"),
        ({"a6": '"fd00:90::1"'}, "v6.yaml:12:", "reserved for the gateway of 'lan'"),
        ({"a6": '"fd00:90::"'}, "v6.yaml:12:", "the subnet-router address of 'lan'"),
        ({"bnet": "bare", "b6": '"fd00:90::20"'}, "v6.yaml:16:", "network 'bare' has no IPv6"),
        ({"lan": "{ipv6: true}"}, "v6.yaml:12:", "a static IPv6 address needs subnet6"),
        ({"lan": '{subnet6: "fd00:90::/32"}'}, "v6.yaml:4:", "a prefix from /48 to /120"),
        ({"lan": '{subnet6: "fd00:90::/124"}'}, "v6.yaml:4:", "a prefix from /48 to /120"),
        ({"lan": '{subnet6: "fd00:90::5/64"}'}, "v6.yaml:4:", "host bits set; the network"),
        ({"lan": '{subnet6: "10.90.0.0/24"}'}, "v6.yaml:4:", "IPv4 network: it goes under subnet"),
        ({"lan": '{subnet6: "fe80::/64"}'}, "v6.yaml:4:", "is link-local"),
        ({"lan": '{subnet6: "nope"}'}, "v6.yaml:4:", "expected an IPv6 network like fd00:90::/64"),
        ({"other": '{subnet6: "fd00:90:0:0:8000::/80"}'}, "v6.yaml:5:", "overlaps network 'lan'"),
        ({"other": '{ipv6: false, subnet6: "fd00:91::/64"}'}, "v6.yaml:5:", "ipv6: false, but"),
        ({"lan": '{subnet: "fd00:90::/64"}'}, "v6.yaml:4:", "IPv6 network: it goes under subnet6"),
        ({"lan": '{ipv6: "fd00:90::/64"}'}, "v6.yaml:4:", "ipv6"),
    ],
)
def test_each_ipv6_mistake_is_a_located_error(
    tmp_path: Path,
    test_catalog: Catalog,
    kwargs: dict[str, str],
    where: str,
    expected: str,
) -> None:
    text = _error(tmp_path, test_catalog, _scenario(**kwargs))
    assert where in text and expected in text, text


def test_the_key_is_named_in_the_message(tmp_path: Path, test_catalog: Catalog) -> None:
    text = _error(tmp_path, test_catalog, _scenario(a6='"fd00:99::10"'))
    assert "ipv6" in text.split("v6.yaml:12:", 1)[1].splitlines()[0], text
    text = _error(tmp_path, test_catalog, _scenario(lan='{subnet6: "fd00:90::/32"}'))
    assert "subnet6" in text.split("v6.yaml:4:", 1)[1].splitlines()[0], text


def test_lab_validate_exits_2_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "v6.yaml"
    path.write_text(_scenario(a6='"fd00:99::10"'))
    p = subprocess.run(
        [sys.executable, "-m", "harness", "validate", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert p.returncode == 2, p
    assert f"{path}:12:" in p.stdout + p.stderr and "outside network 'lan'" in p.stdout + p.stderr


class _Networks:
    """The SDK's client.networks, recording create() and refusing the first `overlaps` calls."""

    def __init__(self, overlaps: int = 0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.overlaps = overlaps

    def create(self, name: str, **kwargs: Any) -> str:
        self.calls.append(kwargs)
        if len(self.calls) <= self.overlaps:
            import docker.errors

            raise docker.errors.APIError("Pool overlaps with other one on this address space")
        return name


class _Client:
    def __init__(self, overlaps: int = 0) -> None:
        self.networks = _Networks(overlaps)


def _subnets(call: dict[str, Any]) -> list[str]:
    return [p["Subnet"] for p in call["ipam"]["Config"]]


def test_engine_options_of_a_fixed_and_a_picked_subnet6() -> None:
    labels = RunLabels("r1", "v6", "me", "/tmp/r1")
    client = _Client()
    objects.create_network(
        client, labels, NetworkSpec("lan", "10.9.0.0/24", subnet6="fd00:90::/64", ipv6=True)
    )
    objects.create_network(client, labels, NetworkSpec("auto", ipv6=True))
    objects.create_network(client, labels, NetworkSpec("plain"))
    fixed, picked, plain = client.networks.calls
    assert fixed["enable_ipv6"] is True and _subnets(fixed) == ["10.9.0.0/24", "fd00:90::/64"]
    assert picked["enable_ipv6"] is True
    (sub,) = _subnets(picked)  # IPv4 still picked by the engine
    net = ipaddress.IPv6Network(sub)
    assert net.prefixlen == 64 and net.subnet_of(ipaddress.IPv6Network("fd00::/8"))
    assert plain["enable_ipv6"] is False and plain["ipam"] is None
    assert len({objects.random_subnet6() for _ in range(50)}) == 50  # random, not one fixed


def test_a_picked_subnet6_that_overlaps_is_retried_a_fixed_one_is_said() -> None:
    labels = RunLabels("r1", "v6", "me", "/tmp/r1")
    client = _Client(overlaps=2)
    objects.create_network(client, labels, NetworkSpec("auto", ipv6=True))
    assert len(client.networks.calls) == 3
    assert len({_subnets(c)[0] for c in client.networks.calls}) == 3  # a new one each time
    client = _Client(overlaps=1)
    with pytest.raises(InfraError) as err:
        objects.create_network(client, labels, NetworkSpec("lan", ipv6=True, subnet6="fd00:9::/64"))
    assert "subnet6 fd00:9::/64 is already used on this engine" in err.value.message
    client = _Client(overlaps=objects.PICK_TRIES)
    with pytest.raises(InfraError):
        objects.create_network(client, labels, NetworkSpec("auto", ipv6=True))
    assert len(client.networks.calls) == objects.PICK_TRIES


def test_static_ipv6_goes_to_the_endpoint_of_every_network(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    """create_node gives ipv6_address for the first network and on connect for the others."""
    loaded = _load(tmp_path, test_catalog, _scenario(bnet="other", b6='"fd00:91::20"'))
    b = next(n for n in loaded.topology.nodes if n.name == "b")
    seen: dict[str, Any] = {}

    class Api:
        def create_endpoint_config(self, **kw: Any) -> dict[str, Any]:
            seen["endpoint"] = kw
            return kw

        def create_host_config(self, **kw: Any) -> dict[str, Any]:
            return kw

        def create_networking_config(self, cfg: dict[str, Any]) -> dict[str, Any]:
            return cfg

        def create_container(self, **kw: Any) -> dict[str, str]:
            return {"Id": "c1"}

        def connect_container_to_network(self, cid: str, net: str, **kw: Any) -> None:
            seen.setdefault("connect", []).append((net, kw))

    class Containers:
        def get(self, cid: str) -> str:
            return cid

    class Client:
        api = Api()
        containers = Containers()
        images = None

    objects.create_node(
        Client(), RunLabels("r1", "v6", "me", "/tmp/r1"), b, "img", {"other": "n-o", "plain": "n-p"}
    )
    assert seen["endpoint"]["ipv6_address"] == "fd00:91::20"
    assert seen["connect"] == [
        ("n-p", {"aliases": ["b"], "ipv4_address": None, "ipv6_address": None})
    ]


def test_addresses6_reads_global_addresses_only() -> None:
    nets = {
        "lab-r1-lan": {"IPAddress": "10.0.0.2", "GlobalIPv6Address": "fd00:90::10"},
        "lab-r1-plain": {"IPAddress": "10.0.1.2", "GlobalIPv6Address": ""},
    }
    container = SimpleNamespace(
        labels={"labharness.run": "r1"},
        attrs={"NetworkSettings": {"Networks": nets}},
        reload=lambda: None,
    )
    assert objects.addresses6(container) == {"lan": "fd00:90::10"}


def test_reproduce_md_creates_ipv6_networks_and_static_addresses() -> None:
    fixed = _network(TopologyNetwork(name="lan", subnet6="fd00:90::/64", ipv6=True))
    assert "--ipv6 --subnet fd00:90::/64" in fixed
    picked = _network(TopologyNetwork(name="auto", ipv6=True), 3)
    assert '--ipv6 --subnet "fd00:$(($$ / 65536)):$(printf %x $(($$ % 65536))):3::/64"' in picked
    out = subprocess.run(
        ["sh", "-c", 'echo "fd00:$(($$ / 65536)):$(printf %x $(($$ % 65536))):3::/64"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert ipaddress.IPv6Network(out).prefixlen == 64  # what sh makes of it is a subnet
    assert "--ipv6" not in _network(TopologyNetwork(name="plain"))


def test_the_run_records_ipv6_addresses(
    tmp_path: Path, test_catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABHARNESS_REPORTS", str(tmp_path / "reports"))
    loaded = _load(tmp_path, test_catalog, _scenario(other="{ipv6: true}"))
    fake = FakeEngine()
    run = Run(loaded, CATALOG_ROOT, test_catalog, RunOptions(), engine=fake)
    up = run.execute_up()
    nodes = {n.name: n for n in up.nodes}
    assert nodes["a"].addresses6 == {"lan": "fd00:90::10"}
    assert nodes["b"].addresses6 == {"lan": "fd00:90::20"}  # plain has no IPv6
    assert sorted(fake.called("addresses6")) == [(up.run, "a"), (up.run, "b")]
    journal = json.loads((run.folder.path / "journal.json").read_text())
    recorded = next(p for p in journal["phases"] if p["phase"] == "up")["nodes"]
    assert {n["name"]: n.get("addresses6") for n in recorded} == {
        "a": {"lan": "fd00:90::10"},
        "b": {"lan": "fd00:90::20"},
    }
    nets = {n["name"]: n for n in journal["topology"]["networks"]}
    assert nets["lan"]["subnet6"] == "fd00:90::/64" and nets["other"]["ipv6"] is True


PARTITIONS = """\
scenario: v6
topology:
  networks:
    lan: {ipv6: true}
    v4: {}
  nodes:
    a: {os: debian-12, networks: [lan, v4]}
    b: {os: debian-12, networks: [lan, v4]}
    c: {os: debian-12, networks: [v4]}
  impairments:
    - {node: a, network: v4, partition: b}
    - {node: a, network: v4, partition: lan}
    - {node: a, network: v4, partition: v4}
    - {node: a, network: v4, partition: c}
reproduce:
  steps:
    - {fault: partition, node: a, target: b}
    - {on: a, run: "true"}
"""


def test_a_partition_ipv6_would_get_through_is_refused(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    """Partitions drop IPv4 (iptables): between nodes that share an IPv6 network, or from an
    IPv6 network the node is on, they would be a silent no-op for IPv6 traffic."""
    text = _error(tmp_path, test_catalog, PARTITIONS)
    lines = [line.split("v6.yaml:", 1)[1] for line in text.splitlines() if "v6.yaml:" in line]
    assert [line.split(":")[0] for line in lines] == ["11", "12", "17"], text
    assert "partition: 'a' and 'b' share network 'lan', which has IPv6" in lines[0], text
    assert "partition: 'a' is on network 'lan', which has IPv6" in lines[1], text
    ok = PARTITIONS.replace("lan: {ipv6: true}", "lan: {}")
    _load(tmp_path, test_catalog, ok)  # the same partitions without IPv6 are fine


LOSS = """\
scenario: v6
topology:
  networks:
    lan: {subnet6: "fd00:90::/64"}
    v4: {}
  nodes:
    a: {os: debian-12, networks: [lan]}
    b: {os: debian-12, networks: [lan, v4]}
  impairments:
    - {node: a, loss: 5%}
    - {node: b, network: lan, loss: 5%, delay: 10ms}
    - {node: b, network: v4, loss: 5%}
    - {node: a, delay: 10ms, rate: 1mbit}
reproduce:
  steps:
    - {fault: impair, node: b, network: lan, loss: 10%}
    - {on: a, run: "true"}
"""


def test_loss_on_a_network_with_ipv6_is_refused(tmp_path: Path, test_catalog: Catalog) -> None:
    """Loss is iptables' (IPv4 only); delay and rate (tc, every packet) stay allowed."""
    text = _error(tmp_path, test_catalog, LOSS)
    lines = [line.split("v6.yaml:", 1)[1] for line in text.splitlines() if "v6.yaml:" in line]
    assert [line.split(":")[0] for line in lines] == ["10", "11", "16"], text
    assert all("loss: network 'lan' has IPv6, and loss drops IPv4 only" in x for x in lines)
    _load(tmp_path, test_catalog, LOSS.replace('lan: {subnet6: "fd00:90::/64"}', "lan: {}"))


DELAY = """\
scenario: v6
topology:
  networks:
    lan: {subnet6: "fd00:90::/64"}
    v4: {}
  nodes:
    a: {os: debian-12, networks: [lan]}
    b: {os: debian-12, networks: [v4]}
  impairments:
    - {node: a, delay: 50ms}
    - {node: b, delay: 50ms}
"""


@pytest.mark.parametrize(("netem", "refused"), [(False, True), (True, False)])
def test_a_delay_on_ipv6_needs_netem(
    tmp_path: Path,
    test_catalog: Catalog,
    monkeypatch: pytest.MonkeyPatch,
    netem: bool,
    refused: bool,
) -> None:
    """The NFQUEUE delay backend queues IPv4 only: where it is the backend, a delay on a
    dual-stack network is refused before anything starts (exit 3), never applied half."""
    monkeypatch.setenv("LABHARNESS_REPORTS", str(tmp_path / "reports"))
    loaded = _load(tmp_path, test_catalog, DELAY)
    fake = FakeEngine()
    fake.capabilities.update(netem=netem, nfqueue=True)
    run = Run(loaded, CATALOG_ROOT, test_catalog, RunOptions(), engine=fake)
    if not refused:
        run.build()
        run.preflight()
        return
    run.build()
    with pytest.raises(InfraError) as err:
        run.preflight()
    text = err.value.message
    assert "delay 50ms on a/lan: that network has IPv6" in text, text
    assert "on b/" not in text  # b's network is IPv4 only: the NFQUEUE backend delays it
