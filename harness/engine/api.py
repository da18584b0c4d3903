"""The engine seam: what the run layer, the verbs and the CLI need from a container engine.

`Engine` is a typed interface (a Protocol); only plain frozen dataclasses, dicts of plain data
and bytes cross it, never an engine SDK object. A node is named the way the scenario names it:
(run id, node name); a network by (run id, network name). harness.engine.dockerengine is the
Docker adapter, harness.engine.fake an in-memory one for the run layer's unit tests; a
Kubernetes adapter would sit beside them. Get one from harness.engine.connection.connect_engine.

Nothing here imports the SDK or any other engine module: the layers above may import this
module (and the connect factory) only, which an import-linter contract in pyproject.toml holds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol

from harness.errors import Interrupted
from harness.scenario.resolved import FileSpec, HealthSpec, NetworkSpec, NodeSpec, Topology

if TYPE_CHECKING:  # a type only: `lab ls`/`down`/`gc` do not load the catalog's models
    from harness.scenario.catalog import Catalog

LABEL_RUN = "labharness.run"
LABEL_SCENARIO = "labharness.scenario"
LABEL_NODE = "labharness.node"
LABEL_NETWORK = "labharness.network"
LABEL_OWNER = "labharness.owner"  # host:pid:starttime of the process that created it
LABEL_FOLDER = "labharness.folder"  # the run folder, where run.json says whether the run is live
LABEL_IMAGE = "labharness.image"  # on images the harness built: what they are (lab/env name)
LABEL_INPUTS = "labharness.inputs"  # on images: the hash of their build inputs

ProgressFn = Callable[[dict[str, Any]], None]
Stop = Callable[[], bool]


def object_name(run: str, name: str) -> str:
    """The engine-side name of a run's node or network: `lab-<run>-<name>`."""
    return f"lab-{run}-{name}"


def _never() -> bool:
    return False


# -- plain data crossing the seam ---------------------------------------------------------------


@dataclass(frozen=True)
class RunLabels:
    run: str
    scenario: str
    owner: str
    folder: str

    def base(self) -> dict[str, str]:
        return {
            LABEL_RUN: self.run,
            LABEL_SCENARIO: self.scenario,
            LABEL_OWNER: self.owner,
            LABEL_FOLDER: self.folder,
        }


@dataclass(frozen=True)
class NodeInfo:
    """A run's container as the engine knows it. `node` is the scenario's name for it."""

    id: str
    name: str  # the engine's name: lab-<run>-<node>
    run: str
    node: str
    status: str  # created | running | paused | exited | dead | ... ("" when not inspected)
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NetworkInfo:
    id: str
    name: str  # the engine's name: lab-<run>-<network>
    run: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VolumeInfo:
    name: str
    run: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunObjects:
    """Everything carrying the run label: of one run, or of all of them."""

    containers: tuple[NodeInfo, ...] = ()
    networks: tuple[NetworkInfo, ...] = ()
    volumes: tuple[VolumeInfo, ...] = ()

    def empty(self) -> bool:
        return not (self.containers or self.networks or self.volumes)

    def _all(self) -> tuple[NodeInfo | NetworkInfo | VolumeInfo, ...]:
        return (*self.containers, *self.networks, *self.volumes)

    def runs(self) -> set[str]:
        return {o.run for o in self._all() if o.run}

    def of_run(self, run: str) -> RunObjects:
        return RunObjects(
            tuple(c for c in self.containers if c.run == run),
            tuple(n for n in self.networks if n.run == run),
            tuple(v for v in self.volumes if v.run == run),
        )

    def labels(self) -> dict[str, str]:
        """The labels of the first object (a run's objects all carry the same run labels)."""
        for o in self._all():
            return dict(o.labels)
        return {}


STALE_HINT = (
    "the engine keeps an endpoint no container holds (a libnetwork leftover); nothing of the"
    " run uses it and it only costs its subnet. It clears when the engine restarts:"
    " `systemctl restart docker`, then `docker network rm {name}` (or `lab gc`)"
)


@dataclass(frozen=True)
class StuckNetwork:
    """A network the engine would not remove after every retry, and what clears it."""

    name: str
    id: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"network": self.name, "id": self.id[:12], "reason": self.reason, "hint": self.hint}

    @property
    def hint(self) -> str:
        return STALE_HINT.format(name=self.name)


@dataclass(frozen=True)
class Removal:
    """What a removal did; `stuck` is never an error: it must not fail this run or any later."""

    counts: dict[str, int]
    stuck: tuple[StuckNetwork, ...] = ()
    disconnected: tuple[str, ...] = ()  # foreign containers cut off


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool


@dataclass(frozen=True)
class Background:
    """A command started detached in a node (stop_background ends it and reads its output)."""

    run: str
    node: str
    tag: str
    exec_id: str
    started: float


@dataclass(frozen=True)
class Member:
    """One entry of what was asked for: `name` relative to the asked path's parent folder."""

    name: str
    size: int
    regular: bool
    folder: bool


@dataclass(frozen=True)
class Copied:
    """What a copy into a node moved."""

    files: int
    bytes: int


class CopyStopped(Interrupted):
    """A copy out of a node ended early because stop() turned true (Ctrl-C while collecting)."""


@dataclass(frozen=True)
class WaitFor:
    """A condition a `wait:` step polls: a TCP port listening, a log line, a command exiting 0."""

    kind: Literal["port", "log", "command"]
    value: str  # the port number, the log pattern, or the command

    @property
    def description(self) -> str:
        if self.kind == "port":
            return f"TCP port {self.value} to listen"
        if self.kind == "log":
            return f"a log line matching /{self.value}/"
        return f"command `{self.value}` to exit 0"


@dataclass(frozen=True)
class CaptureInfo:
    """A running capture of one network into a pcap (or, with `warning`, one that could not)."""

    id: str
    network: str
    path: Path
    warning: str | None = None


@dataclass(frozen=True)
class ImpairCheck:
    """What the engine's kernel can do for impairments, and what of the requested it cannot."""

    capabilities: dict[str, bool]
    missing: list[str]


@dataclass(frozen=True)
class BuildOutcome:
    tag: str
    kind: str  # env | lab | plain
    built: bool  # False: it was already on the engine
    seconds: float
    how: str  # reused | debootstrap | registry | build | local


# -- the interface --------------------------------------------------------------------------------


class Engine(Protocol):
    """A container engine. Failures on the engine side are harness.errors.InfraError (exit 3);
    a node that does not exist is InfraError("run R has no node N")."""

    url: str | None  # where it is (None: the local default)

    # version and answers
    def version(self) -> str: ...
    def answers(self) -> bool: ...

    # networks
    def create_network(self, labels: RunLabels, spec: NetworkSpec) -> NetworkInfo: ...
    def network_subnet(self, run: str, network: str) -> str: ...

    # what a run (or every run, run=None) holds, and removing it
    def find(self, run: str | None = None, sparse: bool = False) -> RunObjects: ...
    def remove(self, objs: RunObjects, parallel: int = 8) -> Removal: ...

    # nodes
    def create_node(
        self, labels: RunLabels, spec: NodeSpec, image: str, networks: dict[str, str]
    ) -> NodeInfo: ...
    def start_node(self, run: str, node: str) -> None: ...
    def wait_ready(
        self,
        run: str,
        node: str,
        spec: HealthSpec,
        cancel: threading.Event | None = None,
        since: datetime | None = None,  # a restarted node: only its output since then counts
    ) -> float: ...
    def node(self, run: str, node: str) -> NodeInfo: ...
    def addresses(self, run: str, node: str) -> dict[str, str]: ...
    def addresses6(self, run: str, node: str) -> dict[str, str]: ...  # networks with IPv6
    def published(self, run: str, node: str) -> dict[str, str]: ...  # "80/tcp" -> 127.0.0.1:N
    def inspect(self, run: str, node: str) -> dict[str, Any]: ...
    def logs(self, run: str, node: str, since: datetime | None = None) -> bytes: ...
    def output_chunks(
        self, run: str, node: str, stop: Stop = _never, since: datetime | None = None
    ) -> Iterator[bytes]: ...
    def node_fault(self, run: str, node: str, action: str) -> dict[str, Any]: ...
    def interactive_argv(self, run: str, node: str, shell: str = "sh") -> list[str]: ...

    # exec
    def exec(self, run: str, node: str, command: str, timeout: float) -> ExecResult: ...
    def exec_argv(
        self, run: str, node: str, argv: list[str], stdin: IO[bytes] | None = None
    ) -> tuple[int, bytes, bytes]: ...
    def start_background(self, run: str, node: str, command: str, tag: str) -> Background: ...
    def stop_background(self, bg: Background) -> ExecResult: ...
    def condition_met(self, run: str, node: str, cond: WaitFor) -> bool: ...

    # files out (streamed, capped by the caller) and single small files
    def read_file(
        self, run: str, node: str, path: str, limit: int = 16 * 1024 * 1024
    ) -> bytes | None: ...
    def put_path(self, run: str, node: str, source: Path, parent: str, name: str) -> Copied: ...
    def put_files(self, run: str, node: str, files: tuple[FileSpec, ...]) -> None: ...
    def file_entries(
        self, run: str, node: str, path: str, stop: Stop = _never
    ) -> Iterator[tuple[Member, IO[bytes] | None]]: ...

    # impairments: tc/iptables inside nodes
    def check_impairments(self, requests: list[dict[str, Any]], image: str) -> ImpairCheck: ...
    def impair(
        self,
        run: str,
        node: str,
        network: str,
        address: str,
        *,
        loss: str | None = None,
        rate: str | None = None,
        delay: str | None = None,
        jitter: str | None = None,
        duplicate: str | None = None,
    ) -> dict[str, Any]: ...
    def clear_impairment(
        self, run: str, node: str, network: str | None = None, address: str | None = None
    ) -> dict[str, Any]: ...
    def partition(
        self, run: str, node: str, target: str, addresses: list[str]
    ) -> dict[str, Any]: ...
    def partition_nodes(
        self, run: str, a: str, b: str, a_addresses: list[str], b_addresses: list[str]
    ) -> dict[str, Any]: ...
    def heal(self, run: str, node: str, target: str | None = None) -> dict[str, Any]: ...
    def heal_nodes(self, run: str, a: str, b: str) -> dict[str, Any]: ...

    # capture of a run's network (network: the scenario's name)
    def start_capture(self, run: str, network: str, out: Path) -> CaptureInfo: ...
    def stop_capture(self, cap: CaptureInfo) -> dict[str, Any]: ...
    def stop_orphan_captures(self, folder: Path) -> list[int]: ...

    # images
    def ensure_images(
        self,
        topology: Topology,
        catalog: Catalog,
        *,
        copy_from: str | None = None,
        on_progress: ProgressFn | None = None,
    ) -> dict[str, str]: ...
    def ensure_plan(self, plan: Any, on_progress: ProgressFn | None = None) -> BuildOutcome: ...
    def list_images(self, catalog: Catalog | None = None) -> list[dict[str, Any]]: ...
    def has_image(self, ref: str) -> bool: ...
    def prune_images(
        self, catalog: Catalog, *, keep_current: bool = True, only: str | None = None
    ) -> list[dict[str, Any]]: ...
