"""Networks, containers and volumes of a run: created labelled, found and removed by label."""

from __future__ import annotations

import io
import ipaddress
import posixpath
import secrets
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, BinaryIO

from harness.engine.api import (
    LABEL_IMAGE,
    LABEL_NETWORK,
    LABEL_NODE,
    LABEL_RUN,
    Removal,
    RunLabels,
    StuckNetwork,
    object_name,
)
from harness.engine.client import engine_errors, engine_info
from harness.engine.sources import open_source
from harness.errors import InfraError
from harness.scenario.resolved import (
    FAKETIME_DIR,
    FAKETIME_LIBRARY,
    FileSpec,
    NetworkSpec,
    NodeSettings,
    NodeSpec,
    node_os,
)

PICK_TRIES = 5  # picked IPv6 subnets tried before an overlap is reported


def random_subnet6() -> str:
    """A unique local /64 (RFC 4193: fd00::/8 and a random 40-bit global ID, subnet 0). The
    engine's address pools hold no IPv6, so a network that asks for IPv6 without subnet6 gets
    one of these: two runs picking the same is a 1 in 2**40 chance, and an overlap is retried."""
    gid = secrets.randbits(40)
    return str(ipaddress.IPv6Network(((0xFD << 120) | (gid << 80), 64)))


def _ipam(net: NetworkSpec, subnet6: str | None) -> Any:
    import docker.types

    pools = [docker.types.IPAMPool(subnet=s) for s in (net.subnet, subnet6) if s]
    return docker.types.IPAMConfig(pool_configs=pools) if pools else None


def create_network(client: Any, labels: RunLabels, net: NetworkSpec) -> Any:
    """The run's network; one that asks for IPv6 without subnet6 tries a few picked ones."""
    if not net.ipv6 or net.subnet6:
        return _create_network(client, labels, net, net.subnet6)
    for _ in range(PICK_TRIES - 1):
        try:
            return _create_network(client, labels, net, random_subnet6())
        except InfraError as exc:
            if "overlap" not in exc.message:
                raise
    return _create_network(client, labels, net, random_subnet6())


def _create_network(client: Any, labels: RunLabels, net: NetworkSpec, subnet6: str | None) -> Any:
    name = object_name(labels.run, net.name)
    try:
        with engine_errors(f"create network {net.name}"):
            return client.networks.create(
                name,
                driver="bridge",
                ipam=_ipam(net, subnet6),
                enable_ipv6=net.ipv6,
                internal=net.internal,
                options={"com.docker.network.driver.mtu": str(net.mtu)} if net.mtu else None,
                check_duplicate=True,
                labels={**labels.base(), LABEL_NETWORK: net.name},
            )
    except InfraError as exc:
        fixed = [
            f"{key} {value}"
            for key, value in (("subnet", net.subnet), ("subnet6", net.subnet6))
            if value
        ]
        if fixed and "overlap" in exc.message:
            raise InfraError(
                f"network {net.name}: {' or '.join(fixed)} is already used on this engine",
                hint="another run of a scenario with fixed subnets is up (`lab ls`); bring it"
                " down, or drop `subnet:`/`subnet6:` so a free one is picked",
            ) from None
        raise


def _tar_files(files: Iterable[FileSpec], out: BinaryIO) -> None:
    """The `files:` of a node as a tar in `out`, each read from the descriptor that was checked
    (harness.engine.sources): never reopened by name, never whole in memory."""
    with tarfile.open(fileobj=out, mode="w") as tar:
        for f in files:
            with open_source(f.source) as src:
                info = tarfile.TarInfo(f.target.lstrip("/"))
                info.size = src.size
                info.mode = src.mode if f.mode is None else f.mode  # scripts stay executable
                info.uid, info.gid = f.uid, f.gid
                info.mtime = int(src.mtime)
                tar.addfile(info, src.file)  # exactly size bytes; a file cut short raises


def put_files(container_id: str, api: Any, files: Iterable[FileSpec]) -> None:
    """Copy the node's `files:` in (before it starts), spooled through a temporary file."""
    with tempfile.TemporaryFile() as buf:
        _tar_files(files, buf)
        buf.seek(0)
        api.put_archive(container_id, "/", buf)


def _faketime_image(client: Any, os_name: str) -> str:
    """The newest libfaketime image of an environment (built by the run's build phase)."""
    with engine_errors("find the libfaketime image"):
        found = client.images.list(filters={"label": f"{LABEL_IMAGE}=faketime-{os_name}"})
    if not found:
        raise InfraError(
            f"`clock:` needs the libfaketime image for {os_name}, and the engine has none",
            hint="`lab up` builds it in its build phase (the package libfaketime from the "
            "environment's Debian archive); run the scenario again",
        )
    return str(max(found, key=lambda i: str(i.attrs.get("Created", ""))).id)


@lru_cache(maxsize=16)
def _faketime_tar(client: Any, image_id: str, labels: tuple[tuple[str, str], ...]) -> bytes:
    """libfaketime as a tar to put at / (FAKETIME_LIBRARY), read through the engine from a
    container of its image that never starts: the engine may be remote, no host file is used."""
    api = client.api
    with engine_errors("read libfaketime from its image"):
        cid = api.create_container(image=image_id, labels=dict(labels), command=["true"])["Id"]
        try:
            stream, _ = api.get_archive(cid, f"{FAKETIME_DIR}/libfaketime.so.1")
            raw = b"".join(stream)
        finally:
            api.remove_container(cid, force=True)
    with tarfile.open(fileobj=io.BytesIO(raw)) as src:
        member = next(m for m in src.getmembers() if m.isfile())
        data = src.extractfile(member).read()  # type: ignore[union-attr]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        folder = tarfile.TarInfo(posixpath.dirname(FAKETIME_LIBRARY).lstrip("/"))
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        info = tarfile.TarInfo(FAKETIME_LIBRARY.lstrip("/"))
        info.size, info.mode = len(data), 0o644  # readable by whatever user the node runs as
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def put_clock(client: Any, container_id: str, labels: RunLabels, node: NodeSpec) -> None:
    """libfaketime into a created node (before it starts), for its `clock:` (LD_PRELOAD)."""
    os_name = node_os(node.image)
    if os_name is None:  # validation refuses `clock:` on an `image:` node
        raise InfraError(f"node {node.name}: `clock:` needs a lab or an `os:` node")
    image = _faketime_image(client, os_name)
    data = _faketime_tar(client, image, tuple(sorted(labels.base().items())))
    client.api.put_archive(container_id, "/", data)


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


def _wants_init(client: Any, image: str, entrypoint: tuple[str, ...] | None) -> bool:
    """Docker's init (tini) unless the node's entrypoint is an init already: the image's own
    (an ENTRYPOINT with tini), or the scenario's `entrypoint:` when it starts with one."""
    if entrypoint is not None:
        return not entrypoint or "tini" not in posixpath.basename(entrypoint[0])
    return not _has_own_init(client, image)


def host_settings(s: NodeSettings) -> dict[str, Any]:
    """A node's settings as Docker host-config options (only those the scenario gives)."""
    from docker.types import Ulimit

    out: dict[str, Any] = {}
    if s.extra_hosts:
        out["extra_hosts"] = dict(s.extra_hosts)
    if s.dns:
        out["dns"] = list(s.dns)
    if s.cpus is not None:
        out["nano_cpus"] = int(s.cpus * 1e9)
    if s.memory is not None:  # swap included: past the limit the OOM killer acts, no swapping
        out["mem_limit"] = s.memory
        out["memswap_limit"] = s.memory
    if s.tmpfs:
        out["tmpfs"] = {path: f"size={size}" for path, size in s.tmpfs}
    if s.sysctls:
        out["sysctls"] = dict(s.sysctls)
    if s.ulimits:
        out["ulimits"] = [Ulimit(name=n, soft=soft, hard=hard) for n, soft, hard in s.ulimits]
    if s.ports:  # on 127.0.0.1 only, whatever the engine's default (0.0.0.0 and ::)
        out["port_bindings"] = {p.key: ("127.0.0.1", p.host) for p in s.ports}
    return out


def container_settings(s: NodeSettings) -> dict[str, Any]:
    """A node's settings as Docker create options of the container itself."""
    out: dict[str, Any] = {}
    if s.user is not None:
        out["user"] = s.user
    if s.workdir is not None:
        out["working_dir"] = s.workdir
    if s.entrypoint is not None:
        out["entrypoint"] = list(s.entrypoint)
    if s.ports:
        out["ports"] = [(p.port, p.protocol) for p in s.ports]
    return out


def create_node(
    client: Any, labels: RunLabels, node: NodeSpec, image: str, networks: dict[str, str]
) -> Any:
    """Create (not start) a node's container, attached to every network, files in place."""
    api = client.api
    name = object_name(labels.run, node.name)
    first, *rest = node.networks
    endpoint = api.create_endpoint_config(
        aliases=[node.name], ipv4_address=first.ipv4, ipv6_address=first.ipv6
    )
    with engine_errors(f"create node {node.name}"):
        created = api.create_container(
            image=image,
            name=name,
            hostname=node.name,
            command=list(node.command) if node.command is not None else None,
            environment={**dict(node.env), **dict(node.settings.clock_env())},
            labels={**labels.base(), LABEL_NODE: node.name},
            detach=True,
            host_config=api.create_host_config(
                init=_wants_init(client, image, node.settings.entrypoint),
                cap_add=list(node.cap_add) or None,
                network_mode=networks[first.network],
                **host_settings(node.settings),
            ),
            networking_config=api.create_networking_config({networks[first.network]: endpoint}),
            **container_settings(node.settings),
        )
        cid = created["Id"]
        for att in rest:
            api.connect_container_to_network(
                cid,
                networks[att.network],
                aliases=[node.name],
                ipv4_address=att.ipv4,
                ipv6_address=att.ipv6,
            )
        if node.files:
            put_files(cid, api, node.files)
        if node.settings.clock is not None:
            put_clock(client, cid, labels, node)
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


def addresses6(container: Any) -> dict[str, str]:
    """Network name (as in the scenario) -> global IPv6 address, on the networks that have
    IPv6 (link-local ones are not listed: every interface has one)."""
    with engine_errors("read the node's IPv6 addresses"):
        container.reload()
    nets = container.attrs.get("NetworkSettings", {}).get("Networks", {}) or {}
    prefix = f"lab-{container.labels.get(LABEL_RUN, '')}-"
    return {
        k.removeprefix(prefix): v["GlobalIPv6Address"]
        for k, v in nets.items()
        if v.get("GlobalIPv6Address")
    }


def published(container: Any) -> dict[str, str]:
    """Container port ("80/tcp") -> where the host reaches it ("127.0.0.1:49153")."""
    with engine_errors("read the node's published ports"):
        container.reload()
    ports = container.attrs.get("NetworkSettings", {}).get("Ports") or {}
    out: dict[str, str] = {}
    for key, bindings in sorted(ports.items()):
        for b in bindings or ():
            if b.get("HostPort"):
                out[key] = f"{b.get('HostIp') or '127.0.0.1'}:{b['HostPort']}"
                break
    return out


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


RETRIES = (0.2, 0.5, 1.0, 2.0)  # seconds between tries of a network the engine refuses


def _run_ids(objs: RunObjects) -> set[str]:
    ids: set[str] = set()
    for o in (*objs.containers, *objs.networks, *objs.volumes):
        # .labels needs a full inspect (sparse containers have none); the list's attrs carry them
        run = (o.attrs.get("Labels") or o.attrs.get("Config", {}).get("Labels") or {}).get(
            LABEL_RUN
        )
        if run:
            ids.add(str(run))
    return ids


def _remove_containers(client: Any, containers: list[Any], parallel: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import docker.errors

    def rm(c: Any) -> None:
        with suppress(docker.errors.NotFound):
            c.remove(force=True, v=True)

    if containers:
        with ThreadPoolExecutor(max_workers=min(parallel, len(containers))) as ex:
            list(ex.map(rm, containers))


def _containers_gone(client: Any, runs: set[str], parallel: int, timeout: float = 10) -> int:
    """Until no container of the runs is left (one created while we removed, too): a network
    removed while a container on it is still going is how a stale endpoint is made."""
    late = 0
    deadline = time.monotonic() + timeout
    while runs and time.monotonic() < deadline:
        left = [
            c
            for run in sorted(runs)
            for c in client.containers.list(
                all=True, filters={"label": f"{LABEL_RUN}={run}"}, sparse=True, ignore_removed=True
            )
        ]
        if not left:
            break
        late += len(left)
        _remove_containers(client, left, parallel)
        time.sleep(0.1)
    return late


def _remove_network(net: Any, sleep: Any = time.sleep) -> tuple[StuckNetwork | None, list[str]]:
    """Remove one network; on "active endpoints" cut off what is still attached (a container
    of another run or of nobody) and retry with backoff. Never raises for a refusal."""
    import docker.errors

    cut: list[str] = []
    last = ""
    for wait in (*RETRIES, None):
        try:
            net.remove()
            return None, cut
        except docker.errors.NotFound:
            return None, cut
        except docker.errors.APIError as exc:
            last = str(getattr(exc, "explanation", None) or exc)
            if "active endpoint" not in last:
                raise
        with suppress(docker.errors.APIError):
            net.reload()
            for cid, ep in (net.attrs.get("Containers") or {}).items():
                with suppress(docker.errors.APIError):
                    net.disconnect(cid, force=True)
                    cut.append(str(ep.get("Name") or cid[:12]))
        if wait is not None:
            sleep(wait)
    return StuckNetwork(str(net.name), str(net.id), last), cut


def remove_all(client: Any, objs: RunObjects, parallel: int = 8) -> Removal:
    """Containers first (in parallel) and until they are gone, then networks (retried, see
    _remove_network), then volumes. Already-gone is fine; a stuck network is reported."""
    from concurrent.futures import ThreadPoolExecutor

    import docker.errors

    with engine_errors("remove the run's objects"):
        _remove_containers(client, objs.containers, parallel)
        late = _containers_gone(client, _run_ids(objs), parallel) if objs.networks else 0
        results: list[tuple[StuckNetwork | None, list[str]]] = []
        if objs.networks:
            with ThreadPoolExecutor(max_workers=min(parallel, len(objs.networks))) as ex:
                results = list(ex.map(_remove_network, objs.networks))
        for v in objs.volumes:
            with suppress(docker.errors.NotFound):
                v.remove()
    stuck = [s for s, _ in results if s is not None]
    counts = {
        "containers": len(objs.containers) + late,
        "networks": len(objs.networks) - len(stuck),
        "volumes": len(objs.volumes),
    }
    if stuck:
        counts["stuck_networks"] = len(stuck)
    return Removal(counts, tuple(stuck), tuple(name for _, cut in results for name in cut))


def remove(client: Any, objs: RunObjects, parallel: int = 8) -> dict[str, int]:
    """remove_all's counts: containers, networks, volumes (and stuck_networks, if any)."""
    return remove_all(client, objs, parallel).counts


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
