"""An in-memory engine behind the same interface as the Docker adapter: for the run layer's
unit tests, never for a real run.

Scriptable: exec results per (node, command substring), files per node, output per node, health
that fails, and `fail_on` raises a chosen exception at a chosen call (a dead engine, a Ctrl-C at
a phase). Every call is recorded in order in `calls` as (method, args).
"""

from __future__ import annotations

import io
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from harness.engine.api import (
    LABEL_NODE,
    Background,
    BuildOutcome,
    CaptureInfo,
    Copied,
    CopyStopped,
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
    WaitFor,
    _never,
    object_name,
)
from harness.errors import InfraError
from harness.scenario.catalog import Catalog
from harness.scenario.resolved import FileSpec, HealthSpec, NetworkSpec, NodeSpec, Topology

ExecScript = ExecResult | BaseException | list[ExecResult | BaseException]
Call = tuple[str, tuple[Any, ...]]


def ok(stdout: str = "", stderr: str = "", exit_code: int = 0) -> ExecResult:
    return ExecResult(exit_code, stdout, stderr, 0.0, False)


@dataclass
class _Node:
    info: NodeInfo
    spec: NodeSpec
    image: str
    addresses: dict[str, str]
    status: str = "created"
    addresses6: dict[str, str] = field(default_factory=dict)


@dataclass
class _Failure:
    method: str
    exc: BaseException
    when: Callable[[tuple[Any, ...]], bool]
    times: int  # how many more calls it fires on; -1: every one


@dataclass
class FakeEngine:
    """An engine in memory. Script it before the run; read `calls` after."""

    url: str | None = None
    exec_results: list[tuple[str, str, ExecScript]] = field(default_factory=list)
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)  # node -> path -> bytes
    stdin_seen: list[bytes] = field(default_factory=list)  # what exec_argv was fed
    output: dict[str, bytes] = field(default_factory=dict)  # node -> what it printed
    unhealthy: dict[str, str] = field(default_factory=dict)  # node -> why it is never ready
    exits: dict[str, int] = field(default_factory=dict)  # node -> exit code it stops with at start
    images: set[str] = field(default_factory=set)  # image references the engine holds
    capabilities: dict[str, bool] = field(
        default_factory=lambda: {
            "netem": True,
            "tbf": True,
            "statistic": True,
            "iptables": True,
            "nfqueue": True,
            "tee": True,
        }
    )
    calls: list[Call] = field(default_factory=list)
    _failures: list[_Failure] = field(default_factory=list)
    _nodes: dict[tuple[str, str], _Node] = field(default_factory=dict)
    _networks: dict[tuple[str, str], NetworkInfo] = field(default_factory=dict)
    _subnets: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- scripting ----------------------------------------------------------------------------

    def on_exec(self, node: str, contains: str, result: ExecScript) -> FakeEngine:
        """Commands on `node` ("*": any) containing `contains` get `result`; a list gives its
        items one call at a time (the last repeats). An exception is raised. First match wins."""
        self.exec_results.append((node, contains, result))
        return self

    def fail_on(
        self,
        method: str,
        exc: BaseException,
        when: Callable[[tuple[Any, ...]], bool] = lambda args: True,
        times: int = 1,
    ) -> FakeEngine:
        """Raise `exc` at the next call of `method` whose args satisfy `when` (`times` calls)."""
        self._failures.append(_Failure(method, exc, when, times))
        return self

    def called(self, method: str) -> list[tuple[Any, ...]]:
        return [args for name, args in self.calls if name == method]

    def live(self, run: str) -> list[str]:
        """Names of the run's nodes and networks still on the engine."""
        with self._lock:
            return [k[1] for k in self._nodes if k[0] == run] + [
                k[1] for k in self._networks if k[0] == run
            ]

    def _call(self, method: str, *args: Any) -> None:
        with self._lock:
            self.calls.append((method, args))
            for f in self._failures:
                if f.method == method and f.times != 0 and f.when(args):
                    if f.times > 0:
                        f.times -= 1
                    raise f.exc

    def _node(self, run: str, node: str) -> _Node:
        with self._lock:
            n = self._nodes.get((run, node))
        if n is None:
            raise InfraError(f"run {run} has no node {node}")
        return n

    def _running(self, run: str, node: str) -> _Node:
        n = self._node(run, node)
        if n.status != "running":
            raise InfraError(f"node {node} is {n.status}: the step cannot run there")
        return n

    # -- version and answers ----------------------------------------------------------------

    def version(self) -> str:
        self._call("version")
        return "fake-1"

    def answers(self) -> bool:
        self._call("answers")
        return True

    # -- networks ---------------------------------------------------------------------------

    def create_network(self, labels: RunLabels, spec: NetworkSpec) -> NetworkInfo:
        self._call("create_network", labels.run, spec.name)
        name = object_name(labels.run, spec.name)
        info = NetworkInfo(f"net-{name}", name, labels.run, labels.base())
        with self._lock:
            self._networks[(labels.run, spec.name)] = info
        return info

    def network_subnet(self, run: str, network: str) -> str:
        self._call("network_subnet", run, network)
        if (run, network) not in self._networks:
            raise InfraError(f"run {run} has no network {network}")
        return f"10.99.{sorted(self._networks).index((run, network)) + 1}.0/24"

    # -- find and remove --------------------------------------------------------------------

    def find(self, run: str | None = None, sparse: bool = False) -> RunObjects:
        self._call("find", run)
        with self._lock:
            nodes = [n for k, n in self._nodes.items() if run is None or k[0] == run]
            nets = [v for k, v in self._networks.items() if run is None or k[0] == run]
        return RunObjects(
            tuple(NodeInfo(**{**n.info.__dict__, "status": n.status}) for n in nodes),
            tuple(nets),
        )

    def remove(self, objs: RunObjects, parallel: int = 8) -> Removal:
        self._call("remove", tuple(c.node for c in objs.containers), len(objs.networks))
        with self._lock:
            for c in objs.containers:
                self._nodes.pop((c.run, c.node), None)
            for n in objs.networks:
                for k, v in list(self._networks.items()):
                    if v.id == n.id:
                        del self._networks[k]
        counts = {"containers": len(objs.containers), "networks": len(objs.networks)}
        return Removal({**counts, "volumes": 0})

    # -- nodes --------------------------------------------------------------------------------

    def create_node(
        self, labels: RunLabels, spec: NodeSpec, image: str, networks: dict[str, str]
    ) -> NodeInfo:
        self._call("create_node", labels.run, spec.name, image)
        name = object_name(labels.run, spec.name)
        info = NodeInfo(
            f"id-{name}",
            name,
            labels.run,
            spec.name,
            "created",
            {**labels.base(), LABEL_NODE: spec.name},
        )
        addresses = {
            att.network: att.ipv4 or f"10.99.0.{next(self._subnets) + 1}" for att in spec.networks
        }
        addresses6 = {
            att.network: att.ipv6 or f"fd00:99::{next(self._subnets) + 1:x}"
            for att in spec.networks
            if att.has_ipv6
        }
        with self._lock:
            self._nodes[(labels.run, spec.name)] = _Node(
                info, spec, image, addresses, addresses6=addresses6
            )
            have = self.files.setdefault(spec.name, {})
            for f in spec.files:
                have[f.target] = f.source.read_bytes()
        return info

    def start_node(self, run: str, node: str) -> None:
        self._call("start_node", run, node)
        self._node(run, node).status = "running"

    def wait_ready(
        self,
        run: str,
        node: str,
        spec: HealthSpec,
        cancel: threading.Event | None = None,
        since: datetime | None = None,
    ) -> float:
        self._call("wait_ready", run, node)
        n = self._node(run, node)
        if node in self.exits:
            n.status = "exited"
            raise InfraError(
                f"node {node} exited with code {self.exits[node]} before it was ready"
                f"\n--- last log lines of {node} ---\n"
                + self.output.get(node, b"").decode(errors="replace")
            )
        if node in self.unhealthy:
            raise InfraError(
                f"node {node} not ready after {spec.timeout:g}s: {self.unhealthy[node]}"
                f"\n--- last log lines of {node} ---\n"
                + self.output.get(node, b"").decode(errors="replace")
            )
        return 0.0

    def node(self, run: str, node: str) -> NodeInfo:
        self._call("node", run, node)
        n = self._node(run, node)
        return NodeInfo(**{**n.info.__dict__, "status": n.status})

    def addresses(self, run: str, node: str) -> dict[str, str]:
        self._call("addresses", run, node)
        return dict(self._node(run, node).addresses)

    def addresses6(self, run: str, node: str) -> dict[str, str]:
        self._call("addresses6", run, node)
        return dict(self._node(run, node).addresses6)

    def published(self, run: str, node: str) -> dict[str, str]:
        self._call("published", run, node)
        ports = self._node(run, node).spec.settings.ports
        return {p.key: f"127.0.0.1:{p.host or 49152 + i}" for i, p in enumerate(ports)}

    def inspect(self, run: str, node: str) -> dict[str, Any]:
        self._call("inspect", run, node)
        n = self._node(run, node)
        return {
            "Id": n.info.id,
            "Name": "/" + n.info.name,
            "Image": n.image,
            "State": {"Status": n.status, "ExitCode": self.exits.get(node, 0)},
            "Config": {
                "Env": [f"{k}={v}" for k, v in dict(n.spec.env).items()],
                "Labels": dict(n.info.labels),
            },
        }

    def logs(self, run: str, node: str, since: datetime | None = None) -> bytes:
        self._call("logs", run, node)
        self._node(run, node)
        return self.output.get(node, b"")

    def output_chunks(
        self, run: str, node: str, stop: Stop = _never, since: datetime | None = None
    ) -> Iterator[bytes]:
        self._call("output_chunks", run, node)
        self._node(run, node)
        data = self.output.get(node, b"")

        def chunks() -> Iterator[bytes]:
            for i in range(0, len(data), 4096):
                if stop():
                    raise CopyStopped("copy stopped")
                yield data[i : i + 4096]

        return chunks()

    def node_fault(self, run: str, node: str, action: str) -> dict[str, Any]:
        self._call("node_fault", run, node, action)
        n = self._node(run, node)
        before = n.status
        n.status = {"stop": "exited", "kill": "exited", "pause": "paused"}.get(action, "running")
        return {"node": node, "action": action, "before": before, "after": n.status}

    def interactive_argv(self, run: str, node: str, shell: str = "sh") -> list[str]:
        self._call("interactive_argv", run, node)
        return ["fake-exec", self._node(run, node).info.name, shell]

    # -- exec ---------------------------------------------------------------------------------

    def _scripted(self, node: str, command: str) -> ExecResult:
        for i, (who, contains, result) in enumerate(self.exec_results):
            if who in (node, "*") and contains in command:
                if isinstance(result, list):
                    item = result.pop(0) if len(result) > 1 else result[0]
                    self.exec_results[i] = (who, contains, result)
                    result = item
                if isinstance(result, BaseException):
                    raise result
                return result
        return ok()

    def exec(self, run: str, node: str, command: str, timeout: float) -> ExecResult:
        self._call("exec", run, node, command)
        self._running(run, node)
        return self._scripted(node, command)

    def exec_argv(
        self, run: str, node: str, argv: list[str], stdin: IO[bytes] | None = None
    ) -> tuple[int, bytes, bytes]:
        self._call("exec_argv", run, node, tuple(argv))
        self._running(run, node)
        if stdin is not None:
            self.stdin_seen.append(stdin.read())
        r = self._scripted(node, " ".join(argv))
        return r.exit_code, r.stdout.encode(), r.stderr.encode()

    def start_background(self, run: str, node: str, command: str, tag: str) -> Background:
        self._call("start_background", run, node, command)
        self._running(run, node)
        return Background(run, node, tag, f"exec-{tag}", 0.0)

    def stop_background(self, bg: Background) -> ExecResult:
        self._call("stop_background", bg.run, bg.node, bg.tag)
        return ok()

    def condition_met(self, run: str, node: str, cond: WaitFor) -> bool:
        self._call("condition_met", run, node, cond.kind, cond.value)
        self._running(run, node)
        return self._scripted(node, cond.value).exit_code == 0

    # -- files out ----------------------------------------------------------------------------

    def read_file(
        self, run: str, node: str, path: str, limit: int = 16 * 1024 * 1024
    ) -> bytes | None:
        self._call("read_file", run, node, path)
        self._node(run, node)
        data = self.files.get(node, {}).get(path)
        return None if data is None or len(data) > limit else data

    def put_files(self, run: str, node: str, files: tuple[FileSpec, ...]) -> None:
        self._call("put_files", run, node, tuple(f.target for f in files))
        self._node(run, node)
        have = self.files.setdefault(node, {})
        for f in files:
            have[f.target] = f.source.read_bytes()

    def put_path(self, run: str, node: str, source: Path, parent: str, name: str) -> Copied:
        """Files land in `files` (folders flattened to their files' paths)."""
        self._call("put_path", run, node, str(source), parent, name)
        self._node(run, node)
        have = self.files.setdefault(node, {})
        root = f"{parent.rstrip('/')}/{name}"
        items = (
            [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
        )
        for p in items:
            rel = "" if p == source else "/" + p.relative_to(source).as_posix()
            have[root + rel] = p.read_bytes()
        return Copied(len(items), sum(p.stat().st_size for p in items))

    def file_entries(
        self, run: str, node: str, path: str, stop: Stop = _never
    ) -> Iterator[tuple[Member, IO[bytes] | None]]:
        self._call("file_entries", run, node, path)
        self._node(run, node)
        have = self.files.get(node, {})
        base = path.rstrip("/")
        parent = base.rsplit("/", 1)[0]

        def entries() -> Iterator[tuple[Member, IO[bytes] | None]]:
            for p, data in sorted(have.items()):
                if p == base or p.startswith(base + "/"):
                    if stop():
                        raise CopyStopped("copy stopped")
                    name = p[len(parent) + 1 :]
                    yield Member(name, len(data), True, False), io.BytesIO(data)

        return entries()

    # -- impairments --------------------------------------------------------------------------

    def check_impairments(self, requests: list[dict[str, Any]], image: str) -> ImpairCheck:
        self._call("check_impairments", len(requests), image)
        missing = [
            f"{key} {req[key]} on {req.get('node', '?')} needs the netem qdisc or NFQUEUE"
            " (nfnetlink_queue), and this engine's kernel has neither"
            for req in requests
            for key in ("delay", "jitter")
            if req.get(key)
            and not self.capabilities.get("netem")
            and not self.capabilities.get("nfqueue")
        ]
        return ImpairCheck(dict(self.capabilities), missing)

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
        self._call("impair", run, node, network, loss, rate, delay, jitter, duplicate)
        self._running(run, node)
        applied = {
            "loss": loss,
            "rate": rate,
            "delay": delay,
            "jitter": jitter,
            "duplicate": duplicate,
        }
        out: dict[str, Any] = {"node": node, "network": network, "applied": applied}
        if delay is not None:
            out["backend"] = "netem" if self.capabilities.get("netem") else "nfqueue"
        return out

    def clear_impairment(
        self, run: str, node: str, network: str | None = None, address: str | None = None
    ) -> dict[str, Any]:
        self._call("clear_impairment", run, node, network)
        self._node(run, node)
        return {"node": node, "network": network, "removed": {"rules": 0, "qdiscs": 0}}

    def partition(self, run: str, node: str, target: str, addresses: list[str]) -> dict[str, Any]:
        self._call("partition", run, node, target)
        self._running(run, node)
        return {"node": node, "target": target, "addresses": list(addresses)}

    def partition_nodes(
        self, run: str, a: str, b: str, a_addresses: list[str], b_addresses: list[str]
    ) -> dict[str, Any]:
        self._call("partition_nodes", run, a, b)
        self._running(run, a), self._running(run, b)
        return {"a": {"node": a, "target": b}, "b": {"node": b, "target": a}}

    def heal(self, run: str, node: str, target: str | None = None) -> dict[str, Any]:
        self._call("heal", run, node, target)
        self._node(run, node)
        return {"node": node, "target": target, "removed": {"rules": 0}}

    def heal_nodes(self, run: str, a: str, b: str) -> dict[str, Any]:
        self._call("heal_nodes", run, a, b)
        return {"a": self.heal(run, a, b), "b": self.heal(run, b, a)}

    # -- capture ------------------------------------------------------------------------------

    def start_capture(self, run: str, network: str, out: Path) -> CaptureInfo:
        self._call("start_capture", run, network)
        if (run, network) not in self._networks:
            raise InfraError(f"run {run} has no network {network}")
        return CaptureInfo(str(out), network, out, None)

    def stop_capture(self, cap: CaptureInfo) -> dict[str, Any]:
        self._call("stop_capture", cap.network)
        return {
            "network": cap.network,
            "path": None,
            "packets": 0,
            "bytes": 0,
            "dropped": None,
            "warning": None,
        }

    def stop_orphan_captures(self, folder: Path) -> list[int]:
        self._call("stop_orphan_captures", str(folder))
        return []

    # -- images -------------------------------------------------------------------------------

    def ensure_images(
        self,
        topology: Topology,
        catalog: Catalog,
        *,
        copy_from: str | None = None,
        on_progress: ProgressFn | None = None,
    ) -> dict[str, str]:
        """Tags without building anything: fake/<node>:latest."""
        self._call("ensure_images", topology.scenario)
        return {n.name: f"fake/{n.name}:latest" for n in topology.nodes}

    def ensure_plan(self, plan: Any, on_progress: ProgressFn | None = None) -> BuildOutcome:
        self._call("ensure_plan", getattr(plan, "tag", ""))
        return BuildOutcome(str(getattr(plan, "tag", "")), "plain", False, 0.0, "reused")

    def list_images(self, catalog: Catalog | None = None) -> list[dict[str, Any]]:
        self._call("list_images")
        return []

    def has_image(self, ref: str) -> bool:
        self._call("has_image", ref)
        return ref in self.images

    def prune_images(
        self, catalog: Catalog, *, keep_current: bool = True, only: str | None = None
    ) -> list[dict[str, Any]]:
        self._call("prune_images", keep_current, only)
        return []


_: type[Engine] = FakeEngine  # mypy checks the fake against the interface
