"""Scale-out through Dask distributed: matrix cells on several Docker engines.

- `lab worker --engine URL --scheduler ADDR --slots N` is a Dask worker that owns one engine. Its
  slots are a Dask resource ("slots"), and every cell asks for one, so an engine never runs
  more cells than its slots. At start it collects what dead workers left on its engine.
- `lab matrix|gate ... --cluster ADDR` submits every cell to the scheduler. The client decides
  about re-runs (the scheduler is told not to re-run by itself): a cell whose worker died, or
  whose engine stopped answering, is re-run once on a worker of another engine; a second loss
  makes it ERROR, never FAIL. The dead attempt's containers are removed from its engine when
  that engine still answers (else `lab gc --engine URL`).
- results.json is rewritten as each cell finishes; `--resume` reuses the newest matching
  matrix folder and runs only the cells it lacks (or that ended ERROR or were not run).

The run's trust level travels in every cell description (`trust_spec`): a worker runs an untrusted
cell with no playbook or suite and its own machine's default capabilities, as the client would;
a description without a valid level is run as untrusted, never as trusted.

Workers need the project at the same path as the client (cells are loaded there) and write
cell folders under their own reports folder (LABHARNESS_REPORTS, else <project>/reports).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

from harness import outcomes
from harness.engine import connection as engine
from harness.engine.connection import Target
from harness.errors import HarnessError, InfraError, Interrupted, UsageError
from harness.run.execute import RunOptions, run_scenario
from harness.run.folder import now_iso, reports_root
from harness.run.ids import new_run_id, owner_token
from harness.run.provision import OnEvent, _quiet
from harness.run.signals import SignalInterrupt, StopFlag, interrupts_raise
from harness.run.trust import TRUSTED, Trust
from harness.scenario.catalog import load_catalog
from harness.scenario.load import load_scenario
from harness.scenario.matrix import cell_label

TOPIC = "labharness-cells"
SLOTS = "slots"  # the Dask resource every lab worker offers and every cell takes one of
NO_WORKER_WAIT = float(os.environ.get("LABHARNESS_CLUSTER_WAIT", "120"))  # s without workers
PASS, FAIL, ERROR, SKIP = outcomes.PASS, outcomes.FAIL, outcomes.ERROR, outcomes.SKIP
LATE_OBJECTS_S = 1.0  # how long after a lost attempt's cleanup to look for late objects

# -- the worker side ---------------------------------------------------------------------------

_TARGET: Target | None = None  # the engine this worker process owns
_COPY_FROM: str | None = None  # where images come from when the engine cannot build them
_CANCEL = StopFlag()  # set on SIGTERM/SIGINT: running cells tear down


def worker_engine() -> str | None:
    """Runs on each worker (client.run): the URL of the engine it owns."""
    return _TARGET.url if _TARGET is not None else None


def _log(event: dict[str, Any]) -> None:
    from distributed import get_worker

    with contextlib.suppress(ValueError):  # ValueError: not in a worker (called directly)
        get_worker().log_event(TOPIC, event)


def trust_spec(level: Trust) -> dict[str, Any]:
    """The trust level as the cell description carries it to a worker (plain data)."""
    return {"untrusted": level.untrusted, "override": level.override, "origin": level.origin}


def trust_from_spec(spec: dict[str, Any]) -> Trust:
    """The level a worker runs a cell at. Anything but a well-formed level (an older client,
    a hand-made task) is untrusted without --trust: a worker never guesses upward."""
    raw = spec.get("trust")
    if (
        isinstance(raw, dict)
        and set(raw) == {"untrusted", "override", "origin"}
        and isinstance(raw["untrusted"], bool)
        and isinstance(raw["override"], bool)
        and isinstance(raw["origin"], str)
    ):
        if not raw["untrusted"]:
            return TRUSTED
        return Trust(untrusted=True, override=raw["override"], origin=raw["origin"])
    return Trust(untrusted=True, origin="cell description without a trust level")


def run_cell(spec: dict[str, Any]) -> dict[str, Any]:
    """One cell on this worker's engine (the Dask task). Never raises for a cell's own
    failure: an ERROR result says whether the engine still answers (`engine_lost`)."""
    from harness.verbs.matrix import cell_result

    if _TARGET is None:
        raise InfraError("this Dask worker owns no engine: start workers with `lab worker`")
    target = _TARGET
    cell: dict[str, Any] = spec["cell"]
    label = cell_label(cell)
    owner = owner_token()
    _log({"key": spec["key"], "cell": label, "engine": target.url, "owner": owner})
    t = time.monotonic()
    base = {"cell": cell, "label": label, "engine": target.name, "engine_url": target.url}
    root = Path(spec["root"])
    level = trust_from_spec(spec)
    seen: set[str] = set()

    def on_event(ev: dict[str, Any]) -> None:
        run = ev.get("run")
        if run and run not in seen:
            seen.add(run)
            _log({"key": spec["key"], "run": run, "engine": target.url, "owner": owner})

    try:
        catalog = load_catalog(root)
        loaded = load_scenario(
            Path(spec["scenario"]), root=root, catalog=catalog, params=spec["params"], cell=cell
        )
        expect = loaded.raw.reproduce.expect if loaded.raw.reproduce else None
        r = run_scenario(
            loaded,
            root=root,
            catalog=catalog,
            opts=RunOptions(
                destroy=spec["destroy"],
                role="cell",
                cancel=_CANCEL,
                cell=label,
                on_event=on_event,
                engine=target.url,
                copy_images_from=_COPY_FROM,
                trust=level,
            ),
        )
    except Interrupted:
        return {**base, "status": ERROR, "reason": "worker stopped mid-cell", "engine_lost": True}
    except HarnessError as exc:
        r = {"verdict": outcomes.ERROR, "reason": exc.message, "rate": None, "checks": []}
        r |= {"run": None, "folder": None}
        expect = None
    out = {**base, **cell_result(cell, r, expect, time.monotonic() - t)}
    if out["status"] == ERROR and not engine.answers(target.url):
        out["engine_lost"] = True
    return out


def serve_worker(
    target: Target,
    scheduler: str,
    *,
    copy_from: str | None = None,
    on_event: OnEvent = _quiet,
) -> int:
    """Run a Dask worker owning `target` until it is stopped (SIGTERM, Ctrl-C, scheduler gone)."""
    import asyncio

    from distributed import Worker

    from harness.verbs.runs import gc

    global _TARGET, _COPY_FROM
    engine.connect_engine(target.url)  # InfraError (exit 3) when the engine does not answer
    _TARGET, _COPY_FROM = target, copy_from
    collected = gc(engine_url=target.url)  # what dead workers left here
    on_event({"event": "worker", "engine": target.url, "slots": target.slots, "gc": collected})

    async def main() -> None:
        w = await Worker(
            scheduler,
            nthreads=target.slots,
            resources={SLOTS: target.slots},
            name=f"lab-{target.name}-{socket.gethostname()}-{os.getpid()}",
        )
        loop = asyncio.get_running_loop()

        closing: list[asyncio.Task[Any]] = []

        def stop() -> None:
            _CANCEL.set()
            closing.append(loop.create_task(w.close(timeout=120)))

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        on_event({"event": "worker", "address": w.address, "scheduler": scheduler})
        await w.finished()

    asyncio.run(main())
    return 0


# -- the client side ---------------------------------------------------------------------------


def _no_reschedule(client: Any) -> None:
    """The client decides re-runs (once, on another engine): the scheduler must not."""
    client.run_on_scheduler(lambda dask_scheduler: setattr(dask_scheduler, "allowed_failures", 0))


def _engines(client: Any) -> dict[str, str]:
    """{worker address: engine URL} of the lab workers alive now."""
    found = client.run(worker_engine, on_error="return")
    return {a: u for a, u in found.items() if isinstance(u, str)}


def _attempt_info(client: Any, key: str) -> dict[str, Any]:
    info: dict[str, Any] = {"runs": []}
    for _, msg in client.get_events(TOPIC):
        if isinstance(msg, dict) and msg.get("key") == key:
            info["engine"] = msg.get("engine")
            info["owner"] = msg.get("owner")
            if msg.get("run"):
                info["runs"].append(msg["run"])
    return info


def _clean(info: dict[str, Any]) -> dict[str, Any]:
    """Remove a dead attempt's containers from its engine, if it answers from here."""
    from harness.verbs.runs import gc

    url = info.get("engine")
    if not url:
        return {"cleaned": "nothing known"}
    if not engine.answers(url):
        return {"cleaned": f"engine {url} does not answer: `lab gc --engine {url}` later"}
    removed = gc(engine_url=url, owner=info.get("owner"), runs=info["runs"] or None)
    # a create the worker sent just before it died is finished by the engine a moment later
    time.sleep(LATE_OBJECTS_S)
    removed += gc(engine_url=url, owner=info.get("owner"), runs=info["runs"] or None)
    return {"cleaned": sorted({r["run"] for r in removed})}


def find_resumable(folder_parent: Path, header: dict[str, Any]) -> Path | None:
    """The newest matrix folder started by the same command (source, only, params, trust)."""
    best: tuple[float, Path] | None = None
    for res in folder_parent.glob("matrix-*/results.json"):
        try:
            data = json.loads(res.read_text())
        except (OSError, ValueError):
            continue
        # a resumed matrix keeps its cells' trust level: a trusted run never fills in an
        # untrusted one's gaps (or the other way round)
        if all(data.get(k) == header[k] for k in ("source", "only", "params", "trust")):
            m = res.stat().st_mtime
            if best is None or m > best[0]:
                best = (m, res.parent)
    return best[1] if best else None


def _kept(cell: dict[str, Any]) -> bool:
    """What --resume keeps: finished verdicts and cells that cannot be built."""
    if cell["status"] in (PASS, FAIL):
        return True
    return cell["status"] == SKIP and not str(cell.get("reason", "")).startswith("not run")


def run_matrix_cluster(
    scenario: Path,
    *,
    root: Path,
    cluster: str,
    params: dict[str, str] | None = None,
    only: dict[str, str] | None = None,
    destroy: str = "always",
    on_event: OnEvent = _quiet,
    name: str | None = None,
    resume: bool = False,
    trust: Trust = TRUSTED,
) -> dict[str, Any]:
    from distributed import Client

    from harness.verbs.matrix import MatrixResults, _skip, close_results, plan_cells, refuse_cells

    catalog = load_catalog(root)
    planned, axes = plan_cells(scenario, root, catalog, params, only)
    runnable = [(c, ld) for c, ld, _ in planned if ld is not None]
    refuse_cells([ld for _, ld in runnable], trust)  # before a folder or a scheduler
    scen_name = runnable[0][1].topology.scenario
    header: dict[str, Any] = {
        "scenario": scen_name,
        "source": str(scenario),
        "only": only or {},
        "params": params or {},
        "axes": axes,
        "cluster": cluster,
        "trust": trust.as_dict(),
    }
    parent = reports_root(root) / scen_name
    kept: list[dict[str, Any]] = []
    folder = find_resumable(parent, header) if resume else None
    if folder is not None:
        previous = json.loads((folder / "results.json").read_text())
        kept = [c for c in previous.get("cells", []) if _kept(c)]
        matrix_id = previous["matrix"]
    else:
        matrix_id = name or f"matrix-{new_run_id()}"
        folder = parent / matrix_id
        folder.mkdir(parents=True, exist_ok=False)
    try:
        client = Client(cluster, timeout="20s")  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as exc:
        raise InfraError(
            f"no Dask scheduler answers at {cluster} ({type(exc).__name__})",
            hint="start one (`dask scheduler`) and workers (`lab worker --engine URL "
            "--scheduler ADDR`), or leave out --cluster to run on the local engine",
        ) from None
    try:
        _no_reschedule(client)
        engines = _engines(client)
        results = MatrixResults(
            folder,
            {
                "matrix": matrix_id,
                **header,
                "jobs": None,
                "engines": sorted(set(engines.values())),
                "started": now_iso(),
                "resumed": bool(kept),
            },
        )
        done = {c["label"] for c in kept}
        for c in kept:
            results.add(c)
        for cell, _, why in planned:
            if why is not None and cell_label(cell) not in done:
                results.add(_skip(cell, why))
        todo = [c for c, _ in runnable if cell_label(c) not in done]
        on_event(
            {
                "event": "matrix",
                "matrix": matrix_id,
                "folder": str(folder),
                "cells": len(planned),
                "todo": len(todo),
                "engines": results.data["engines"],
            }
        )
        t0 = time.monotonic()
        with interrupts_raise():
            interrupted, lost = _submit_all(
                client, todo, scenario, root, params, destroy, matrix_id, results, on_event, trust
            )
    finally:
        client.close()  # type: ignore[no-untyped-call]

    def not_run(cell: dict[str, Any]) -> dict[str, Any]:
        if interrupted:
            return _skip(cell, "not run: interrupted")
        # the infrastructure failed these cells: ERROR, and --resume runs them
        why = f"not run: {lost or 'cluster lost'}"
        return {"cell": cell, "label": cell_label(cell), "status": ERROR, "reason": why}

    summary = close_results(results, [c for c, _, _ in planned], not_run, t0, interrupted)
    if interrupted:
        raise SignalInterrupt(2)
    return {
        **results.data,
        "folder": str(folder),
        # the cluster went away before every cell ran: an infrastructure error (exit 3)
        "exit_code": outcomes.exit_code("matrix", outcomes.matrix_result(summary, bool(lost))),
    }


def _submit_all(
    client: Any,
    todo: list[dict[str, Any]],
    scenario: Path,
    root: Path,
    params: dict[str, str] | None,
    destroy: str,
    matrix_id: str,
    results: Any,
    on_event: OnEvent,
    trust: Trust = TRUSTED,
) -> tuple[bool, str | None]:
    """Submit every cell, re-run lost ones once elsewhere, record each as it finishes.
    Returns (interrupted, why the cluster was lost or None)."""
    from distributed import wait as wait_futures
    from distributed.client import FuturesCancelledError

    def submit(cell: dict[str, Any], attempt: int, workers: list[str] | None) -> Any:
        key = f"lab-{matrix_id}-{cell_label(cell)}-try{attempt}"
        spec = {
            "key": key,
            "cell": cell,
            "scenario": str(scenario.resolve()),
            "root": str(root.resolve()),
            "params": params,
            "destroy": destroy,
            "trust": trust_spec(trust),
        }
        on_event({"event": "cell", "cell": cell_label(cell), "state": "submitted"})
        return client.submit(
            run_cell,
            spec,
            key=key,
            resources={SLOTS: 1},
            workers=workers,
            allow_other_workers=False,
            pure=False,
            retries=0,
        )

    meta: dict[Any, tuple[dict[str, Any], int, list[dict[str, Any]]]] = {}
    for cell in todo:
        meta[submit(cell, 1, None)] = (cell, 1, [])
    pending = set(meta)
    no_workers_since: float | None = None
    last_check = 0.0
    try:
        while pending:
            done_ = [f for f in pending if f.done()]
            if not done_:
                if client.status not in ("running", "connecting", "newly-created"):
                    return False, "scheduler lost; rerun with --resume"
                # woken by the first to finish; a cancelled one is looked at below
                with contextlib.suppress(TimeoutError, FuturesCancelledError):
                    wait_futures(list(pending), timeout=1, return_when="FIRST_COMPLETED")  # type: ignore[no-untyped-call]
            pending -= set(done_)
            for fut in done_:
                cell, attempt, history = meta.pop(fut)
                label = cell_label(cell)
                lost_why: str | None = None
                if fut.cancelled():  # the scheduler forgot it: it restarted or went away
                    return False, "scheduler lost the cells; rerun with --resume"
                if fut.status == "finished":
                    out = fut.result()
                    if not out.get("engine_lost"):
                        out["attempts"] = [*history, {"engine": out.get("engine"), "ok": True}]
                        results.add(out)
                        on_event(
                            {
                                "event": "cell",
                                "cell": label,
                                "state": out["status"],
                                "seconds": out.get("seconds"),
                            }
                        )
                        continue
                    lost_why = f"engine {out.get('engine_url')} lost: {out.get('reason')}"
                else:
                    exc = fut.exception()
                    lost_why = f"worker lost ({type(exc).__name__}: {exc})"
                info = _attempt_info(client, fut.key)
                info.update(_clean(info))
                history = [*history, {"engine": info.get("engine"), "error": lost_why, **info}]
                others = [a for a, u in _engines(client).items() if u != info.get("engine")]
                if attempt == 1 and others:
                    on_event({"event": "cell", "cell": label, "state": "re-run", "why": lost_why})
                    nf = submit(cell, 2, others)
                    meta[nf] = (cell, 2, history)
                    pending.add(nf)
                    continue
                reason = lost_why if attempt > 1 else f"{lost_why}; no other engine to re-run on"
                results.add(
                    {
                        "cell": cell,
                        "label": label,
                        "status": ERROR,
                        "reason": reason,
                        "attempts": history,
                    }
                )
                on_event({"event": "cell", "cell": label, "state": ERROR})
            if pending and time.monotonic() - last_check > 5:
                last_check = time.monotonic()
                if _engines(client):
                    no_workers_since = None
                elif no_workers_since is None:
                    no_workers_since = time.monotonic()
                elif time.monotonic() - no_workers_since > NO_WORKER_WAIT:
                    client.cancel(list(pending))
                    return False, f"no lab worker for {NO_WORKER_WAIT:.0f}s"
    except (KeyboardInterrupt, SignalInterrupt, Interrupted):
        client.cancel(list(pending))
        return True, None
    except (OSError, TimeoutError) as exc:
        return False, f"scheduler lost ({type(exc).__name__}); rerun with --resume"
    return False, None


def check_cluster_options(cluster: str | None, resume: bool) -> None:
    if resume and not cluster:
        raise UsageError("--resume needs --cluster", hint="resume reruns a cluster matrix's gaps")
