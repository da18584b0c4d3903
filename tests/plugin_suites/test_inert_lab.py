"""Run without any --lab-* option: the plugin must stay out of the way."""

from __future__ import annotations

from typing import Any


def test_uses_lab(lab: Any) -> None:
    raise AssertionError("never reached: `lab` refuses without a topology")


def test_plain() -> None:
    assert True


def test_testinfra_host_is_local(host: Any) -> None:
    # testinfra's own `host` fixture (the local machine) is untouched by the plugin
    assert host.backend.get_connection_type() == "local"
