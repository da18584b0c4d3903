"""Replaying the customer's actions: run, http, wait, sleep and fault steps on a live topology.

Each step gives a plain result dict (journaled as is). A step that cannot run at all (node gone,
engine lost) carries `error`, which makes the attempt, and so the verdict, ERROR.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Sequence
from typing import Any

from harness.engine.api import Background, Engine, WaitFor
from harness.errors import HarnessError, InfraError
from harness.run.folder import now_iso
from harness.scenario.schema import FaultStep, HttpStep, Impairment, RunStep, SleepStep, WaitStep

Step = RunStep | HttpStep | WaitStep | SleepStep | FaultStep
OUTPUT_LIMIT = 64 * 1024


def step_id(step: Step, index: int) -> str:
    return step.id or f"step-{index + 1}"


def describe(step: Step) -> str:
    if isinstance(step, RunStep):
        return f"{step.on}$ {step.run}" + ("  (background)" if step.background else "")
    if isinstance(step, HttpStep):
        return f"{step.on}: {step.http.method} {step.http.url}"
    if isinstance(step, WaitStep):
        w = step.wait
        what = f"port {w.port}" if w.port else f"log /{w.log}/" if w.log else f"file {w.file}"
        return f"{step.on}: wait for {what} (up to {w.timeout:g}s)"
    if isinstance(step, SleepStep):
        return f"sleep {step.sleep:g}s"
    extra = {
        k: v
        for k, v in step.model_dump(exclude_none=True).items()
        if k not in ("id", "fault", "node")
    }
    return f"fault {step.fault} {step.node}" + "".join(f" {k}={v}" for k, v in extra.items())


def _clip(text: str) -> str:
    return text if len(text) <= OUTPUT_LIMIT else text[:OUTPUT_LIMIT] + "\n[... truncated]"


def http_command(step: HttpStep) -> str:
    h = step.http
    parts = ["curl", "-sS", "-X", h.method, "-m", f"{h.timeout:g}", "-w", "\\n%{http_code}"]
    if h.insecure:
        parts.append("-k")
    for k, v in h.headers.items():
        parts += ["-H", f"{k}: {v}"]
    if h.data is not None:
        parts += ["--data", h.data]
    parts.append(h.url)
    return " ".join(shlex.quote(p) for p in parts)


class StepRunner:
    """Runs one attempt's steps against a run's containers and remembers what to undo."""

    def __init__(
        self,
        engine: Engine,
        run_id: str,
        addresses: dict[str, dict[str, str]],
        on_event: Callable[[dict[str, Any]], None],
        impairments: Sequence[Impairment] = (),
    ) -> None:
        self.engine = engine
        self.run_id = run_id
        self.addresses = addresses
        self.on_event = on_event
        self.impairments = list(impairments)  # the topology's: put back on a restarted node
        self.background: dict[str, tuple[Background, dict[str, Any]]] = {}
        self.undo: list[FaultStep] = []

    def run(self, step: Step, index: int, attempt: int) -> dict[str, Any]:
        sid = step_id(step, index)
        rec: dict[str, Any] = {
            "index": index,
            "id": sid,
            "kind": type(step).__name__.removesuffix("Step").lower(),
            "node": getattr(step, "on", None) or getattr(step, "node", None),
            "description": describe(step),
            "start": now_iso(),
        }
        t0 = time.monotonic()
        self.on_event(
            {"event": "step", "attempt": attempt, "step": sid, "description": rec["description"]}
        )
        try:
            rec.update(self._dispatch(step, sid))
        except HarnessError as exc:
            rec["error"] = exc.message
        handle = rec.pop("_handle", None)
        if handle is not None:  # its record is completed when it is stopped
            self.background[sid] = (handle, rec)
        rec.setdefault("duration_s", round(time.monotonic() - t0, 3))
        rec["end"] = now_iso()
        self.on_event(
            {"event": "step-done", "attempt": attempt, "step": sid, "result": _summary(rec)}
        )
        return rec

    def _dispatch(self, step: Step, sid: str) -> dict[str, Any]:
        if isinstance(step, RunStep):
            return self._run(step, sid)
        if isinstance(step, HttpStep):
            res = self.engine.exec(self.run_id, step.on, http_command(step), step.http.timeout + 5)
            body, _, code = res.stdout.rpartition("\n")
            status = int(code) if code.strip().isdigit() else 0
            return {
                "command": http_command(step),
                "exit_code": res.exit_code,
                "status": status,
                "stdout": _clip(body),
                "stderr": _clip(res.stderr),
                "duration_s": round(res.duration_s, 3),
            }
        if isinstance(step, WaitStep):
            return self._wait(step)
        if isinstance(step, SleepStep):
            time.sleep(step.sleep)
            return {"exit_code": 0}
        return self._fault(step)

    def _run(self, step: RunStep, sid: str) -> dict[str, Any]:
        if step.background:
            bg = self.engine.start_background(
                self.run_id, step.on, step.run, f"{self.run_id}-{sid}"
            )
            return {"command": step.run, "background": True, "_handle": bg}
        res = self.engine.exec(self.run_id, step.on, step.run, step.timeout)
        rec = {
            "command": step.run,
            "exit_code": res.exit_code,
            "stdout": _clip(res.stdout),
            "stderr": _clip(res.stderr),
            "duration_s": round(res.duration_s, 3),
            "timed_out": res.timed_out,
        }
        if step.expect_exit is not None and res.exit_code != step.expect_exit:
            rec["error"] = (
                f"step {sid} on {step.on} exited {res.exit_code}, expected {step.expect_exit}"
                + (f": {res.stderr.strip()[-300:]}" if res.stderr.strip() else "")
            )
        return rec

    def _wait(self, step: WaitStep) -> dict[str, Any]:
        """exit_code 0 when the condition was met in time, 1 when it timed out."""
        w = step.wait
        check = (
            WaitFor("port", str(w.port))
            if w.port
            else WaitFor("log", w.log)
            if w.log
            else WaitFor("command", f"test -e {shlex.quote(str(w.file))}")
        )
        self.engine.node(self.run_id, step.on)  # a node that is not there: the step cannot run
        deadline = time.monotonic() + w.timeout
        while True:
            try:
                if self.engine.condition_met(self.run_id, step.on, check):
                    return {"exit_code": 0, "condition": check.description}
            except Exception as exc:  # the node went away mid-wait: the step cannot run
                raise InfraError(f"waiting on {step.on}: {exc}") from None
            if time.monotonic() >= deadline:
                return {"exit_code": 1, "timed_out": True, "condition": check.description}
            time.sleep(0.2)

    def _fault(self, step: FaultStep) -> dict[str, Any]:
        from harness.run import faults

        detail = faults.apply(self.engine, self.run_id, step, self.addresses)
        if step.fault == "restart":
            self._reapply(step.node, detail)
        if step.fault in ("stop", "kill", "pause", "partition", "impair"):
            self.undo.append(step)
        return {"exit_code": 0, "fault": detail}

    def _reapply(self, node: str, record: dict[str, Any]) -> None:
        """A restarted node has a new network namespace: the topology's impairments that were
        inside the old one (its links' loss, rate, delay and its delay helper; a partition
        with it on either side) are gone. Put them back, so the rest of the attempt and the
        next ones run on the topology the scenario describes."""
        from harness.run import faults

        mine = [i for i in self.impairments if node in (i.node, i.partition)]
        if mine:
            record["reapplied"] = faults.topology_impairments(
                self.engine, self.run_id, mine, self.addresses
            )

    def stop_background(self) -> list[dict[str, Any]]:
        out = []
        for sid, (bg, rec) in self.background.items():
            try:
                res = self.engine.stop_background(bg)
                rec.update(
                    exit_code=res.exit_code,
                    stdout=_clip(res.stdout),
                    stderr=_clip(res.stderr),
                    duration_s=round(res.duration_s, 3),
                )
            except HarnessError as exc:
                rec["error"] = exc.message
            out.append({"id": sid, **rec})
        self.background.clear()
        return out

    def undo_faults(self) -> list[dict[str, Any]]:
        """Put the topology back for the next attempt: heal, clear, unpause, start."""
        from harness.run import faults

        done = []
        for step in reversed(self.undo):
            rec = faults.revert(self.engine, self.run_id, step, self.addresses)
            if step.fault in ("stop", "kill"):  # started again: a new network namespace
                self._reapply(step.node, rec)
            done.append(rec)
        self.undo.clear()
        return done


def _summary(rec: dict[str, Any]) -> str:
    if rec.get("error"):
        return f"ERROR {rec['error']}"
    if rec.get("background"):
        return "started in the background"
    parts = []
    if "status" in rec:
        parts.append(f"HTTP {rec['status']}")
    if "exit_code" in rec:
        parts.append(f"exit {rec['exit_code']}")
    if rec.get("timed_out"):
        parts.append("timed out")
    return ", ".join(parts) + f" in {rec.get('duration_s', 0):.2f}s"
