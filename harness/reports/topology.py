"""The topology as an SVG picture: nodes as boxes in a row, networks as horizontal bars below,
a line from each node to each network it is on, the address on the line, impairments marked
on the link they apply to (red, dashed, with their values). Built from the journal's
`topology` and the addresses of the `up` phase. Every text is escaped."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from harness.journal_model import Topology, TopologyNetwork, TopologyNode
from harness.reports.journal import Run, s

COL = 190  # width per node column
BOX_W, BOX_H = 160, 62
TOP = 20
BAR_GAP = 64
IMPAIR_KEYS = ("loss", "rate", "delay", "jitter", "duplicate", "partition")


def _t(text: Any) -> str:
    return escape(s(text), quote=True)


def impairment_text(imp: dict[str, Any]) -> str:
    return ", ".join(f"{k} {s(imp[k])}" for k in IMPAIR_KEYS if imp.get(k) not in (None, ""))


def render_svg(run: Run) -> str:
    topo = run.model.topology
    nodes = [n for n in topo.nodes if n.name]
    networks = _networks(topo, nodes)
    net_names = [n.name for n in networks]
    impairments, node_impair = _impairments(topo)
    width = max(640, COL * max(1, len(nodes)) + 40)
    bar_top = TOP + BOX_H + 70
    height = bar_top + BAR_GAP * max(1, len(networks)) + 10
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="topology" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="topology of {_t(run.scenario)}" font-family="sans-serif" font-size="12">',
        f"<title>topology of {_t(run.scenario)}</title>",
    ]
    if not nodes and not networks:
        out.append('<text x="20" y="40">no topology recorded in the journal</text></svg>')
        return "\n".join(out)
    bar_y = {name: bar_top + i * BAR_GAP for i, name in enumerate(net_names)}
    out += [_network_bar(net, bar_y[net.name], width) for net in networks]
    addresses = run.addresses()
    for i, node in enumerate(nodes):
        cx = 20 + COL * i + COL // 2
        for j, link in enumerate(node.networks):
            if link.network not in bar_y:
                continue
            lx = cx + (j - (len(node.networks) - 1) / 2) * 14
            ip = addresses.get(node.name, {}).get(link.network, "")
            imps = impairments.get((node.name, link.network), [])
            out += _link(node.name, link.network, lx, bar_y[link.network], ip=ip, imps=imps)
        out += _node_box(node, cx, node_impair.get(node.name, []))
    out.append("</svg>")
    return "\n".join(out)


def _networks(topo: Topology, nodes: list[TopologyNode]) -> list[TopologyNetwork]:
    """The declared networks, then any network only a node mentions: it still gets a bar."""
    networks = [n for n in topo.networks if n.name]
    net_names = [n.name for n in networks]
    for node in nodes:
        for link in node.networks:
            name = link.network
            if name and name not in net_names:
                net_names.append(name)
                networks.append(TopologyNetwork(name=name))
    return networks


def _impairments(
    topo: Topology,
) -> tuple[dict[tuple[str, str], list[str]], dict[str, list[str]]]:
    """Impairment texts by (node, network) link, and those on a whole node."""
    impairments: dict[tuple[str, str], list[str]] = {}
    node_impair: dict[str, list[str]] = {}
    for imp in topo.impairments:
        text = impairment_text(imp)
        if not text:
            continue
        if imp.get("network"):
            impairments.setdefault((s(imp.get("node")), s(imp["network"])), []).append(text)
        else:
            node_impair.setdefault(s(imp.get("node")), []).append(text)
    return impairments, node_impair


def _network_bar(net: TopologyNetwork, y: int, width: int) -> str:
    label = net.name
    if net.subnet:
        label += f"  {net.subnet}"
    if net.internal:
        label += "  (internal)"
    return (
        f'<g class="network" data-network="{_t(net.name)}">'
        f'<rect x="10" y="{y}" width="{width - 20}" height="14" rx="4" fill="#5b7db1"/>'
        f'<text x="16" y="{y + 28}" fill="#1d3557" font-weight="bold">{_t(label)}</text></g>'
    )


def _link(name: str, net_name: str, lx: float, y2: int, *, ip: str, imps: list[str]) -> list[str]:
    """The line from a node down to a network bar; red and dashed when impaired."""
    style = (
        'stroke="#c0392b" stroke-width="3" stroke-dasharray="6 4"'
        if imps
        else ('stroke="#333" stroke-width="2"')
    )
    out = [
        f'<g class="link" data-node="{_t(name)}" data-network="{_t(net_name)}">'
        f'<line x1="{lx:.0f}" y1="{TOP + BOX_H}" x2="{lx:.0f}" y2="{y2}" {style}/>'
        f'<circle cx="{lx:.0f}" cy="{y2 + 7}" r="5" fill="#1d3557"/>'
    ]
    if ip:
        out.append(
            f'<text x="{lx + 6:.0f}" y="{y2 - 6}" class="address" fill="#222">{_t(ip)}</text>'
        )
    for k, text in enumerate(imps):
        out.append(
            f'<text x="{lx + 6:.0f}" y="{TOP + BOX_H + 18 + 14 * k}" class="impairment" '
            f'fill="#c0392b" font-weight="bold">⚡ {_t(text)}</text>'
        )
    out.append("</g>")
    return out


def _node_box(node: TopologyNode, cx: int, imps: list[str]) -> list[str]:
    """A node's box (name, kind, OS), then the impairments on the whole node below it."""
    x = cx - BOX_W // 2
    kind = " ".join(k for k in (node.lab, node.version) if k)
    os_name = node.os or node.image or ""
    out = [
        f'<g class="node" data-node="{_t(node.name)}">'
        f'<rect x="{x}" y="{TOP}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="#f1f5fb" '
        f'stroke="#1d3557" stroke-width="1.5"/>'
        f'<text x="{cx}" y="{TOP + 20}" text-anchor="middle" font-weight="bold" '
        f'font-size="14">{_t(node.name)}</text>'
        f'<text x="{cx}" y="{TOP + 37}" text-anchor="middle">{_t(kind)}</text>'
        f'<text x="{cx}" y="{TOP + 53}" text-anchor="middle" fill="#555">{_t(os_name)}</text>'
        "</g>"
    ]
    for k, text in enumerate(imps):
        out.append(
            f'<text x="{x}" y="{TOP + BOX_H + 18 + 14 * k}" class="impairment" fill="#c0392b" '
            f'font-weight="bold">⚡ {_t(text)}</text>'
        )
    return out


def write_svg(run: Run, folder: Path) -> Path:
    path = folder / "topology.svg"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n' + render_svg(run) + "\n", encoding="utf-8"
    )
    return path
