"""Duplication between real containers (`duplicate:`, issue 18 point 5): iptables TEE copies
that share of what a node receives to its own address, so the application gets it twice, on
this kernel (no netem) as on any with the TEE target. Measured: ping's duplicate count, TCP
through it, composition with an nfqueue delay (a copy follows its delayed original), and
clear() taking it all away."""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterator

import pytest

from harness.engine import impair
from tests.engine.netlab import Lab, lab

pytestmark = pytest.mark.engine
COUNT = 200


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with lab("net-impair", tmp_path_factory.mktemp("reports")) as lb:
        caps = impair.capabilities(lb.client, str(lb.containers["a"].image.id))
        if not caps.get("tee"):
            pytest.skip(f"this engine's kernel has no iptables TEE target: {caps}")
        lb.containers["c"].exec_run(["python3", "-m", "http.server", "8000"], detach=True)
        url = f"http://{lb.addresses['c']['front']}:8000/"
        up = f"for i in $(seq 50); do curl -fsS -o /dev/null {url} && exit 0; sleep 0.1; done"
        assert lb.sh("a", up + "; exit 1")[0] == 0
        yield lb


def _ping(net: Lab, address: str, count: int = COUNT) -> tuple[int, int, list[float]]:
    """(replies, duplicates, round trip times) of a ping from a to address."""
    _, out = net.sh("a", f"ping -n -c {count} -i 0.01 -W 2 {address}")
    m = re.search(r"(\d+) received(?:, \+(\d+) duplicates)?", out)
    assert m, out
    return int(m[1]), int(m[2] or 0), [float(x) for x in re.findall(r"time=([\d.]+) ms", out)]


def test_a_duplicate_doubles_that_share_of_what_the_node_receives(net: Lab) -> None:
    c, c_front = net.containers["c"], net.addresses["c"]["front"]
    assert _ping(net, c_front, 50)[1] == 0  # none before
    res = impair.apply(c, "front", c_front, duplicate="30%")
    try:
        assert res["applied"]["duplicate"] == {
            "value": "30%",
            "probability": 0.3,
            "direction": "in",
        }
        assert any(f"-j TEE --gateway {c_front}" in cmd for cmd in res["commands"]), res
        replies, dups, _ = _ping(net, c_front)
        # each echo request c receives is copied with p = 0.3: binomial(200, 0.3), mean 60,
        # sd 6.5; 36..84 is 3.7 sd either way
        assert replies == COUNT and 36 <= dups <= 84, (replies, dups)
        # TCP through it still works: the copies are duplicate segments, which TCP drops
        fetch = (
            f"for i in $(seq 30); do curl -fsS -o /dev/null http://{c_front}:8000/ || exit 1; done"
        )
        rc, out = net.sh("a", fetch)
        assert rc == 0, out
        rules = impair.show(c)["rules"]
        assert any("LABHARNESS-DUP" in r and "lh:dup:front" in r for r in rules), rules
    finally:
        cleared = impair.clear(c, "front", c_front)
    assert cleared["removed"]["rules"] >= 1 and impair.show(c)["rules"] == []
    assert _ping(net, c_front, 50)[1] == 0  # none after
    print(f"duplicate 30%: {dups} duplicates in {COUNT} pings")


def test_a_copy_follows_its_delayed_original(net: Lab) -> None:
    """With a delay on the same link (nfqueue here: PREROUTING, before the copy is made in
    INPUT), a duplicated reply is as late as its original: every round trip carries the
    delay, the copies' too."""
    c, c_front = net.containers["c"], net.addresses["c"]["front"]
    impair.apply(c, "front", c_front, delay="50ms", duplicate="50%")
    try:
        _, out = net.sh("a", f"ping -n -c 40 -i 0.05 -W 2 {c_front}")
    finally:
        impair.clear(c, "front", c_front)
    times = [float(x) for x in re.findall(r"time=([\d.]+) ms", out)]
    dup_times = [float(x) for x in re.findall(r"time=([\d.]+) ms \(DUP!\)", out)]
    assert dup_times, out
    assert min(times) >= 45, out  # the copies (DUP!) too: none arrived before the delay
    print(
        f"delay 50ms + duplicate 50%: {len(dup_times)} copies, median RTT"
        f" {statistics.median(times):.1f} ms, copies {statistics.median(dup_times):.1f} ms"
    )
