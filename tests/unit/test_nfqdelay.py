"""The nfqueue backend's pure parts: the release-time schedule and the backend choice."""

from __future__ import annotations

import random

from harness.engine import impair
from harness.engine.nfqdelay import Schedule


def test_without_jitter_each_packet_waits_exactly_the_delay_in_arrival_order() -> None:
    s = Schedule(delay=0.1)
    for i, t in enumerate((0.0, 0.01, 0.02)):
        assert s.arrive(i, t)
    assert s.due(0.099) == []
    assert s.wait(0.099) == 0.1 - 0.099
    assert s.due(0.111) == [0, 1]
    assert s.due(1.0) == [2]
    assert (s.accepted, s.dropped, s.held) == (3, 0, 0)
    assert s.wait(5.0) == 1.0  # nothing held: the idle wait


def test_jitter_stays_within_its_bounds_and_reorders_close_packets() -> None:
    s = Schedule(delay=0.1, jitter=0.02, rng=random.Random(7))
    times = [s.release_time(0.0) for _ in range(2000)]
    assert min(times) >= 0.08 and max(times) <= 0.12
    assert min(times) < 0.085 and max(times) > 0.115  # uniform: it reaches both ends
    for i in range(100):  # 1 ms apart, +-20 ms: released by release time, not arrival
        s.arrive(i, i * 0.001)
    order = s.due(1.0)
    assert sorted(order) == list(range(100)) and order != list(range(100))


def test_the_delay_never_goes_negative_and_the_queue_is_bounded() -> None:
    s = Schedule(delay=0.001, jitter=0.01, limit=3, rng=random.Random(1))
    assert all(s.release_time(5.0) >= 5.0 for _ in range(500))
    assert [s.arrive(i, 0.0) for i in range(5)] == [True, True, True, False, False]
    assert (s.dropped, s.max_held) == (2, 3)
    assert sorted(s.drain()) == [0, 1, 2]


def test_the_backend_is_netem_first_then_nfqueue_then_none() -> None:
    base = {"tbf": True, "statistic": True, "iptables": True}
    assert impair.delay_backend({**base, "netem": True, "nfqueue": True}) == "netem"
    assert impair.delay_backend({**base, "netem": False, "nfqueue": True}) == "nfqueue"
    assert impair.delay_backend({**base, "netem": False, "nfqueue": False}) is None
    assert impair.delay_backend({"netem": False, "nfqueue": True, "iptables": False}) is None
    assert impair.delay_backend({"netem": False}) is None  # an old cache entry: no nfqueue key
    req = [{"node": "p", "network": "n", "delay": "1ms", "jitter": "1ms"}]
    assert impair.unsupported(req, {**base, "netem": False, "nfqueue": True}) == []
    sentences = impair.unsupported(req, {**base, "netem": False, "nfqueue": False})
    assert len(sentences) == 2 and all("netem qdisc or NFQUEUE" in x for x in sentences)


def test_delays_parse_to_seconds() -> None:
    assert impair.delay_seconds("100ms") == 0.1
    assert impair.delay_seconds("1s") == 1.0
    assert impair.delay_seconds("500us") == 0.0005
