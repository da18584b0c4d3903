"""The JSON twins of the pages, under /api: the same page models, so /openapi.json describes
every field. GET only: the dashboard reads the index and never changes it."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BeforeValidator

from harness.web import escalations, matrices, trends, views
from harness.web.models import (
    About,
    EscalationsPage,
    GatesPage,
    HeatmapPage,
    MatricesPage,
    Problem,
    RatesPage,
    RunFilter,
    RunPage,
    RunsPage,
    VerificationPage,
    VerificationsPage,
)
from harness.web.site import Site, site

PLAIN = r"^[^\x00-\x1f\x7f]*$"  # no NUL or control character reaches a query
MAX_LIMIT = 2000

DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _day(value: Any) -> Any:
    """A day as the page's date field sends it: never a number (pydantic would read a Unix
    time) nor a datetime."""
    if isinstance(value, str) and not DAY.fullmatch(value):
        raise ValueError("expected a day, YYYY-MM-DD")
    return value


SiteDep = Annotated[Site, Depends(site)]
Text = Annotated[str | None, Query(max_length=200, pattern=PLAIN)]
Id = Annotated[str, Path(min_length=1, max_length=200, pattern=PLAIN)]
MatrixId = Annotated[
    str | None, Query(max_length=200, pattern=PLAIN, description="A matrix id (default: latest).")
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Newest runs listed at most.")]

UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": Problem, "description": "The results store does not answer (yet)."}
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "The index holds no such result."}
}

router = APIRouter(prefix="/api", tags=["results"], responses=UNAVAILABLE)


def _found(page: Any, what: str) -> Any:
    if page is None:
        raise HTTPException(status_code=404, detail=f"the index holds no {what}")
    return page


@router.get("/runs", summary="Runs, newest first, filtered")
def api_runs(
    s: SiteDep,
    *,
    scenario: Text = None,
    ticket: Text = None,
    verdict: Text = None,
    date_from: Annotated[
        date | None, BeforeValidator(_day), Query(description="From this day (UTC).")
    ] = None,
    date_to: Annotated[
        date | None, BeforeValidator(_day), Query(description="To this day (UTC), included.")
    ] = None,
    limit: Limit = 200,
) -> RunsPage:
    f = RunFilter(
        scenario=scenario or None,
        ticket=ticket or None,
        verdict=verdict or None,
        date_from=date_from,
        date_to=date_to,
        limit=limit,
    )
    return views.runs_page(s.reader, f)


@router.get("/runs/{run_id}", summary="One run", responses=NOT_FOUND)
def api_run(s: SiteDep, run_id: Id) -> RunPage:
    page: RunPage = _found(views.run_page(s.reader, s.files, run_id), f"run {run_id}")
    return page


@router.get("/verifications", summary="Verifications, newest first")
def api_verifications(s: SiteDep) -> VerificationsPage:
    return views.verifications_page(s.reader)


@router.get(
    "/verifications/{verification_id}",
    summary="One verification, baseline and candidate",
    responses=NOT_FOUND,
)
def api_verification(s: SiteDep, verification_id: Id) -> VerificationPage:
    page = views.verification_page(s.reader, s.files, verification_id)
    found: VerificationPage = _found(page, f"verification {verification_id}")
    return found


@router.get("/matrices", summary="Each scenario's latest matrix")
def api_matrices(s: SiteDep) -> MatricesPage:
    return matrices.matrices_page(s.reader, s.files)


@router.get(
    "/matrices/{scenario}", summary="A matrix as a heatmap, with history", responses=NOT_FOUND
)
def api_heatmap(
    s: SiteDep,
    scenario: Id,
    matrix: MatrixId = None,
) -> HeatmapPage:
    page = matrices.heatmap_page(s.reader, s.files, scenario, matrix or None)
    found: HeatmapPage = _found(page, f"matrix of {scenario}")
    return found


@router.get("/gates", summary="Gate runs per release, regressions marked")
def api_gates(s: SiteDep) -> GatesPage:
    return trends.gates_page(s.reader, s.files)


@router.get("/rates", summary="Each scenario's reproduction rate over time")
def api_rates(s: SiteDep, scenario: Text = None) -> RatesPage:
    return trends.rates_page(s.reader, scenario or None)


@router.get("/escalations", summary="Escalations per ticket, what was attached where")
def api_escalations(s: SiteDep, ticket: Text = None) -> EscalationsPage:
    return escalations.escalations_page(s.reader, ticket or None)


@router.get("/about", summary="The store this dashboard reads")
def api_about(s: SiteDep) -> About:
    return About(store=s.store, counts=s.reader.counts())
