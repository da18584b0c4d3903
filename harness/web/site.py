"""What every request reads from: the store's reader, the report folders, the page renderer and
the store's name as it may be shown. One per application, in `app.state.site`."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from harness.web.files import ReportFiles
from harness.web.queries import Reader
from harness.web.render import Pages


@dataclass(frozen=True)
class Site:
    reader: Reader
    files: ReportFiles
    pages: Pages
    store: str  # the store's URL with its password hidden (Store.shown)


def site(request: Request) -> Site:
    found: Site = request.app.state.site
    return found
