"""Fixtures for the pure scenario tests: a small self-contained project under tests/unit/catalog
(labs web, client, db on debian-11/debian-12), so these tests never depend on the real labs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenario.catalog import Catalog, load_catalog

CATALOG_ROOT = Path(__file__).resolve().parent / "catalog"


@pytest.fixture(scope="session")
def catalog_root() -> Path:
    return CATALOG_ROOT


@pytest.fixture(scope="session")
def test_catalog() -> Catalog:
    return load_catalog(CATALOG_ROOT)
