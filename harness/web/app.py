"""The application: the pages, their /api twins, the report files and the static assets (no
CDN: FastAPI's /docs and /redoc pull Swagger UI from one, so they are off; /openapi.json is the
description). Errors have one shape per side: JSON under /api, a page elsewhere. A results
store that stops answering is a 503 saying so, never a traceback; the pool is dropped so the
next request connects afresh, and the server keeps serving."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import JSONResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harness import __version__
from harness.store.db import Store
from harness.web import api, pages, served
from harness.web.files import ReportFiles
from harness.web.models import Problem
from harness.web.queries import Reader
from harness.web.render import Pages
from harness.web.site import Site

log = logging.getLogger("harness.web")
STATIC = Path(__file__).with_name("static")
# the dashboard's own pages: its own CSS and script only, nothing from anywhere else
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
RETRY_S = 5


class SecurityHeaders:
    """Headers on every answer: no sniffing, no referrer, no framing, and the page CSP unless
    the route set its own (the report files' sandbox)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", PAGE_CSP)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("X-Frame-Options", "DENY")
            await send(message)

        await self.app(scope, receive, send_with)


def _json_side(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/openapi.json"


def reason(exc: SQLAlchemyError) -> str:
    """The database's own first line (never SQLAlchemy's text: it carries the statement)."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    said = str(orig).strip().splitlines()
    return (said[0] if said else type(orig).__name__)[:300]


def _handlers(app: FastAPI, site: Site) -> None:
    def store_down(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SQLAlchemyError)
        site.reader.engine.dispose()  # a broken pooled connection is not reused
        why = reason(exc)
        log.warning("results store %s does not answer: %s", site.store, why)
        detail = f"the results store does not answer ({why}); this page works again when it does"
        headers = {"Retry-After": str(RETRY_S)}
        if _json_side(request):
            body = Problem(detail=detail, store=site.store).model_dump()
            return JSONResponse(body, status_code=503, headers=headers)
        page = site.pages.render(
            "problem.html",
            status=503,
            nav="",
            api_url=None,
            store=site.store,
            title="The results store does not answer",
            message=detail,
            retry=RETRY_S,
        )
        page.headers.update(headers)
        return page

    def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if _json_side(request):
            return JSONResponse(
                {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
            )
        title = {404: "Not found", 405: "Not allowed", 422: "Bad query"}.get(
            exc.status_code, "Error"
        )
        page = site.pages.render(
            "problem.html",
            status=exc.status_code,
            nav="",
            api_url=None,
            store=site.store,
            title=title,
            message=str(exc.detail),
            retry=None,
        )
        page.headers.update(exc.headers or {})
        return page

    async def bad_query(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if _json_side(request):
            return await request_validation_exception_handler(request, exc)
        said = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()
        )
        return http_error(request, StarletteHTTPException(422, said))

    app.add_exception_handler(SQLAlchemyError, store_down)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, bad_query)


def create_app(
    store: Store, reports: Path, *, allowed_hosts: Sequence[str] | None = None
) -> FastAPI:
    """The dashboard over an open (read-only) store and the reports root its folders are
    relative to. `allowed_hosts`: the Host names answered (a page on another site cannot
    rebind its name onto a loopback dashboard); None answers any."""
    app = FastAPI(
        title="labharness results",
        version=__version__,
        description="The results index as JSON: every page of `lab serve` has its twin here.",
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        openapi_url="/openapi.json",
        redirect_slashes=False,
    )
    site = Site(
        reader=Reader(store.engine), files=ReportFiles(reports), pages=Pages(), store=store.shown
    )
    app.state.site = site
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(served.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _handlers(app, site)
    app.add_middleware(SecurityHeaders)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    return app
