"""The Docker adapter: harness.engine.api.Engine over the Docker SDK.

Each method delegates to the module that does the work (objects, execs, copyout, waits,
impair, faults, capture, images, targets); what comes back is plain data. SDK objects stay
here: a node is looked up by (run, node) each time, except between create_node and the end of
its bring-up (start, wait, addresses), which reuse the container just created. Background
commands and captures are kept here by id; the caller holds only their plain handle.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from harness.engine import capture, copyout, execs, faults, handson, impair, objects, waits
from harness.engine import client as docker_client
from harness.engine.api import (
    LABEL_NETWORK,
    LABEL_NODE,
    LABEL_RUN,
    Background,
    BuildOutcome,
    CaptureInfo,
    Copied,
    Engine,
    ExecResult,
    ImpairCheck,
    Member,
    NetworkInfo,
    NodeInfo,
    ProgressFn,
    Removal,
    RunLabels,
    RunObjects,
    Stop,
    VolumeInfo,
    WaitFor,
    _never,
    object_name,
)
from harness.engine.client import engine_errors
from harness.errors import InfraError
from harness.scenario.resolved import FileSpec, HealthSpec, NetworkSpec, NodeSpec, Topology

if TYPE_CHECKING:  # the image builder and the catalog load only for the verbs that build
    from harness.scenario.catalog import Catalog


def _labels_of(attrs: dict[str, Any]) -> dict[str, str]:
    labels = attrs.get("Labels") or (attrs.get("Config") or {}).get("Labels") or {}
    return {str(k): str(v) for k, v in labels.items()}


def node_info(c: Any) -> NodeInfo:
    """A container as plain data (its labels from a full inspect or from a sparse list)."""
    labels = _labels_of(c.attrs)
    name = str(c.attrs.get("Name") or (c.attrs.get("Names") or [""])[0] or c.id).lstrip("/")
    state = c.attrs.get("State")
    status = str(state.get("Status", "")) if isinstance(state, dict) else str(state or "")
    return NodeInfo(
        id=str(c.id),
        name=name,
        run=labels.get(LABEL_RUN, ""),
        node=labels.get(LABEL_NODE, name),
        status=status,
        labels=labels,
    )


def _network_info(n: Any) -> NetworkInfo:
    labels = _labels_of(n.attrs)
    return NetworkInfo(str(n.id), str(n.attrs.get("Name", n.id)), labels.get(LABEL_RUN, ""), labels)


def _volume_info(v: Any) -> VolumeInfo:
    labels = _labels_of(v.attrs)
    return VolumeInfo(str(v.attrs.get("Name", v.id)), labels.get(LABEL_RUN, ""), labels)


class DockerEngine:
    """One Docker engine (local, tcp+TLS or ssh), through a cached SDK client."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url
        self.client = docker_client.connect(url)  # InfraError with one sentence if it is not there
        self._lock = threading.Lock()
        self._fresh: dict[tuple[str, str], Any] = {}  # created, not yet through bring-up
        self._background: dict[str, execs.Background] = {}
        self._captures: dict[str, capture.Capture] = {}

    # -- version and answers ----------------------------------------------------------------

    def version(self) -> str:
        return docker_client.engine_version(self.client)

    def answers(self) -> bool:
        return docker_client.answers(self.url)

    # -- containers by name -----------------------------------------------------------------

    def _container(self, run: str, node: str) -> Any:
        return objects.container_for(self.client, run, node)

    def _fresh_or_get(self, run: str, node: str) -> Any:
        with self._lock:
            c = self._fresh.get((run, node))
        return c if c is not None else self._container(run, node)

    # -- networks ---------------------------------------------------------------------------

    def create_network(self, labels: RunLabels, spec: NetworkSpec) -> NetworkInfo:
        net = objects.create_network(self.client, labels, spec)
        return NetworkInfo(
            str(net.id),
            str(net.name),
            labels.run,
            {**labels.base(), LABEL_NETWORK: spec.name},
        )

    def network_subnet(self, run: str, network: str) -> str:
        return objects.network_subnet(self.client, run, network)

    # -- find and remove --------------------------------------------------------------------

    def find(self, run: str | None = None, sparse: bool = False) -> RunObjects:
        found = objects.find(self.client, run, sparse=sparse)
        return RunObjects(
            tuple(node_info(c) for c in found.containers),
            tuple(_network_info(n) for n in found.networks),
            tuple(_volume_info(v) for v in found.volumes),
        )

    def remove(self, objs: RunObjects, parallel: int = 8) -> Removal:
        """Remove exactly these objects (by id), the way objects.remove_all does."""
        with self._lock:
            for key in [k for k in self._fresh if k[0] in objs.runs()]:
                del self._fresh[key]
        c = self.client
        sdk = objects.RunObjects(
            containers=[
                c.containers.prepare_model({"Id": o.id, "Name": o.name, "Labels": dict(o.labels)})
                for o in objs.containers
            ],
            networks=[
                c.networks.prepare_model({"Id": o.id, "Name": o.name, "Labels": dict(o.labels)})
                for o in objs.networks
            ],
            volumes=[
                c.volumes.prepare_model({"Name": o.name, "Labels": dict(o.labels)})
                for o in objs.volumes
            ],
        )
        return objects.remove_all(c, sdk, parallel)

    # -- nodes --------------------------------------------------------------------------------

    def create_node(
        self, labels: RunLabels, spec: NodeSpec, image: str, networks: dict[str, str]
    ) -> NodeInfo:
        c = objects.create_node(self.client, labels, spec, image, networks)
        with self._lock:
            self._fresh[(labels.run, spec.name)] = c
        return NodeInfo(
            str(c.id), str(c.name), labels.run, spec.name, "created", dict(c.labels or {})
        )

    def start_node(self, run: str, node: str) -> None:
        objects.start(self._fresh_or_get(run, node), node)

    def wait_ready(
        self,
        run: str,
        node: str,
        spec: HealthSpec,
        cancel: threading.Event | None = None,
        since: datetime | None = None,
    ) -> float:
        return waits.wait_ready(self._fresh_or_get(run, node), node, spec, cancel, since)

    def addresses(self, run: str, node: str) -> dict[str, str]:
        with self._lock:
            c = self._fresh.pop((run, node), None)  # the end of its bring-up
        return objects.addresses(c if c is not None else self._container(run, node))

    def addresses6(self, run: str, node: str) -> dict[str, str]:
        with self._lock:
            c = self._fresh.get((run, node))  # before addresses(), which ends the bring-up
        return objects.addresses6(c if c is not None else self._container(run, node))

    def published(self, run: str, node: str) -> dict[str, str]:
        with self._lock:
            c = self._fresh.get((run, node))  # before addresses(), which ends the bring-up
        return objects.published(c if c is not None else self._container(run, node))

    def node(self, run: str, node: str) -> NodeInfo:
        c = self._container(run, node)
        return node_info(c)

    def inspect(self, run: str, node: str) -> dict[str, Any]:
        return dict(self._container(run, node).attrs)

    def logs(self, run: str, node: str, since: datetime | None = None) -> bytes:
        c = self._container(run, node)
        if since is None:
            return objects.logs(c)
        return execs.logs_since(c, since).encode()

    def output_chunks(
        self, run: str, node: str, stop: Stop = _never, since: datetime | None = None
    ) -> Iterator[bytes]:
        return copyout.output_chunks(self._container(run, node), stop, since)

    def node_fault(self, run: str, node: str, action: str) -> dict[str, Any]:
        return faults.inject(self._container(run, node), node, action)

    def interactive_argv(self, run: str, node: str, shell: str = "sh") -> list[str]:
        return objects.interactive_argv(self._container(run, node).name, shell)

    # -- exec ---------------------------------------------------------------------------------

    def exec(self, run: str, node: str, command: str, timeout: float) -> ExecResult:
        return execs.run(self._container(run, node), node, command, timeout)

    def exec_argv(
        self, run: str, node: str, argv: list[str], stdin: IO[bytes] | None = None
    ) -> tuple[int, bytes, bytes]:
        if stdin is not None:
            return handson.exec_with_stdin(self._container(run, node), argv, stdin)
        return objects.exec_command(self._container(run, node), argv)

    def start_background(self, run: str, node: str, command: str, tag: str) -> Background:
        bg = execs.start_background(self._container(run, node), node, command, tag)
        with self._lock:
            self._background[bg.exec_id] = bg
        return Background(run, node, tag, bg.exec_id, bg.started)

    def stop_background(self, bg: Background) -> ExecResult:
        with self._lock:
            held = self._background.pop(bg.exec_id, None)
        if held is None:
            raise InfraError(f"no background command {bg.tag} on {bg.node}")
        return execs.stop_background(held)

    def condition_met(self, run: str, node: str, cond: WaitFor) -> bool:
        check: waits.Check
        if cond.kind == "port":
            check = waits.PortCheck(int(cond.value))
        elif cond.kind == "log":
            check = waits.LogCheck(cond.value)
        else:
            check = waits.CommandCheck(cond.value)
        return check.ready(self._container(run, node))

    # -- files out ----------------------------------------------------------------------------

    def read_file(
        self, run: str, node: str, path: str, limit: int = 16 * 1024 * 1024
    ) -> bytes | None:
        return execs.read_file(self._container(run, node), path, limit)

    def put_path(self, run: str, node: str, source: Path, parent: str, name: str) -> Copied:
        files, size = handson.put_path(self._container(run, node), source, parent, name)
        return Copied(files, size)

    def put_files(self, run: str, node: str, files: tuple[FileSpec, ...]) -> None:
        """A running node's `files:` replaced in place, as create_node puts them (same modes)."""
        c = self._container(run, node)
        with engine_errors(f"copy files into node {node}"):
            objects.put_files(str(c.id), self.client.api, files)

    def file_entries(
        self, run: str, node: str, path: str, stop: Stop = _never
    ) -> Iterator[tuple[Member, IO[bytes] | None]]:
        return copyout.entries(self._container(run, node), path, stop)

    # -- impairments --------------------------------------------------------------------------

    def check_impairments(self, requests: list[dict[str, Any]], image: str) -> ImpairCheck:
        caps = impair.capabilities(self.client, image)
        missing = impair.unsupported(requests, caps, impair.engine_kernel(self.client))
        return ImpairCheck(caps, missing)

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
    ) -> dict[str, Any]:
        c = self._container(run, node)
        return impair.apply(
            c,
            network,
            address,
            loss=loss,
            rate=rate,
            delay=delay,
            jitter=jitter,
            duplicate=duplicate,
        )

    def clear_impairment(
        self, run: str, node: str, network: str | None = None, address: str | None = None
    ) -> dict[str, Any]:
        return impair.clear(self._container(run, node), network, address)

    def partition(self, run: str, node: str, target: str, addresses: list[str]) -> dict[str, Any]:
        return impair.partition(self._container(run, node), target, addresses)

    def partition_nodes(
        self, run: str, a: str, b: str, a_addresses: list[str], b_addresses: list[str]
    ) -> dict[str, Any]:
        ca, cb = self._container(run, a), self._container(run, b)
        return impair.partition_nodes(
            ca, a, cb, b, a_addresses=a_addresses, b_addresses=b_addresses
        )

    def heal(self, run: str, node: str, target: str | None = None) -> dict[str, Any]:
        return impair.heal(self._container(run, node), target)

    def heal_nodes(self, run: str, a: str, b: str) -> dict[str, Any]:
        return impair.heal_nodes(self._container(run, a), a, self._container(run, b), b)

    # -- capture ------------------------------------------------------------------------------

    def start_capture(self, run: str, network: str, out: Path) -> CaptureInfo:
        cap = capture.start(self.client, object_name(run, network), out)
        key = str(cap.path)
        with self._lock:
            self._captures[key] = cap
        return CaptureInfo(key, network, cap.path, cap.warning)

    def stop_capture(self, cap: CaptureInfo) -> dict[str, Any]:
        with self._lock:
            held = self._captures.pop(cap.id, None)
        if held is None:
            return {"network": cap.network, "path": None, "warning": cap.warning}
        return held.stop()

    def stop_orphan_captures(self, folder: Path) -> list[int]:
        return capture.stop_orphans(folder)

    # -- images -------------------------------------------------------------------------------

    def ensure_images(
        self,
        topology: Topology,
        catalog: Catalog,
        *,
        copy_from: str | None = None,
        on_progress: ProgressFn | None = None,
    ) -> dict[str, str]:
        from harness.engine import images as engine_images

        if copy_from:
            from harness.engine.targets import ensure_images_on

            return ensure_images_on(
                self.client, topology, catalog, copy_from=copy_from, on_progress=on_progress
            )
        return engine_images.ensure_images(self.client, topology, catalog, on_progress=on_progress)

    def ensure_plan(self, plan: Any, on_progress: ProgressFn | None = None) -> BuildOutcome:
        from harness.engine import images as engine_images

        return engine_images.ensure_plan(self.client, plan, on_progress=on_progress)

    def list_images(self, catalog: Catalog | None = None) -> list[dict[str, Any]]:
        from harness.engine import images as engine_images

        return engine_images.list_images(self.client, catalog)

    def has_image(self, ref: str) -> bool:
        from harness.engine import images as engine_images

        return engine_images.image_exists(self.client, ref)

    def prune_images(
        self, catalog: Catalog, *, keep_current: bool = True, only: str | None = None
    ) -> list[dict[str, Any]]:
        from harness.engine import images as engine_images

        return engine_images.prune_images(
            self.client, catalog, keep_current=keep_current, only=only
        )


_: type[Engine] = DockerEngine  # mypy checks the adapter against the interface
