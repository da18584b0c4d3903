"""Readiness strategies: small checks polled until a node is ready or time runs out.

A failed wait carries the node's last log lines and a hint, so the engineer sees why at once.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from harness.engine import hostview
from harness.errors import InfraError, Interrupted
from harness.scenario.resolved import HealthSpec

TAIL_LINES = 20
FIRST_GAP = 0.02  # seconds before the second check; doubled up to the spec's interval


class Check(Protocol):
    @property
    def description(self) -> str: ...

    def ready(self, container: Any) -> bool: ...


@dataclass
class CommandCheck:
    command: str

    @property
    def description(self) -> str:
        return f"command `{self.command}` to exit 0"

    def ready(self, container: Any) -> bool:
        rc, _ = container.exec_run(["sh", "-c", self.command], stdout=True, stderr=True)
        return bool(rc == 0)


def listening_ports(proc_net_tcp: str) -> set[int]:
    """Ports in LISTEN state (0A) from /proc/net/tcp{,6}: needs no tool inside the node."""
    ports: set[int] = set()
    for line in proc_net_tcp.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == "0A" and ":" in fields[1]:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@dataclass
class PortCheck:
    port: int

    @property
    def description(self) -> str:
        return f"TCP port {self.port} to listen"

    def ready(self, container: Any) -> bool:
        try:  # read from this host: no exec, so polling costs the engine nothing
            text = hostview.proc_net_tcp(container)
        except hostview.NotHere:  # a remote engine: ask inside the node
            _, out = container.exec_run(["cat", "/proc/net/tcp", "/proc/net/tcp6"], stderr=False)
            text = out.decode(errors="replace") if isinstance(out, bytes) else str(out)
        return self.port in listening_ports(text)


@dataclass
class LogCheck:
    pattern: str
    since: datetime | None = None  # a restarted node: its earlier output does not count

    @property
    def description(self) -> str:
        return f"a log line matching /{self.pattern}/"

    def ready(self, container: Any) -> bool:
        if self.since is None:
            logs = container.logs(stdout=True, stderr=True).decode(errors="replace")
        else:
            logs = container.logs(
                stdout=True,
                stderr=True,
                since=self.since.timestamp(),  # to the microsecond
            ).decode(errors="replace")
        return re.search(self.pattern, logs, re.MULTILINE) is not None


@dataclass
class RunningCheck:
    @property
    def description(self) -> str:
        return "the container to run"

    def ready(self, container: Any) -> bool:
        return True  # the state check in wait_ready already proved it runs


def check_for(spec: HealthSpec, since: datetime | None = None) -> Check:
    if spec.kind == "command" and spec.command:
        return CommandCheck(spec.command)
    if spec.kind == "port" and spec.port:
        return PortCheck(spec.port)
    if spec.kind == "log" and spec.log:
        return LogCheck(spec.log, since)
    return RunningCheck()


def tail(container: Any, lines: int = TAIL_LINES) -> str:
    try:
        return str(container.logs(tail=lines).decode(errors="replace")).rstrip()
    except Exception:  # the container may be gone; the message must still go out
        return "(no logs: the container is gone)"


def _ready(check: Check, container: Any) -> bool:
    """One check; a container that stopped since its state was read is not ready, and the
    next state read says how it ended. The engine says so three ways: 409 at the exec's
    creation, 500 "is not running" at its start, or, when it stops while the exec runs, it
    drops the exec and answers 404 "No such exec instance" when the exit code is read."""
    import docker.errors  # here, not at the top: the client imports docker first (paramiko)

    try:
        return check.ready(container)
    except docker.errors.APIError as exc:
        said = str(exc.explanation or "")
        if exc.status_code == 409 or "is not running" in said or "No such exec instance" in said:
            return False
        raise


def wait_ready(
    container: Any,
    node: str,
    spec: HealthSpec,
    cancel: threading.Event | None = None,
    since: datetime | None = None,
) -> float:
    """Poll until ready; return seconds waited. Raises InfraError with logs and a hint.
    `since`: a node restarted then (a live rerun), so a log check reads only what came after."""
    check = check_for(spec, since)
    gap = FIRST_GAP  # most services are ready within tens of ms: check early, then back off
    start = time.monotonic()
    deadline = start + spec.timeout
    while True:
        if cancel is not None and cancel.is_set():
            raise Interrupted(f"stopped waiting for {node}")
        container.reload()
        state = container.attrs.get("State", {})
        if state.get("Status") in ("exited", "dead"):
            raise InfraError(
                f"node {node} exited with code {state.get('ExitCode')} before it was ready"
                f" (waiting for {check.description})\n--- last log lines of {node} ---\n"
                f"{tail(container)}",
                hint=f"check {node}'s command and config; `docker logs {container.name}`",
            )
        if state.get("Status") == "running" and _ready(check, container):
            return time.monotonic() - start
        if time.monotonic() >= deadline:
            raise InfraError(
                f"node {node} not ready after {spec.timeout:g}s (waiting for {check.description})"
                f"\n--- last log lines of {node} ---\n{tail(container)}",
                hint="raise health.timeout in the scenario if the service is just slow, or run"
                " with --keep and `lab shell` into the node to look",
            )
        time.sleep(min(spec.interval, gap))
        gap *= 2
