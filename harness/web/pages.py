"""The HTML pages: each renders the page model its /api twin returns (the twin's URL is on the
page). Not in the OpenAPI description: that describes the JSON."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.responses import HTMLResponse

from harness.web import escalations, matrices, trends, views
from harness.web.api import DAY, MAX_LIMIT
from harness.web.models import RunFilter
from harness.web.site import Site, site

router = APIRouter(include_in_schema=False)
SiteDep = Annotated[Site, Depends(site)]


def _twin(request: Request) -> str:
    """The page's JSON twin: /api + the same path and query."""
    query = request.url.query
    return (
        "/api"
        + (request.url.path if request.url.path != "/" else "/runs")
        + (f"?{query}" if query else "")
    )


def _page(s: Site, request: Request, name: str, nav: str, **context: Any) -> HTMLResponse:
    return s.pages.render(name, nav=nav, api_url=_twin(request), store=s.store, **context)


def _day(name: str, value: str | None) -> date | None:
    if not value:
        return None
    try:
        if not DAY.fullmatch(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, f"{name}: {value!r} is not a day (YYYY-MM-DD)") from None


def _limit(value: str | None) -> int:
    if not value:
        return 200
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise HTTPException(422, f"limit: {value!r} is not a number from 1 to {MAX_LIMIT}")
    return int(value)


def _plain(name: str, value: str | None) -> str | None:
    if value and (len(value) > 200 or any(ord(c) < 32 or ord(c) == 127 for c in value)):
        raise HTTPException(422, f"{name}: not a plain value")
    return value or None


@router.get("/", response_class=HTMLResponse)
def runs_html(  # the form sends empty fields as empty strings: read as text, checked here
    s: SiteDep,
    request: Request,
    *,
    scenario: str | None = None,
    ticket: str | None = None,
    verdict: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    limit: str | None = None,
) -> HTMLResponse:
    f = RunFilter(
        scenario=_plain("scenario", scenario),
        ticket=_plain("ticket", ticket),
        verdict=_plain("verdict", verdict),
        date_from=_day("date_from", date_from),
        date_to=_day("date_to", date_to),
        limit=_limit(limit),
    )
    return _page(s, request, "runs.html", "runs", page=views.runs_page(s.reader, f))


def _missing(what: str) -> HTTPException:
    return HTTPException(404, f"the index holds no {what}")


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_html(s: SiteDep, request: Request, run_id: str) -> HTMLResponse:
    page = views.run_page(s.reader, s.files, _plain("run", run_id) or "")
    if page is None:
        raise _missing(f"run {run_id}")
    return _page(s, request, "run.html", "runs", page=page)


@router.get("/verifications", response_class=HTMLResponse)
def verifications_html(s: SiteDep, request: Request) -> HTMLResponse:
    page = views.verifications_page(s.reader)
    return _page(s, request, "verifications.html", "verifications", page=page)


@router.get("/verifications/{verification_id}", response_class=HTMLResponse)
def verification_html(s: SiteDep, request: Request, verification_id: str) -> HTMLResponse:
    page = views.verification_page(s.reader, s.files, _plain("id", verification_id) or "")
    if page is None:
        raise _missing(f"verification {verification_id}")
    return _page(s, request, "verification.html", "verifications", page=page)


@router.get("/matrices", response_class=HTMLResponse)
def matrices_html(s: SiteDep, request: Request) -> HTMLResponse:
    page = matrices.matrices_page(s.reader, s.files)
    return _page(s, request, "matrices.html", "matrices", page=page)


@router.get("/matrices/{scenario}", response_class=HTMLResponse)
def heatmap_html(
    s: SiteDep, request: Request, scenario: str, matrix: str | None = None
) -> HTMLResponse:
    scenario = _plain("scenario", scenario) or ""
    page = matrices.heatmap_page(s.reader, s.files, scenario, _plain("matrix", matrix))
    if page is None:
        raise _missing(f"matrix of {scenario}")
    return _page(s, request, "heatmap.html", "matrices", page=page)


@router.get("/gates", response_class=HTMLResponse)
def gates_html(s: SiteDep, request: Request) -> HTMLResponse:
    return _page(s, request, "gates.html", "gates", page=trends.gates_page(s.reader, s.files))


@router.get("/rates", response_class=HTMLResponse)
def rates_html(s: SiteDep, request: Request, scenario: str | None = None) -> HTMLResponse:
    page = trends.rates_page(s.reader, _plain("scenario", scenario))
    return _page(s, request, "rates.html", "rates", page=page)


@router.get("/escalations", response_class=HTMLResponse)
def escalations_html(s: SiteDep, request: Request, ticket: str | None = None) -> HTMLResponse:
    page = escalations.escalations_page(s.reader, _plain("ticket", ticket))
    return _page(s, request, "escalations.html", "escalations", page=page)
