"""`lab validate` on capabilities and Ansible variables: what a scenario may not grant itself."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.scenario.catalog import Catalog, load_catalog
from harness.scenario.load import validate_file
from tests.conftest import ROOT
from tests.unit.conftest import CATALOG_ROOT

CAPS = """\
scenario: caps
topology:
  networks:
    lan: {}
  nodes:
    a:
      os: debian-12
      networks: [lan]
      cap_add: [NET_ADMIN, SYS_ADMIN, DAC_READ_SEARCH]
"""

VARS = """\
scenario: vars
topology:
  networks:
    lan: {}
  nodes:
    a: {os: debian-12, networks: [lan]}
configure:
  - playbook: playbooks/tls.yml
    vars: {protocols: TLSv1.2, ansible_connection: local}
fixes:
  turn:
    kind: fix
    configure:
      - {playbook: playbooks/tls.yml, vars: {hostvars: {}, ANSIBLE_HOST: localhost}}
"""


@pytest.fixture(autouse=True)
def no_local_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test starts with no local configuration (the defaults), whatever the machine has."""
    cfg = tmp_path / "config.yaml"
    monkeypatch.setenv("LABHARNESS_CONFIG", str(cfg))
    return cfg


def write(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(body)
    return p


def lab_validate(path: Path, project: Path = CATALOG_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", "validate", str(path), "--project", str(project)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def own_config(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_sys_admin_and_dac_read_search_are_refused_located_and_named(
    tmp_path: Path, test_catalog: Catalog, no_local_config: Path
) -> None:
    s = write(tmp_path, CAPS)
    problems = validate_file(s, root=CATALOG_ROOT, catalog=test_catalog)
    assert [(p.line, p.col) for p in problems] == [(9, 28), (9, 39)]  # the cap_add items
    admin, dac = problems
    assert admin.message.startswith("cap_add: SYS_ADMIN reaches the host (mount, open_by_handle_at")
    assert f"allow it in {no_local_config} allow_capabilities" in admin.message
    assert "DAC_READ_SEARCH reaches the host (open_by_handle_at" in dac.message
    proc = lab_validate(s)
    assert proc.returncode == 2, proc.stderr
    assert f"{s}:9:28: cap_add: SYS_ADMIN" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_defaults_need_no_configuration(tmp_path: Path, test_catalog: Catalog) -> None:
    s = write(tmp_path, CAPS.replace("SYS_ADMIN, DAC_READ_SEARCH", "NET_RAW, CAP_SETUID"))
    assert validate_file(s, root=CATALOG_ROOT, catalog=test_catalog) == []


def test_a_local_configuration_the_engineer_owns_allows_them(
    tmp_path: Path, test_catalog: Catalog, no_local_config: Path
) -> None:
    own_config(no_local_config, "allow_capabilities: [SYS_ADMIN, cap_dac_read_search]\n")
    s = write(tmp_path, CAPS)
    assert validate_file(s, root=CATALOG_ROOT, catalog=test_catalog) == []
    proc = lab_validate(s)
    assert proc.returncode == 0, proc.stderr


def test_a_group_writable_configuration_is_refused(
    tmp_path: Path, test_catalog: Catalog, no_local_config: Path
) -> None:
    own_config(no_local_config, "allow_capabilities: [SYS_ADMIN, DAC_READ_SEARCH]\n", 0o620)
    s = write(tmp_path, CAPS)
    problems = validate_file(s, root=CATALOG_ROOT, catalog=test_catalog)
    assert [(p.line, p.col) for p in problems] == [(9, 28), (9, 39)]
    assert all("writable by others" in p.message for p in problems)
    proc = lab_validate(s)
    assert proc.returncode == 2
    assert f"chmod go-w {no_local_config}" in proc.stderr


def test_a_lab_that_asks_for_a_capability_is_refused_at_the_node_using_it(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    shutil.copytree(CATALOG_ROOT, project)
    lab = project / "labs" / "web" / "lab.yaml"
    lab.write_text(lab.read_text().replace("[NET_BIND_SERVICE]", "[NET_BIND_SERVICE, SYS_MODULE]"))
    s = write(
        tmp_path,
        "scenario: t\ntopology:\n  networks: {lan: {}}\n"
        "  nodes:\n    w: {lab: web, networks: [lan]}\n",
    )
    problems = validate_file(s, root=project, catalog=load_catalog(project))
    assert [(p.line, p.col) for p in problems] == [(5, 14)]  # the node's `lab`
    assert problems[0].message.startswith(
        "lab 'web' asks for SYS_MODULE in its cap_add; SYS_MODULE"
    )


def test_vars_may_not_set_ansible_or_magic_variables(tmp_path: Path, test_catalog: Catalog) -> None:
    s = write(tmp_path, VARS)
    problems = validate_file(s, root=CATALOG_ROOT, catalog=test_catalog)
    found = {(p.line, p.col): p.message for p in problems}
    assert sorted(found) == [(9, 32), (14, 46), (14, 60)]  # the keys, the fix's too
    assert "vars may not set 'ansible_connection'" in found[(9, 32)]
    assert "ansible_connection: local would run the playbook on this machine" in found[(9, 32)]
    assert "vars may not set 'hostvars'" in found[(14, 46)]
    assert "vars may not set 'ANSIBLE_HOST'" in found[(14, 60)]
    proc = lab_validate(s)
    assert proc.returncode == 2
    assert f"{s}:9:32: vars may not set 'ansible_connection'" in proc.stderr


def test_ordinary_vars_are_fine(tmp_path: Path, test_catalog: Catalog) -> None:
    body = VARS.replace(", ansible_connection: local", ", my_ansible_thing: 1")
    body = body.replace("{hostvars: {}, ANSIBLE_HOST: localhost}", "{protocols: TLSv1.3}")
    s = write(tmp_path, body)
    assert validate_file(s, root=CATALOG_ROOT, catalog=test_catalog) == []
