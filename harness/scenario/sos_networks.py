"""The host's addresses as scenario networks (pure): one network per interface subnet.

A lab network is an IPv4 subnet of at most /30 whose first address is the engine's gateway;
what cannot be one (/31 and /32, a subnet overlapping one already taken, the host's own
container bridges) is listed as not carried over, with the reason. An IPv6 address on an
interface whose IPv4 subnet was carried makes that network dual stack (its `subnet6`, and the
host node keeps the address as its static `ipv6`), within what harness.scenario.ipv6 allows;
an IPv6 address elsewhere is listed. Loopback and IPv6 link-local addresses are left out
silently: every host has them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from harness.scenario.ipv6 import check_address6, check_subnet6
from harness.scenario.limits import MAX_NETWORKS
from harness.scenario.sos_facts import HostAddress, Skipped
from harness.scenario.sos_match import Carried

# the host's own container and VM plumbing, not the customer's topology
_VIRTUAL = re.compile(r"^(docker\d*|veth.*|br-[0-9a-f]{12}|virbr\d+.*|cni\d*|flannel.*|cali.*)$")


class NetworkCarried(Carried):
    network: str
    interface: str
    subnet: str
    address: str  # the host's address on it
    static: bool  # whether the host node keeps that address in the lab
    subnet6: str | None = None  # its IPv6 subnet, when the host has a usable one there
    address6: str | None = None  # the host's IPv6 address on it (kept by the host node)


@dataclass
class Networks:
    carried: list[NetworkCarried] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def network_name(interface: str, taken: set[str]) -> str:
    """A scenario network name (lowercase, digits, '-', a letter first, 31 characters at most)
    from an interface name, unique among `taken`."""
    base = re.sub(r"[^a-z0-9-]+", "-", interface.lower()).strip("-") or "net"
    if not base[0].isalpha():
        base = f"net-{base}"
    base = base[:27].rstrip("-")
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def _skip_silently(a: HostAddress) -> bool:
    if a.interface == "lo":
        return True
    ip = ipaddress.ip_address(a.address)
    return ip.is_loopback or (ip.version == 6 and ip.is_link_local)


def _why_not(a: HostAddress, net: ipaddress.IPv4Network, out: Networks) -> str | None:
    """Why this address cannot become a lab network, or None."""
    if _VIRTUAL.match(a.interface):
        return "the host's own container or VM bridge, not part of the customer's topology"
    if net.prefixlen > 30:
        return f"a /{net.prefixlen} cannot be a lab network (at most /30)"
    for c in out.carried:
        taken = ipaddress.ip_network(c.subnet)
        if net.overlaps(taken):
            if c.interface == a.interface and net == taken:
                return f"a second address on {c.subnet}: a node has one address per network"
            return f"{net} overlaps {c.subnet} ({c.interface}), already carried over"
    if len(out.carried) >= MAX_NETWORKS:
        return f"more than {MAX_NETWORKS} networks (the scenario limit)"
    return None


def map_addresses(addresses: list[HostAddress], node_names: set[str]) -> Networks:
    """Networks for the host's IPv4 addresses, in the host's order."""
    out = Networks()
    for a in addresses:
        try:
            if _skip_silently(a):
                continue
            iface = ipaddress.ip_interface(f"{a.address}/{a.prefix}")
        except ValueError:
            out.skipped.append(Skipped(f"{a.interface} {a.address}/{a.prefix}", "not an address"))
            continue
        what = f"{a.interface} {a.family} {a.address}/{a.prefix}"
        if not isinstance(iface, ipaddress.IPv4Interface):
            continue  # after every IPv4 network is known: _carry_ipv6
        why = _why_not(a, iface.network, out)
        if why:
            out.skipped.append(Skipped(what, why))
            continue
        net = iface.network
        static = iface.ip != net.network_address + 1
        if not static:
            out.skipped.append(
                Skipped(
                    what,
                    "the subnet's first address is the lab network's gateway: the host node "
                    "gets an address from the engine",
                )
            )
        taken = node_names | {c.network for c in out.carried}
        out.carried.append(
            NetworkCarried(
                network=network_name(a.interface, taken),
                interface=a.interface,
                subnet=str(net),
                address=a.address,
                static=static,
            )
        )
    _carry_ipv6(addresses, out)
    return out


def _carry_ipv6(addresses: list[HostAddress], out: Networks) -> None:
    """Each IPv6 address onto the network carried for its interface (dual stack), or listed."""
    for a in addresses:
        try:
            iface = ipaddress.ip_interface(f"{a.address}/{a.prefix}")
        except ValueError:
            continue  # listed as not an address already
        if not isinstance(iface, ipaddress.IPv6Interface) or _skip_silently(a):
            continue
        what = f"{a.interface} {a.family} {a.address}/{a.prefix}"
        why = _why_not6(a, iface, out)
        if why:
            out.skipped.append(Skipped(what, why))
            continue
        i = next(i for i, c in enumerate(out.carried) if c.interface == a.interface)
        placed = check_address6(str(iface.ip), iface.network, out.carried[i].network)
        if placed.problem:  # the subnet is carried; the host node gets an address from the engine
            out.skipped.append(Skipped(what, f"{placed.problem}: the host node gets another"))
        out.carried[i] = out.carried[i].model_copy(
            update={
                "subnet6": str(iface.network),
                "address6": None if placed.problem else str(iface.ip),
            }
        )


def _why_not6(a: HostAddress, iface: ipaddress.IPv6Interface, out: Networks) -> str | None:
    """Why this IPv6 address cannot go on a carried network, or None."""
    mine = next((c for c in out.carried if c.interface == a.interface), None)
    if mine is None:
        return "IPv6 on an interface with no IPv4 network carried over: a lab network is IPv4 first"
    if mine.subnet6 is not None:
        return f"a second IPv6 address on {a.interface}: a node has one IPv6 address per network"
    net = iface.network
    checked = check_subnet6(str(net))
    if checked.problem:
        return checked.problem
    for c in out.carried:
        if c.subnet6 and net.overlaps(ipaddress.ip_network(c.subnet6)):
            return f"{net} overlaps {c.subnet6} ({c.interface}), already carried over"
    return None


def node_addresses(
    nets: Networks, nodes: list[str]
) -> tuple[dict[str, dict[str, str]], list[Skipped]]:
    """Per node, per carried network, a static address. The first node keeps the host's
    address (when it can); every other node gets one from the top of the subnet down, so no
    address the engine picks for a node started earlier can take the host's. A node the subnet
    has no address left for is left to the engine, and said so."""
    out: dict[str, dict[str, str]] = {n: {} for n in nodes}
    short: list[Skipped] = []
    for c in nets.carried:
        net = ipaddress.IPv4Network(c.subnet)
        taken = {net.network_address + 1, ipaddress.IPv4Address(c.address)}
        free = _from_the_top(net, taken)
        for i, node in enumerate(nodes):
            address = c.address if i == 0 and c.static else next(free, None)
            if address is None:
                short.append(Skipped(f"{node} on {c.network}", f"no address left in {c.subnet}"))
            else:
                out[node][c.network] = str(address)
    return out, short


def _from_the_top(net: ipaddress.IPv4Network, taken: set[ipaddress.IPv4Address]) -> Iterator[str]:
    here = net.broadcast_address - 1
    while here > net.network_address + 1:
        if here not in taken:
            yield str(here)
        here -= 1
