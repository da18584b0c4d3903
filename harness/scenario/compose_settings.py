"""A compose service's container settings as a scenario node's (docs/import-compose.md):
extra_hosts, dns, cpus, mem_limit, tmpfs, sysctls, ulimits, user, working_dir, entrypoint and
ports,
read from `docker-compose config --format json` (normalised: sizes in bytes, hosts as
`name=address`). Each value is checked with the scenario schema's own type, so what the
scenario could not hold is said (dropped, with why) rather than written invalid."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError

from harness.scenario.compose_model import ComposePort, ComposeService
from harness.scenario.schema import Node

Drop = Callable[[str, str], None]  # (key, why)
DEFAULT_TMPFS = "64m"  # a compose tmpfs without a size (Docker's: half the RAM) gets this


def _field(name: str, value: Any, drop: Drop, key: str) -> Any:
    """`value` as Node.<name> would hold it, or None (dropped, saying why)."""
    try:
        kind: Any = Node.model_fields[name].annotation
        return TypeAdapter(kind).validate_python(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        drop(key, f"not a value a scenario holds{f' at {where}' if where else ''}: {first['msg']}")
        return None


def _hosts(value: list[str] | dict[str, Any], drop: Drop) -> dict[str, str]:
    pairs = list(value.items()) if isinstance(value, dict) else []
    for entry in value if isinstance(value, list) else []:
        name, sep, addr = entry.partition("=")
        if not sep:  # the short form name:address (an IPv6 address has colons of its own)
            name, _, addr = entry.partition(":")
        pairs.append((name, addr))
    out: dict[str, str] = {}
    for name, addr in pairs:
        addr = str(addr)
        if addr == "host-gateway":
            drop("extra_hosts", f"{name}=host-gateway: a node cannot reach the host")
            continue
        out[str(name)] = addr
    return out


def _tmpfs(entries: list[str], drop: Drop, note: Callable[[str], None]) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in entries:
        path, _, opts = entry.partition(":")
        size = next((o[5:] for o in opts.split(",") if o.startswith("size=")), None)
        if size is None:
            note(f"tmpfs {path} has no size in the compose file: it gets {DEFAULT_TMPFS}")
            size = DEFAULT_TMPFS
        others = [o for o in opts.split(",") if o and not o.startswith("size=")]
        if others:
            drop("tmpfs", f"{path}: options {','.join(others)} (a scenario sets the size only)")
        out[path] = size
    return out


def _ulimits(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, limit in value.items():
        if isinstance(limit, dict):
            soft, hard = limit.get("soft"), limit.get("hard")
            out[name] = f"{soft}:{hard}" if soft != hard else soft
        else:
            out[name] = limit
    return out


def _sysctls(value: dict[str, Any] | list[str]) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    return dict(e.partition("=")[::2] for e in value)


def _mem(value: int | str) -> int | str:
    return int(value) if str(value).isdigit() else value


def _ports(value: list[ComposePort], note: Callable[[str], None]) -> list[int | str]:
    """Container ports only: the engine picks each host port, on 127.0.0.1 (a fixed one would
    clash between matrix cells and with this machine's own services), said when one was given."""
    out: list[int | str] = []
    for p in value:
        entry: int | str = p.target if p.protocol == "tcp" else f"{p.target}/{p.protocol}"
        if entry in out:
            continue  # one container port is published once
        out.append(entry)
        if p.published not in (None, ""):
            where = f"{p.host_ip}:" if p.host_ip else ""
            note(
                f"port {p.target}/{p.protocol} is published on 127.0.0.1 at a port the engine "
                f"picks, not {where}{p.published} (write '{p.published}:{p.target}' in "
                "`ports:` to fix the number)"
            )
    return out


def _raw(
    svc: ComposeService, drop: Drop, note: Callable[[str], None]
) -> list[tuple[str, str, Any]]:
    """(node field, compose key, value) for each setting the service gives."""
    tmpfs = [svc.tmpfs] if isinstance(svc.tmpfs, str) else svc.tmpfs or []
    given: list[tuple[str, str, Any, Callable[[Any], Any]]] = [
        ("extra_hosts", "extra_hosts", svc.extra_hosts, lambda v: _hosts(v, drop)),
        ("dns", "dns", svc.dns, lambda v: [v] if isinstance(v, str) else v),
        ("cpus", "cpus", svc.cpus, lambda v: v),
        ("memory", "mem_limit", svc.mem_limit, _mem),
        ("tmpfs", "tmpfs", tmpfs, lambda v: _tmpfs(v, drop, note)),
        ("sysctls", "sysctls", svc.sysctls, _sysctls),
        ("ulimits", "ulimits", svc.ulimits, _ulimits),
        ("user", "user", svc.user, lambda v: v),
        ("workdir", "working_dir", svc.working_dir, lambda v: v),
        ("entrypoint", "entrypoint", svc.entrypoint, lambda v: v),
        ("ports", "ports", svc.ports, lambda v: _ports(v, note)),
    ]
    return [(f, k, how(v)) for f, k, v, how in given if v not in (None, "", 0, "0", [], {})]


def settings(svc: ComposeService, drop: Drop, note: Callable[[str], None]) -> dict[str, Any]:
    """Node keyword arguments for the service's settings (only those it sets), each checked
    with the scenario's own type."""
    out: dict[str, Any] = {}
    for field, key, value in _raw(svc, drop, note):
        if value in ({}, []):
            continue
        checked = _field(field, value, drop, key)
        if checked is not None:
            out[field] = checked
    return out
