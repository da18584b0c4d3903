"""Node faults: stop, kill, pause, unpause, restart a node's container.

Each returns plain data {"action", "node", "ok", "detail", "status", "seconds"}: ok says whether
the node reached the state the fault means (stopped/killed: not running; paused: paused;
unpaused/restarted: running). Engine failures become InfraError (exit 3) via engine_errors.

Network partitions and heals are faults too in a scenario, but they need addresses: the run layer
does them with harness.engine.impair.partition()/heal(). A stop or restart recreates the node's
network namespace, so impairments applied inside it are gone afterwards: apply them again.

API
---
stop(container, node, timeout=10) -> dict      SIGTERM, then SIGKILL after timeout seconds
kill(container, node, signal="SIGKILL") -> dict
pause(container, node) -> dict                 freezes every process (cgroup freezer)
unpause(container, node) -> dict
restart(container, node, timeout=10) -> dict   stop (as above) then start
inject(container, node, action, **options) -> dict   one of the above by name
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from harness.engine.client import engine_errors
from harness.errors import UsageError

ACTIONS = ("stop", "kill", "pause", "unpause", "restart")
NETWORK_ACTIONS = ("partition", "heal")


def _state(container: Any) -> dict[str, Any]:
    container.reload()
    return dict(container.attrs.get("State", {}) or {})


def _describe(state: dict[str, Any]) -> str:
    status = str(state.get("Status", "unknown"))
    if status in ("exited", "dead"):
        return f"{status} (exit code {state.get('ExitCode')})"
    return status


def _result(
    action: str, node: str, want: Callable[[dict[str, Any]], bool], container: Any, t0: float
) -> dict[str, Any]:
    with engine_errors(f"read the state of node {node} after {action}"):
        state = _state(container)
    ok = want(state)
    detail = f"{node} is {_describe(state)}"
    if not ok:
        detail += f" after {action}"
    return {
        "action": action,
        "node": node,
        "ok": ok,
        "detail": detail,
        "status": str(state.get("Status", "unknown")),
        "seconds": round(time.monotonic() - t0, 3),
    }


def _not_running(state: dict[str, Any]) -> bool:
    return not state.get("Running", False)


def _running(state: dict[str, Any]) -> bool:
    return bool(state.get("Running", False)) and not state.get("Paused", False)


def stop(container: Any, node: str, timeout: float = 10) -> dict[str, Any]:
    t0 = time.monotonic()
    with engine_errors(f"stop node {node}"):
        container.stop(timeout=int(timeout))
    return _result("stop", node, _not_running, container, t0)


def kill(container: Any, node: str, signal: str = "SIGKILL") -> dict[str, Any]:
    t0 = time.monotonic()
    with engine_errors(f"kill node {node}"):
        container.kill(signal=signal)
        if signal in ("SIGKILL", "KILL", "9"):
            container.wait(timeout=30)
    want = _not_running if signal in ("SIGKILL", "KILL", "9") else (lambda s: True)
    out = _result("kill", node, want, container, t0)
    out["signal"] = signal
    return out


def pause(container: Any, node: str) -> dict[str, Any]:
    t0 = time.monotonic()
    with engine_errors(f"pause node {node}"):
        container.pause()
    return _result("pause", node, lambda s: bool(s.get("Paused")), container, t0)


def unpause(container: Any, node: str) -> dict[str, Any]:
    t0 = time.monotonic()
    with engine_errors(f"unpause node {node}"):
        container.unpause()
    return _result("unpause", node, _running, container, t0)


def restart(container: Any, node: str, timeout: float = 10) -> dict[str, Any]:
    t0 = time.monotonic()
    with engine_errors(f"restart node {node}"):
        before = _state(container).get("StartedAt")
        container.restart(timeout=int(timeout))
    out = _result("restart", node, _running, container, t0)
    with engine_errors(f"read the state of node {node} after restart"):
        after = _state(container).get("StartedAt")
    out["restarted"] = bool(after and after != before)
    out["ok"] = out["ok"] and out["restarted"]
    return out


def inject(container: Any, node: str, action: str, **options: Any) -> dict[str, Any]:
    """Run one container fault by name (the scenario's `fault:` value)."""
    if action in NETWORK_ACTIONS:
        raise UsageError(
            f"fault {action} on {node} is a network fault: use harness.engine.impair"
            f" ({'partition' if action == 'partition' else 'heal'})"
        )
    funcs: dict[str, Callable[..., dict[str, Any]]] = {
        "stop": stop,
        "kill": kill,
        "pause": pause,
        "unpause": unpause,
        "restart": restart,
    }
    if action not in funcs:
        raise UsageError(f"unknown fault {action!r}: expected one of {', '.join(ACTIONS)}")
    return funcs[action](container, node, **options)
