"""The /api checked against its own OpenAPI description by schemathesis: every operation, with
generated paths and queries (valid and not), answers as described (status, content type, body
schema, no server error) over the same real index as the page tests.

The schema is loaded when the module is collected (schemathesis's fixture-based loader reads a
pytest attribute that pytest 9 no longer has), so the index is built in a temporary folder then,
and removed, with the store closed, when the module's tests are done."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis

from harness.store.db import Store
from harness.web import create_app
from tests.unit.webkit import build

_TMP = Path(tempfile.mkdtemp(prefix="labharness-openapi-"))
_STORE = Store.open(build(_TMP).url, readonly=True)
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_STORE, _TMP / "reports"))


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    _STORE.close()
    shutil.rmtree(_TMP, ignore_errors=True)


@schema.parametrize()
@hypothesis.settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_api_conforms_to_its_openapi(case: Any) -> None:
    case.call_and_validate()
