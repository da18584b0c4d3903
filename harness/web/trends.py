"""Results over time: the gates of each release (every run of them, the cells' statuses across
those runs, the regressions marked), and each scenario's reproduction rate run after run with
its Wilson 95% interval (harness.confidence), plus the pooled rate of its newest runs."""

from __future__ import annotations

from typing import Any

from harness import outcomes
from harness.confidence import wilson
from harness.store.entry import ResultEntry
from harness.web.files import ReportFiles
from harness.web.models import (
    GateChange,
    GateKeyRow,
    GateMark,
    GateRelease,
    GateRun,
    GatesPage,
    Pooled,
    RatePoint,
    RatesPage,
    ScenarioRate,
)
from harness.web.queries import Reader
from harness.web.views import items, mapping, run_url, text

NO_RELEASE = "(no release)"
WINDOW = 20  # the pooled rate: this many of a scenario's newest runs
POINTS = 200  # runs a scenario's chart shows at most (the newest)
# the scenario as the customer has it: a candidate carries a fix, a cell another version
RATE_ROLES: tuple[str, ...] = ("reproduce", "baseline")


def _change(raw: Any) -> GateChange | None:
    if isinstance(raw, str):
        return GateChange(key=raw, baseline=None, now=None)
    c = mapping(raw)
    key = text(c.get("key")) or text(c.get("cell"))
    if not key:
        return None
    return GateChange(key=key, baseline=text(c.get("baseline")), now=text(c.get("now")))


def _changes(raw: Any) -> list[GateChange]:
    return [c for c in (_change(r) for r in items(raw)) if c is not None]


def gate_run(e: ResultEntry, files: ReportFiles) -> GateRun:
    d = e.detail
    baseline = d.get("baseline")
    return GateRun(
        id=e.id,
        gate=e.scenario,
        release=e.release,
        verdict=e.verdict,
        started=e.started,
        reason=text(d.get("reason")),
        baseline=text(baseline) or text(mapping(baseline).get("release")),
        cells=len(items(d.get("cells"))),
        regressions=_changes(d.get(outcomes.REGRESSIONS)),
        fixed=_changes(d.get(outcomes.FIXED_CELLS)),
        new=_changes(d.get(outcomes.NEW)),
        removed=_changes(d.get(outcomes.REMOVED)),
        report_url=files.url(e.folder, "results.json"),
    )


def _cells(e: ResultEntry) -> dict[str, tuple[str | None, str | None]]:
    """key -> (status, run) of a gate run's cells."""
    out = {}
    for raw in items(e.detail.get("cells")):
        c = mapping(raw)
        key = text(c.get("key"))
        if key:
            out[key] = (text(c.get("status")), text(c.get("run")))
    return out


def _release(
    name: str, found: list[ResultEntry], files: ReportFiles, indexed: set[str]
) -> GateRelease:
    runs = [gate_run(e, files) for e in found]
    cells = [_cells(e) for e in found]
    keys = sorted({k for c in cells for k in c} | {r.key for g in runs for r in g.regressions})
    rows = []
    for key in keys:
        marks = []
        for g, c in zip(runs, cells, strict=True):
            status, run = c.get(key, (None, None))
            regressed = any(r.key == key for r in g.regressions)
            url = run_url(run) if run and run in indexed else None
            marks.append(GateMark(gate_run=g.id, status=status, regression=regressed, url=url))
        rows.append(GateKeyRow(key=key, marks=marks))
    return GateRelease(
        release=name, runs=runs, keys=rows, regressed=bool(runs and runs[-1].regressions)
    )


def gates_page(reader: Reader, files: ReportFiles) -> GatesPage:
    by: dict[str, list[ResultEntry]] = {}
    for e in reader.of_kind("gate"):
        by.setdefault(e.release or NO_RELEASE, []).append(e)
    runs = {r for found in by.values() for e in found for _, r in _cells(e).values() if r}
    indexed = {i for i, kind in reader.kinds_of(sorted(runs)).items() if kind == "run"}
    newest_first = sorted(by.items(), key=lambda kv: kv[1][-1].started or "", reverse=True)
    return GatesPage(releases=[_release(n, found, files, indexed) for n, found in newest_first])


def _point(e: ResultEntry) -> RatePoint | None:
    k, n = e.observed, e.attempts
    if k is None or not n or not 0 <= k <= n or e.verdict == outcomes.ERROR:
        return None
    ci = wilson(k, n)
    return RatePoint(
        run=e.id,
        started=e.started,
        role=e.role,
        verdict=e.verdict,
        observed=k,
        attempts=n,
        rate=k / n,
        low=ci.low,
        high=ci.high,
        interval=ci.text(),
        url=run_url(e.id),
    )


def pooled(points: list[RatePoint], window: int = WINDOW) -> Pooled:
    last = points[-window:]
    k = sum(p.observed for p in last)
    n = sum(p.attempts for p in last)
    ci = wilson(k, n)
    return Pooled(
        runs=len(last),
        observed=k,
        attempts=n,
        rate=k / n if n else None,
        low=ci.low,
        high=ci.high,
        interval=ci.text(),
    )


def rates_page(reader: Reader, scenario: str | None = None) -> RatesPage:
    """Every scenario's runs as the customer has it (roles reproduce and baseline, or none),
    oldest first; a run that ended ERROR measured nothing and is left out."""
    by: dict[str, list[RatePoint]] = {}
    for e in reader.of_kind("run", scenario=scenario):
        if e.role not in (*RATE_ROLES, None) or not e.scenario:
            continue
        p = _point(e)
        if p is not None:
            by.setdefault(e.scenario, []).append(p)
    return RatesPage(
        window=WINDOW,
        roles=list(RATE_ROLES),
        scenarios=[
            ScenarioRate(scenario=s, points=ps[-POINTS:], pooled=pooled(ps))
            for s, ps in sorted(by.items())
        ],
    )
