"""Loss, rate, partitions and the capability probe, measured between real containers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.engine import impair
from harness.errors import InfraError
from tests.engine.netlab import Lab, lab

PAYLOAD = 300_000  # bytes: 2.4 s at 1 mbit


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with lab("net-impair", tmp_path_factory.mktemp("reports")) as lb:
        yield lb


@pytest.fixture(scope="module")
def env_image(net: Lab) -> str:
    return str(net.containers["a"].image.id)


def test_loss_on_a_link_drops_about_that_share_and_clear_restores_it(net: Lab) -> None:
    c_front = net.addresses["c"]["front"]
    assert net.ping_loss("a", c_front, count=10) == 0

    # one way (out of c): a round trip is lost when the reply is, about 50%
    res = impair.apply(net.containers["c"], "front", c_front, loss="50%", direction="out")
    assert res["interface"].startswith("eth")
    assert res["applied"]["loss"]["probability"] == 0.5
    one_way = net.ping_loss("a", c_front)
    assert 20 <= one_way <= 80, one_way

    # both ways (the default): 30% each way loses 1-(0.7^2) = 51% of round trips
    impair.apply(net.containers["c"], "front", c_front, loss="30%")
    rules = impair.show(net.containers["c"])["rules"]
    assert len(rules) == 2 and all("lh:loss:front" in r for r in rules), rules
    both = net.ping_loss("a", c_front)
    assert 20 <= both <= 80, both

    # only that link: c's traffic on another path is untouched (a reaches b on front)
    assert net.ping_loss("a", net.addresses["b"]["front"], count=10) == 0

    cleared = impair.clear(net.containers["c"], "front", c_front)
    assert cleared["removed"]["rules"] == 2
    assert impair.show(net.containers["c"])["rules"] == []
    assert net.ping_loss("a", c_front) == 0
    print(f"loss 50% out: {one_way}% of pings lost; loss 30% both ways: {both}%")


def _speed(net: Lab, node: str, url: str) -> float:
    rc, out = net.sh(node, f"curl -sS -o /dev/null --max-time 20 -w '%{{speed_download}}' {url}")
    assert rc == 0, out
    return float(out.strip().replace(",", "."))


def test_rate_limits_what_the_node_sends(net: Lab) -> None:
    b = net.containers["b"]
    b_front = net.addresses["b"]["front"]
    net.sh("b", f"head -c {PAYLOAD} /dev/urandom > /tmp/blob")
    b.exec_run(["python3", "-m", "http.server", "8000", "--directory", "/tmp"], detach=True)
    url = f"http://{b_front}:8000/blob"
    wait = f"for i in $(seq 50); do curl -s -o /dev/null {url} && exit 0; sleep 0.1; done; exit 1"
    rc, _ = net.sh("a", wait)
    assert rc == 0

    res = impair.apply(b, "front", b_front, rate="1mbit")
    assert res["applied"]["rate"]["bits_per_second"] == 1e6
    assert impair.show(b)["qdiscs"][0]["kind"] == "tbf"
    limited = _speed(net, "a", url)
    assert limited < 200_000, limited  # 1 mbit = 125 kB/s

    impair.clear(b, "front", b_front)
    assert impair.show(b)["qdiscs"] == []
    free = _speed(net, "a", url)
    assert free > 5 * limited, (free, limited)
    print(f"rate 1mbit: {limited / 1000:.0f} kB/s limited, {free / 1000:.0f} kB/s after clear")


def test_partition_node_from_node_is_symmetric_and_heals(net: Lab) -> None:
    a, b = net.containers["a"], net.containers["b"]
    a_addrs = list(net.addresses["a"].values())
    b_addrs = list(net.addresses["b"].values())
    c_front = net.addresses["c"]["front"]
    impair.partition_nodes(a, "a", b, "b", a_addresses=a_addrs, b_addresses=b_addrs)
    try:
        for addr in b_addrs:
            assert not net.reaches("a", addr)
        for addr in a_addrs:
            assert not net.reaches("b", addr)
        # a third node is unaffected, and so are a and b towards it
        assert net.reaches("c", net.addresses["a"]["front"])
        assert net.reaches("c", net.addresses["b"]["front"])
        assert net.reaches("a", c_front)
    finally:
        healed = impair.heal_nodes(a, "a", b, "b")
    assert healed["a"]["removed"]["rules"] == 2 * len(b_addrs)
    assert net.reaches("a", net.addresses["b"]["back"])
    assert net.reaches("b", net.addresses["a"]["front"])


def test_partition_node_from_network_and_heal(net: Lab) -> None:
    a = net.containers["a"]
    subnets = impair.subnets(net.client, net.networks["back"])
    assert len(subnets) == 1
    impair.partition(a, "back", subnets)
    try:
        assert not net.reaches("a", net.addresses["b"]["back"])
        assert net.reaches("a", net.addresses["b"]["front"])  # the other network still works
        assert net.reaches("b", net.addresses["c"]["front"])  # third parties unaffected
    finally:
        impair.heal(a, "back")
    assert net.reaches("a", net.addresses["b"]["back"])
    assert impair.show(a)["rules"] == []


def test_clear_all_removes_every_trace(net: Lab) -> None:
    c = net.containers["c"]
    c_front = net.addresses["c"]["front"]
    impair.apply(c, "front", c_front, loss="10%", rate="10mbit")
    impair.partition(c, "a", list(net.addresses["a"].values()))
    res = impair.clear(c)
    assert res["removed"] == {"rules": 2 + 4, "qdiscs": 1}  # loss in+out, 2 addresses x 2
    _, out = net.sh("c", "iptables -S; tc qdisc show")
    assert "LABHARNESS" not in out and "tbf" not in out, out
    assert impair.clear(c)["removed"] == {"rules": 0, "qdiscs": 0}  # idempotent


def test_without_net_admin_the_error_says_so(net: Lab) -> None:
    with pytest.raises(InfraError) as err:
        impair.apply(net.containers["plain"], "front", net.addresses["plain"]["front"], loss="5%")
    assert "NET_ADMIN" in str(err.value)
    with pytest.raises(InfraError, match="no interface with address"):
        impair.apply(net.containers["a"], "front", "192.0.2.1", loss="5%")


def test_capabilities_are_probed_once_and_cached(
    net: Lab, env_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABHARNESS_CACHE", str(tmp_path))
    monkeypatch.setattr(impair, "_caps_memo", {})
    caps = impair.capabilities(net.client, env_image)
    assert caps["tbf"] and caps["statistic"] and caps["iptables"]
    assert isinstance(caps["netem"], bool)
    assert (tmp_path / "capabilities.json").exists()
    probes = net.client.containers.list(
        all=True, filters={"label": "labharness.probe"}, ignore_removed=True
    )
    assert probes == []

    calls: list[Any] = []
    monkeypatch.setattr(impair, "_caps_memo", {})
    monkeypatch.setattr(impair, "_probe", lambda *a: calls.append(a) or {})
    assert impair.capabilities(net.client, env_image) == caps  # from the file
    assert calls == []

    kernel = impair.engine_kernel(net.client)
    sentences = impair.unsupported(
        [{"node": "proxy", "network": "dmz", "delay": "100ms", "loss": "5%"}],
        {**caps, "netem": False, "nfqueue": True, "iptables": True},
        kernel,
    )
    assert sentences == []  # nfqueue does it when the kernel has NFQUEUE
    sentences = impair.unsupported(
        [{"node": "proxy", "network": "dmz", "delay": "100ms", "loss": "5%"}],
        {**caps, "netem": False, "nfqueue": False},
        kernel,
    )
    assert sentences == [
        f"delay 100ms on proxy/dmz needs the netem qdisc or NFQUEUE (nfnetlink_queue), and this"
        f" engine's kernel ({kernel}) has neither"
    ]
    assert impair.unsupported([{"node": "p", "delay": "1ms"}], {**caps, "netem": True}) == []


def test_delay_with_netem(net: Lab, env_image: str) -> None:
    """Delay with whichever backend the probe picks: netem, else nfqueue (issue 18 point 5)."""
    caps = impair.capabilities(net.client, env_image)
    backend = impair.delay_backend(caps)
    if backend is None:
        pytest.skip(
            f"this engine's kernel ({impair.engine_kernel(net.client)}) has neither the netem"
            " qdisc nor NFQUEUE: delay and jitter cannot be applied here"
        )
    c_front = net.addresses["c"]["front"]
    res = impair.apply(net.containers["c"], "front", c_front, delay="100ms", rate="10mbit")
    try:
        assert res["backend"] == backend
        assert res["applied"]["delay"]["backend"] == backend
        _, out = net.sh("a", f"ping -n -c 3 -i 0.2 {c_front}")
        rtts = [float(x) for x in re.findall(r"time=([\d.]+) ms", out)]
        assert rtts and min(rtts) >= 90, out
    finally:
        impair.clear(net.containers["c"], "front", c_front)
    assert impair.show(net.containers["c"])["rules"] == []
