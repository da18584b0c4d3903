"""Where a matrix's cells run: one interface, local threads here, Dask in harness/distributed.py.

The matrix verb (harness/verbs/matrix.py) plans the cells, makes the folder and owns everything
around a cell's run: its record in results.json, the progress line of a finished cell, the
cells that never ran, the summary, the heatmap and the merged JUnit, the exit code. An executor
only runs planned cells and reports, for each, a `CellOutcome`:

- `result`: the run ended with a verdict (run_scenario's result, ERROR included);
- `error`: the cell ended ERROR before a run of its own existed (the engine gone, a bad option);
- `interrupted`: it was stopped before it finished (the matrix records it as not run).

An executor raises the interruption (SignalInterrupt, KeyboardInterrupt) after stopping its
cells (running cells tear down, cells not started never start), and returns why the
infrastructure lost the cells it could not run, or None.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from harness.engine.api import Engine
from harness.engine.connection import connect_engine
from harness.errors import HarnessError, Interrupted
from harness.run.execute import RunOptions, run_scenario
from harness.run.provision import OnEvent, _quiet
from harness.run.signals import StopFlag
from harness.run.trust import TRUSTED, Trust
from harness.scenario.catalog import Catalog
from harness.scenario.load import LoadedScenario
from harness.scenario.matrix import cell_label


@dataclass(frozen=True)
class PlannedCell:
    """A cell the matrix will run: its values and its scenario loaded for them."""

    cell: dict[str, Any]
    loaded: LoadedScenario

    @property
    def label(self) -> str:
        return cell_label(self.cell)


@dataclass(frozen=True)
class CellOutcome:
    """How one cell ended, as an executor reports it (plain data: it crosses Dask too).

    Exactly one of `result`, `error`, `interrupted` says how; `extra` carries the executor's own
    fields for the record (engine, engine_url, attempts). `engine_lost`: the infrastructure
    lost this attempt (the worker stopped, the engine stopped answering), not the cell's own
    failure; an executor that can re-run it elsewhere does before it reports the cell."""

    cell: dict[str, Any]
    result: dict[str, Any] | None = None
    expect: str | None = None  # the verdict the cell hopes for, with `reproduce`
    error: str | None = None
    interrupted: bool = False
    seconds: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    engine_lost: bool = False

    @property
    def label(self) -> str:
        return cell_label(self.cell)

    @property
    def reason(self) -> str | None:
        if self.error is not None:
            return self.error
        return None if self.result is None else self.result.get("reason")


def expected_verdict(loaded: LoadedScenario) -> str | None:
    """The verdict a cell's run should end with (`reproduce.expect`), None without `reproduce`."""
    return loaded.raw.reproduce.expect if loaded.raw.reproduce else None


Record = Callable[[CellOutcome], None]


@dataclass(frozen=True)
class ExecutorInfo:
    """What an open executor adds to results.json's header and to the `matrix` event."""

    header: dict[str, Any]
    event: dict[str, Any]


class CellExecutor(Protocol):
    """Runs a matrix's planned cells. `open` connects (InfraError, exit 3, when it cannot);
    `run` reports every cell it ends through `record` (from any thread) and returns why the
    cells it never ran were lost, or None; `close` lets go of what `open` took.
    `resumable`: its matrices record their selection (only, params) and `--resume` reruns
    their gaps."""

    resumable: ClassVar[bool]

    def open(self, matrix_id: str) -> ExecutorInfo: ...

    def run(self, cells: Sequence[PlannedCell], record: Record) -> str | None: ...

    def close(self) -> None: ...


class LocalExecutor:
    """`-j N`: cells on the local engine, N at a time in threads. Images are made first, one at
    a time, so cells in parallel only start containers. On an interruption running cells tear
    down and cells not started never start."""

    resumable: ClassVar[bool] = False

    def __init__(
        self,
        *,
        root: Path,
        catalog: Catalog,
        jobs: int,
        destroy: str = "always",
        trust: Trust = TRUSTED,
        on_event: OnEvent = _quiet,
    ) -> None:
        self.root, self.catalog, self.jobs = root, catalog, jobs
        self.destroy, self.trust, self.on_event = destroy, trust, on_event
        self.cancel = StopFlag()
        self.engine: Engine | None = None

    def open(self, matrix_id: str) -> ExecutorInfo:
        self.engine = connect_engine()
        return ExecutorInfo(
            header={"jobs": self.jobs, "engine": self.engine.version()},
            event={"jobs": self.jobs},
        )

    def close(self) -> None:
        return None

    def run(self, cells: Sequence[PlannedCell], record: Record) -> str | None:
        assert self.engine is not None, "open() first"
        for planned in cells:  # images first, one at a time
            self.engine.ensure_images(
                planned.loaded.topology, self.catalog, on_progress=self.on_event
            )
        pool = ThreadPoolExecutor(max_workers=self.jobs)
        futures: list[Future[None]] = [pool.submit(self._one, p, record) for p in cells]
        try:
            pending = set(futures)
            while pending:
                _, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
        except BaseException:
            self.cancel.set()  # running cells tear down; cells not started never start
            for f in futures:
                f.cancel()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return None

    def _one(self, planned: PlannedCell, record: Record) -> None:
        label = planned.label
        self.on_event({"event": "cell", "cell": label, "state": "started"})
        t = time.monotonic()
        try:
            r = run_scenario(
                planned.loaded,
                root=self.root,
                catalog=self.catalog,
                opts=RunOptions(
                    destroy=self.destroy,
                    role="cell",
                    cancel=self.cancel,
                    cell=label,
                    on_event=self.on_event,
                    trust=self.trust,
                ),
            )
        except Interrupted:  # torn down; the matrix records it as not run
            record(CellOutcome(planned.cell, interrupted=True))
            return
        except HarnessError as exc:  # before the run existed (engine gone, bad option)
            record(CellOutcome(planned.cell, error=exc.message, seconds=time.monotonic() - t))
            return
        record(
            CellOutcome(
                planned.cell,
                result=r.model_dump(mode="json"),  # plain data, as from a Dask worker
                expect=expected_verdict(planned.loaded),
                seconds=time.monotonic() - t,
            )
        )
