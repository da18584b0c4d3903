"""Cross-reference checks: names, references, addresses and paths, each problem located.

Pure functions over the raw (interpolated) tree, so they run even when the schema found type
errors elsewhere and every problem in a file is reported at once. Anything of the wrong shape is
skipped here: the schema (schema.py) reports it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from pathlib import Path
from typing import Any

import re2  # type: ignore[import-untyped]

from harness.scenario.ansiblevars import reserved_var
from harness.scenario.catalog import Catalog, LabDef
from harness.scenario.ipv6 import EXAMPLE6, check_address6, check_subnet6
from harness.scenario.limits import (
    MAX_FOLDER_BYTES,
    MAX_FOLDER_FILES,
    MAX_NETWORKS,
    MAX_TOPOLOGY_NODES,
)
from harness.scenario.problems import Problem
from harness.scenario.schema import NAME_PATTERN, PORT_PATTERN, SCENARIO_PATTERN, SLUG_PATTERN
from harness.scenario.suggest import did_you_mean, unknown
from harness.scenario.yamlpos import Located, YPath

CLOCK_ENV = ("LD_PRELOAD", "FAKETIME", "DONT_FAKE_MONOTONIC")  # what `clock:` sets

_NAME_RE = re.compile(NAME_PATTERN)
_SCENARIO_RE = re.compile(SCENARIO_PATTERN)
_SLUG_RE = re.compile(SLUG_PATTERN)
_VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CAP_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_SEARCH_LIMIT = 5000

# (network, address) -> (node, line) of the static addresses given so far, IPv4 and IPv6
Used = dict[tuple[str, ipaddress.IPv4Address | ipaddress.IPv6Address], tuple[str, int]]


def _d(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _names(value: Any) -> list[tuple[int | None, str]]:
    """A string or list of strings, with list indexes (None for a single string)."""
    if isinstance(value, str):
        return [(None, value)]
    return [(i, v) for i, v in enumerate(_l(value)) if isinstance(v, str)]


def dns_name_problem(name: Any, what: str) -> str | None:
    if not isinstance(name, str):
        return f"{what} name {name!r} must be text"
    if _NAME_RE.match(name) and not name.endswith("-"):
        return None
    return (
        f"{what} name {name!r} is not DNS-safe: start with a lowercase letter, then lowercase "
        "letters, digits or '-', at most 31 characters, not ending in '-'"
    )


class Checker:
    """Collects located problems for one scenario tree (one matrix cell, maybe one fix)."""

    def __init__(
        self, data: dict[str, Any], located: Located, file: str, root: Path, catalog: Catalog
    ) -> None:
        self.data = data
        self.located = located
        self.file = file
        self.root = root
        self.root_resolved = root.resolve()
        self.catalog = catalog
        self.problems: list[Problem] = []
        topo = _d(data.get("topology"))
        self.networks: dict[str, Any] = {
            k: v for k, v in _d(topo.get("networks")).items() if isinstance(k, str)
        }
        self.nodes: dict[str, Any] = {
            k: v for k, v in _d(topo.get("nodes")).items() if isinstance(k, str)
        }
        self.subnets: dict[str, ipaddress.IPv4Network] = {}
        self.subnets6: dict[str, ipaddress.IPv6Network] = {}
        self.attached: dict[str, list[str]] = {}

    # -- reporting -----------------------------------------------------------------------------

    def at(self, path: YPath, message: str) -> None:
        line, col = self.located.value_pos(path)
        self._add(Problem(self.file, line, col, message))

    def at_key(self, path: YPath, message: str) -> None:
        line, col = self.located.key_pos(path)
        self._add(Problem(self.file, line, col, message))

    def _add(self, problem: Problem) -> None:
        if problem not in self.problems:
            self.problems.append(problem)

    # -- entry point ---------------------------------------------------------------------------

    def run(self) -> list[Problem]:
        self.check_name()
        self.check_params()
        self.check_matrix()
        if not self.check_sizes():
            return self.problems
        self.check_networks()
        self.check_nodes()
        self.check_impairments()
        for i, item in enumerate(_l(self.data.get("configure"))):
            self.check_configure_item(("configure", i), item)
        self.check_reproduce(("reproduce",), self.data.get("reproduce"))
        self.check_verify()
        self.check_collect()
        self.check_evidence()
        self.check_redact()
        self.check_fix_names()
        return self.problems

    def check_name(self) -> None:
        name = self.data.get("scenario")
        if isinstance(name, str) and not _SCENARIO_RE.match(name):
            extra = f" ({len(name)} characters)" if len(name) > 40 else ""
            self.at(
                ("scenario",),
                f"scenario name {name!r} is not DNS-safe{extra}: use lowercase letters, digits "
                "and '-', at most 40 characters, not starting or ending with '-'",
            )

    def check_params(self) -> None:
        for key in _d(self.data.get("params")):
            if not isinstance(key, str) or not _VAR_RE.match(key):
                self.at_key(
                    ("params", key),
                    f"param name {key!r} must start with a letter or '_' and use letters, "
                    "digits, '_' or '-'",
                )

    def check_matrix(self) -> None:
        matrix = self.data.get("matrix")
        if not isinstance(matrix, dict):
            return
        axes = [k for k in matrix if k not in ("include", "exclude")]
        for key in axes:
            if not isinstance(key, str) or not _VAR_RE.match(key):
                self.at_key(
                    ("matrix", key),
                    f"matrix axis name {key!r} must start with a letter or '_' and use letters, "
                    "digits, '_' or '-'",
                )
            elif matrix[key] == []:
                self.at(("matrix", key), f"matrix axis {key!r} has no values")
        for i, entry in enumerate(_l(matrix.get("exclude"))):
            for key in _d(entry):
                if key not in axes:
                    self.at_key(("matrix", "exclude", i, key), unknown("matrix axis", key, axes))

    # -- topology ------------------------------------------------------------------------------

    def check_networks(self) -> None:
        for name, spec in self.networks.items():
            path: YPath = ("topology", "networks", name)
            msg = dns_name_problem(name, "network")
            if msg:
                self.at_key(path, msg)
            if name in self.nodes:
                self.at_key(
                    path, f"{name!r} is both a network and a node; give them different names"
                )
            subnet = _d(spec).get("subnet")
            if isinstance(subnet, str):
                net = self._subnet((*path, "subnet"), subnet)
                if net is not None:
                    for other, other_net in self.subnets.items():
                        if net.overlaps(other_net):
                            self.at(
                                (*path, "subnet"),
                                f"subnet {net} overlaps network {other!r} ({other_net})",
                            )
                            break
                    self.subnets[name] = net
            self.check_ipv6_network(name, _d(spec), path)

    def check_ipv6_network(self, name: str, spec: dict[Any, Any], path: YPath) -> None:
        """`subnet6:` parses, is a usable size and kind, overlaps no other network's; and
        `ipv6: false` does not sit beside it (subnet6 turns IPv6 on)."""
        text = spec.get("subnet6")
        if not isinstance(text, str):
            return
        if spec.get("ipv6") is False:
            self.at(
                (*path, "ipv6"),
                f"ipv6: false, but network {name!r} gives subnet6 {text}; drop one of them",
            )
        checked = check_subnet6(text)
        if checked.network is None:
            self.at((*path, "subnet6"), f"subnet6: {checked.problem}")
            return
        for other, other_net in self.subnets6.items():
            if checked.network.overlaps(other_net):
                self.at(
                    (*path, "subnet6"),
                    f"subnet6: {checked.network} overlaps network {other!r} ({other_net})",
                )
                return
        self.subnets6[name] = checked.network

    def _subnet(self, path: YPath, text: str) -> ipaddress.IPv4Network | None:
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError:
            try:
                loose = ipaddress.ip_network(text, strict=False)
            except ValueError:
                self.at(path, f"expected an IPv4 network like 10.90.0.0/24, got {text!r}")
                return None
            self.at(
                path,
                f"subnet {text!r} has host bits set; the network address is {loose.with_prefixlen}",
            )
            return None
        if not isinstance(net, ipaddress.IPv4Network):
            self.at(path, f"{text!r} is an IPv6 network: it goes under subnet6; subnet is IPv4")
            return None
        if net.prefixlen > 30:
            self.at(path, f"subnet {text!r} is too small; use a prefix of /30 or shorter")
            return None
        return net

    def check_sizes(self) -> bool:
        """Containers and networks are bounded (limits.py): a 5,000-node lab cannot run on a
        workstation, and checking one costs seconds. False when over: the rest is skipped."""
        ok = True
        for key, found, most, name in (
            ("nodes", self.nodes, MAX_TOPOLOGY_NODES, "MAX_TOPOLOGY_NODES"),
            ("networks", self.networks, MAX_NETWORKS, "MAX_NETWORKS"),
        ):
            if len(found) > most:
                self.at_key(
                    ("topology", key),
                    f"topology has {len(found)} {key}; at most {most} (limit {name})",
                )
                ok = False
        return ok

    def check_nodes(self) -> None:
        topo = _d(self.data.get("topology"))
        if isinstance(topo.get("nodes"), dict) and not self.nodes:
            self.at_key(("topology", "nodes"), "topology has no nodes; declare at least one")
        elif "topology" in self.data and isinstance(topo, dict) and "nodes" not in topo:
            self.at_key(("topology",), "missing required key 'nodes' (the containers to run)")
        used: Used = {}
        for name, node in self.nodes.items():
            path: YPath = ("topology", "nodes", name)
            msg = dns_name_problem(name, "node")
            if msg:
                self.at_key(path, msg)
            if isinstance(node, dict):
                self.check_node(name, node, path, used)
        self.check_host_ports()
        self.check_depends_on()

    def check_host_ports(self) -> None:
        """A fixed host port given twice (any nodes) would fail at start, and a container port
        given twice in one node would collapse to one binding: both said here, located."""
        seen: dict[tuple[int, str], str] = {}
        for name, node in self.nodes.items():
            inside: set[tuple[int, str]] = set()
            for i, value in enumerate(_l(_d(node).get("ports"))):
                m = re.fullmatch(PORT_PATTERN, str(value).strip())
                if m is None:
                    continue  # a bad one is the schema's to report
                port = (int(m.group(2)), m.group(3) or "tcp")
                if port in inside:
                    self.at(
                        ("topology", "nodes", name, "ports", i),
                        f"container port {port[0]}/{port[1]} is already published by this "
                        "node; a container port is published once",
                    )
                inside.add(port)
                if m.group(1) is None:
                    continue  # no host port: the engine picks a free one
                key = (int(m.group(1)), port[1])
                if key in seen:
                    self.at(
                        ("topology", "nodes", name, "ports", i),
                        f"host port {key[0]}/{key[1]} is already published by node "
                        f"{seen[key]!r}; give another, or leave it out (the engine picks one)",
                    )
                seen.setdefault(key, name)

    def check_depends_on(self) -> None:
        graph: dict[str, list[str]] = {}
        for name, node in self.nodes.items():
            deps = _d(node).get("depends_on")
            graph[name] = []
            for i, dep in enumerate(_l(deps)):
                if not isinstance(dep, str):
                    continue
                path: YPath = ("topology", "nodes", name, "depends_on", i)
                if dep == name:
                    self.at(path, f"node {name!r} cannot depend on itself")
                elif dep not in self.nodes:
                    self.at(path, unknown("node", dep, self.nodes))
                else:
                    graph[name].append(dep)
        self._find_cycles(graph)

    def _find_cycles(self, graph: dict[str, list[str]]) -> None:
        """Depth-first search with an explicit stack (a long depends_on chain must not hit
        Python's recursion limit), reporting each back edge as the cycle it closes."""
        state: dict[str, int] = {}  # 1 visiting, 2 done
        for start in graph:
            if start in state:
                continue
            state[start] = 1
            trail = [start]
            stack = [iter(graph.get(start, []))]
            while stack:
                n = trail[-1]
                dep = next(stack[-1], None)
                if dep is None:
                    state[n] = 2
                    trail.pop()
                    stack.pop()
                elif state.get(dep) == 1:
                    cycle = [*trail[trail.index(dep) :], dep]
                    self.at_key(
                        ("topology", "nodes", n, "depends_on"),
                        f"depends_on makes a cycle: {' -> '.join(cycle)}",
                    )
                elif dep not in state:
                    state[dep] = 1
                    trail.append(dep)
                    stack.append(iter(graph.get(dep, [])))

    def check_node(
        self,
        name: str,
        node: dict[str, Any],
        path: YPath,
        used: Used,
    ) -> None:
        self.check_image(name, node, path)
        self.check_node_networks(name, node, path, used)
        self.check_node_files(node, path)
        for key in _d(node.get("env")):
            if not isinstance(key, str) or not _ENV_RE.match(key):
                self.at_key(
                    (*path, "env", key),
                    f"environment variable name {key!r} must use letters, digits and '_'",
                )
        health = node.get("health")
        if isinstance(health, dict):
            given = [k for k in ("command", "port", "log") if health.get(k) is not None]
            if len(given) > 1:
                self.at_key(
                    (*path, "health", given[1]),
                    f"set only one of command, port, log in health (found {', '.join(given)})",
                )
        self.check_node_caps(node, path)
        self.check_node_clock(node, path)

    def check_node_clock(self, node: dict[str, Any], path: YPath) -> None:
        """`clock:` preloads libfaketime built for the node's own Debian environment: an
        `image:` node's OS and C library are unknown, and the node's own LD_PRELOAD or FAKETIME
        would be overwritten."""
        if node.get("clock") is None:
            return
        if node.get("image") is not None:
            self.at_key(
                (*path, "clock"),
                "`clock:` needs a lab or an `os:` node (a Debian environment the harness "
                "builds, whose C library the libfaketime it copies in is built for); an "
                "`image:` node's OS is unknown: run it from a lab, or give it `os:` instead",
            )
        for key in _d(node.get("env")):
            if key in CLOCK_ENV:
                self.at_key(
                    (*path, "env", key),
                    f"{key} is set by `clock:` (libfaketime); drop one of them",
                )

    def check_node_files(self, node: dict[str, Any], path: YPath) -> None:
        """Files copied in: to an absolute path in the node, from a regular project file."""
        for target, value in _d(node.get("files")).items():
            fpath = (*path, "files", target)
            if isinstance(target, str) and not target.startswith("/"):
                self.at_key(fpath, f"file target {target!r} must be an absolute path in the node")
            source = _d(value).get("source") if isinstance(value, dict) else value
            if isinstance(value, dict):
                fpath = (*fpath, "source")
            if isinstance(source, str):
                found = self.check_project_file(fpath, source, "file")
                if found is not None:
                    self.check_regular_file(fpath, source, found)

    def check_node_caps(self, node: dict[str, Any], path: YPath) -> None:
        """The node's own cap_add, then those its lab asks for: each granted or refused."""
        for i, cap in enumerate(_l(node.get("cap_add"))):
            if isinstance(cap, str) and not _CAP_RE.match(cap):
                self.at(
                    (*path, "cap_add", i),
                    f"expected a capability name in capitals like NET_ADMIN, got {cap!r}",
                )
            elif isinstance(cap, str):
                self.check_capability((*path, "cap_add", i), cap)
        lab_entry = self.catalog.labs.get(node["lab"]) if isinstance(node.get("lab"), str) else None
        for cap in lab_entry.definition.cap_add if lab_entry is not None else []:
            self.check_capability((*path, "lab"), cap, lab=node["lab"])

    def check_capability(self, path: YPath, cap: str, lab: str | None = None) -> None:
        """Beyond the defaults, only the engineer's local configuration grants a capability
        (harness/capabilities.py); the run layer checks again before creating containers."""
        from harness.capabilities import normalise, why
        from harness.errors import UsageError
        from harness.localconfig import DEFAULT_CAPABILITIES, allowed_capabilities

        if normalise(cap) in DEFAULT_CAPABILITIES:
            return
        owner = f"lab {lab!r} asks for {cap} in its cap_add; " if lab else ""
        try:
            allowed = allowed_capabilities()
        except UsageError as exc:
            hint = f" ({exc.hint})" if exc.hint else ""
            self.at(
                path, f"{owner}{cap} needs the local configuration, refused: {exc.message}{hint}"
            )
            return
        if normalise(cap) not in allowed:
            self.at(path, (owner or "cap_add: ") + why(cap))

    def check_image(self, name: str, node: dict[str, Any], path: YPath) -> None:
        lab_name, image, os_name = node.get("lab"), node.get("image"), node.get("os")
        version = node.get("version")
        if lab_name is not None and image is not None:
            self.at_key((*path, "image"), "a node has either 'lab' or 'image', not both")
            return
        if image is not None:
            for key in ("os", "version"):
                if key in node:
                    self.at_key(
                        (*path, key),
                        f"{key!r} applies to lab and bare nodes; an 'image' node runs its image "
                        "as it is",
                    )
            return
        if lab_name is None:
            self.check_bare_node(name, node, path)
            return
        if not isinstance(lab_name, str):
            return
        lab_entry = self.catalog.labs.get(lab_name)
        os_ok = isinstance(os_name, str) and self.check_os((*path, "os"), os_name)
        if lab_entry is None:
            self.at((*path, "lab"), unknown("lab", lab_name, self.catalog.labs))
            return
        lab = lab_entry.definition
        if isinstance(os_name, str) and os_ok and os_name not in lab.oses():
            self.at(
                (*path, "os"),
                f"lab {lab_name!r} is not built for os {os_name!r}; it builds on: "
                f"{', '.join(lab.oses())}",
            )
            return
        if version is not None:
            self.check_version(path, node, lab, str(version), os_name if os_ok else None)

    def check_bare_node(self, name: str, node: dict[str, Any], path: YPath) -> None:
        """A node with neither lab nor image: a bare node of an environment, which needs 'os'."""
        os_name = node.get("os")
        if "version" in node:
            self.at_key((*path, "version"), "'version' needs 'lab' (the lab to build)")
        if os_name is None:
            self.at_key(
                path,
                f"node {name!r} needs 'lab' (a lab under labs/), 'image' (an image "
                "reference) or 'os' (a bare node of that environment)",
            )
        elif isinstance(os_name, str):
            self.check_os((*path, "os"), os_name)

    def check_os(self, path: YPath, os_name: str) -> bool:
        if os_name in self.catalog.environments:
            return True
        self.at(path, unknown("os", os_name, self.catalog.environments))
        return False

    def check_version(
        self, path: YPath, node: dict[str, Any], lab: LabDef, version: str, os_name: Any
    ) -> None:
        raw = node.get("version")
        if version not in lab.versions:
            msg = unknown("version", version, lab.versions, of=f" of lab {lab.name!r}")
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                msg += (
                    f" (YAML read it as the number {raw!r}; write versions in quotes, "
                    f'e.g. version: "{next(iter(lab.versions))}")'
                )
            self.at((*path, "version"), msg)
            return
        builds_on = lab.versions[version].os
        if isinstance(os_name, str) and os_name not in builds_on:
            for_os = ", ".join(lab.versions_for(os_name)) or "none"
            self.at(
                (*path, "version"),
                f"{lab.name} {version} is not built for {os_name}; it builds on "
                f"{', '.join(builds_on)}; versions for {os_name}: {for_os}",
            )

    def check_node_networks(
        self,
        name: str,
        node: dict[str, Any],
        path: YPath,
        used: Used,
    ) -> None:
        nets = node.get("networks")
        if nets is None or nets == [] or nets == {}:
            where = (
                f"attach it to one of: {', '.join(self.networks)}"
                if self.networks
                else "declare one under topology.networks and list it here"
            )
            target = (*path, "networks") if "networks" in node else path
            self.at_key(target, f"node {name!r} has no networks; {where}")
            return
        for npath, net, spec in self.network_entries(nets, path):
            if net not in self.networks:
                self.at_key(npath, unknown("network", net, self.networks))
                continue
            if net not in self.attached.setdefault(name, []):
                self.attached[name].append(net)
            ipv4 = _d(spec).get("ipv4")
            if isinstance(ipv4, str):
                self.check_address((*npath, "ipv4"), name, net, ipv4, used)
            ipv6 = _d(spec).get("ipv6")
            if isinstance(ipv6, str):
                self.check_address6((*npath, "ipv6"), name, net, ipv6, used)

    def network_entries(self, nets: Any, path: YPath) -> list[tuple[YPath, str, Any]]:
        """(path, network, spec) per network a node lists (a list of names, or a mapping of
        name to spec); a name listed twice is reported."""
        entries: list[tuple[YPath, str, Any]] = []
        if isinstance(nets, list):
            seen: set[str] = set()
            for i, net in enumerate(nets):
                if not isinstance(net, str):
                    continue
                if net in seen:
                    self.at((*path, "networks", i), f"network {net!r} is listed twice")
                seen.add(net)
                entries.append(((*path, "networks", i), net, None))
        elif isinstance(nets, dict):
            for net, spec in nets.items():
                if isinstance(net, str):
                    entries.append(((*path, "networks", net), net, spec))
        return entries

    def check_address(
        self,
        path: YPath,
        node: str,
        net: str,
        text: str,
        used: Used,
    ) -> None:
        subnet_text = _d(self.networks.get(net)).get("subnet")
        if subnet_text is None:
            self.at(
                path,
                f"a static address needs a subnet on network {net!r}; add "
                f"'subnet: 10.x.y.0/24' under topology.networks.{net}",
            )
            return
        subnet = self.subnets.get(net)
        if subnet is None:
            return  # the subnet itself is wrong; reported there
        try:
            addr = ipaddress.IPv4Address(text)
        except ValueError:
            self.at(
                path, f"expected an IPv4 address like {subnet.network_address + 10}, got {text!r}"
            )
            return
        why_not = _unusable_address(addr, subnet, net)
        if why_not is not None:
            self.at(path, why_not)
            return
        self.claim(path, node, net, addr, used)

    def claim(
        self,
        path: YPath,
        node: str,
        net: str,
        addr: ipaddress.IPv4Address | ipaddress.IPv6Address,
        used: Used,
        *,
        key: str = "",
    ) -> None:
        """A static address is given once per network; the second is reported, located."""
        line = self.located.value_pos(path)[0]
        if (net, addr) in used:
            other, other_line = used[(net, addr)]
            self.at(
                path,
                f"{key}address {addr} on network {net!r} is already used by node {other!r} "
                f"(line {other_line})",
            )
            return
        used[(net, addr)] = (node, line)

    def check_address6(self, path: YPath, node: str, net: str, text: str, used: Used) -> None:
        """A static IPv6 address needs its network's subnet6, inside it and not reserved."""
        spec = _d(self.networks.get(net))
        if spec.get("subnet6") is None:
            hint = f"'subnet6: {EXAMPLE6}' under topology.networks.{net}"
            self.at(
                path,
                f"ipv6: a static IPv6 address needs subnet6 on network {net!r}; add {hint}"
                if spec.get("ipv6")
                else f"ipv6: network {net!r} has no IPv6; add {hint} to turn it on",
            )
            return
        subnet = self.subnets6.get(net)
        if subnet is None:
            return  # the subnet6 itself is wrong; reported there
        checked = check_address6(text, subnet, net)
        if checked.address is None:
            self.at(path, f"ipv6: {checked.problem}")
            return
        self.claim(path, node, net, checked.address, used, key="ipv6: ")

    def check_impairments(self) -> None:
        topo = _d(self.data.get("topology"))
        for i, imp in enumerate(_l(topo.get("impairments"))):
            if not isinstance(imp, dict):
                continue
            path: YPath = ("topology", "impairments", i)
            node = imp.get("node")
            self.check_impairment_link(path, imp)
            self.check_loss_ipv4(path, imp)
            part = imp.get("partition")
            if isinstance(part, str):
                if part not in self.nodes and part not in self.networks:
                    self.at(
                        (*path, "partition"),
                        unknown("node or network", part, [*self.nodes, *self.networks]),
                    )
                elif part == node:
                    self.at((*path, "partition"), "a node cannot be partitioned from itself")
                else:
                    self.check_partition_ipv4((*path, "partition"), node, part)
            effects = [
                k for k in ("loss", "rate", "delay", "jitter", "duplicate", "partition") if k in imp
            ]
            if not effects:
                self.at_key(
                    path,
                    "an impairment needs one of loss, rate, delay, jitter, duplicate, partition",
                )
            if "jitter" in imp and "delay" not in imp:
                self.at_key((*path, "jitter"), "'jitter' needs 'delay'")

    def ipv6_networks(self) -> set[str]:
        return {
            n for n, spec in self.networks.items() if _d(spec).get("ipv6") or "subnet6" in _d(spec)
        }

    def check_loss_ipv4(self, path: YPath, spec: dict[str, Any]) -> None:
        """Loss and duplication are iptables' (IPv4 only): refused on a link whose network has
        IPv6, where IPv6 packets would all get through untouched. tc's rate and delay act on
        every packet."""
        node, net = spec.get("node"), spec.get("network")
        if not isinstance(node, str):
            return
        nets = self.attached.get(node, [])
        link = net if isinstance(net, str) else nets[0] if len(nets) == 1 else None
        if link not in self.ipv6_networks():
            return
        for key, does in (("loss", "drops"), ("duplicate", "copies")):
            if key in spec:
                self.at(
                    (*path, key),
                    f"{key}: network {link!r} has IPv6, and {key} {does} IPv4 only, so IPv6 "
                    "packets would all get through untouched (use delay or rate, or a network "
                    "without IPv6)",
                )

    def check_partition_ipv4(self, path: YPath, node: Any, target: str) -> None:
        """A partition drops IPv4 (iptables): refused where node and target share a network
        with IPv6, over which they would go on reaching each other (a silent no-op)."""
        if not isinstance(node, str):
            return
        v6 = {
            n for n, spec in self.networks.items() if _d(spec).get("ipv6") or "subnet6" in _d(spec)
        }
        theirs = set(self.attached.get(target, [])) if target in self.nodes else {target}
        shared = sorted(set(self.attached.get(node, [])) & theirs & v6)
        if not shared:
            return
        where = (
            f"{node!r} and {target!r} share network {shared[0]!r}"
            if target in self.nodes
            else f"{node!r} is on network {target!r}"
        )
        self.at(
            path,
            f"partition: {where}, which has IPv6; a partition drops IPv4 only, so IPv6 "
            "would still get through (partition across networks without IPv6)",
        )

    def check_impairment_link(self, path: YPath, imp: dict[str, Any]) -> None:
        """An impairment's node and network exist, the node is on that network, and a node on
        several networks says which one."""
        node = imp.get("node")
        net = imp.get("network")
        node_ok = isinstance(node, str) and node in self.nodes
        if isinstance(node, str) and not node_ok:
            self.at((*path, "node"), unknown("node", node, self.nodes))
        if isinstance(net, str):
            if net not in self.networks:
                self.at((*path, "network"), unknown("network", net, self.networks))
            elif node_ok and net not in self.attached.get(str(node), [net]):
                self.at(
                    (*path, "network"),
                    f"node {node!r} is not attached to network {net!r}; it is on: "
                    f"{', '.join(self.attached.get(str(node), [])) or 'none'}",
                )
        elif net is None and node_ok and len(self.attached.get(str(node), [])) > 1:
            self.at_key(
                path,
                f"node {node!r} is on several networks "
                f"({', '.join(self.attached[str(node)])}); say which with 'network'",
            )

    # -- configure, reproduce, verify, collect -------------------------------------------------

    def host_groups(self) -> list[str]:
        labs = [n.get("lab") for n in self.nodes.values() if isinstance(n, dict)]
        return ["all", *self.nodes, *[x for x in labs if isinstance(x, str)], *self.networks]

    def check_nodes_ref(self, path: YPath, value: Any, what: str, allow: list[str]) -> None:
        for i, name in _names(value):
            if name not in allow:
                p = (*path, i) if i is not None else path
                self.at(p, unknown(what, name, allow))

    def check_configure_item(self, path: YPath, item: Any) -> None:
        if not isinstance(item, dict):
            return
        if "playbook" in item:
            if isinstance(item["playbook"], str):
                self.check_project_file((*path, "playbook"), item["playbook"], "playbook")
            self.check_nodes_ref((*path, "hosts"), item.get("hosts"), "host", self.host_groups())
            for key in _d(item.get("vars")):
                why_not = reserved_var(key)
                if why_not is not None:
                    self.at_key((*path, "vars", key), why_not)
        elif "run" in item:
            self.check_nodes_ref((*path, "on"), item.get("on"), "node", ["all", *self.nodes])

    def check_reproduce(self, path: YPath, repro: Any) -> None:
        if not isinstance(repro, dict):
            return
        ids: dict[str, int] = {}
        for i, step in enumerate(_l(repro.get("steps"))):
            if not isinstance(step, dict):
                continue
            spath = (*path, "steps", i)
            self.check_step_id(spath, step.get("id"), i, ids)
            for key in ("on", "node"):
                ref = step.get(key)
                if isinstance(ref, str) and ref not in self.nodes:
                    self.at((*spath, key), unknown("node", ref, self.nodes))
            if "fault" in step:
                self.check_fault(spath, step)
            wait = step.get("wait")
            if isinstance(wait, dict):
                given = [k for k in ("port", "log", "file") if wait.get(k) is not None]
                if len(given) != 1:
                    self.at_key(
                        (*spath, "wait"),
                        "a wait needs exactly one of port, log, file"
                        + (f" (found {', '.join(given)})" if given else ""),
                    )
        self.check_probes((*path, "symptom"), repro.get("symptom"), list(ids))
        self.check_budget(path, repro)

    def check_budget(self, path: YPath, repro: dict[str, Any]) -> None:
        """`max_attempts` is the budget of a `confidence`, and holds at least `attempts`."""
        budget, least = repro.get("max_attempts"), repro.get("attempts", 1)
        if not isinstance(budget, int) or isinstance(budget, bool):
            return
        if repro.get("confidence") is None:
            self.at_key(
                (*path, "max_attempts"),
                "max_attempts is the budget of a confidence: set reproduce.confidence "
                "(e.g. 0.95), or use attempts for a fixed count",
            )
        elif isinstance(least, int) and budget < least:
            self.at(
                (*path, "max_attempts"),
                f"max_attempts ({budget}) is below attempts ({least}), the least to run",
            )

    def check_step_id(self, spath: YPath, sid: Any, i: int, ids: dict[str, int]) -> None:
        """A step's id is a slug used once; ids gets it (or the default step-N) with its line,
        for the symptom's probes to refer to."""
        line = self.located.value_pos(spath)[0]
        if isinstance(sid, str):
            if not _SLUG_RE.match(sid):
                self.at(
                    (*spath, "id"),
                    f"step id {sid!r} must use lowercase letters, digits, '-' or '_'",
                )
            if sid in ids:
                self.at(
                    (*spath, "id"), f"duplicate step id {sid!r} (first used on line {ids[sid]})"
                )
            else:
                ids[sid] = self.located.value_pos((*spath, "id"))[0]
        elif sid is None:
            ids.setdefault(f"step-{i + 1}", line)

    def check_fault_target(self, spath: YPath, step: dict[str, Any]) -> None:
        """partition and heal need a node or network as target; other faults take none."""
        action, target = step.get("fault"), step.get("target")
        if action in ("partition", "heal"):
            if target is None:
                self.at_key(
                    (*spath, "fault"), f"fault {action!r} needs 'target' (a node or network)"
                )
            elif (
                isinstance(target, str) and target not in self.nodes and target not in self.networks
            ):
                self.at(
                    (*spath, "target"),
                    unknown("node or network", target, [*self.nodes, *self.networks]),
                )
            elif action == "partition" and isinstance(target, str):
                self.check_partition_ipv4((*spath, "target"), step.get("node"), target)
        elif "target" in step:
            self.at_key((*spath, "target"), f"fault {action!r} takes no 'target'")

    def check_fault(self, spath: YPath, step: dict[str, Any]) -> None:
        action = step.get("fault")
        self.check_fault_target(spath, step)
        if action == "impair":
            self.check_loss_ipv4(spath, step)
        node, net = step.get("node"), step.get("network")
        if action in ("impair", "clear") and isinstance(net, str):
            if net not in self.networks:
                self.at((*spath, "network"), unknown("network", net, self.networks))
            elif isinstance(node, str) and net not in self.attached.get(node, [net]):
                self.at(
                    (*spath, "network"),
                    f"node {node!r} is not attached to network {net!r}; it is on: "
                    f"{', '.join(self.attached.get(node, [])) or 'none'}",
                )
        elif action == "impair" and isinstance(node, str) and len(self.attached.get(node, [])) > 1:
            self.at_key(
                (*spath, "fault"),
                f"node {node!r} is on several networks ({', '.join(self.attached[node])}); "
                "say which with 'network'",
            )
        effects = [k for k in ("loss", "rate", "delay", "jitter", "duplicate") if k in step]
        if action == "impair" and not effects:
            self.at_key(
                (*spath, "fault"), "fault 'impair' needs one of loss, rate, delay, duplicate"
            )
        elif action != "impair" and effects:
            self.at_key((*spath, effects[0]), f"fault {action!r} takes no {effects[0]!r}")
        if action not in ("impair", "clear") and "network" in step:
            self.at_key((*spath, "network"), f"fault {action!r} takes no 'network'")

    def check_probes(self, path: YPath, probes: Any, ids: list[str]) -> None:
        for i, probe in enumerate(_l(probes)):
            if not isinstance(probe, dict):
                continue
            ppath = (*path, i)
            if "state" in probe:
                self.check_ready_probe(ppath, probe)
            elif "finding" in probe:
                self.check_finding_probe(ppath, probe)
            elif "step" in probe:
                self.check_step_probe(ppath, probe, ids)
            elif "log" in probe or "file" in probe:
                on = probe.get("on")
                if isinstance(on, str) and on not in self.nodes:
                    self.at((*ppath, "on"), unknown("node", on, self.nodes))
                for key in ("path", "file"):
                    val = probe.get(key)
                    if isinstance(val, str) and not val.startswith("/"):
                        self.at(
                            (*ppath, key), f"expected an absolute path in the node, got {val!r}"
                        )
            for key in ("any", "all"):
                if key in probe:
                    self.check_probes((*ppath, key), probe[key], ids)

    def check_finding_probe(self, ppath: YPath, probe: dict[str, Any]) -> None:
        """A finding probe reads one network's capture (which must be captured) or one node's
        log (a `log:` signature that node's lab declares, or a pattern of them)."""
        net, on = probe.get("network"), probe.get("on")
        if (net is None) == (on is None):
            self.at_key(
                ppath,
                "a finding probe reads a network's capture (network: NAME) or a "
                "node's log (on: NODE): give exactly one",
            )
            return
        if isinstance(net, str):
            captured = _l(_d(self.data.get("collect")).get("capture"))
            if net not in self.networks:
                self.at((*ppath, "network"), unknown("network", net, self.networks))
            elif net not in captured:
                self.at(
                    (*ppath, "network"),
                    f"network {net!r} is not captured: add it to "
                    "collect.capture (the probe reads its capture)",
                )
        elif isinstance(on, str):
            if on not in self.nodes:
                self.at((*ppath, "on"), unknown("node", on, self.nodes))
                return
            path = probe.get("path")
            if isinstance(path, str) and not path.startswith("/"):
                self.at((*ppath, "path"), f"expected an absolute path in the node, got {path!r}")
            self._check_log_signature(ppath, probe.get("finding"), on)

    def _check_log_signature(self, ppath: YPath, finding: object, on: str) -> None:
        """`log:<id>` on a node: an id its lab declares (or any lab's `scope: any` one)."""
        if not isinstance(finding, str) or not finding.startswith("log:"):
            return
        import fnmatch

        lab = _d(self.nodes.get(on)).get("lab")
        known = sorted(
            f"log:{sig.id}"
            for name, entry in self.catalog.labs.items()
            for sig in entry.definition.signatures
            if name == lab or sig.scope == "any"
        )
        if not any(fnmatch.fnmatchcase(k, finding) for k in known):
            self.at((*ppath, "finding"), unknown(f"log signature of node {on!r}", finding, known))

    def check_ready_probe(self, ppath: YPath, probe: dict[str, Any]) -> None:
        """A readiness probe names a node there is; an exit code needs `state: exited` (a node
        whose health wait timed out is still running: it has none)."""
        node = probe.get("node")
        if isinstance(node, str) and node not in self.nodes:
            self.at((*ppath, "node"), unknown("node", node, self.nodes))
        if "exit_code" in probe and probe.get("state") == "not_ready":
            self.at_key(
                (*ppath, "exit_code"),
                "an exit code needs 'state: exited' (a node that timed out has none)",
            )

    def check_step_probe(self, ppath: YPath, probe: dict[str, Any], ids: list[str]) -> None:
        """A probe on a step names a step there is, and at least one condition."""
        ref = probe["step"]
        if isinstance(ref, str) and ref not in ids:
            if ids:
                self.at((*ppath, "step"), unknown("step", ref, ids))
            else:
                self.at((*ppath, "step"), f"unknown step {ref!r}; reproduce has no steps")
        conditions = (
            "exit_code",
            "stdout",
            "stderr",
            "output",
            "status",
            "duration_lt",
            "duration_gt",
        )
        if not any(k in probe for k in conditions):
            self.at_key(
                ppath,
                f"a probe needs a condition: {', '.join(conditions)}",
            )

    def check_verify(self) -> None:
        for i, item in enumerate(_l(self.data.get("verify"))):
            path: YPath = ("verify", i)
            if isinstance(item, str):
                self.check_project_file(path, item.split("::")[0], "test suite")
            elif isinstance(item, dict):
                if isinstance(item.get("suite"), str):
                    self.check_project_file(
                        (*path, "suite"), item["suite"].split("::")[0], "test suite"
                    )
                on = item.get("on")
                if "run" in item and isinstance(on, str) and on not in self.nodes:
                    self.at((*path, "on"), unknown("node", on, self.nodes))

    def check_evidence(self) -> None:
        """The customer's evidence: files inside the project, and a lab the catalog has."""
        for i, item in enumerate(_l(self.data.get("evidence"))):
            path: YPath = ("evidence", i)
            entry = item if isinstance(item, dict) else {"file": item}
            if isinstance(item, dict):
                path = (*path, "file")
            if isinstance(entry.get("file"), str):
                self.check_project_file(path, entry["file"], "evidence file")
            lab = entry.get("lab")
            if isinstance(lab, str) and lab not in self.catalog.labs:
                self.at(("evidence", i, "lab"), unknown("lab", lab, self.catalog.labs))

    def check_collect(self) -> None:
        collect = _d(self.data.get("collect"))
        for i, net in enumerate(_l(collect.get("capture"))):
            if isinstance(net, str) and net not in self.networks:
                self.at(("collect", "capture", i), unknown("network", net, self.networks))
        for i, entry in enumerate(_l(collect.get("logs"))):
            if not isinstance(entry, str):
                continue
            node, sep, where = entry.partition(":")
            path: YPath = ("collect", "logs", i)
            if not sep or not where.startswith("/"):
                self.at(path, f"expected 'node:/absolute/path', got {entry!r}")
            elif node not in self.nodes:
                self.at(path, unknown("node", node, self.nodes))

    def check_redact(self) -> None:
        """`redact:` patterns run on every text the run writes: RE2 only (linear time), so a
        pattern like `(a+)+$` cannot stall a run; RE2 refuses backreferences and look-arounds."""
        opts = re2.Options()
        opts.log_errors = False
        for i, pattern in enumerate(_l(self.data.get("redact"))):
            if not isinstance(pattern, str):
                continue
            try:
                re2.compile(pattern, opts)
            except re2.error as exc:
                why = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
                self.at(
                    ("redact", i),
                    f"redact pattern {pattern!r} is not RE2 syntax ({why}): redaction patterns "
                    "must run in linear time, so backreferences and look-arounds are not allowed",
                )

    def check_fix_names(self) -> None:
        for name, fix in _d(self.data.get("fixes")).items():
            path: YPath = ("fixes", name)
            if not isinstance(name, str) or not _SLUG_RE.match(name):
                self.at_key(
                    path, f"fix name {name!r} must use lowercase letters, digits, '-' or '_'"
                )
            topo = _d(_d(fix).get("topology"))
            for node in _d(topo.get("nodes")):
                if node not in self.nodes:
                    self.at_key(
                        (*path, "topology", "nodes", node), unknown("node", node, self.nodes)
                    )

    # -- paths ---------------------------------------------------------------------------------

    def check_regular_file(self, path: YPath, text: str, found: Path) -> None:
        """A `files:` source is copied into the node: a fifo would block the copy, a device or
        a socket has no content to copy, a folder is not a file (stat only: never opened)."""
        try:
            mode = found.stat().st_mode
        except OSError as exc:
            self.at(path, f"file {text!r} cannot be read: {exc.strerror}")
            return
        if stat.S_ISREG(mode):
            return
        if stat.S_ISDIR(mode):
            self.check_folder_source(path, text, found)
            return
        kinds = {
            stat.S_IFIFO: "a fifo (named pipe)",
            stat.S_IFCHR: "a character device",
            stat.S_IFBLK: "a block device",
            stat.S_IFSOCK: "a socket",
            stat.S_IFDIR: "a folder",
        }
        kind = kinds.get(stat.S_IFMT(mode), "not a regular file")
        self.at(
            path,
            f"files: {path[-1]}: source {text!r} is {kind}: only regular files can be copied"
            " into a node",
        )

    def check_folder_source(self, path: YPath, text: str, found: Path) -> None:
        """A folder source: every file under it is copied, so each must be a regular file (no
        symlink: the copy refuses one), and they must fit the limits."""
        count, size = 0, 0
        for p in sorted(found.rglob("*")):
            rel = p.relative_to(found).as_posix()
            st = p.lstat()
            if stat.S_ISDIR(st.st_mode):
                continue
            if not stat.S_ISREG(st.st_mode):
                what = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
                self.at(path, f"files: folder {text!r} holds {rel!r}, {what}: only regular files")
                return
            count, size = count + 1, size + st.st_size
            if count > MAX_FOLDER_FILES or size > MAX_FOLDER_BYTES:
                self.at(
                    path,
                    f"files: folder {text!r} holds more than {MAX_FOLDER_FILES} files or "
                    f"{MAX_FOLDER_BYTES >> 20} MiB: copy only the files the case needs",
                )
                return
        if count == 0:
            self.at(path, f"files: folder {text!r} holds no file")

    def check_project_file(self, path: YPath, text: str, what: str) -> Path | None:
        """A path relative to the project root that exists and stays inside the project."""
        if not text.strip():
            self.at(path, f"{what} path is empty")
            return None
        given = Path(text)
        full = given if given.is_absolute() else self.root / given
        lexical = Path(os.path.normpath(full))
        resolved = full.resolve()
        if not lexical.is_relative_to(self.root_resolved) and not lexical.is_relative_to(self.root):
            if given.is_absolute():
                self.at(
                    path,
                    f"{what} {text!r} is outside the project folder; copy it under "
                    "fixtures/<case>/ and use a path relative to the project",
                )
            else:
                self.at(
                    path,
                    f"{what} {text!r} points outside the project with '..'; paths are relative "
                    "to the project root and must stay inside it",
                )
            return None
        if resolved.exists() and not resolved.is_relative_to(self.root_resolved):
            self.at(path, f"{what} {text!r} is a symlink to {resolved}, outside the project")
            return None
        if not full.exists():
            rel = os.path.relpath(
                lexical,
                self.root_resolved if lexical.is_relative_to(self.root_resolved) else self.root,
            )
            hint = did_you_mean(rel, self._candidates(rel))
            msg = f"{what} not found: {text!r} (paths are relative to the project root)"
            self.at(path, f"{msg}; {hint}" if hint else msg)
            return None
        return resolved

    def _candidates(self, rel: str) -> list[str]:
        parts = Path(rel).parts
        tops = {"fixtures"}
        if parts and (self.root / parts[0]).is_dir():
            tops.add(parts[0])
        suffix = Path(rel).suffix
        found: list[str] = []
        for top in sorted(tops):
            base = self.root / top
            if not base.is_dir():
                continue
            for p in base.rglob("*"):
                if len(found) >= _SEARCH_LIMIT:
                    return found
                if p.is_file() and (not suffix or p.suffix == suffix or top == "fixtures"):
                    found.append(p.relative_to(self.root).as_posix())
        return found


def _unusable_address(
    addr: ipaddress.IPv4Address, subnet: ipaddress.IPv4Network, net: str
) -> str | None:
    """Why a static address cannot be given on its network (outside it, or one Docker keeps);
    None when it can."""
    if addr not in subnet:
        return f"address {addr} is outside network {net!r} ({subnet})"
    if addr == subnet.network_address:
        return f"address {addr} is the network address of {net!r} ({subnet})"
    if addr == subnet.broadcast_address:
        return f"address {addr} is the broadcast address of {net!r} ({subnet})"
    if addr == subnet.network_address + 1:
        return f"address {addr} is reserved for the gateway of {net!r}; use another"
    return None
