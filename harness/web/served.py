"""`/reports/<path>`: a file of an indexed report folder (report.html, REPRODUCE.md, journal.json,
artifacts, captures...) or a listing of one of its folders, under the rules of
harness.web.files; every refusal is the same 404."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.responses import FileResponse, RedirectResponse, Response

from harness.web.files import FILE_CSP, clean_parts, media_type, prefixes, served_url
from harness.web.site import Site, site

router = APIRouter(include_in_schema=False)
SiteDep = Annotated[Site, Depends(site)]
ICON = Path(__file__).with_name("static") / "favicon.svg"
LISTED = 500  # entries a folder listing shows at most


def _not_found() -> HTTPException:
    return HTTPException(404, "no such file in the indexed report folders")


@router.get("/reports/{path:path}")
def report_file(s: SiteDep, request: Request, path: str) -> Response:
    parts = clean_parts(path)
    if parts is None:
        raise _not_found()
    folder = s.reader.folder_among(prefixes(parts))
    target = s.files.inside(folder, parts) if folder is not None else None
    if target is None or folder is None:
        raise _not_found()
    if target.is_dir():
        if not path.endswith("/"):  # so the listing's relative links resolve inside it
            return RedirectResponse(served_url("/".join(parts)) + "/", status_code=307)
        return _listing(s, request, folder, parts, target)
    if not target.is_file():
        raise _not_found()
    return FileResponse(
        target,
        media_type=media_type(target),
        headers={"Content-Security-Policy": FILE_CSP, "Cache-Control": "no-cache"},
    )


def _listing(s: Site, request: Request, folder: str, parts: list[str], target: Path) -> Response:
    entries = []
    for child in sorted(target.iterdir())[:LISTED]:
        if s.files.inside(folder, [*parts, child.name]) is None or clean_parts(child.name) is None:
            continue  # a symlink out of the folder, or a name no URL can carry
        slash = "/" if child.is_dir() else ""
        entries.append((quote(child.name, safe="") + slash, child.name + slash))
    return s.pages.render(
        "listing.html",
        nav="",
        api_url=None,
        store=s.store,
        path="/".join(parts),
        entries=entries,
        up=len(parts) > len(folder.split("/")),
    )


@router.get("/favicon.ico")
def favicon() -> Response:
    return FileResponse(ICON, media_type="image/svg+xml")
