"""Node settings from the scenario to the engine's create options and REPRODUCE.md's flags
(issue 18 point 4), and folder sources expanded into files with their mode and owner. The
effect inside a real node is tests/engine/test_node_settings.py."""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.engine.objects import container_settings, host_settings
from harness.scenario.catalog import load_catalog
from harness.scenario.load import load_scenario
from tests.conftest import ROOT

SCENARIO = """\
scenario: settings
topology:
  networks: {lan: {}}
  nodes:
    app:
      os: debian-12
      networks: [lan]
      command: [sleep, infinity]
      extra_hosts: {db.example: 192.0.2.10}
      dns: [10.0.0.53]
      cpus: 1.5
      memory: 96m
      tmpfs: {/data: 1m}
      sysctls: {net.core.somaxconn: 64}
      ulimits: {nofile: "1024:2048", nproc: 512}
      user: "65534:65534"
      workdir: /srv
      entrypoint: "tini -- sh -c 'exec \\"$@\\"' entry"
      files:
        /etc/app: {source: conf, mode: "0600", owner: "33"}
        /etc/motd: motd
"""


def _loaded(tmp: Path):  # type: ignore[no-untyped-def]
    proj = tmp / "p"
    shutil.copytree(ROOT / "environments", proj / "environments")
    (proj / "labs").mkdir()
    (proj / "conf" / "sub").mkdir(parents=True)
    (proj / "conf" / "a.conf").write_text("a\n")
    (proj / "conf" / "sub" / "b.conf").write_text("b\n")
    (proj / "motd").write_text("hello\n")
    (proj / "s.yaml").write_text(SCENARIO)
    return load_scenario(proj / "s.yaml", root=proj, catalog=load_catalog(proj))


def test_settings_reach_the_node_spec_and_the_engine_options(tmp_path: Path) -> None:
    (node,) = _loaded(tmp_path).topology.nodes
    s = node.settings
    assert s.memory == 96 << 20 and s.cpus == 1.5 and s.tmpfs == (("/data", 1 << 20),)
    assert s.entrypoint == ("tini", "--", "sh", "-c", 'exec "$@"', "entry")
    host = host_settings(s)
    assert host["extra_hosts"] == {"db.example": "192.0.2.10"} and host["dns"] == ["10.0.0.53"]
    assert host["nano_cpus"] == 1_500_000_000
    assert host["mem_limit"] == host["memswap_limit"] == 96 << 20  # no swap past the limit
    assert host["tmpfs"] == {"/data": f"size={1 << 20}"}
    assert host["sysctls"] == {"net.core.somaxconn": "64"}
    limits = {u["Name"]: (u["Soft"], u["Hard"]) for u in host["ulimits"]}
    assert limits == {"nofile": (1024, 2048), "nproc": (512, 512)}
    assert container_settings(s) == {
        "user": "65534:65534",
        "working_dir": "/srv",
        "entrypoint": list(s.entrypoint or ()),
    }
    flags = s.docker_flags()
    assert flags[:4] == ["--add-host", "db.example:192.0.2.10", "--dns", "10.0.0.53"]
    assert ["--memory", str(96 << 20), "--memory-swap", str(96 << 20)] == flags[6:10]
    assert flags[-2:] == ["--entrypoint", "tini"]
    assert s.entry_args() == ["--", "sh", "-c", 'exec "$@"', "entry"]


def test_no_settings_means_no_options(tmp_path: Path) -> None:
    from harness.scenario.resolved import NodeSettings

    assert host_settings(NodeSettings()) == {} and container_settings(NodeSettings()) == {}
    assert NodeSettings().docker_flags() == [] and NodeSettings().empty()


def test_a_folder_source_is_each_file_under_it_with_its_mode_and_owner(tmp_path: Path) -> None:
    (node,) = _loaded(tmp_path).topology.nodes
    files = {f.target: (f.source.name, f.mode, f.uid, f.gid) for f in node.files}
    assert files == {
        "/etc/app/a.conf": ("a.conf", 0o600, 33, 33),
        "/etc/app/sub/b.conf": ("b.conf", 0o600, 33, 33),
        "/etc/motd": ("motd", None, 0, 0),  # the source's own mode, root's
    }
