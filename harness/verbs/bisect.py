"""`lab bisect FILE --axis A`: the first value of an ordered axis where the symptom appears (or,
with --fixed, disappears), by binary search on the reproduce verdict.

Values are ordered as versions when they all look like versions (1.10 after 1.9), else as
written. The two ends are probed first (the first must be 'before', the last 'after'), then at
most ceil(log2(n)) more. A probe that ends ERROR is retried once, then reported: never guessed.
An untrusted bisect (`--untrusted`) checks every value's scenario before the first probe.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import outcomes
from harness.errors import UsageError
from harness.run.execute import RunOptions, run_scenario
from harness.run.folder import now_iso, reports_root
from harness.run.ids import new_run_id
from harness.run.provision import OnEvent, _quiet
from harness.run.trust import Trust
from harness.scenario.catalog import Catalog, load_catalog
from harness.scenario.load import LoadedScenario, load_scenario
from harness.scenario.matrix import axes_of
from harness.verbs.matrix import raw_matrix, refuse_cells
from harness.verbs.results import BisectProbe, BisectResult

log = logging.getLogger(__name__)
_VERSION = re.compile(r"^v?\d+(\.\d+)*$")


def order_values(values: list[Any]) -> list[Any]:
    """Versions as versions (1.9 < 1.10); anything else in the order written."""
    texts = [str(v) for v in values]
    if texts and all(_VERSION.match(t) for t in texts):
        return sorted(values, key=lambda v: tuple(int(x) for x in str(v).lstrip("v").split(".")))
    return list(values)


def run_bisect(
    scenario: Path,
    *,
    root: Path,
    axis: str,
    values: list[str] | None = None,
    fixed: bool = False,
    only: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    on_event: OnEvent = _quiet,
    untrusted: bool = False,
    trust: bool = False,
) -> BisectResult:
    """`untrusted`: the file came from someone else, unless `trust`; every probe runs at that
    level."""
    level = Trust.of(untrusted=untrusted, trust=trust)
    catalog = load_catalog(root)
    axes = axes_of(raw_matrix(scenario))
    cell = _start_cell(scenario, axes, only)
    ordered, as_param = _ordered_values(scenario, axes, axis, values)
    prober = _Prober(
        scenario=scenario,
        root=root,
        catalog=catalog,
        axis=axis,
        as_param=as_param,
        cell=cell,
        params=dict(params or {}),
        level=level,
        after=outcomes.bisect_target(fixed),
        on_event=on_event,
    )
    if level.restricted:  # any value's refusal before the first probe runs
        refuse_cells([prober.load_at(v) for v in ordered], level)
    started = now_iso()
    result = _bisected(prober, ordered, fixed=fixed)
    # the probes' runs are reports/<scenario>/<run>: the bisect goes beside them
    name = Path(result.probes[0].folder).parent.name if result.probes else scenario.stem
    try:
        keep_bisect(reports_root(root), name, started, result)
    except OSError as exc:  # the verdict is printed whatever happens to its copy on disk
        log.warning("bisect.json not written: %s", exc)
    return result


def _bisected(prober: _Prober, ordered: list[Any], *, fixed: bool) -> BisectResult:
    """The search and its verdict: FOUND, NO_TRANSITION, or ERROR (a probe ERROR twice)."""
    axis, level = prober.axis, prober.level
    what = "fixed" if fixed else "bad"
    result: dict[str, Any] = {
        "axis": axis,
        "values": ordered,
        "looking_for": f"first {what}",
        "probes": prober.probes,
        "trust": level.as_dict(),
    }
    try:
        found = _search(prober, ordered, what)
    except _ProbeError as exc:
        result.update(
            verdict=outcomes.ERROR,
            reason=f"probe {axis}={exc.value} was ERROR twice: {exc.reason}",
        )
        return _result(result, outcomes.ERROR)
    if isinstance(found, str):
        result.update(verdict=outcomes.NO_TRANSITION, reason=found)
        return _result(result, outcomes.NO_TRANSITION)
    result.update(_found(axis, ordered, found, fixed=fixed), runs=len(prober.probes))
    return _result(result, outcomes.FOUND)


def keep_bisect(reports: Path, scenario: str, started: str, result: BisectResult) -> None:
    """reports/<scenario>/bisect-<id>/bisect.json: the search on disk beside its probes' runs,
    and in the results store (what `lab index` reads back)."""
    from harness.store.record import index_folder

    bid = f"bisect-{new_run_id()}"
    folder = reports / scenario / bid
    folder.mkdir(parents=True, exist_ok=True)
    doc = {
        "id": bid,
        "scenario": scenario,
        "started": started,
        "ended": now_iso(),
        **result.model_dump(mode="json", exclude={"exit_code"}),
    }
    tmp = folder / ".bisect.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(folder / "bisect.json")
    index_folder(reports, folder)


def _result(result: dict[str, Any], verdict: str) -> BisectResult:
    return BisectResult.model_validate(
        {**result, "exit_code": outcomes.exit_code("bisect", verdict)}
    )


def _found(axis: str, ordered: list[Any], found: tuple[int, int], *, fixed: bool) -> dict[str, Any]:
    """The transition found: first value after it, last before it, under both names."""
    lo, hi = found
    what = "fixed" if fixed else "bad"
    label = "first_fixed" if fixed else "first_bad"
    last = "last_unfixed" if fixed else "last_good"
    return {
        "verdict": outcomes.FOUND,
        label: ordered[hi],
        last: ordered[lo],
        "first": ordered[hi],
        "last_before": ordered[lo],
        "reason": f"{what} from {axis}={ordered[hi]} (last before: {ordered[lo]})",
    }


def _start_cell(
    scenario: Path, axes: dict[str, list[Any]], only: dict[str, str] | None
) -> dict[str, Any]:
    """The matrix cell every probe starts from: each axis's first value, or --only's."""
    cell: dict[str, Any] = {k: v[0] for k, v in axes.items()}
    for k, v in (only or {}).items():
        if k not in axes:
            raise UsageError(f"--only {k}: not a matrix axis of {scenario} ({', '.join(axes)})")
        match = [x for x in axes[k] if str(x) == v]
        if not match:
            raise UsageError(f"--only {k}={v}: not one of {axes[k]}")
        cell[k] = match[0]
    return cell


def _ordered_values(
    scenario: Path, axes: dict[str, list[Any]], axis: str, values: list[str] | None
) -> tuple[list[Any], bool]:
    """The values to search, in order, and whether the axis is a param (not a matrix axis)."""
    if axis in axes:
        ordered = order_values(values if values else list(axes[axis]))
        as_param = False
    else:
        if not values:
            known = ", ".join(axes) or "none"
            raise UsageError(
                f"--axis {axis}: not a matrix axis of {scenario} (axes: {known})",
                hint="for a param, give the ordered values: --values 1.0,1.1,1.2",
            )
        ordered = order_values(values)
        as_param = True
    if len(ordered) < 2:
        raise UsageError("bisect needs at least two values")
    return ordered, as_param


def _search(probe: Callable[[Any], bool], ordered: list[Any], what: str) -> tuple[int, int] | str:
    """(last before, first after) by binary search once both ends are on their side; else the
    reason there is no transition to find."""
    if probe(ordered[0]):
        return f"already {what} at the first value {ordered[0]}"
    if not probe(ordered[-1]):
        return f"still not {what} at the last value {ordered[-1]}"
    lo, hi = 0, len(ordered) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if probe(ordered[mid]):
            hi = mid
        else:
            lo = mid
    return lo, hi


@dataclass
class _Prober:
    """Runs the scenario at one value of the axis, keeping a record of every probe run."""

    scenario: Path
    root: Path
    catalog: Catalog
    axis: str
    as_param: bool
    cell: dict[str, Any]
    params: dict[str, str]
    level: Trust
    after: str
    on_event: OnEvent
    probes: list[BisectProbe] = field(default_factory=list)

    def load_at(self, value: Any) -> LoadedScenario:
        ps = dict(self.params)
        c = dict(self.cell)
        if self.as_param:
            ps[self.axis] = str(value)
        else:
            c[self.axis] = value
        return load_scenario(self.scenario, root=self.root, catalog=self.catalog, params=ps, cell=c)

    def __call__(self, value: Any) -> bool:
        """True when value is in the 'after' state; an ERROR probe is retried, then raised."""
        for attempt in range(1, outcomes.PROBE_TRIES + 1):
            loaded = self.load_at(value)
            self.on_event({"event": "side", "side": f"probe {self.axis}={value}"})
            r = run_scenario(
                loaded,
                root=self.root,
                catalog=self.catalog,
                opts=RunOptions(
                    destroy="always",
                    role="probe",
                    on_event=self.on_event,
                    cell=f"{self.axis}={value}",
                    trust=self.level,
                ),
            )
            self.probes.append(
                BisectProbe(
                    value=value,
                    verdict=r.verdict,
                    rate=r.rate,
                    run=r.run,
                    folder=r.folder,
                    try_=attempt,
                )
            )
            state = outcomes.probe_after(r.verdict, self.after)
            if state is not None:
                return state
        raise _ProbeError(value, r.reason)


class _ProbeError(Exception):
    def __init__(self, value: Any, reason: str) -> None:
        super().__init__(reason)
        self.value = value
        self.reason = reason
