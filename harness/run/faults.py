"""Faults and impairments of a run, by node and network name: the run-level face of
harness.engine.faults (node states) and harness.engine.impair (tc/iptables inside nodes)."""

from __future__ import annotations

from typing import Any

from harness.engine.api import Engine
from harness.errors import InfraError
from harness.scenario.resolved import Topology
from harness.scenario.schema import FaultStep, Impairment

Addresses = dict[str, dict[str, str]]  # node -> network -> IPv4
NODE_ACTIONS = ("stop", "kill", "pause", "unpause", "restart")  # harness.engine.faults.ACTIONS


def _only_network(node: str, addresses: Addresses, network: str | None) -> str:
    if network:
        return network
    nets = list(addresses.get(node, {}))
    if len(nets) != 1:
        raise InfraError(f"node {node} is on {len(nets)} networks: name the network")
    return nets[0]


def _target_addresses(engine: Engine, run: str, target: str, addresses: Addresses) -> list[str]:
    if target in addresses:
        return [ip for ip in addresses[target].values() if ip]
    return [engine.network_subnet(run, target)]


def partition(
    engine: Engine, run: str, node: str, target: str, addresses: Addresses
) -> dict[str, Any]:
    if target in addresses:  # node-node: both sides, so neither can reach the other
        mine = [ip for ip in addresses[node].values() if ip]
        theirs = _target_addresses(engine, run, target, addresses)
        return engine.partition_nodes(run, node, target, mine, theirs)
    return engine.partition(run, node, target, _target_addresses(engine, run, target, addresses))


def heal(engine: Engine, run: str, node: str, target: str, addresses: Addresses) -> dict[str, Any]:
    if target in addresses:
        return engine.heal_nodes(run, node, target)
    return engine.heal(run, node, target)


def impair_link(
    engine: Engine,
    run: str,
    node: str,
    network: str | None,
    addresses: Addresses,
    *,
    loss: str | None = None,
    rate: str | None = None,
    delay: str | None = None,
    jitter: str | None = None,
    duplicate: str | None = None,
) -> dict[str, Any]:
    net = _only_network(node, addresses, network)
    return engine.impair(
        run,
        node,
        net,
        addresses[node][net],
        loss=loss,
        rate=rate,
        delay=delay,
        jitter=jitter,
        duplicate=duplicate,
    )


def apply(engine: Engine, run: str, step: FaultStep, addresses: Addresses) -> dict[str, Any]:
    if step.fault in NODE_ACTIONS:
        return engine.node_fault(run, step.node, step.fault)
    if step.fault == "partition":
        return partition(engine, run, step.node, str(step.target), addresses)
    if step.fault == "heal":
        return heal(engine, run, step.node, str(step.target), addresses)
    if step.fault == "impair":
        return impair_link(
            engine,
            run,
            step.node,
            step.network,
            addresses,
            loss=step.loss,
            rate=step.rate,
            delay=step.delay,
            jitter=step.jitter,
            duplicate=step.duplicate,
        )
    net = step.network  # clear
    return engine.clear_impairment(
        run, step.node, net, addresses[step.node].get(net) if net else None
    )


def revert(engine: Engine, run: str, step: FaultStep, addresses: Addresses) -> dict[str, Any]:
    """Undo one fault step so the next attempt starts from the same topology."""
    status = engine.node(run, step.node).status  # the node must still be there
    detail: Any = None
    if step.fault in ("stop", "kill"):
        engine.start_node(run, step.node)
        detail = "started again"
    elif step.fault == "pause":
        detail = (
            engine.node_fault(run, step.node, "unpause") if status == "paused" else "not paused"
        )
    elif step.fault == "partition":
        detail = heal(engine, run, step.node, str(step.target), addresses)
    elif step.fault == "impair":
        net = _only_network(step.node, addresses, step.network)
        detail = engine.clear_impairment(run, step.node, net, addresses[step.node][net])
    return {"reverted": step.fault, "node": step.node, "detail": detail}


def topology_impairments(
    engine: Engine, run: str, impairments: list[Impairment], addresses: Addresses
) -> list[dict[str, Any]]:
    out = []
    for imp in impairments:
        if imp.partition:
            out.append(partition(engine, run, imp.node, imp.partition, addresses))
        if imp.loss or imp.rate or imp.delay or imp.duplicate:
            out.append(
                impair_link(
                    engine,
                    run,
                    imp.node,
                    imp.network,
                    addresses,
                    loss=imp.loss,
                    rate=imp.rate,
                    delay=imp.delay,
                    jitter=imp.jitter,
                    duplicate=imp.duplicate,
                )
            )
    return out


def delays_on_ipv6(reqs: list[dict[str, Any]], topology: Topology) -> list[str]:
    """The nfqueue backend queues IPv4 only (its rule is iptables'), and names resolve to a
    node's IPv6 address first: a delay on a dual-stack network would not delay what the steps
    send. One sentence per such request, for the preflight to refuse (netem delays both)."""
    v6 = {n.name for n in topology.networks if n.ipv6}
    nodes = {n.name: n for n in topology.nodes}
    out: list[str] = []
    for req in reqs:
        value = req.get("delay") or req.get("jitter")
        node = nodes.get(str(req.get("node")))
        if not value or node is None:
            continue
        nets = [req["network"]] if req.get("network") else [a.network for a in node.networks]
        hit = sorted(set(nets) & v6)
        if hit:
            out.append(
                f"delay {value} on {node.name}/{hit[0]}: that network has IPv6, which the "
                "NFQUEUE delay backend does not queue (IPv4 only); it needs netem"
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


def run_topology(topology: Topology, impairments: list[Impairment], steps: list[Any]) -> Topology:
    """The topology a run brings up: NET_ADMIN on the nodes its impairments and fault steps
    need it on (what a live rerun's record is compared with, too)."""
    return with_net_admin(topology, nodes_needing_net_admin(impairments, steps))
