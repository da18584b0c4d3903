"""Bring a resolved topology up on the engine, in parallel, and take it down again.

Networks first, then every node at once (a node waits only for its `depends_on`). A failure or an
interrupt cancels the rest; the caller tears down by label, so nothing half-made is missed. A node
the scenario expects may not start (`may_fail`: a readiness probe names it) that exits or never
becomes ready is recorded instead (NodeUp.not_ready), and the nodes that depend on it are not
started (recorded as skipped).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from harness.engine.api import Engine, RunLabels, RunObjects, object_name
from harness.errors import HarnessError, InfraError, Interrupted
from harness.run.trust import TRUSTED, Trust, check_capabilities
from harness.scenario.resolved import NetworkSpec, NodeSpec, Topology

Event = dict[str, Any]
TAIL_LINES = 20  # of a node that did not start, in the journal
OnEvent = Callable[[Event], None]


def _quiet(event: Event) -> None:
    return None


@dataclass
class NodeUp:
    name: str
    container: str
    image: str
    addresses: dict[str, str]
    ready_s: float
    # how it failed to become ready, when it was allowed to: state (exited | not_ready |
    # skipped), exit_code, reason, log_tail, and log (its whole output: for probes, not written)
    not_ready: dict[str, Any] | None = None
    published: dict[str, str] = field(default_factory=dict)  # "80/tcp" -> "127.0.0.1:49153"
    addresses6: dict[str, str] = field(default_factory=dict)  # network -> IPv6, where it has one

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "container": self.container,
            "image": self.image,
            "addresses": self.addresses,
            "ready_s": round(self.ready_s, 3),
        }
        if self.addresses6:
            d["addresses6"] = self.addresses6
        if self.published:
            d["published"] = self.published
        if self.not_ready is not None:
            d["not_ready"] = {k: v for k, v in self.not_ready.items() if k != "log"}
        return d


def bring_up(
    engine: Engine,
    topology: Topology,
    images: dict[str, str],
    labels: RunLabels,
    cancel: threading.Event,
    *,
    on_event: OnEvent = _quiet,
    parallel: int = 16,
    trust: Trust = TRUSTED,
    may_fail: frozenset[str] = frozenset(),
) -> list[NodeUp]:
    """Create networks and nodes, start them and wait until each is ready.

    Every engine call runs in a worker thread: a signal lands in the main thread, which then
    waits for in-flight calls to finish, so an object the engine is still creating is never
    missed by the teardown that follows. Before any of it, no node may get a capability
    `trust` does not allow (UsageError, nothing created). A node in `may_fail` that does not
    become ready is returned with its `not_ready` record; any other node's failure is raised.
    """
    check_capabilities(topology, trust)
    up = _Up(
        engine,
        images,
        labels,
        cancel,
        on_event,
        {n.name: threading.Event() for n in topology.nodes},
        may_fail,
    )
    size = max(1, min(parallel, max(len(topology.nodes), len(topology.networks))))
    pool = ThreadPoolExecutor(max_workers=size)
    try:
        on_event({"event": "networks", "count": len(topology.networks)})
        _all([pool.submit(up.net, n) for n in topology.networks])
        futures: list[Future[NodeUp]] = [pool.submit(up.one, n) for n in topology.nodes]
        _all(futures)
        return [f.result() for f in futures]
    except BaseException:
        cancel.set()  # every worker stops at its next step; then the caller removes by label
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class _Up:
    """What bring_up's worker threads share: each network's engine name, each node's readiness."""

    engine: Engine
    images: dict[str, str]
    labels: RunLabels
    cancel: threading.Event
    on_event: OnEvent
    ready: dict[str, threading.Event]  # set once a node is ready, or has failed as allowed
    may_fail: frozenset[str] = frozenset()
    networks: dict[str, str] = field(default_factory=dict)
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)  # written before ready[]

    def net(self, spec: NetworkSpec) -> None:
        if self.cancel.is_set():
            raise Interrupted(f"cancelled before creating network {spec.name}")
        self.networks[spec.name] = self.engine.create_network(self.labels, spec).name

    def one(self, node: NodeSpec) -> NodeUp:
        t0 = time.monotonic()
        engine, labels, cancel = self.engine, self.labels, self.cancel
        if cancel.is_set():
            raise Interrupted(f"cancelled before creating {node.name}")
        created = engine.create_node(labels, node, self.images[node.name], self.networks)
        self.on_event({"event": "created", "node": node.name})
        for dep in node.depends_on:
            while not self.ready[dep].wait(0.1):
                if cancel.is_set():
                    raise Interrupted(f"cancelled while {node.name} waited for {dep}")
        if cancel.is_set():
            raise Interrupted(f"cancelled before starting {node.name}")
        down = next((d for d in node.depends_on if d in self.failed), None)
        if down is not None:
            why = f"not started: it depends on {down}, which did not become ready"
            return self._not_ready(node, created.name, t0, {"state": "skipped", "reason": why})
        try:
            engine.start_node(labels.run, node.name)
            self.on_event({"event": "started", "node": node.name})
            engine.wait_ready(labels.run, node.name, node.health, cancel)
        except InfraError as exc:
            if node.name not in self.may_fail:
                raise
            return self._not_ready(node, created.name, t0, self._failure(node.name, exc))
        self.ready[node.name].set()
        ports = engine.published(labels.run, node.name) if node.settings.ports else {}
        v6 = _addresses6(engine, labels.run, node)
        up = NodeUp(
            node.name,
            created.name,
            self.images[node.name],
            engine.addresses(labels.run, node.name),
            time.monotonic() - t0,
            published=ports,
            addresses6=v6,
        )
        event = {"event": "ready", "node": node.name, "seconds": round(up.ready_s, 2)}
        self.on_event({**event, "published": ports} if ports else event)
        return up

    def _failure(self, name: str, exc: InfraError) -> dict[str, Any]:
        """How an allowed node failed: exited (with its code) or not ready, the wait's first
        line (which check timed out), its last log lines and its whole output."""
        run = self.labels.run
        state, code, oom = "not_ready", None, False
        try:
            st = self.engine.inspect(run, name).get("State") or {}
            if st.get("Status") in ("exited", "dead"):
                state, code = "exited", st.get("ExitCode")
            oom = bool(st.get("OOMKilled"))  # its memory limit: the kernel's OOM killer
        except HarnessError:
            pass
        try:
            log = self.engine.logs(run, name).decode("utf-8", errors="replace")
        except HarnessError:
            log = ""
        tail = "\n".join(log.rstrip().splitlines()[-TAIL_LINES:])
        reason = exc.message.split("\n", 1)[0]
        return {
            "state": state,
            "exit_code": code,
            "oom_killed": oom,
            "reason": reason,
            "log_tail": tail,
            "log": log,
        }

    def _not_ready(
        self, node: NodeSpec, container: str, t0: float, record: dict[str, Any]
    ) -> NodeUp:
        self.failed[node.name] = record
        self.ready[node.name].set()  # its dependents go on, and see it failed
        try:
            addresses = self.engine.addresses(self.labels.run, node.name)
        except HarnessError:
            addresses = {}
        up = NodeUp(
            node.name,
            container,
            self.images[node.name],
            addresses,
            time.monotonic() - t0,
            not_ready=record,
        )
        self.on_event(
            {
                "event": "not-ready",
                "node": node.name,
                "state": record["state"],
                "reason": record["reason"],
            }
        )
        return up


def replace_nodes(
    engine: Engine,
    topology: Topology,
    images: dict[str, str],
    labels: RunLabels,
    cancel: threading.Event,
    *,
    names: list[str],
    on_event: OnEvent = _quiet,
    trust: Trust = TRUSTED,
    may_fail: frozenset[str] = frozenset(),
) -> list[NodeUp]:
    """A live rerun's recreated nodes: each one's container removed, then created, started
    and waited for on the run's existing networks exactly as bring_up does (a node waits for
    its depends_on among them; the others are up already)."""
    check_capabilities(topology, trust)
    wanted = set(names)
    old = [c for c in engine.find(labels.run, sparse=True).containers if c.node in wanted]
    if old:
        engine.remove(RunObjects(containers=tuple(old)))
    ready = {n.name: threading.Event() for n in topology.nodes}
    for n in topology.nodes:
        if n.name not in wanted:
            ready[n.name].set()
    up = _Up(engine, images, labels, cancel, on_event, ready, may_fail)
    up.networks = {net.name: object_name(labels.run, net.name) for net in topology.networks}
    todo = [n for n in topology.nodes if n.name in wanted]
    pool = ThreadPoolExecutor(max_workers=max(1, len(todo)))
    try:
        futures: list[Future[NodeUp]] = [pool.submit(up.one, n) for n in todo]
        _all(futures)
        return [f.result() for f in futures]
    except BaseException:
        cancel.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def restart_node(
    engine: Engine,
    node: NodeSpec,
    labels: RunLabels,
    cancel: threading.Event,
    *,
    image: str,
    on_event: OnEvent = _quiet,
    may_fail: frozenset[str] = frozenset(),
) -> NodeUp:
    """Restart a live node (its files changed and its lab has no reload) and wait until it
    is ready again; a log health check reads only what it printed since the restart."""
    t0 = time.monotonic()
    since = datetime.now(UTC)
    ready = {node.name: threading.Event()}
    up = _Up(engine, {node.name: image}, labels, cancel, on_event, ready, may_fail)
    engine.node_fault(labels.run, node.name, "restart")
    try:
        engine.wait_ready(labels.run, node.name, node.health, cancel, since)
    except InfraError as exc:
        if node.name not in may_fail:
            raise
        container = object_name(labels.run, node.name)
        return up._not_ready(node, container, t0, up._failure(node.name, exc))
    ports = engine.published(labels.run, node.name) if node.settings.ports else {}
    v6 = _addresses6(engine, labels.run, node)
    addresses = engine.addresses(labels.run, node.name)
    return NodeUp(
        node.name,
        object_name(labels.run, node.name),
        image,
        addresses,
        time.monotonic() - t0,
        published=ports,
        addresses6=v6,
    )


def _addresses6(engine: Engine, run: str, node: NodeSpec) -> dict[str, str]:
    """The node's IPv6 addresses, asked of the engine only when a network of it has IPv6."""
    return engine.addresses6(run, node.name) if any(a.has_ipv6 for a in node.networks) else {}


def _all(futures: list[Future[Any]]) -> None:
    """Wait for all; the first failure is raised as soon as it happens."""
    done, _ = wait(futures, return_when=FIRST_EXCEPTION)
    for f in done:
        exc = f.exception()
        if exc is not None:
            raise exc


def tear_down(engine: Engine, run_id: str, interrupted: bool = True) -> dict[str, int]:
    """Remove everything labelled with this run, whoever made it. After an interrupt or a
    failure, sweep twice: an object whose creation was in flight may only appear a moment
    later. A run that ended normally has nothing in flight."""
    counts = dict(engine.remove(engine.find(run_id, sparse=True)).counts)
    if not interrupted:
        return counts
    time.sleep(0.2)
    late = engine.find(run_id, sparse=True)
    if not late.empty():
        for k, v in engine.remove(late).counts.items():
            counts[k] = counts.get(k, 0) + v
    return counts
