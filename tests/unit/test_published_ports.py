"""`ports:` (issue 18 point 4): a node's ports are published on the host's 127.0.0.1 only,
never on every address. From the scenario to the engine's create options, REPRODUCE.md's flags,
the located errors, and the run layer recording where each port landed (on the in-memory engine).
The effect on the real engine is tests/engine/test_node_settings.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.engine.fake import FakeEngine
from harness.engine.objects import container_settings, host_settings
from harness.errors import UsageError
from harness.run.execute import Run, RunOptions
from harness.scenario.catalog import Catalog
from harness.scenario.load import load_scenario
from harness.scenario.resolved import PublishedPort
from tests.unit.conftest import CATALOG_ROOT


def _scenario(ports: str, other: str = "[]") -> str:
    return f"""\
scenario: ports
topology:
  networks: {{lan: {{}}}}
  nodes:
    web:
      os: debian-12
      networks: [lan]
      ports: {ports}
    other:
      os: debian-12
      networks: [lan]
      ports: {other}
"""


def _load(tmp_path: Path, catalog: Catalog, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "ports.yaml"
    path.write_text(text)
    return load_scenario(path, root=CATALOG_ROOT, catalog=catalog)


def test_every_form_resolves_and_binds_to_loopback_only(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    loaded = _load(
        tmp_path, test_catalog, _scenario('[80, "8443:443", "53/udp", "127.0.0.1:9000:9000/tcp"]')
    )
    web = next(n for n in loaded.topology.nodes if n.name == "web")
    assert web.settings.ports == (
        PublishedPort(80),
        PublishedPort(443, "tcp", 8443),
        PublishedPort(53, "udp"),
        PublishedPort(9000, "tcp", 9000),
    )
    bindings = host_settings(web.settings)["port_bindings"]
    assert bindings == {
        "80/tcp": ("127.0.0.1", None),
        "443/tcp": ("127.0.0.1", 8443),
        "53/udp": ("127.0.0.1", None),
        "9000/tcp": ("127.0.0.1", 9000),
    }
    assert container_settings(web.settings)["ports"] == [
        (80, "tcp"),
        (443, "tcp"),
        (53, "udp"),
        (9000, "tcp"),
    ]
    flags = web.settings.docker_flags()
    assert flags == [
        "-p",
        "127.0.0.1::80/tcp",
        "-p",
        "127.0.0.1:8443:443/tcp",
        "-p",
        "127.0.0.1::53/udp",
        "-p",
        "127.0.0.1:9000:9000/tcp",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"0.0.0.0:8080:80"', "127.0.0.1 only"),
        ('"[::]:8080:80"', "127.0.0.1 only"),
        ('"192.0.2.1:8080:80"', "127.0.0.1 only"),
        ("70000", "1-65535"),
        ('"8080:0"', "1-65535"),
        ('"http"', "expected PORT, HOST_PORT:PORT"),
        ('"80/icmp"', "expected PORT, HOST_PORT:PORT"),
        ("true", "expected a port like 80"),
    ],
)
def test_a_bad_port_is_a_located_error(
    tmp_path: Path, test_catalog: Catalog, value: str, expected: str
) -> None:
    with pytest.raises(UsageError) as err:
        _load(tmp_path, test_catalog, _scenario(f"[80, {value}]"))
    text = str(err.value)
    assert "ports.yaml:8:" in text and "ports" in text, text  # the file, the line, the key
    assert expected in text, text


def test_a_host_port_given_twice_is_refused_where_it_repeats(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    with pytest.raises(UsageError) as err:
        _load(tmp_path, test_catalog, _scenario('["8080:80"]', '["53:53/udp", "8080:81"]'))
    text = str(err.value)
    assert "ports.yaml:12:28:" in text, text  # the other node's second entry, not the first
    assert "host port 8080/tcp is already published by node 'web'" in text, text
    # the same number over another protocol, or no host port at all, is no clash
    _load(tmp_path, test_catalog, _scenario('["53:53", 80]', '["53:53/udp", 80]'))


def test_the_run_records_where_each_port_landed(
    tmp_path: Path, test_catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABHARNESS_REPORTS", str(tmp_path / "reports"))
    path = tmp_path / "ports.yaml"
    path.write_text(_scenario('[80, "8443:443"]'))
    loaded = load_scenario(path, root=CATALOG_ROOT, catalog=test_catalog)
    fake = FakeEngine()
    run = Run(loaded, CATALOG_ROOT, test_catalog, RunOptions(), engine=fake)
    up = run.execute_up()
    web = next(n for n in up.nodes if n.name == "web")
    assert web.published == {"80/tcp": "127.0.0.1:49152", "443/tcp": "127.0.0.1:8443"}
    other = next(n for n in up.nodes if n.name == "other")
    assert other.published == {}
    assert fake.called("published") == [(up.run, "web")]  # only the node that publishes
    journal = json.loads((run.folder.path / "journal.json").read_text())
    nodes = next(p for p in journal["phases"] if p["phase"] == "up")["nodes"]
    assert {n["name"]: n.get("published") for n in nodes} == {
        "web": {"80/tcp": "127.0.0.1:49152", "443/tcp": "127.0.0.1:8443"},
        "other": None,
    }


def test_a_container_port_given_twice_in_one_node_is_refused(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    """Two host ports for one container port would collapse to one binding: refused, located."""
    with pytest.raises(UsageError) as err:
        _load(tmp_path, test_catalog, _scenario('[80, "8080:80"]'))
    text = str(err.value)
    assert "ports.yaml:8:" in text and "container port 80/tcp is already published" in text, text
