"""`clock:` (issue 18 point 4): a node's wall clock off from the real time through libfaketime,
never SYS_TIME nor the host's clock. The forms and their seconds, the located errors, the engine's
create options (the environment, the library put into the created node through the engine API)
and REPRODUCE's flags; the images of nodes without `clock:` do not change. The effect inside real
nodes is tests/engine/test_clock.py."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import pytest

from harness.engine import objects
from harness.engine.api import RunLabels
from harness.errors import InfraError, UsageError
from harness.images import faketime_plans, plan_faketime, plan_image
from harness.reports.manual_steps import _node
from harness.run.plan import _nodes
from harness.scenario.catalog import Catalog
from harness.scenario.load import load_scenario
from harness.scenario.resolved import FAKETIME_LIBRARY, NodeSpec, PlainImage
from harness.scenario.schema import clock_seconds
from tests.unit.conftest import CATALOG_ROOT

ENV = {"LD_PRELOAD": FAKETIME_LIBRARY, "DONT_FAKE_MONOTONIC": "1"}


def _scenario(clock: str, extra: str = "") -> str:
    return f"""\
scenario: clock
topology:
  networks: {{lan: {{}}}}
  nodes:
    skewed:
      os: debian-12
      networks: [lan]
      clock: {clock}
{extra}    plain:
      os: debian-11
      networks: [lan]
"""


def _load(tmp_path: Path, catalog: Catalog, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "clock.yaml"
    path.write_text(text)
    return load_scenario(path, root=CATALOG_ROOT, catalog=catalog)


def _skewed(tmp_path: Path, catalog: Catalog, clock: str) -> NodeSpec:
    loaded = _load(tmp_path, catalog, _scenario(clock))
    return next(n for n in loaded.topology.nodes if n.name == "skewed")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ('"+2h"', 7200),
        ("-90s", -90),
        ('"+1d"', 86400),
        ('"+1h30m"', 5400),
        ('"-15m"', -900),
        ('"+36500d"', 36500 * 86400),
    ],
)
def test_every_form_resolves_to_seconds_and_the_faketime_environment(
    tmp_path: Path, test_catalog: Catalog, value: str, seconds: int
) -> None:
    node = _skewed(tmp_path, test_catalog, value)
    assert node.settings.clock == seconds
    assert dict(node.settings.clock_env()) == {**ENV, "FAKETIME": f"{seconds:+d}"}
    flags = node.settings.docker_flags()
    assert f"FAKETIME={seconds:+d}" in flags and f"LD_PRELOAD={FAKETIME_LIBRARY}" in flags
    assert "--cap-add" not in flags  # never SYS_TIME
    assert clock_seconds(value.strip('"')) == seconds


def test_a_node_without_clock_has_no_faketime_environment(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    loaded = _load(tmp_path, test_catalog, _scenario('"+2h"'))
    plain = next(n for n in loaded.topology.nodes if n.name == "plain")
    assert plain.settings.clock is None and plain.settings.clock_env() == ()
    assert not any("FAKETIME" in f for f in plain.settings.docker_flags())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"@2026-01-01 00:00:00"', "an absolute time is not supported"),
        ('"2026-01-01"', "an absolute time is not supported"),
        ("7200", "expected a signed offset like '+2h'"),
        ("true", "expected a signed offset like '+2h'"),
        ('"2h"', "expected a sign, then numbers with units"),
        ('"+2x"', "expected a sign, then numbers with units"),
        ('"+1.5h"', "expected a sign, then numbers with units"),
        ('"+0s"', "a zero offset changes nothing"),
        ('"+36501d"', "at most 36500d"),
    ],
)
def test_a_bad_clock_is_a_located_error(
    tmp_path: Path, test_catalog: Catalog, value: str, expected: str
) -> None:
    with pytest.raises(UsageError) as err:
        _load(tmp_path, test_catalog, _scenario(value))
    text = str(err.value)
    assert "clock.yaml:8:14:" in text and "clock" in text, text  # the file, line, column, key
    assert expected in text, text


def test_clock_on_an_image_node_is_refused_where_it_is_given(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    text = _scenario('"+2h"', '    raw: {image: "busybox:1", networks: [lan], clock: "-1h"}\n')
    with pytest.raises(UsageError) as err:
        _load(tmp_path, test_catalog, text)
    msg = str(err.value)
    assert "clock.yaml:9:48:" in msg, msg
    assert "`clock:` needs a lab or an `os:` node" in msg and "OS is unknown" in msg, msg


@pytest.mark.parametrize("name", ["LD_PRELOAD", "FAKETIME", "DONT_FAKE_MONOTONIC"])
def test_the_nodes_own_faketime_environment_is_refused_with_clock(
    tmp_path: Path, test_catalog: Catalog, name: str
) -> None:
    text = _scenario('"+2h"', f"      env: {{{name}: x}}\n")
    with pytest.raises(UsageError) as err:
        _load(tmp_path, test_catalog, text)
    msg = str(err.value)
    assert "clock.yaml:9:" in msg and f"{name} is set by `clock:`" in msg, msg


def test_a_matrix_value_interpolates_into_clock(tmp_path: Path, test_catalog: Catalog) -> None:
    text = "params: {skew: '-2h'}\n" + _scenario('"${params.skew}"')
    loaded = _load(tmp_path, test_catalog, text)
    node = next(n for n in loaded.topology.nodes if n.name == "skewed")
    assert node.settings.clock == -7200


def test_images_of_nodes_without_clock_stay_the_same(tmp_path: Path, test_catalog: Catalog) -> None:
    """The library comes from an image of its own, per environment: the node's image, and every
    image of a scenario without `clock:`, keep their tags."""
    with_clock = _load(tmp_path, test_catalog, _scenario('"+2h"')).topology
    node = with_clock.node("skewed")
    assert plan_image(test_catalog, node.image).tag.startswith("labharness/env-debian-12:")
    plans = faketime_plans(test_catalog, with_clock)
    assert [p.os for p in plans] == ["debian-12"]  # not debian-11: `plain` has no clock
    assert plans[0].tag.startswith("labharness/faketime-debian-12:")
    assert plans[0].env.tag == plan_image(test_catalog, node.image).tag
    assert plan_faketime(test_catalog, "debian-11").tag != plans[0].tag  # its own glibc
    without = _load(tmp_path, test_catalog, _scenario('"+2h"').replace('clock: "+2h"', ""))
    assert faketime_plans(test_catalog, without.topology) == []


def _library_tar() -> bytes:
    """What get_archive gives for the library in its image: the file alone."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("libfaketime.so.1")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"\x7fELF!"))
    return buf.getvalue()


def _client(images: list[Any]) -> MagicMock:
    client = MagicMock()
    client.images.list.return_value = images
    client.images.get.return_value.attrs = {"Config": {"Entrypoint": ["/usr/bin/tini", "--"]}}
    client.api.create_container.return_value = {"Id": "c1"}
    client.api.get_archive.return_value = (iter([_library_tar()]), {})
    client.api.create_endpoint_config.return_value = {}
    return client


def test_create_node_sets_the_environment_and_puts_the_library_in_before_start(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    node = _skewed(tmp_path, test_catalog, '"+2h"')
    image = MagicMock(id="sha256:ft", attrs={"Created": "2026-12-04"})
    client = _client([image])
    labels = RunLabels(run="r1", scenario="clock", owner="me", folder="/tmp/r1")
    objects._faketime_tar.cache_clear()
    objects.create_node(client, labels, node, "labharness/env-debian-12:x", {"lan": "lab-r1-lan"})
    created = client.api.create_container.call_args_list
    node_call = next(c for c in created if c.kwargs.get("name") == "lab-r1-skewed")
    assert node_call.kwargs["environment"] == {**ENV, "FAKETIME": "+7200"}
    filters = client.images.list.call_args.kwargs["filters"]
    assert filters == {"label": "labharness.image=faketime-debian-12"}
    # the library's container is labelled with the run (`lab gc` finds it), then removed
    helper = next(c for c in created if c.kwargs.get("image") == "sha256:ft")
    assert helper.kwargs["labels"]["labharness.run"] == "r1"
    client.api.remove_container.assert_called_with("c1", force=True)
    ((cid, path, data), _) = client.api.put_archive.call_args
    assert (cid, path) == ("c1", "/")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        lib = tar.getmember(FAKETIME_LIBRARY.lstrip("/"))
        assert lib.mode == 0o644 and tar.extractfile(lib).read() == b"\x7fELF!"  # type: ignore[union-attr]
    client.containers.get.return_value.start.assert_not_called()
    assert "cap_add" not in str(client.api.create_host_config.call_args.kwargs.get("cap_add"))


def test_no_library_image_is_an_infrastructure_error_that_says_what_to_do(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    node = _skewed(tmp_path, test_catalog, '"-90s"')
    with pytest.raises(InfraError) as err:
        objects.put_clock(_client([]), "c1", RunLabels("r1", "clock", "me", "/tmp/r1"), node)
    assert "libfaketime image for debian-12" in err.value.message
    raw = NodeSpec("raw", PlainImage("busybox:1"), node.networks, settings=node.settings)
    with pytest.raises(InfraError):
        objects.put_clock(_client([]), "c1", RunLabels("r1", "clock", "me", "/tmp/r1"), raw)


def test_reproduce_md_copies_the_library_in_and_sets_the_environment(
    tmp_path: Path, test_catalog: Catalog
) -> None:
    loaded = _load(tmp_path, test_catalog, _scenario('"+2h"'))
    run = MagicMock(topology=loaded.topology, root=CATALOG_ROOT)
    plan = {n.name: n for n in _nodes(run)}
    text = "\n".join(_node(plan["skewed"], "img:1"))
    assert "-e FAKETIME=+7200" in text and f"-e LD_PRELOAD={FAKETIME_LIBRARY}" in text, text
    assert "apt-get install" in text and text.rstrip().endswith('"$PREFIX-skewed:/"'), text
    assert "docker run --rm --user 0 --entrypoint sh img:1" in text, text
    assert "libfaketime" not in "\n".join(_node(plan["plain"], "img:2"))
