"""A scenario from a sosreport (pure): the host's OS, the software the catalog knows at the
nearest versions it has, that software's config files as fixtures, the host's networks.

One host becomes one node per lab found (a lab is one service), named after the lab, on every
network carried over; the first of them keeps the host's addresses. A `client` node (the curl
lab, at the host's own curl version when it has one) joins every network, so the services can
be reached. What could not be carried over is listed with the reason; nothing is left out
silently but loopback and link-local addresses. Redaction is the caller's: it writes the
fixtures (harness/verbs/import_sos.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from harness.errors import UsageError
from harness.scenario.catalog import Catalog
from harness.scenario.sos_facts import (
    Skipped,
    SosEvidence,
    as_text,
    parse_ip_addr,
    parse_os_release,
    parse_packages,
    part,
    require_parts,
)
from harness.scenario.sos_match import (
    Carried,
    OsCarried,
    SoftwareCarried,
    find_software,
    pick_environment,
    pick_version,
)
from harness.scenario.sos_networks import (
    NetworkCarried,
    Networks,
    map_addresses,
    node_addresses,
)

CLIENT_LAB = "curl"
CLIENT_NODE = "client"
HOST_NODE = "host"  # a bare OS node, when the host runs nothing the catalog knows
MAX_FILES = 200  # config files carried from one report
MAX_NOTED = 40  # not-carried lines in the scenario's description
__all__ = ["FileCarried", "Imported", "NotCarried", "Summary", "default_name", "from_sos"]


class FileCarried(Carried):
    node: str
    path: str  # in the node
    fixture: str  # in the project
    redacted: int = 0  # values the redaction replaced in the written fixture


class NotCarried(Carried):
    what: str
    why: str


class Summary(Carried):
    """What was carried over and what was not: the verb's result is built from it."""

    os: OsCarried
    software: list[SoftwareCarried]
    networks: list[NetworkCarried]
    files: list[FileCarried]
    not_carried: list[NotCarried]
    unknown_packages: list[str]  # installed, with no lab in the catalog


@dataclass(frozen=True)
class Imported:
    name: str
    scenario_yaml: str
    fixtures: dict[str, bytes]  # project-relative fixture path -> content, not yet redacted
    summary: Summary


def slug(text: str, limit: int = 40) -> str:
    """A scenario name: lowercase letters, digits and '-', at most `limit` characters."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:limit].strip("-")


def default_name(evidence: SosEvidence) -> str:
    """sos-<hostname> (from the report's hostname, else its name)."""
    found = part(evidence, "hostname")
    host = found[1].strip().splitlines()[0] if found and found[1].strip() else ""
    if not host:
        m = re.match(r"^sosreport-(.+?)(?:-\d{4}-\d{2}-\d{2})?(?:-[a-z0-9]+)?$", evidence.name)
        host = m.group(1) if m else evidence.name
    return slug(f"sos-{host.split('.', 1)[0]}") or "sos-import"


def _files(
    evidence: SosEvidence, software: list[SoftwareCarried], catalog: Catalog, name: str
) -> tuple[list[FileCarried], dict[str, bytes], list[NotCarried]]:
    """Each found lab's config files (text only) as fixtures/<name>/<path in the host>."""
    carried: list[FileCarried] = []
    fixtures: dict[str, bytes] = {}
    skipped: list[NotCarried] = []
    by_lab = {s.lab: s for s in software}
    for lab in catalog.labs.values():
        for folder in lab.definition.installed.config:
            prefix = folder.strip("/") + "/"
            paths = sorted(p for p in evidence.files if p.startswith(prefix))
            if paths and lab.definition.name not in by_lab:
                skipped.append(
                    NotCarried(what=prefix, why=f"{lab.definition.name} is not installed")
                )
                continue
            note = lab.definition.installed.config_note
            if paths and note:
                skipped.append(NotCarried(what=f"{prefix} (in effect)", why=note))
            for path in paths:
                data = evidence.files[path]
                why = _unusable(evidence, path, data, len(carried))
                if why:
                    skipped.append(NotCarried(what=path, why=why))
                    continue
                fixture = f"fixtures/{name}/{path}"
                node = by_lab[lab.definition.name].node
                carried.append(FileCarried(node=node, path=f"/{path}", fixture=fixture))
                fixtures[fixture] = data
    return carried, fixtures, skipped


def _unusable(evidence: SosEvidence, path: str, data: bytes, count: int) -> str | None:
    if count >= MAX_FILES:
        return f"more than {MAX_FILES} config files"
    try:
        as_text(evidence, path, data)
    except UsageError:
        return "binary (not a text config file)"
    return None


def _nodes(
    env: str, software: list[SoftwareCarried], nets: Networks, files: list[FileCarried]
) -> tuple[dict[str, Any], list[Skipped]]:
    """The nodes: the services (or a bare host), then the client; every one with a static
    address on every network carried over (sos_networks.node_addresses)."""
    services = [s for s in software if s.lab != CLIENT_LAB]
    hosts = [s.node for s in services] or [HOST_NODE]
    addresses, short = node_addresses(nets, [*hosts, CLIENT_NODE])

    def networks(node: str) -> dict[str, Any] | list[str]:
        mine = addresses[node]
        out = {n.network: _ipv4(mine.get(n.network)) for n in nets.carried}
        for n in nets.carried:  # the host's IPv6 address, kept by the node that keeps its IPv4
            if n.address6 and node == hosts[0] and n.static and out.get(n.network):
                out[n.network] = {**(out[n.network] or {}), "ipv6": n.address6}
        return out or ["lan"]

    nodes: dict[str, Any] = {}
    for node in hosts:
        sw = next((s for s in services if s.node == node), None)
        spec: dict[str, Any] = (
            {"lab": sw.lab, "version": sw.version, "os": sw.os} if sw else {"os": env}
        )
        spec["networks"] = networks(node)
        mine = {f.path: f.fixture for f in files if f.node == node}
        if mine:
            spec["files"] = mine
        nodes[node] = spec
    client = next((s for s in software if s.lab == CLIENT_LAB), None)
    nodes[CLIENT_NODE] = {
        "lab": CLIENT_LAB,
        **({"version": client.version, "os": client.os} if client else {"os": env}),
        "networks": networks(CLIENT_NODE),
    }
    return nodes, short


def _ipv4(address: str | None) -> dict[str, str] | None:
    return {"ipv4": address} if address else None


def _not_carried(nets: Networks, unknown: list[str], hosts: int) -> list[NotCarried]:
    out = [NotCarried(what=s.path, why=s.reason) for s in nets.skipped]
    if hosts > 1 and any(n.static for n in nets.carried):
        out.append(
            NotCarried(
                what="the host's addresses",
                why="the host runs several services, each its own node in the lab: the first "
                "keeps the host's addresses, the others get addresses from the top of the subnet",
            )
        )
    if not nets.carried:
        out.append(NotCarried(what="networks", why="no IPv4 address to carry over: one `lan`"))
    if unknown:
        out.append(
            NotCarried(
                what="packages",
                why=f"{len(unknown)} installed packages have no lab in the catalog "
                "(--json lists them)",
            )
        )
    return out


def from_sos(evidence: SosEvidence, catalog: Catalog, *, name: str, schema_ref: str) -> Imported:
    """The scenario (YAML text) and its fixtures for one report; raises UsageError when a part
    the scenario needs is missing or unreadable."""
    require_parts(evidence)
    release = part(evidence, "os-release")
    packages = part(evidence, "packages")
    assert release is not None and packages is not None  # require_parts
    os_ = pick_environment(parse_os_release(release[1]), catalog)
    installed = parse_packages(*packages)
    found = find_software(installed, catalog)
    software = [pick_version(f, os_.environment) for f in found]
    addresses = part(evidence, "addresses")
    node_names = {s.node for s in software} | {CLIENT_NODE, HOST_NODE}
    nets = map_addresses(parse_ip_addr(addresses[1]) if addresses else [], node_names)
    files, fixtures, files_skipped = _files(evidence, software, catalog, name)
    matched = {n for f in found for n in f.matched}
    unknown = sorted({p.name for p in installed} - matched)
    not_carried = [NotCarried(what=s.path, why=s.reason) for s in evidence.skipped]
    not_carried += files_skipped
    services = sum(1 for s in software if s.lab != CLIENT_LAB)
    not_carried += _not_carried(nets, unknown, services)
    if addresses is None:
        not_carried.append(NotCarried(what="addresses", why="the report has no `ip addr` output"))
    nodes, short = _nodes(os_.environment, software, nets, files)
    not_carried += [NotCarried(what=s.path, why=s.reason) for s in short]
    summary = Summary(
        os=os_,
        software=software,
        networks=nets.carried,
        files=files,
        not_carried=not_carried,
        unknown_packages=unknown,
    )
    doc = _document(evidence, name, summary, nodes)
    text = f"# yaml-language-server: $schema={schema_ref}\n" + yaml.safe_dump(
        doc, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100
    )
    return Imported(name=name, scenario_yaml=text, fixtures=fixtures, summary=summary)


def _document(
    evidence: SosEvidence, name: str, summary: Summary, nodes: dict[str, Any]
) -> dict[str, Any]:
    host = name.removeprefix("sos-")
    lines = [f"Written by `lab import sos` from {evidence.name}: {summary.os.found}."]
    lines += [
        f"{s.node}: {s.package} {s.installed} -> {s.lab} {s.version} on {s.os}"
        for s in summary.software
    ]
    lines += [f"not carried over: {n.what}: {n.why}" for n in summary.not_carried[:MAX_NOTED]]
    if len(summary.not_carried) > MAX_NOTED:
        lines.append(f"... and {len(summary.not_carried) - MAX_NOTED} more (lab import sos --json)")
    networks = {
        n.network: {"subnet": n.subnet} | ({"subnet6": n.subnet6} if n.subnet6 else {})
        for n in summary.networks
    } or {"lan": {}}
    return {
        "scenario": name,
        "title": f"{host} as its sosreport describes it",
        "description": "\n".join(lines) + "\n",
        "topology": {"networks": networks, "nodes": nodes},
    }
