"""A scenario from a normalised compose file (issue 16 point 5): pure, no engine, no writing.

Services become nodes: a lab when the catalog has the image's software (the nearest version,
said so when not the same), else an image node. Networks, static addresses, env, bind-mounted
files (as fixtures to copy), healthchecks and depends_on are carried; everything else is
listed in `not_carried` with the reason, the way kompose does. Secret-looking env values
become params whose default is a placeholder, so the customer's secret is never written.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from harness.capabilities import why as capability_why
from harness.localconfig import DEFAULT_CAPABILITIES
from harness.scenario import compose_parts as parts
from harness.scenario import compose_settings
from harness.scenario.catalog import Catalog
from harness.scenario.compose_model import (
    ComposeNetwork,
    ComposeProject,
    ComposeService,
    Healthcheck,
)
from harness.scenario.compose_mounts import Mounted, mounted_files
from harness.scenario.ipv6 import check_address6, check_subnet6
from harness.scenario.schema import (
    HealthOverride,
    NetworkDef,
    Node,
    NodeNetwork,
    Scenario,
    TopologyDef,
)

SECRET_PLACEHOLDER = "REDACTED"  # a secret param's default; the real value: --param NAME=VALUE
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MIN_INSIDE = 8  # a secret this long is replaced inside longer text too (commands, URLs)
HEALTH_MAX = 600.0  # seconds: the longest readiness wait an import writes
_WHY = {
    "privileged": "refused by the trust rules (docs/security.md): no privileged containers",
    "build": "the harness does not build compose build contexts; the node runs the image "
    "`docker compose build` tags, or give it a lab",
    "deploy": "no swarm settings in a scenario; resource limits go in `cpus:`/`mem_limit:`",
    "restart": "a node runs once per run; restarts are fault steps (`fault: restart`)",
    "logging": "the harness collects each node's output itself",
    "container_name": "containers are named lab-<run>-<node> so runs never collide",
    "secrets": "compose secrets are files outside the scenario; put them in `files:` if needed",
    "configs": "compose configs are files outside the scenario; put them in `files:` if needed",
}
_TOP_WHY = {
    "secrets": _WHY["secrets"],
    "configs": _WHY["configs"],
}


@dataclass(frozen=True)
class NotCarried:
    """One thing of the compose file the scenario does not have, and why."""

    service: str  # '' for the file as a whole
    key: str
    why: str


@dataclass(frozen=True)
class Note:
    """One thing carried, but changed on the way (a nearest version, a renamed node)."""

    service: str
    what: str


@dataclass(frozen=True)
class FixtureCopy:
    source: Path  # the bind mount's file on this machine
    dest: str  # relative to the project root: fixtures/<scenario>/...


@dataclass(frozen=True)
class Imported:
    scenario: Scenario
    fixtures: tuple[FixtureCopy, ...]
    secrets: tuple[str, ...]  # params holding a secret: placeholders, set with --param
    images: tuple[tuple[str, str], ...]  # (node, image) of every image node
    not_carried: tuple[NotCarried, ...]
    notes: tuple[Note, ...]


@dataclass(frozen=True)
class ImportInput:
    project: ComposeProject
    name: str  # the scenario's name (and its fixtures folder)
    catalog: Catalog
    compose_dir: Path  # bind mounts under it become fixtures
    # (env name, value) -> the secrets in it, never to be written: [value] for a value that is
    # a secret, the parts a rule found for one that holds some (a URL's password), else []
    secrets_in: Callable[[str, str], list[str]]
    variables: dict[str, str] = field(default_factory=dict)  # interpolated: name -> value
    source: str = "compose.yaml"  # as shown in the scenario's title


@dataclass
class _Walk:
    """What the walk collects while it maps services one by one."""

    inp: ImportInput
    nodes: dict[str, str] = field(default_factory=dict)  # service -> node
    nets: dict[str, str] = field(default_factory=dict)  # compose network -> scenario network
    subnets: dict[str, ipaddress.IPv4Network] = field(default_factory=dict)
    subnets6: dict[str, ipaddress.IPv6Network] = field(default_factory=dict)
    used: dict[str, set[str]] = field(default_factory=dict)  # network -> addresses given
    params: dict[str, str] = field(default_factory=dict)  # param -> placeholder
    by_value: dict[str, str] = field(default_factory=dict)  # secret value -> param
    inside: set[str] = field(default_factory=set)  # secrets found inside a value: always replaced
    fixtures: list[FixtureCopy] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)
    dropped: list[NotCarried] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    def drop(self, service: str, key: str, why: str) -> None:
        self.dropped.append(NotCarried(service, key, why))

    def note(self, service: str, what: str) -> None:
        self.notes.append(Note(service, what))


def from_compose(inp: ImportInput) -> Imported:
    """The scenario, fixtures to copy and the report of a compose import."""
    w = _Walk(inp)
    _name_nodes(w)
    networks = _networks(w)
    _learn_secrets(w)
    nodes = {w.nodes[s]: _node(w, s, svc) for s, svc in inp.project.services.items()}
    _default_network(networks, nodes)
    for key in inp.project.extra_keys():
        w.drop("", key, _TOP_WHY.get(key, "not part of a scenario"))
    scenario = Scenario(
        scenario=inp.name,
        title=f"Imported from {inp.source}",
        params=dict(w.params),
        topology=TopologyDef(networks=networks, nodes=nodes),
    )
    return Imported(
        scenario,
        tuple(w.fixtures),
        tuple(w.params),
        tuple(w.images),
        tuple(w.dropped),
        tuple(w.notes),
    )


def _name_nodes(w: _Walk) -> None:
    for service in w.inp.project.services:
        name = base = parts.node_name(service)
        n = 2
        while name in w.nodes.values():
            name, n = f"{base[:28]}-{n}", n + 1
        w.nodes[service] = name
        if name != service:
            w.note(service, f"node {name!r}: other nodes reach it by that name, not {service!r}")


def _networks(w: _Walk) -> dict[str, NetworkDef | None]:
    out: dict[str, NetworkDef | None] = {}
    taken = set(w.nodes.values())
    for name, net in w.inp.project.networks.items():
        scen = parts.node_name(name)
        if scen in taken:
            scen = f"{scen[:27]}-net"
        taken.add(scen)
        w.nets[name] = scen
        out[scen] = _network(w, name, scen, net or ComposeNetwork())
    return out


def _network(w: _Walk, name: str, scen: str, net: ComposeNetwork) -> NetworkDef | None:
    where = f"network {name}"
    if net.external:
        w.note("", f"{where}: external on the customer's side; the lab creates its own")
    if net.driver not in (None, "bridge"):
        w.drop("", f"networks.{name}.driver", f"driver {net.driver!r}: labs use bridge networks")
    ipam = [f"ipam.{k}" for k in net.ipam.extra_keys()]
    ipam += [f"ipam.config.{k}" for c in net.ipam.config for k in c.extra_keys()]
    for key in [*net.extra_keys(), *ipam]:
        w.drop("", f"networks.{name}.{key}", "no scenario key for it (the engine chooses)")
    subnet = _subnet(w, name, net)
    if subnet is not None:
        w.subnets[scen] = subnet
    subnet6 = _subnet6(w, name, net)
    if subnet6 is not None:
        w.subnets6[scen] = subnet6
    if subnet is None and not net.internal and not net.enable_ipv6:
        return None
    return NetworkDef(
        subnet=str(subnet) if subnet else None,
        internal=net.internal,
        ipv6=True if net.enable_ipv6 and subnet6 is None else None,
        subnet6=str(subnet6) if subnet6 else None,
    )


def _subnet6(w: _Walk, name: str, net: ComposeNetwork) -> ipaddress.IPv6Network | None:
    """The first IPv6 subnet of an `enable_ipv6` network that a lab network can have."""
    for cfg in net.ipam.config:
        if not cfg.subnet or ":" not in cfg.subnet:
            continue
        key = f"networks.{name}.ipam"
        if not net.enable_ipv6:
            w.drop("", key, f"subnet {cfg.subnet}: IPv6 without enable_ipv6 (the engine refuses)")
            continue
        checked = check_subnet6(cfg.subnet)
        if checked.network is None:
            w.drop("", key, f"subnet {cfg.subnet}: {checked.problem}")
        elif any(checked.network.overlaps(s) for s in w.subnets6.values()):
            w.drop("", key, f"subnet {checked.network} overlaps another network's")
        else:
            return checked.network
    return None


def _subnet(w: _Walk, name: str, net: ComposeNetwork) -> ipaddress.IPv4Network | None:
    for cfg in net.ipam.config:
        if not cfg.subnet:
            continue
        try:
            sub = ipaddress.ip_network(cfg.subnet, strict=True)
        except ValueError as exc:
            w.drop("", f"networks.{name}.ipam", f"subnet {cfg.subnet!r}: {exc}")
            continue
        if isinstance(sub, ipaddress.IPv6Network):
            continue  # _subnet6's
        if sub.prefixlen > 30:
            w.drop(
                "",
                f"networks.{name}.ipam",
                f"subnet {cfg.subnet}: an IPv4 subnet of a lab is /30 or wider",
            )
            continue
        if any(sub.overlaps(s) for s in w.subnets.values()):
            w.drop("", f"networks.{name}.ipam", f"subnet {sub} overlaps another network's")
            continue
        return sub
    return None


def _default_network(networks: dict[str, NetworkDef | None], nodes: dict[str, Node]) -> None:
    """A node left with no network (network_mode, say) joins `default`, made when missing."""
    for node in nodes.values():
        if not node.networks:
            networks.setdefault("default", None)
            node.networks = ["default"]


def _learn_secrets(w: _Walk) -> None:
    """Every secret env value, and every secret variable the file interpolates, becomes one
    param (the same value in two services: one param)."""
    for service, svc in w.inp.project.services.items():
        for key, value in svc.environment.items():
            if value is not None and _ENV_NAME.match(key):
                _learn(w, key, value, w.nodes[service])
    for key, value in w.inp.variables.items():
        _learn(w, key, value, "var")


def _learn(w: _Walk, key: str, value: str, owner: str) -> None:
    for secret in w.inp.secrets_in(key, value):
        if secret in w.by_value:
            continue
        base = key if secret == value else f"{key}_secret"
        name = parts.param_name(base)
        if name in w.params:
            name = parts.param_name(f"{owner}_{base}")
        w.params[name] = SECRET_PLACEHOLDER
        w.by_value[secret] = name
        if secret != value:
            w.inside.add(secret)


def _unsecret(w: _Walk, text: str) -> str:
    """Scenario text for a compose string, with every known secret value inside it as its
    param (values shorter than MIN_INSIDE only when they are the whole string: `shop` must
    not turn `http://shop-api/` into a param)."""
    if text in w.by_value:
        return f"${{params.{w.by_value[text]}}}"
    inner = (v for v in w.by_value if len(v) >= MIN_INSIDE or v in w.inside)
    for value in sorted(inner, key=len, reverse=True):
        text = text.replace(value, "\0" + w.by_value[value] + "\0")
    out = parts.scenario_text(text)
    return re.sub("\0([^\0]+)\0", r"${params.\1}", out)


def _node(w: _Walk, service: str, svc: ComposeService) -> Node:
    node = Node(**_kind(w, service, svc))
    node.networks = _node_networks(w, service, svc)
    node.env = _env(w, service, svc)
    node.files = dict(_files(w, service, svc))
    node.command = _command(w, svc)
    if node.lab is not None and node.command is not None:
        own = w.inp.catalog.labs[node.lab].definition.command
        if node.command != own:
            w.note(service, f"its command replaces lab {node.lab}'s own: check it suits the lab")
    node.health = _health(w, service, svc.healthcheck)
    node.depends_on = _depends(w, service, svc)
    node.cap_add = _caps(w, service, svc)
    found = compose_settings.settings(
        svc, lambda key, why: w.drop(service, key, why), lambda what: w.note(service, what)
    )
    for name, value in found.items():
        setattr(node, name, value)
    for key in svc.extra_keys():
        w.drop(service, key, _WHY.get(key, "no scenario key for it"))
    return node


def _kind(w: _Walk, service: str, svc: ComposeService) -> dict[str, str]:
    if svc.image is None:
        image = f"{w.inp.project.name}-{service}"
        w.note(service, f"no image, only a build: the node runs {image!r}, as compose tags it")
        w.images.append((w.nodes[service], image))
        return {"image": image}
    ref = parts.parse_image(svc.image)
    lab_name = parts.IMAGE_LABS.get(ref.software)
    if lab_name is None or lab_name not in w.inp.catalog.labs:
        w.images.append((w.nodes[service], svc.image))
        return {"image": svc.image}
    return _lab(w, service, ref, lab_name)


def _lab(w: _Walk, service: str, ref: parts.ImageRef, lab_name: str) -> dict[str, str]:
    lab = w.inp.catalog.labs[lab_name].definition
    versions = list(lab.versions)
    wanted = parts.version_numbers(ref.tag)
    where = f"image {ref.ref} -> lab {lab_name}"
    if wanted is None:
        w.note(service, f"{where} {versions[-1]} (the image names no version: the newest)")
        return {"lab": lab_name}
    version, same = parts.nearest_version(wanted, versions)
    if not same:
        w.note(service, f"{where} {version}: the nearest the catalog has (not the same version)")
    flavour = re.sub(r"^v?[\d.]+-?", "", ref.tag)
    if flavour:
        oses = ", ".join(lab.versions[version].os)
        w.note(service, f"{where} {version} runs on {oses}, not the image's {flavour!r} flavour")
    return {"lab": lab_name, "version": version}


def _node_networks(
    w: _Walk, service: str, svc: ComposeService
) -> list[str] | dict[str, NodeNetwork | None]:
    """The node's networks: a list, or a mapping when one of them gives a static address."""
    if svc.network_mode:
        why = (
            "refused by the trust rules (docs/security.md): no host network"
            if svc.network_mode == "host"
            else "a node has its own network namespace on the lab's networks"
        )
        w.drop(service, "network_mode", f"{svc.network_mode!r}: {why}")
        return []
    out: dict[str, NodeNetwork | None] = {}
    for name, attach in svc.networks.items():
        scen = w.nets.get(name, parts.node_name(name))
        address = attach.ipv4_address if attach else None
        if attach is not None:
            for key in attach.extra_keys():
                w.drop(service, f"networks.{name}.{key}", "no scenario key for it")
        ok = address is not None and _address_ok(w, service, scen, address)
        v6 = attach.ipv6_address if attach else None
        ok6 = v6 is not None and _address6_ok(w, service, scen, v6)
        out[scen] = (
            NodeNetwork(ipv4=address if ok else None, ipv6=v6 if ok6 else None)
            if ok or ok6
            else None
        )
    return out if any(out.values()) else list(out)


def _address6_ok(w: _Walk, service: str, network: str, address: str) -> bool:
    """A service's ipv6_address, kept when its network's subnet6 holds it and it is free."""
    sub = w.subnets6.get(network)
    key = f"networks.{network}.ipv6_address"
    if sub is None:
        w.drop(service, key, f"{address}: network {network!r} has no IPv6 subnet to hold it")
        return False
    checked = check_address6(address, sub, network)
    if checked.address is None:
        w.drop(service, key, str(checked.problem))
        return False
    if str(checked.address) in w.used.setdefault(network, set()):
        w.drop(service, key, f"{address}: given to another node on {network!r} already")
        return False
    w.used[network].add(str(checked.address))
    return True


def _address_ok(w: _Walk, service: str, network: str, address: str) -> bool:
    sub = w.subnets.get(network)
    key = f"networks.{network}.ipv4_address"
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        w.drop(service, key, f"{address!r} is not an IPv4 address")
        return False
    if sub is None:
        w.drop(service, key, f"{address}: network {network!r} has no IPv4 subnet to hold it")
        return False
    reserved = {sub.network_address, sub.broadcast_address, sub.network_address + 1}
    if ip not in sub or ip in reserved:
        w.drop(service, key, f"{address}: not a free host address of {sub} (.1 is the gateway)")
        return False
    if address in w.used.setdefault(network, set()):
        w.drop(service, key, f"{address}: given to another node on {network!r} already")
        return False
    w.used[network].add(address)
    return True


def _env(w: _Walk, service: str, svc: ComposeService) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in svc.environment.items():
        if not _ENV_NAME.match(key):
            w.drop(service, f"environment.{key}", "env names use letters, digits and '_'")
        elif value is None:
            w.drop(service, f"environment.{key}", "no value (compose passes the host's own)")
        else:
            out[key] = _unsecret(w, value)
    return out


def _files(w: _Walk, service: str, svc: ComposeService) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, mount in enumerate(svc.volumes):
        key = f"volumes[{i}] {mount.target}"
        if mount.type != "bind" or not mount.source:
            w.drop(service, key, _mount_why(mount.type))
            continue
        found = mounted_files(Path(mount.source), w.inp.compose_dir, mount.target)
        if isinstance(found, str):
            w.drop(service, key, found)
            continue
        for m in found:
            out[m.target] = _fixture(w, m)
    return out


def _mount_why(kind: str) -> str:
    if kind == "volume":
        return "a named volume: its data stays on the customer's engine"
    if kind == "tmpfs":
        return "a tmpfs: the node's own filesystem serves"
    return f"a {kind} mount: not part of a scenario"


def _fixture(w: _Walk, m: Mounted) -> str:
    dest = f"fixtures/{w.inp.name}/{m.relative}"
    if all(f.dest != dest for f in w.fixtures):
        w.fixtures.append(FixtureCopy(m.source, dest))
    return dest


def _command(w: _Walk, svc: ComposeService) -> str | list[str] | None:
    if svc.command is None:
        return None
    if isinstance(svc.command, str):
        return _unsecret(w, svc.command)
    return [_unsecret(w, a) for a in svc.command]


def _health(
    w: _Walk, service: str, hc: Healthcheck | None
) -> Literal["none"] | HealthOverride | None:
    if hc is None:
        return None
    test = [hc.test] if isinstance(hc.test, str) else list(hc.test or [])
    if hc.disable or test[:1] == ["NONE"]:
        return "none"
    if test[:1] == ["CMD-SHELL"]:
        command = " ".join(test[1:])
    elif test[:1] == ["CMD"]:
        command = shlex.join(test[1:])
    else:
        command = " ".join(test)
    if not command:
        return None
    interval = parts.go_duration(hc.interval) or 30.0
    each = parts.go_duration(hc.timeout) or 30.0
    start = parts.go_duration(hc.start_period) or 0.0
    total = min(HEALTH_MAX, start + (hc.retries or 3) * (interval + each))
    if interval > 1.0:
        w.note(
            service, f"healthcheck every {interval:g}s -> checked until ready (at most 1s apart)"
        )
    return HealthOverride(command=_unsecret(w, command), timeout=total, interval=min(interval, 1.0))


def _depends(w: _Walk, service: str, svc: ComposeService) -> list[str]:
    out = []
    for other, dep in svc.depends_on.items():
        if other not in w.nodes:
            w.drop(service, f"depends_on.{other}", "that service is not imported (a profile?)")
            continue
        out.append(w.nodes[other])
        if dep.condition == "service_completed_successfully":
            w.note(service, f"depends_on {other}: waits for it to be ready, not for it to exit")
    return out


def _caps(w: _Walk, service: str, svc: ComposeService) -> list[str]:
    allowed = DEFAULT_CAPABILITIES | {"NET_ADMIN"}
    out = []
    for cap in svc.cap_add:
        c = cap.upper().removeprefix("CAP_")
        if c in allowed:
            out.append(c)
        else:
            w.drop(service, f"cap_add {c}", capability_why(c))
    return out
