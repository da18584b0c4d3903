"""Scale-out through Dask distributed: matrix cells on several Docker engines.

- `lab worker --engine URL --scheduler ADDR --slots N` is a Dask worker that owns one engine. Its
  slots are a Dask resource ("slots"), and every cell asks for one, so an engine never runs
  more cells than its slots. At start it collects what dead workers left on its engine.
- `lab matrix|gate ... --cluster ADDR` hands the planned cells to `DaskExecutor` (the interface
  and the local executor: harness/verbs/executors.py), which submits every cell to the
  scheduler and reports each one's outcome to the matrix verb. The client decides
  about re-runs (the scheduler is told not to re-run by itself): a cell whose worker died, or
  whose engine stopped answering, is re-run once on a worker of another engine; a second loss
  makes it ERROR, never FAIL. The dead attempt's containers are removed from its engine when
  that engine still answers (else `lab gc --engine URL`).
- The matrix verb (harness/verbs/matrix.py) rewrites results.json as each cell finishes;
  `--resume` reuses the newest matching matrix folder and runs only the cells it lacks (or
  that ended ERROR or were not run). Nothing here imports harness.verbs.matrix.

The run's trust level travels in every cell description (`trust_spec`): a worker runs an untrusted
cell with no playbook or suite and its own machine's default capabilities, as the client would;
a description without a valid level is run as untrusted, never as trusted.

Workers need the project at the same path as the client (cells are loaded there) and write
cell folders under their own reports folder (LABHARNESS_REPORTS, else <project>/reports).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from harness import outcomes
from harness.engine import connection as engine
from harness.engine.connection import Target
from harness.errors import HarnessError, InfraError, Interrupted, UsageError
from harness.run.execute import RunOptions, run_scenario
from harness.run.ids import owner_token
from harness.run.provision import OnEvent, _quiet
from harness.run.signals import SignalInterrupt, StopFlag
from harness.run.trust import TRUSTED, Trust
from harness.scenario.catalog import load_catalog
from harness.scenario.load import load_scenario
from harness.scenario.matrix import cell_label
from harness.verbs.executors import (
    CellOutcome,
    ExecutorInfo,
    PlannedCell,
    Record,
    expected_verdict,
)

TOPIC = "labharness-cells"
SLOTS = "slots"  # the Dask resource every lab worker offers and every cell takes one of
NO_WORKER_WAIT = float(os.environ.get("LABHARNESS_CLUSTER_WAIT", "120"))  # s without workers
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


def run_cell(spec: dict[str, Any]) -> CellOutcome:
    """One cell on this worker's engine (the Dask task). Never raises for a cell's own
    failure: an ERROR outcome says whether the engine still answers (`engine_lost`)."""
    if _TARGET is None:
        raise InfraError("this Dask worker owns no engine: start workers with `lab worker`")
    target = _TARGET
    cell: dict[str, Any] = spec["cell"]
    label = cell_label(cell)
    owner = owner_token()
    _log({"key": spec["key"], "cell": label, "engine": target.url, "owner": owner})
    t = time.monotonic()
    base = {"engine": target.name, "engine_url": target.url}
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
        expect = expected_verdict(loaded)
        done = run_scenario(
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
        r: dict[str, Any] = done.model_dump(mode="json")  # plain data: it crosses Dask
    except Interrupted:
        return CellOutcome(cell, error="worker stopped mid-cell", extra=base, engine_lost=True)
    except HarnessError as exc:
        r = {"verdict": outcomes.ERROR, "reason": exc.message, "rate": None, "checks": []}
        r |= {"run": None, "folder": None}
        expect = None
    lost = r["verdict"] == outcomes.ERROR and not engine.answers(target.url)
    return CellOutcome(
        cell,
        result=r,
        expect=expect,
        seconds=time.monotonic() - t,
        extra=base,
        engine_lost=lost,
    )


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
    on_event(
        {
            "event": "worker",
            "engine": target.url,
            "slots": target.slots,
            "gc": [c.model_dump(mode="json") for c in collected],
        }
    )

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


def worker_plan(
    target: Target, *, slots: int | None, images: str | None, local_url: str
) -> tuple[Target, str | None]:
    """`lab worker`'s policy, pure: the target with its --slots, and where images are copied
    from (`copy_from`): the local engine with `images: copy` (or --images copy) when it is not
    the worker's own engine, else None (the worker builds on its engine)."""
    if slots is not None:
        if slots < 1:
            raise UsageError("--slots must be at least 1")
        target = target.model_copy(update={"slots": slots})
    mode = images or target.images
    if mode not in ("build", "copy"):
        raise UsageError(f"--images {mode!r}: expected build or copy")
    copy_from = local_url if mode == "copy" and target.url != local_url else None
    return target, copy_from


def start_worker(
    wanted: str | None,
    targets: Path | None,
    scheduler: str,
    *,
    slots: int | None = None,
    images: str | None = None,
    on_event: OnEvent = _quiet,
) -> int:
    """`lab worker`: the engine named by --engine (a URL or a targets name), serving cells."""
    if not scheduler:
        raise UsageError("--scheduler ADDR is required (the Dask scheduler's address)")
    target = engine.resolve(wanted, targets)
    target, copy_from = worker_plan(
        target, slots=slots, images=images, local_url=engine.engine_url()
    )
    return serve_worker(target, scheduler, copy_from=copy_from, on_event=on_event)


def client_targets(cluster: str | None, targets: Path | None) -> None:
    """The client reaches the workers' engines only to clean up after a lost attempt; for
    tcp+TLS and ssh engines it needs their settings (a targets file, or LABHARNESS_TARGETS):
    loaded here, so a bad file fails before any cell runs (exit 2)."""
    if targets is not None and not cluster:
        raise UsageError("--targets needs --cluster", hint="without it the local engine runs all")
    if targets is not None or (cluster and os.environ.get(engine.TARGETS_ENV)):
        engine.load_targets(targets)


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
    return {"cleaned": sorted({r.run for r in removed})}


_Meta = dict[Any, tuple[dict[str, Any], int, list[dict[str, Any]]]]  # future -> cell, try, history


class _WorkerWatch:
    """Every 5 s: does the cluster still have a lab worker? gone() once none has been seen for
    NO_WORKER_WAIT seconds (the cells would wait for ever)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.since: float | None = None
        self.last = 0.0

    def gone(self) -> bool:
        now = time.monotonic()
        if now - self.last <= 5:
            return False
        self.last = now
        if _engines(self.client):
            self.since = None
        elif self.since is None:
            self.since = now
        return self.since is not None and now - self.since > NO_WORKER_WAIT


class DaskExecutor:
    """`--cluster ADDR`: every cell to a Dask scheduler of `lab worker`s, one slot each. The
    client decides re-runs: a cell whose worker died, or whose engine stopped answering, is
    re-run once on a worker of another engine; a second loss makes it ERROR, never FAIL."""

    resumable: ClassVar[bool] = True

    def __init__(
        self,
        cluster: str,
        *,
        scenario: Path,
        root: Path,
        params: dict[str, str] | None = None,
        destroy: str = "always",
        trust: Trust = TRUSTED,
        on_event: OnEvent = _quiet,
    ) -> None:
        self.cluster, self.scenario, self.root = cluster, scenario, root
        self.params, self.destroy, self.trust, self.on_event = params, destroy, trust, on_event
        self.matrix_id = ""
        self.client: Any = None

    def open(self, matrix_id: str) -> ExecutorInfo:
        from distributed import Client

        self.matrix_id = matrix_id
        try:
            client = Client(self.cluster, timeout="20s")  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as exc:
            raise InfraError(
                f"no Dask scheduler answers at {self.cluster} ({type(exc).__name__})",
                hint="start one (`dask scheduler`) and workers (`lab worker --engine URL "
                "--scheduler ADDR`), or leave out --cluster to run on the local engine",
            ) from None
        self.client = client
        try:
            _no_reschedule(client)
            engines = sorted(set(_engines(client).values()))
        except BaseException:
            self.close()
            raise
        return ExecutorInfo(
            header={"cluster": self.cluster, "jobs": None, "engines": engines},
            event={"engines": engines},
        )

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def _submit(self, cell: dict[str, Any], attempt: int, workers: list[str] | None) -> Any:
        key = f"lab-{self.matrix_id}-{cell_label(cell)}-try{attempt}"
        spec = {
            "key": key,
            "cell": cell,
            "scenario": str(self.scenario.resolve()),
            "root": str(self.root.resolve()),
            "params": self.params,
            "destroy": self.destroy,
            "trust": trust_spec(self.trust),
        }
        self.on_event({"event": "cell", "cell": cell_label(cell), "state": "submitted"})
        return self.client.submit(
            run_cell,
            spec,
            key=key,
            resources={SLOTS: 1},
            workers=workers,
            allow_other_workers=False,
            pure=False,
            retries=0,
        )

    def run(self, cells: Sequence[PlannedCell], record: Record) -> str | None:
        """Submit every cell, re-run lost ones once elsewhere, record each as it finishes.
        Returns why the cluster was lost, or None."""
        meta: _Meta = {}
        for planned in cells:
            meta[self._submit(planned.cell, 1, None)] = (planned.cell, 1, [])
        pending = set(meta)
        watch = _WorkerWatch(self.client)
        try:
            while pending:
                done_ = [f for f in pending if f.done()]
                if not done_:
                    lost = self._wait_some(pending)
                    if lost:
                        return lost
                pending -= set(done_)
                lost = self._take(done_, meta, pending, record)
                if lost:
                    return lost
                if pending and watch.gone():
                    self.client.cancel(list(pending))
                    return f"no lab worker for {NO_WORKER_WAIT:.0f}s"
        except (KeyboardInterrupt, SignalInterrupt, Interrupted):
            self.client.cancel(list(pending))
            raise
        except (OSError, TimeoutError) as exc:
            return f"scheduler lost ({type(exc).__name__}); rerun with --resume"
        return None

    def _wait_some(self, pending: set[Any]) -> str | None:
        """Wait (at most 1 s) for the first of `pending` to finish; why the scheduler is gone."""
        from distributed import wait as wait_futures
        from distributed.client import FuturesCancelledError

        if self.client.status not in ("running", "connecting", "newly-created"):
            return "scheduler lost; rerun with --resume"
        # woken by the first to finish; a cancelled one is looked at by _take
        with contextlib.suppress(TimeoutError, FuturesCancelledError):
            wait_futures(list(pending), timeout=1, return_when="FIRST_COMPLETED")  # type: ignore[no-untyped-call]
        return None

    def _take(self, done_: list[Any], meta: _Meta, pending: set[Any], record: Record) -> str | None:
        """Record the finished futures (a lost one re-submitted once, into `pending`); why the
        scheduler is gone when it forgot one."""
        for fut in done_:
            cell, attempt, history = meta.pop(fut)
            if fut.cancelled():  # the scheduler forgot it: it restarted or went away
                return "scheduler lost the cells; rerun with --resume"
            rerun = self._ended(fut, cell, attempt, history, record)
            if rerun is not None:
                meta[rerun[0]] = (cell, 2, rerun[1])
                pending.add(rerun[0])
        return None

    def _ended(
        self,
        fut: Any,
        cell: dict[str, Any],
        attempt: int,
        history: list[dict[str, Any]],
        record: Record,
    ) -> tuple[Any, list[dict[str, Any]]] | None:
        """A finished attempt: recorded, or (the infrastructure lost it) re-run once on another
        engine, returned as (its future, the attempts so far), or recorded ERROR."""
        label = cell_label(cell)
        if fut.status == "finished":
            out: CellOutcome = fut.result()
            if not out.engine_lost:
                ok = {"engine": out.extra.get("engine"), "ok": True}
                record(replace(out, extra={**out.extra, "attempts": [*history, ok]}))
                return None
            lost_why = f"engine {out.extra.get('engine_url')} lost: {out.reason}"
        else:
            exc = fut.exception()
            lost_why = f"worker lost ({type(exc).__name__}: {exc})"
        info = _attempt_info(self.client, fut.key)
        info.update(_clean(info))
        history = [*history, {"engine": info.get("engine"), "error": lost_why, **info}]
        others = [a for a, u in _engines(self.client).items() if u != info.get("engine")]
        if attempt == 1 and others:
            self.on_event({"event": "cell", "cell": label, "state": "re-run", "why": lost_why})
            return self._submit(cell, 2, others), history
        reason = lost_why if attempt > 1 else f"{lost_why}; no other engine to re-run on"
        record(CellOutcome(cell, error=reason, extra={"attempts": history}))
        return None
