"""Networks, containers and volumes of a run: created labelled, found and removed by label."""

from __future__ import annotations

import io
import shutil
import tarfile
import threading
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from harness.engine.client import (
    LABEL_FOLDER,
    LABEL_NETWORK,
    LABEL_NODE,
    LABEL_OWNER,
    LABEL_RUN,
    LABEL_SCENARIO,
    engine_errors,
    engine_info,
)
from harness.errors import InfraError
from harness.scenario.resolved import FileSpec, NetworkSpec, NodeSpec


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


def object_name(run: str, name: str) -> str:
    return f"lab-{run}-{name}"


def create_network(client: Any, labels: RunLabels, net: NetworkSpec) -> Any:
    import docker.types

    ipam = None
    if net.subnet:
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=net.subnet)])
    name = object_name(labels.run, net.name)
    try:
        with engine_errors(f"create network {net.name}"):
            return client.networks.create(
                name,
                driver="bridge",
                ipam=ipam,
                internal=net.internal,
                check_duplicate=True,
                labels={**labels.base(), LABEL_NETWORK: net.name},
            )
    except InfraError as exc:
        if net.subnet and "overlap" in exc.message:
            raise InfraError(
                f"network {net.name}: subnet {net.subnet} is already used on this engine",
                hint="another run of a scenario with fixed subnets is up (`lab ls`); bring it"
                " down, or drop `subnet:` so the engine picks a free one",
            ) from None
        raise


def _tar_files(files: Iterable[FileSpec]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in files:
            data = f.source.read_bytes()
            st = f.source.stat()
            info = tarfile.TarInfo(f.target.lstrip("/"))
            info.size = len(data)
            info.mode = st.st_mode & 0o777  # scripts stay executable
            info.mtime = int(st.st_mtime)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@lru_cache(maxsize=256)
def _image_entrypoint(client: Any, image: str) -> tuple[str, ...]:
    try:
        ep = client.images.get(image).attrs.get("Config", {}).get("Entrypoint") or []
    except Exception:  # unknown image: create_container reports it properly
        return ()
    return tuple(ep)


def _has_own_init(client: Any, image: str) -> bool:
    """Environment images start with tini; Docker's --init in front would make it complain."""
    return any(
        part.rsplit("/", 1)[-1] in ("tini", "docker-init", "dumb-init")
        for part in _image_entrypoint(client, image)
    )


def create_node(
    client: Any, labels: RunLabels, node: NodeSpec, image: str, networks: dict[str, str]
) -> Any:
    """Create (not start) a node's container, attached to every network, files in place."""
    api = client.api
    name = object_name(labels.run, node.name)
    first, *rest = node.networks
    endpoint = api.create_endpoint_config(aliases=[node.name], ipv4_address=first.ipv4)
    with engine_errors(f"create node {node.name}"):
        created = api.create_container(
            image=image,
            name=name,
            hostname=node.name,
            command=list(node.command) if node.command is not None else None,
            environment=dict(node.env),
            labels={**labels.base(), LABEL_NODE: node.name},
            detach=True,
            host_config=api.create_host_config(
                init=not _has_own_init(client, image),
                cap_add=list(node.cap_add) or None,
                network_mode=networks[first.network],
            ),
            networking_config=api.create_networking_config({networks[first.network]: endpoint}),
        )
        cid = created["Id"]
        for att in rest:
            api.connect_container_to_network(
                cid, networks[att.network], aliases=[node.name], ipv4_address=att.ipv4
            )
        if node.files:
            api.put_archive(cid, "/", _tar_files(node.files))
        return client.containers.get(cid)


@lru_cache(maxsize=8)
def _start_gate(client: Any) -> threading.Semaphore:
    """As many container starts at once as the engine has CPUs. A start is CPU work in the
    engine (runc, the shim, namespaces, the DNS resolver's rules); more at once only thrash,
    and parallel cells that queue here fall out of step, so one cell's start overlaps another's
    waiting (readiness, teardown) instead of its start."""
    try:
        cpus = int(engine_info(client).get("NCPU") or 2)
    except InfraError:
        cpus = 2
    return threading.Semaphore(max(2, cpus))


def start(container: Any, node: str) -> None:
    with _start_gate(container.client), engine_errors(f"start node {node}"):
        container.start()


def addresses(container: Any) -> dict[str, str]:
    """Network name (as in the scenario) -> IPv4 address."""
    container.reload()
    nets = container.attrs.get("NetworkSettings", {}).get("Networks", {}) or {}
    run = container.labels.get(LABEL_RUN, "")
    prefix = f"lab-{run}-"
    return {
        (k[len(prefix) :] if k.startswith(prefix) else k): v.get("IPAddress", "")
        for k, v in nets.items()
    }


@dataclass
class RunObjects:
    containers: list[Any] = field(default_factory=list)
    networks: list[Any] = field(default_factory=list)
    volumes: list[Any] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.containers or self.networks or self.volumes)


def find(client: Any, run: str | None = None, sparse: bool = False) -> RunObjects:
    """Everything carrying the run label (all runs when run is None). `sparse` skips the
    inspect per container: enough to remove them, and one engine call instead of 1 + n."""
    flt = {"label": f"{LABEL_RUN}={run}" if run else LABEL_RUN}
    with engine_errors("list the run's objects"):
        return RunObjects(
            # ignore_removed: another run's container may vanish between list and inspect
            containers=client.containers.list(
                all=True, filters=flt, ignore_removed=True, sparse=sparse
            ),
            networks=client.networks.list(filters=flt),
            volumes=client.volumes.list(filters=flt),
        )


def remove(client: Any, objs: RunObjects, parallel: int = 8) -> dict[str, int]:
    """Remove containers (in parallel), then networks and volumes; already-gone is fine."""
    from concurrent.futures import ThreadPoolExecutor

    import docker.errors

    def rm_container(c: Any) -> None:
        with suppress(docker.errors.NotFound):
            c.remove(force=True, v=True)

    def rm_other(o: Any) -> None:
        with suppress(docker.errors.NotFound):
            o.remove()

    with engine_errors("remove the run's objects"):
        if objs.containers:
            with ThreadPoolExecutor(max_workers=min(parallel, len(objs.containers))) as ex:
                list(ex.map(rm_container, objs.containers))
        if objs.networks:
            with ThreadPoolExecutor(max_workers=min(parallel, len(objs.networks))) as ex:
                list(ex.map(rm_other, objs.networks))
        for v in objs.volumes:
            rm_other(v)
    return {
        "containers": len(objs.containers),
        "networks": len(objs.networks),
        "volumes": len(objs.volumes),
    }


def container_for(client: Any, run: str, node: str) -> Any:
    import docker.errors

    try:
        with engine_errors(f"find node {node}"):
            return client.containers.get(object_name(run, node))
    except docker.errors.NotFound:
        raise InfraError(f"run {run} has no node {node}") from None


def exec_command(container: Any, argv: list[str]) -> tuple[int, bytes, bytes]:
    with engine_errors("run a command in the node"):
        rc, (out, err) = container.exec_run(argv, demux=True)
    return int(rc if rc is not None else -1), out or b"", err or b""


def interactive_argv(container_name: str, shell: str = "sh") -> list[str]:
    """`docker exec -it` needs a TTY the SDK does not give; the CLI does it best."""
    cli = shutil.which("docker")
    if cli is None:
        raise InfraError(
            "`lab shell` needs the docker CLI on PATH", hint="apt-get install docker.io"
        )
    return [cli, "exec", "-it", container_name, shell]


def logs(container: Any) -> bytes:
    with engine_errors("read the node's logs"):
        return bytes(container.logs(stdout=True, stderr=True, timestamps=False))


def network_subnet(client: Any, run: str, network: str) -> str:
    """The subnet the engine gave a run's network (CIDR)."""
    import docker.errors

    try:
        with engine_errors(f"look up network {network}"):
            net = client.networks.get(object_name(run, network))
    except docker.errors.NotFound:
        raise InfraError(f"run {run} has no network {network}") from None
    configs = (net.attrs.get("IPAM") or {}).get("Config") or []
    for cfg in configs:
        if cfg.get("Subnet") and ":" not in cfg["Subnet"]:
            return str(cfg["Subnet"])
    raise InfraError(f"network {network} of run {run} has no IPv4 subnet")
