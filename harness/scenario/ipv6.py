"""IPv6 on lab networks: what a `subnet6:` and a node's static `ipv6:` may be.

Pure checks that return the message a user reads (validate.py locates it), so the rules for
IPv6 sit in one place: a unique local or global unicast subnet of /48 to /120, and an address
inside it that is neither the subnet's own (its subnet-router anycast) nor the gateway's.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

MIN_PREFIX6 = 48  # wider is no single link's subnet
MAX_PREFIX6 = 120  # narrower leaves too few addresses for a lab
EXAMPLE6 = "fd00:90::/64"


@dataclass(frozen=True)
class Checked6:
    """A parsed value, or why it cannot be used (exactly one of the two is set)."""

    network: ipaddress.IPv6Network | None = None
    address: ipaddress.IPv6Address | None = None
    problem: str | None = None


def check_subnet6(text: str) -> Checked6:
    """A network's `subnet6:` parsed, or what is wrong with it."""
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return Checked6(problem=f"expected an IPv6 network like {EXAMPLE6}, got {text!r}")
    if not isinstance(net, ipaddress.IPv6Network):
        return Checked6(
            problem=f"{text!r} is an IPv4 network: it goes under subnet; subnet6 takes an IPv6 "
            f"network like {EXAMPLE6}"
        )
    if ipaddress.ip_interface(text).ip != net.network_address:
        return Checked6(
            problem=f"subnet6 {text!r} has host bits set; the network address is "
            f"{net.with_prefixlen}"
        )
    return _usable_subnet6(text, net)


def _usable_subnet6(text: str, net: ipaddress.IPv6Network) -> Checked6:
    if "/" not in text or not MIN_PREFIX6 <= net.prefixlen <= MAX_PREFIX6:
        return Checked6(
            problem=f"subnet6 {text!r} needs a prefix from /{MIN_PREFIX6} to /{MAX_PREFIX6} "
            f"(/64 is usual), e.g. {EXAMPLE6}"
        )
    kind = next(
        (
            word
            for word, yes in (
                ("link-local", net.is_link_local),
                ("multicast", net.is_multicast),
                ("loopback", net.is_loopback),
                ("site-local", net.is_site_local),
            )
            if yes
        ),
        None,
    )
    if kind is not None:
        return Checked6(
            problem=f"subnet6 {text!r} is {kind}; use a unique local subnet like {EXAMPLE6}"
        )
    return Checked6(network=net)


def check_address6(text: str, subnet: ipaddress.IPv6Network, net: str) -> Checked6:
    """A node's static `ipv6:` on network `net` (whose subnet6 is `subnet`), or why not."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        addr = None
    if not isinstance(addr, ipaddress.IPv6Address):
        return Checked6(
            problem=f"expected an IPv6 address like {subnet.network_address + 10}, got {text!r}"
        )
    if addr not in subnet:
        return Checked6(problem=f"address {addr} is outside network {net!r} ({subnet})")
    if addr == subnet.network_address:
        return Checked6(
            problem=f"address {addr} is the subnet-router address of {net!r} ({subnet}); "
            "use another"
        )
    if addr == subnet.network_address + 1:
        return Checked6(
            problem=f"address {addr} is reserved for the gateway of {net!r}; use another"
        )
    return Checked6(address=addr)
