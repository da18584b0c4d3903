"""Which store a command uses, and how to name it without its password.

`--store URL`, else $LABHARNESS_STORE, else `results_store:` in the local configuration
(harness.localconfig), else SQLite at <reports>/index.sqlite. The team's PostgreSQL URL carries
a password, so the URL is only ever shown through `shown()`."""

from __future__ import annotations

import os
from pathlib import Path

STORE_ENV = "LABHARNESS_STORE"
DEFAULT_FILE = "index.sqlite"


def store_url(reports: Path, given: str | None = None) -> str:
    """The store's URL (SQLAlchemy form: sqlite:///path, postgresql+psycopg://...)."""
    if given:
        return _normalise(given)
    env = os.environ.get(STORE_ENV)
    if env:
        return _normalise(env)
    from harness.localconfig import load_local_config

    configured = load_local_config().results_store
    if configured:
        return _normalise(configured)
    return f"sqlite:///{(reports / DEFAULT_FILE).resolve()}"


def _normalise(url: str) -> str:
    """A bare path is a SQLite file; postgresql:// means psycopg 3 (the driver installed)."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


def shown(url: str) -> str:
    """The URL as it may be printed or written: the password masked."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable store URL>"
