"""Faults and impairments of a run, by node and network name: the run-level face of
harness.engine.faults (node states) and harness.engine.impair (tc/iptables inside nodes)."""

from __future__ import annotations

from typing import Any

from harness.engine import faults as node_faults
from harness.engine import impair, objects
from harness.errors import InfraError
from harness.scenario.resolved import Topology
from harness.scenario.schema import FaultStep, Impairment

Addresses = dict[str, dict[str, str]]  # node -> network -> IPv4


def _only_network(node: str, addresses: Addresses, network: str | None) -> str:
    if network:
        return network
    nets = list(addresses.get(node, {}))
    if len(nets) != 1:
        raise InfraError(f"node {node} is on {len(nets)} networks: name the network")
    return nets[0]


def _target_addresses(client: Any, run: str, target: str, addresses: Addresses) -> list[str]:
    if target in addresses:
        return [ip for ip in addresses[target].values() if ip]
    return [objects.network_subnet(client, run, target)]


def partition(
    client: Any, run: str, node: str, target: str, addresses: Addresses
) -> dict[str, Any]:
    a = objects.container_for(client, run, node)
    if target in addresses:  # node-node: both sides, so neither can reach the other
        b = objects.container_for(client, run, target)
        mine = [ip for ip in addresses[node].values() if ip]
        theirs = _target_addresses(client, run, target, addresses)
        return impair.partition_nodes(a, node, b, target, mine, theirs)
    return impair.partition(a, target, _target_addresses(client, run, target, addresses))


def heal(client: Any, run: str, node: str, target: str, addresses: Addresses) -> dict[str, Any]:
    a = objects.container_for(client, run, node)
    if target in addresses:
        return impair.heal_nodes(a, node, objects.container_for(client, run, target), target)
    return impair.heal(a, target)


def impair_link(
    client: Any,
    run: str,
    node: str,
    network: str | None,
    addresses: Addresses,
    *,
    loss: str | None = None,
    rate: str | None = None,
    delay: str | None = None,
    jitter: str | None = None,
) -> dict[str, Any]:
    net = _only_network(node, addresses, network)
    c = objects.container_for(client, run, node)
    return impair.apply(
        c, net, addresses[node][net], loss=loss, rate=rate, delay=delay, jitter=jitter
    )


def apply(client: Any, run: str, step: FaultStep, addresses: Addresses) -> dict[str, Any]:
    if step.fault in node_faults.ACTIONS:
        c = objects.container_for(client, run, step.node)
        return node_faults.inject(c, step.node, step.fault)
    if step.fault == "partition":
        return partition(client, run, step.node, str(step.target), addresses)
    if step.fault == "heal":
        return heal(client, run, step.node, str(step.target), addresses)
    if step.fault == "impair":
        return impair_link(
            client,
            run,
            step.node,
            step.network,
            addresses,
            loss=step.loss,
            rate=step.rate,
            delay=step.delay,
            jitter=step.jitter,
        )
    c = objects.container_for(client, run, step.node)  # clear
    net = step.network
    return impair.clear(c, net, addresses[step.node].get(net) if net else None)


def revert(client: Any, run: str, step: FaultStep, addresses: Addresses) -> dict[str, Any]:
    """Undo one fault step so the next attempt starts from the same topology."""
    c = objects.container_for(client, run, step.node)
    detail: Any = None
    if step.fault in ("stop", "kill"):
        objects.start(c, step.node)
        detail = "started again"
    elif step.fault == "pause":
        c.reload()
        detail = node_faults.unpause(c, step.node) if c.status == "paused" else "not paused"
    elif step.fault == "partition":
        detail = heal(client, run, step.node, str(step.target), addresses)
    elif step.fault == "impair":
        net = _only_network(step.node, addresses, step.network)
        detail = impair.clear(c, net, addresses[step.node][net])
    return {"reverted": step.fault, "node": step.node, "detail": detail}


def topology_impairments(
    client: Any, run: str, impairments: list[Impairment], addresses: Addresses
) -> list[dict[str, Any]]:
    out = []
    for imp in impairments:
        if imp.partition:
            out.append(partition(client, run, imp.node, imp.partition, addresses))
        if imp.loss or imp.rate or imp.delay:
            out.append(
                impair_link(
                    client,
                    run,
                    imp.node,
                    imp.network,
                    addresses,
                    loss=imp.loss,
                    rate=imp.rate,
                    delay=imp.delay,
                    jitter=imp.jitter,
                )
            )
    return out


def requested(topology_impairments: list[Impairment], steps: list[Any]) -> list[dict[str, Any]]:
    """Every impairment a run will ask for, for the capability check before anything starts."""
    reqs = [i.model_dump(exclude_none=True) for i in topology_impairments]
    for s in steps:
        if isinstance(s, FaultStep) and s.fault in ("impair", "partition"):
            reqs.append(s.model_dump(exclude_none=True))
    return reqs


def nodes_needing_net_admin(impairments: list[Impairment], steps: list[Any]) -> set[str]:
    names = {i.node for i in impairments}
    names |= {i.partition for i in impairments if i.partition}
    for s in steps:
        if isinstance(s, FaultStep) and s.fault in ("impair", "clear", "partition", "heal"):
            names.add(s.node)
            if s.target:
                names.add(s.target)
    return names


def with_net_admin(topology: Topology, names: set[str]) -> Topology:
    """Give NET_ADMIN to the nodes that tc/iptables will run in (and to nobody else)."""
    from dataclasses import replace

    nodes = tuple(
        replace(n, cap_add=tuple(dict.fromkeys([*n.cap_add, "NET_ADMIN"])))
        if n.name in names
        else n
        for n in topology.nodes
    )
    return replace(topology, nodes=nodes)
