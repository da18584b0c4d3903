"""impair.interfaces: the node's IPv4 addresses and their interfaces, read with `ip -o -4 addr`.

An exec whose output the engine lost (exit 0, nothing printed: moby/moby#27289) is not "the node
has no address": every namespace has 127.0.0.1, so it is asked again."""

from __future__ import annotations

from typing import Any

import pytest

from harness.engine import impair
from harness.errors import InfraError

IP_ADDR = (
    b"1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n"
    b"86: eth0@if87    inet 10.213.2.2/24 brd 10.213.2.255 scope global eth0\\  valid_lft forever\n"
)


class Node:
    """A container whose `ip -o -4 addr show` prints the given outputs in turn."""

    def __init__(self, *outputs: bytes) -> None:
        self.outputs = list(outputs)
        self.calls = 0
        self.name = "lab-run-app"
        self.labels = {"labharness.node": "app"}

    def exec_run(self, argv: list[str], demux: bool = False) -> tuple[int, tuple[Any, Any]]:
        assert argv == ["ip", "-o", "-4", "addr", "show"] and demux
        self.calls += 1
        return 0, (self.outputs.pop(0) if self.outputs else b"", None)


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(impair.time, "sleep", lambda _s: None)


def test_addresses_and_their_interfaces() -> None:
    node = Node(IP_ADDR)
    assert impair.interfaces(node) == {"127.0.0.1": "lo", "10.213.2.2": "eth0"}
    assert node.calls == 1


def test_a_lost_output_is_asked_again() -> None:
    node = Node(b"", b"", IP_ADDR)
    assert impair.interface_for(node, "10.213.2.2") == "eth0"
    assert node.calls == 3


def test_an_address_the_node_lacks_is_an_infra_error_naming_what_it_has() -> None:
    node = Node(IP_ADDR)
    with pytest.raises(
        InfraError,
        match=r"no interface with address 10.213.9.9 \(it has "
        r"10.213.2.2 on eth0, 127.0.0.1 on lo\)",
    ):
        impair.interface_for(node, "10.213.9.9")
    assert node.calls == 1  # a real answer is not asked again


def test_output_lost_every_time_ends_in_the_infra_error() -> None:
    node = Node()
    with pytest.raises(InfraError, match=r"\(it has none\)"):
        impair.interface_for(node, "10.213.2.2")
    assert node.calls == impair._EXEC_TRIES
