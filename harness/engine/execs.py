"""Commands, files and logs inside nodes: what steps, probes and collection need from a node.

Timeouts are enforced inside the node with coreutils `timeout` (the SDK's exec has none), so a
hung command is killed where it runs and reports exit 124 (or 137 when it ignored SIGTERM).
"""

from __future__ import annotations

import io
import shlex
import tarfile
import time
from dataclasses import dataclass
from typing import Any

from harness.engine import hostview
from harness.engine.api import ExecResult
from harness.engine.client import engine_errors
from harness.engine.copyout import precise
from harness.errors import InfraError

TIMEOUT_EXIT = (124, 137)


def _text(b: bytes | None) -> str:
    return (b or b"").decode("utf-8", errors="replace")


def _check_running(container: Any, node: str) -> None:
    with engine_errors(f"look at node {node}"):
        container.reload()
    status = container.status
    if status != "running":
        raise InfraError(f"node {node} is {status}: the step cannot run there")


def run(container: Any, node: str, command: str, timeout: float) -> ExecResult:
    """`sh -c command` in the node, killed after `timeout` seconds."""
    _check_running(container, node)
    argv = ["timeout", "-k", "2", f"{timeout:g}", "sh", "-c", command]
    t0 = time.monotonic()
    with engine_errors(f"run a command on {node}"):
        rc, (out, err) = container.exec_run(argv, demux=True)
    dt = time.monotonic() - t0
    code = int(rc if rc is not None else -1)
    return ExecResult(code, _text(out), _text(err), dt, code in TIMEOUT_EXIT and dt >= timeout)


@dataclass
class Background:
    container: Any
    node: str
    tag: str
    exec_id: str
    started: float


def _bg_paths(tag: str) -> tuple[str, str, str]:
    base = f"/tmp/.labharness-bg-{tag}"
    return f"{base}.pid", f"{base}.out", f"{base}.err"


def start_background(container: Any, node: str, command: str, tag: str) -> Background:
    """Start `command` detached; its pid and output go to files so stop() can end and read it."""
    _check_running(container, node)
    pid, out, err = _bg_paths(tag)
    wrapper = f"echo $$ > {pid}; exec sh -c {shlex.quote(command)} > {out} 2> {err}"
    with engine_errors(f"start a background step on {node}"):
        exec_id = container.client.api.exec_create(container.id, ["sh", "-c", wrapper])["Id"]
        container.client.api.exec_start(exec_id, detach=True)
    return Background(container, node, tag, exec_id, time.monotonic())


def stop_background(bg: Background) -> ExecResult:
    """TERM, then KILL after 2 s; returns what it printed and how it ended."""
    pid, out, err = _bg_paths(bg.tag)
    api = bg.container.client.api
    stopper = (
        f"p=$(cat {pid} 2>/dev/null) || exit 0; pkill -TERM -P $p; kill -TERM $p 2>/dev/null; "
        f"for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 $p 2>/dev/null || exit 0; sleep 0.2; done; "
        f"kill -KILL $p 2>/dev/null; exit 0"
    )
    with engine_errors(f"stop a background step on {bg.node}"):
        running = bg.container.status == "running"
        if running:
            bg.container.exec_run(["sh", "-c", stopper])
        info = api.exec_inspect(bg.exec_id)
        code = info.get("ExitCode")
        stdout = read_file(bg.container, out) if running else None
        stderr = read_file(bg.container, err) if running else None
    return ExecResult(
        int(code) if code is not None else -1,
        _text(stdout),
        _text(stderr),
        time.monotonic() - bg.started,
        False,
    )


def read_file(container: Any, path: str, limit: int = 16 * 1024 * 1024) -> bytes | None:
    """A file's bytes from the node (running or stopped), or None if it is not there."""
    import docker.errors

    try:  # a local running node: straight from this host, no engine work
        return hostview.read_file(container, path, limit)
    except hostview.NotHere:
        pass

    try:
        with engine_errors(f"read {path}"):
            stream, stat = container.get_archive(path)
            if stat.get("size", 0) > limit:
                return None
            data = b"".join(stream)
    except (docker.errors.NotFound, InfraError):
        return None
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            if member.isfile():
                f = tar.extractfile(member)
                return f.read() if f else None
    return None


def logs(container: Any) -> str:
    with engine_errors("read the node's output"):
        return _text(container.logs(stdout=True, stderr=True))


def logs_since(container: Any, since: Any) -> str:
    """The node's output from `since` (a datetime) on: what one attempt made it say."""
    with engine_errors("read the node's output"):
        return _text(container.logs(stdout=True, stderr=True, since=precise(since)))
