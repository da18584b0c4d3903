"""The resolved topology: what the engine layer builds. Plain frozen data, no YAML positions.

The raw scenario (schema.py) keeps the user's shape and positions for error messages; this is the
form after interpolation, defaults and catalog lookups, so the provisioner never re-reads YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    subnet: str | None = None  # CIDR; None lets the engine choose (parallel runs never collide)
    internal: bool = False
    mtu: int | None = None  # None: the engine's (1500 on a default bridge)
    ipv6: bool = False  # dual stack: IPv6 beside the network's IPv4
    # CIDR; None with ipv6 on: the engine adapter picks a random fd00::/8 /64 (runs never collide)
    subnet6: str | None = None


@dataclass(frozen=True)
class Attachment:
    network: str
    ipv4: str | None = None
    ipv6: str | None = None  # a static IPv6 address (its network has subnet6)
    has_ipv6: bool = False  # the network has IPv6: the node gets an address there


@dataclass(frozen=True)
class FileSpec:
    target: str  # absolute path inside the node
    source: Path  # absolute path on the host, inside the project tree
    mode: int | None = None  # None: the source file's own (scripts stay executable)
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class HealthSpec:
    """How to know a node is ready. kind 'none' means running is enough."""

    kind: str = "none"  # none | command | port | log
    command: str | None = None  # run with `sh -c` inside the node; ready when exit 0
    port: int | None = None  # ready when something listens on this TCP port inside the node
    log: str | None = None  # ready when this regex appears in the node's output
    timeout: float = 60.0  # seconds
    interval: float = 0.25  # seconds between checks


@dataclass(frozen=True)
class LabImage:
    """A node built from labs/<lab>/ for one version on one environment."""

    lab: str
    version: str
    os: str


@dataclass(frozen=True)
class PlainImage:
    """A node from an image the engine already has (`image:` in the scenario)."""

    ref: str


@dataclass(frozen=True)
class EnvImage:
    """A bare node: just the base OS image of an environment (`os:` without `lab:`)."""

    os: str


ImageSource = LabImage | PlainImage | EnvImage


def node_os(source: ImageSource) -> str | None:
    """The environment a node runs on (None: a plain image, whose OS is unknown)."""
    return source.os if isinstance(source, LabImage | EnvImage) else None


@dataclass(frozen=True)
class NodeSpec:
    name: str
    image: ImageSource
    networks: tuple[Attachment, ...]
    files: tuple[FileSpec, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] | None = None  # None: the image's (or lab's) default
    health: HealthSpec = field(default_factory=HealthSpec)
    log_paths: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()  # e.g. NET_ADMIN when impairments target this node
    depends_on: tuple[str, ...] = ()  # nodes that must be ready before this one starts
    settings: NodeSettings = field(default_factory=lambda: NodeSettings())


@dataclass(frozen=True)
class PublishedPort:
    """A container port published on the host's 127.0.0.1 (host None: the engine picks)."""

    port: int
    protocol: str = "tcp"  # tcp | udp | sctp
    host: int | None = None

    @property
    def key(self) -> str:
        return f"{self.port}/{self.protocol}"

    def flag(self) -> str:
        return f"127.0.0.1:{self.host or ''}:{self.key}"


# Where a node with `clock:` gets libfaketime (copied in before it starts, never in its image).
FAKETIME_LIBRARY = "/usr/local/lib/labharness-faketime/libfaketime.so.1"
FAKETIME_DIR = "/labharness-faketime"  # where the libfaketime image holds it


@dataclass(frozen=True)
class NodeSettings:
    """The container settings a recreate may need beyond image, command, env and networks:
    each maps onto one Docker create option (harness/engine/objects.py)."""

    extra_hosts: tuple[tuple[str, str], ...] = ()  # name -> address in /etc/hosts
    dns: tuple[str, ...] = ()
    cpus: float | None = None
    memory: int | None = None  # bytes; swap the same (none)
    tmpfs: tuple[tuple[str, int], ...] = ()  # path -> size in bytes
    sysctls: tuple[tuple[str, str], ...] = ()
    ulimits: tuple[tuple[str, int, int], ...] = ()  # name, soft, hard
    user: str | None = None
    workdir: str | None = None
    entrypoint: tuple[str, ...] | None = None
    ports: tuple[PublishedPort, ...] = ()  # always on 127.0.0.1
    clock: int | None = None  # seconds ahead (+) or behind (-) the real time, via libfaketime

    def empty(self) -> bool:
        return self == NodeSettings()

    def docker_flags(self) -> list[str]:
        """The same settings as `docker create` flags (REPRODUCE.md), before the image; the
        entrypoint's own arguments are not flags: entry_args() goes after the image."""
        out: list[str] = []
        for name, addr in self.extra_hosts:
            out += ["--add-host", f"{name}:{addr}"]
        for server in self.dns:
            out += ["--dns", server]
        if self.cpus is not None:
            out += ["--cpus", f"{self.cpus:g}"]
        if self.memory is not None:
            out += ["--memory", str(self.memory), "--memory-swap", str(self.memory)]
        for path, size in self.tmpfs:
            out += ["--tmpfs", f"{path}:size={size}"]
        for key, value in self.sysctls:
            out += ["--sysctl", f"{key}={value}"]
        for name, soft, hard in self.ulimits:
            out += ["--ulimit", f"{name}={soft}:{hard}"]
        if self.user is not None:
            out += ["--user", self.user]
        if self.workdir is not None:
            out += ["--workdir", self.workdir]
        out += self._late_flags()
        if self.entrypoint:  # last: its arguments follow the image (entry_args)
            out += ["--entrypoint", self.entrypoint[0]]
        return out

    def _late_flags(self) -> list[str]:
        out: list[str] = []
        for p in self.ports:
            out += ["-p", p.flag()]
        for key, value in self.clock_env():
            out += ["-e", f"{key}={value}"]
        return out

    def clock_env(self) -> tuple[tuple[str, str], ...]:
        """The environment that shifts the node's wall clock (libfaketime, preloaded into every
        dynamically linked program the node's command or a `docker exec` starts); the monotonic
        clock stays real, as on a machine whose time is merely set wrong."""
        if self.clock is None:
            return ()
        return (
            ("LD_PRELOAD", FAKETIME_LIBRARY),
            ("FAKETIME", f"{self.clock:+d}"),
            ("DONT_FAKE_MONOTONIC", "1"),
        )

    def entry_args(self) -> list[str]:
        return list(self.entrypoint[1:]) if self.entrypoint else []


@dataclass(frozen=True)
class Topology:
    scenario: str
    networks: tuple[NetworkSpec, ...]
    nodes: tuple[NodeSpec, ...]
    source: Path | None = None  # the scenario file, for the run folder

    def node(self, name: str) -> NodeSpec:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)
