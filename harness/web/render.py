"""The HTML side: one Jinja environment over harness/web/templates with autoescape on for every
template (scenario names, tickets, reasons and outputs are someone else's text), the filters
the pages share, and the geometry of the rate charts (inline SVG: no script, no fetch)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.responses import HTMLResponse

from harness.web.models import RatePoint

_WORD = re.compile(r"[A-Za-z_]{1,32}")


def when(iso: str | None) -> str:
    """`2026-03-01T10:11:12.123+00:00` -> `2026-03-01 10:11:12`: the index keeps UTC."""
    if not iso:
        return "-"
    return iso[:19].replace("T", " ")


def secs(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest:02d} s"


def word_class(word: str | None) -> str:
    """A verdict or status as a CSS class (`v-pass`); a word that is not one: `v-other`."""
    if not word or not _WORD.fullmatch(word):
        return "v-other"
    return "v-" + word.lower()


def link(url: str | None) -> str | None:
    """A URL from a record, kept only when it is http(s): never `javascript:` or `data:`."""
    if not url:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


@dataclass(frozen=True)
class Bar:
    """One run on a rate chart: the rate as a dot, its interval as a bar."""

    x: float
    y: float
    low: float
    high: float
    point: RatePoint


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    top: int
    plot_h: int
    bars: list[Bar]
    pooled_low: float
    pooled_high: float
    pooled_y: float | None

    def ticks(self) -> list[tuple[float, str]]:
        return [(self.top + self.plot_h * (1 - f), f"{f * 100:.0f}%") for f in (0, 0.5, 1)]


def rate_chart(points: list[RatePoint], pooled: tuple[float | None, float, float]) -> Chart:
    """Geometry of one scenario's chart: runs left (oldest) to right (newest), 0-100% up."""
    left, top, plot_h, step = 44, 10, 120, 18
    width = max(240, left + 20 + step * len(points))

    def y(f: float) -> float:
        return round(top + plot_h * (1 - f), 1)

    bars = [
        Bar(x=left + 10 + step * i, y=y(p.rate), low=y(p.low), high=y(p.high), point=p)
        for i, p in enumerate(points)
    ]
    rate, low, high = pooled
    return Chart(
        width=width,
        height=top + plot_h + 24,
        left=left,
        top=top,
        plot_h=plot_h,
        bars=bars,
        pooled_low=y(low),
        pooled_high=y(high),
        pooled_y=None if rate is None else y(rate),
    )


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("harness.web", "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, secs=secs, vclass=word_class, link=link, pct=pct)
    env.globals["rate_chart"] = rate_chart
    return env


class Pages:
    """Renders a template into a response."""

    def __init__(self) -> None:
        self.env = environment()

    def render(self, name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status)
