"""Valid scenarios: resolution to the engine's Topology, defaults, fixes, params and cells."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.scenario.catalog import Catalog
from harness.scenario.load import LoadedScenario, load_scenario, validate_file
from harness.scenario.problems import ScenarioInvalid
from harness.scenario.resolved import (
    Attachment,
    EnvImage,
    FileSpec,
    HealthSpec,
    LabImage,
    NetworkSpec,
    PlainImage,
)
from harness.scenario.schema import FaultStep, PlaybookItem, RunStep, WaitStep

HEAD = "# yaml-language-server: $schema=../../../../schemas/scenario.schema.json\n"


@pytest.fixture
def full(catalog_root: Path) -> Path:
    return catalog_root / "scenarios" / "full.yaml"


def load(tmp_path: Path, root: Path, catalog: Catalog, body: str, **kw: Any) -> LoadedScenario:
    path = tmp_path / "s.yaml"
    path.write_text(body)
    return load_scenario(path, root=root, catalog=catalog, **kw)


def nodes(body: str) -> str:
    return "scenario: t\ntopology:\n  networks:\n    lan: {subnet: 10.80.0.0/24}\n  nodes:\n" + body


def test_full_scenario_is_valid(full: Path, catalog_root: Path, test_catalog: Catalog) -> None:
    assert validate_file(full, root=catalog_root, catalog=test_catalog) == []


def test_full_scenario_resolves(full: Path, catalog_root: Path, test_catalog: Catalog) -> None:
    s = load_scenario(full, root=catalog_root, catalog=test_catalog)
    topo = s.topology
    assert topo.scenario == "tls-min-version"
    assert topo.source == full
    assert topo.networks == (
        NetworkSpec("dmz", "10.90.0.0/24", False),
        NetworkSpec("lan", None, False),
        NetworkSpec("backend", "10.91.0.0/24", True),
    )
    assert [n.name for n in topo.nodes] == ["proxy", "client", "database", "bare", "plain"]

    proxy = topo.node("proxy")
    assert proxy.image == LabImage("web", "1.25", "debian-12")  # default_os, last version for it
    assert proxy.networks == (Attachment("dmz", "10.90.0.10"), Attachment("backend"))
    assert proxy.files == (
        FileSpec("/etc/web/site.conf", catalog_root / "fixtures" / "SUP-1" / "site.conf"),
    )
    assert all(f.source.is_absolute() for f in proxy.files)
    assert proxy.env == (("DEBUG", "false"), ("LABEL", "port-443"), ("LISTEN_PORT", "443"))
    assert proxy.health == HealthSpec(kind="port", port=80, timeout=30.0, interval=0.25)
    assert proxy.log_paths == ("/var/log/web/error.log", "/var/log/web/access.log")
    assert proxy.cap_add == ("NET_BIND_SERVICE", "NET_ADMIN")  # lab's, then the impairment's
    assert proxy.command is None

    client = topo.node("client")
    assert client.image == LabImage("client", "7.88", "debian-12")  # os from the matrix cell
    assert client.command == ("sleep", "infinity")  # the lab's command
    assert client.health == HealthSpec(kind="command", command="test -e /tmp/ready", timeout=10.0)

    database = topo.node("database")
    assert database.image == LabImage("db", "13", "debian-11")  # os follows the version
    assert database.health == HealthSpec()  # health: none
    assert database.log_paths == ("/var/log/db/server.log",)

    bare = topo.node("bare")
    assert bare.image == EnvImage("debian-11")
    assert bare.command == ("sh", "-c", "sleep infinity")
    assert bare.cap_add == ("NET_ADMIN",)  # an impairment targets it

    plain = topo.node("plain")
    assert plain.image == PlainImage("busybox:1.36")
    assert plain.cap_add == ("NET_RAW",)
    assert plain.health == HealthSpec()

    assert s.matrix_cell == {"client_os": "debian-12", "extra": "x"}  # first cell after exclude
    assert s.params == {"protocols": "TLSv1.2", "port": 443, "verbose": False}
    assert s.fix is None


def test_steps_get_default_ids_and_escapes(
    full: Path, catalog_root: Path, test_catalog: Catalog
) -> None:
    s = load_scenario(full, root=catalog_root, catalog=test_catalog)
    assert s.raw.reproduce is not None
    steps = s.raw.reproduce.steps
    assert [type(x) for x in steps] == [RunStep, WaitStep, FaultStep, RunStep]
    assert [x.id for x in steps] == ["request", "step-2", "step-3", "literal"]
    first, last = steps[0], steps[3]
    assert isinstance(first, RunStep) and isinstance(last, RunStep)
    assert first.timeout == 30.0
    assert first.run == "curl -sS --tlsv1.3 https://proxy:443/"
    assert last.run == "echo ${HOME} 443"  # $${ is a literal ${
    wait = steps[1]
    assert isinstance(wait, WaitStep) and wait.wait.timeout == 60.0


def test_params_override_from_cli(full: Path, catalog_root: Path, test_catalog: Catalog) -> None:
    s = load_scenario(
        full,
        root=catalog_root,
        catalog=test_catalog,
        params={"port": "8443", "verbose": "yes", "protocols": "TLSv1.3"},
    )
    assert s.params == {"protocols": "TLSv1.3", "port": 8443, "verbose": True}
    assert dict(s.topology.node("proxy").env)["LISTEN_PORT"] == "8443"
    assert dict(s.topology.node("proxy").env)["DEBUG"] == "true"
    item = s.raw.configure[0]
    assert isinstance(item, PlaybookItem) and item.vars == {"protocols": "TLSv1.3"}


def test_bad_param_overrides_are_located(
    full: Path, catalog_root: Path, test_catalog: Catalog
) -> None:
    with pytest.raises(ScenarioInvalid) as info:
        load_scenario(
            full, root=catalog_root, catalog=test_catalog, params={"prot": "x", "port": "abc"}
        )
    msgs = [str(p) for p in info.value.problems]
    assert any("--param prot=x: unknown param 'prot'" in m for m in msgs)
    assert any(":8:9: --param port=abc: expected an integer" in m for m in msgs)


def test_explicit_matrix_cell(full: Path, catalog_root: Path, test_catalog: Catalog) -> None:
    s = load_scenario(
        full, root=catalog_root, catalog=test_catalog, cell={"client_os": "debian-11"}
    )
    assert s.matrix_cell == {"client_os": "debian-11"}
    assert s.topology.node("client").image == LabImage("client", "7.74", "debian-11")


def test_fix_overlay(full: Path, catalog_root: Path, test_catalog: Catalog) -> None:
    s = load_scenario(full, root=catalog_root, catalog=test_catalog, fix="upgrade")
    assert s.fix == "upgrade"
    proxy = s.topology.node("proxy")
    assert proxy.image == LabImage("web", "1.25", "debian-12")
    assert ("EXTRA", "1") in proxy.env and ("LISTEN_PORT", "443") in proxy.env  # env merged
    assert s.raw.reproduce is not None and s.raw.reproduce.attempts == 1

    t = load_scenario(full, root=catalog_root, catalog=test_catalog, fix="enable-tls13")
    assert len(t.raw.configure) == 3  # the fix's items run after the scenario's
    last = t.raw.configure[-1]
    assert isinstance(last, PlaybookItem) and last.vars == {"protocols": "TLSv1.2 TLSv1.3"}


def test_unknown_fix(full: Path, catalog_root: Path, test_catalog: Catalog) -> None:
    with pytest.raises(ScenarioInvalid, match="unknown fix 'upgarde'; did you mean 'upgrade'"):
        load_scenario(full, root=catalog_root, catalog=test_catalog, fix="upgarde")


@pytest.mark.parametrize(
    ("node", "image"),
    [
        ("{lab: web}", LabImage("web", "1.25", "debian-12")),  # default_os, last version
        ("{lab: web, os: debian-11}", LabImage("web", "1.24", "debian-11")),  # last for os
        ('{lab: web, version: "1.22"}', LabImage("web", "1.22", "debian-11")),  # version's os
        ('{lab: web, version: "1.24"}', LabImage("web", "1.24", "debian-12")),  # default_os
        ("{lab: client}", LabImage("client", "7.74", "debian-11")),  # no default_os: first os
        ("{lab: db, version: 15}", LabImage("db", "15", "debian-12")),  # number -> text
        ("{os: debian-12}", EnvImage("debian-12")),
        ("{image: 'alpine:3'}", PlainImage("alpine:3")),
    ],
)
def test_version_and_os_defaults(
    tmp_path: Path, catalog_root: Path, test_catalog: Catalog, node: str, image: object
) -> None:
    body = nodes(f"    n: {node}\n").replace("    n: {", "    n: {networks: [lan], ")
    s = load(tmp_path, catalog_root, test_catalog, body)
    assert s.topology.node("n").image == image


def test_health_overrides(tmp_path: Path, catalog_root: Path, test_catalog: Catalog) -> None:
    body = nodes(
        "    a: {lab: web, networks: [lan], health: {timeout: 2m}}\n"
        "    b: {lab: web, networks: [lan], health: {log: 'ready', interval: 500ms}}\n"
        "    c: {lab: web, networks: [lan], health: null}\n"
        "    d: {lab: db, networks: [lan]}\n"
        "    e: {image: 'x:1', networks: [lan], health: {port: 8080}}\n"
    )
    t = load(tmp_path, catalog_root, test_catalog, body).topology
    assert t.node("a").health == HealthSpec(kind="port", port=80, timeout=120.0)
    assert t.node("b").health == HealthSpec(kind="log", log="ready", timeout=30.0, interval=0.5)
    assert t.node("c").health == HealthSpec()
    assert t.node("d").health == HealthSpec(kind="command", command="pg_isready -q", interval=1.0)
    assert t.node("e").health == HealthSpec(kind="port", port=8080)


def test_networks_mapping_commands_and_depends_on(
    tmp_path: Path, catalog_root: Path, test_catalog: Catalog
) -> None:
    body = nodes(
        "    a:\n      os: debian-12\n      networks: {lan: {ipv4: 10.80.0.20}}\n"
        "      command: [sleep, infinity]\n      env: {B: 2, A: null, C: true}\n"
        "      cap_add: [NET_ADMIN]\n"
        "    b: {os: debian-12, networks: [lan], depends_on: [a]}\n"
        "  impairments:\n    - {node: a, delay: 50ms}\n"
    )
    t = load(tmp_path, catalog_root, test_catalog, body).topology
    a = t.node("a")
    assert a.networks == (Attachment("lan", "10.80.0.20"),)
    assert a.command == ("sleep", "infinity")
    assert a.env == (("A", ""), ("B", "2"), ("C", "true"))
    assert a.cap_add == ("NET_ADMIN",)  # not repeated
    assert t.node("b").depends_on == ("a",)


def test_typed_full_string_substitution(
    tmp_path: Path, catalog_root: Path, test_catalog: Catalog
) -> None:
    body = (
        "scenario: t\nparams:\n  attempts: 4\n  fresh: true\n  host: a\n"
        "topology:\n  networks: {lan: {}}\n  nodes:\n    a: {os: debian-12, networks: [lan]}\n"
        "reproduce:\n  attempts: ${params.attempts}\n  fresh: '${params.fresh}'\n"
        "  steps:\n    - {on: '${params.host}', run: 'echo ${params.attempts}x $${params.host}'}\n"
    )
    s = load(tmp_path, catalog_root, test_catalog, body)
    assert s.raw.reproduce is not None
    assert s.raw.reproduce.attempts == 4 and s.raw.reproduce.fresh is True
    step = s.raw.reproduce.steps[0]
    assert isinstance(step, RunStep)
    assert step.on == "a" and step.run == "echo 4x ${params.host}" and step.id == "step-1"


def test_problems_in_several_cells_are_reported_once(
    tmp_path: Path, catalog_root: Path, test_catalog: Catalog
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "scenario: m\nmatrix:\n  v: [a, b, c]\n  w: [1, 2]\n"
        "topology:\n  networks: {lan: {}}\n  nodes:\n"
        "    n: {lab: wbe, networks: [lan], env: {V: '${matrix.v}'}}\n"
    )
    problems = validate_file(path, root=catalog_root, catalog=test_catalog)
    assert [str(p).split(": ", 1)[1] for p in problems] == [
        "unknown lab 'wbe'; did you mean 'web'?"
    ]


def test_validate_never_raises(tmp_path: Path, catalog_root: Path, test_catalog: Catalog) -> None:
    cases: dict[str, bytes] = {
        "binary.yaml": b"\xff\xfe\x00garbage",
        "scalar.yaml": b"just text\n",
        "deep.yaml": b"scenario: x\ntopology: " + b"[" * 200 + b"]" * 200 + b"\n",
        "alias.yaml": b"a: &x [*x]\n",
        "tags.yaml": b"scenario: !!python/object:os.system x\ntopology: {}\n",
        "nullkeys.yaml": b"scenario: x\ntopology:\n  nodes:\n    ? [a, b]\n    : {}\n    1: {}\n",
        "twodocs.yaml": b"scenario: a\n---\nscenario: b\n",
    }
    for name, content in cases.items():
        p = tmp_path / name
        p.write_bytes(content)
        problems = validate_file(p, root=catalog_root, catalog=test_catalog)
        assert problems, name
        assert all(pr.line >= 1 and pr.col >= 1 for pr in problems), name
        assert not any("internal error" in pr.message for pr in problems), (name, problems)
    missing = validate_file(tmp_path / "nope.yaml", root=catalog_root, catalog=test_catalog)
    assert [p.message for p in missing] == ["file not found"]
    folder = validate_file(tmp_path, root=catalog_root, catalog=test_catalog)
    assert folder and "is a folder, not a scenario file" in folder[0].message
