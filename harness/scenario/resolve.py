"""From the validated raw model to the engine's dataclasses (resolved.py), with catalog defaults.

Default rules (documented in docs/scenario-format.md):
- os omitted: the lab's `default_os` when the chosen version builds on it (or no version is
  given), else the first OS the version builds on; without `default_os`, the lab's first OS.
- version omitted: the last version listed in lab.yaml that builds on that os.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from harness.scenario.catalog import Catalog, LabDef, LabHealth
from harness.scenario.interpolate import as_text
from harness.scenario.resolved import (
    Attachment,
    EnvImage,
    FileSpec,
    HealthSpec,
    ImageSource,
    LabImage,
    NetworkSpec,
    NodeSettings,
    NodeSpec,
    PlainImage,
    PublishedPort,
    Topology,
)
from harness.scenario.schema import (
    PORT_PATTERN,
    HealthOverride,
    NetworkDef,
    Node,
    Scenario,
    clock_seconds,
)


def default_os(lab: LabDef, version: str | None = None) -> str | None:
    if version is not None and version in lab.versions:
        builds_on = lab.versions[version].os
        if lab.default_os in builds_on:
            return lab.default_os
        return builds_on[0]
    if lab.default_os is not None:
        return lab.default_os
    oses = lab.oses()
    return oses[0] if oses else None


def default_version(lab: LabDef, os_name: str) -> str | None:
    versions = lab.versions_for(os_name)
    return versions[-1] if versions else None


def image_of(node: Node, catalog: Catalog) -> ImageSource:
    if node.image is not None:
        return PlainImage(node.image)
    if node.lab is not None:
        lab = catalog.labs[node.lab].definition
        os_name = node.os or default_os(lab, node.version)
        if os_name is None:  # pragma: no cover - a LabDef always has one version with one os
            raise ValueError(f"lab {node.lab!r} builds on no os")
        version = node.version or default_version(lab, os_name)
        if version is None:  # pragma: no cover - validate.py reports this first
            raise ValueError(f"lab {node.lab!r} has no version for {os_name!r}")
        return LabImage(node.lab, version, os_name)
    if node.os is not None:
        return EnvImage(node.os)
    raise ValueError("node has neither lab, image nor os")  # pragma: no cover


def _command(node: Node, lab: LabDef | None) -> tuple[str, ...] | None:
    if isinstance(node.command, str):
        return ("sh", "-c", node.command)
    if isinstance(node.command, list):
        return tuple(node.command)
    if lab is not None and lab.command:
        return tuple(lab.command)
    return None


def _kind(command: str | None, port: int | None, log: str | None) -> str:
    if command is not None:
        return "command"
    if port is not None:
        return "port"
    if log is not None:
        return "log"
    return "none"


def _health(node: Node, lab: LabDef | None) -> HealthSpec:
    base: LabHealth | None = lab.health if lab is not None else None
    given = "health" in node.model_fields_set
    override = node.health
    if given and (override is None or override == "none"):
        return HealthSpec()
    command = base.command if base else None
    port = base.port if base else None
    log = base.log if base else None
    timeout = base.timeout if base else HealthSpec.timeout
    interval = base.interval if base else HealthSpec.interval
    if isinstance(override, HealthOverride):
        if {"command", "port", "log"} & override.model_fields_set:
            command, port, log = override.command, override.port, override.log
        if override.timeout is not None:
            timeout = override.timeout
        if override.interval is not None:
            interval = override.interval
    kind = _kind(command, port, log)
    return HealthSpec(
        kind=kind,
        command=command if kind == "command" else None,
        port=port if kind == "port" else None,
        log=log if kind == "log" else None,
        timeout=timeout,
        interval=interval,
    )


def _dedupe(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _attachments(node: Node, v6: frozenset[str]) -> tuple[Attachment, ...]:
    """A node's networks in order; `v6` names the networks that have IPv6."""
    if isinstance(node.networks, list):
        return tuple(Attachment(n, has_ipv6=n in v6) for n in dict.fromkeys(node.networks))
    return tuple(
        Attachment(
            name,
            spec.ipv4 if spec is not None else None,
            spec.ipv6 if spec is not None else None,
            has_ipv6=name in v6,
        )
        for name, spec in node.networks.items()
    )


def _network(name: str, spec: NetworkDef | None) -> NetworkSpec:
    if spec is None:
        return NetworkSpec(name)
    ipv6 = bool(spec.ipv6) or spec.subnet6 is not None  # subnet6 turns IPv6 on
    return NetworkSpec(name, spec.subnet, spec.internal, spec.mtu, ipv6, spec.subnet6)


def _ulimit(value: int | str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    soft, hard = value.split(":")
    return int(soft), int(hard)


def _port(value: str) -> PublishedPort:
    m = re.fullmatch(PORT_PATTERN, value)
    assert m is not None  # the schema checked it
    host, port, proto = m.groups()
    return PublishedPort(int(port), proto or "tcp", int(host) if host else None)


def _settings(node: Node) -> NodeSettings:
    entry = node.entrypoint
    return NodeSettings(
        extra_hosts=tuple(sorted((k, str(v)) for k, v in node.extra_hosts.items())),
        dns=tuple(str(d) for d in node.dns),
        cpus=node.cpus,
        memory=node.memory,
        tmpfs=tuple(sorted(node.tmpfs.items())),
        sysctls=tuple(sorted((k, as_text(v)) for k, v in node.sysctls.items())),
        ulimits=tuple(sorted((k, *_ulimit(v)) for k, v in node.ulimits.items())),
        user=node.user,
        workdir=node.workdir,
        entrypoint=(tuple(shlex.split(entry)) if isinstance(entry, str) else tuple(entry))
        if entry is not None
        else None,
        ports=tuple(_port(p) for p in node.ports),
        clock=clock_seconds(node.clock) if node.clock is not None else None,
    )


def _files(node: Node, root: Path) -> tuple[FileSpec, ...]:
    """Each `files:` entry; a folder source is every regular file under it, at the same
    relative path under the target (validate checked them: regular, inside, within limits)."""
    out: list[FileSpec] = []
    for target, value in node.files.items():
        text = value if isinstance(value, str) else value.source
        mode = int(value.mode, 8) if not isinstance(value, str) and value.mode else None
        owner = value.owner if not isinstance(value, str) else None
        uid, _, gid = (owner or "0").partition(":")
        ids = {"uid": int(uid), "gid": int(gid or uid)}
        src = _source(text, root)
        if src.is_dir():
            for f in sorted(p for p in src.rglob("*") if p.is_file()):
                rel = f.relative_to(src).as_posix()
                out.append(FileSpec(f"{target.rstrip('/')}/{rel}", f, mode, **ids))
        else:
            out.append(FileSpec(target, src, mode, **ids))
    return tuple(out)


def _source(value: str, root: Path) -> Path:
    p = Path(value)
    return (p if p.is_absolute() else root / p).resolve()


def resolve_topology(
    model: Scenario, *, catalog: Catalog, root: Path, source: Path | None = None
) -> Topology:
    """The engine's view of a valid scenario (validate first: this assumes every name exists)."""
    impaired = {imp.node for imp in model.topology.impairments}
    networks = tuple(_network(name, spec) for name, spec in model.topology.networks.items())
    v6 = frozenset(n.name for n in networks if n.ipv6)
    nodes: list[NodeSpec] = []
    for name, node in model.topology.nodes.items():
        lab = catalog.labs[node.lab].definition if node.lab and node.image is None else None
        caps = [*(lab.cap_add if lab else []), *node.cap_add]
        if name in impaired:
            caps.append("NET_ADMIN")
        env: dict[str, Any] = node.env
        nodes.append(
            NodeSpec(
                name=name,
                image=image_of(node, catalog),
                networks=_attachments(node, v6),
                files=_files(node, root),
                env=tuple(sorted((k, as_text(v)) for k, v in env.items())),
                command=_command(node, lab),
                health=_health(node, lab),
                log_paths=tuple(lab.logs) if lab else (),
                cap_add=_dedupe(caps),
                depends_on=_dedupe(node.depends_on),
                settings=_settings(node),
            )
        )
    return Topology(model.scenario, networks, tuple(nodes), source)
