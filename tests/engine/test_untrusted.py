"""Untrusted scenarios, capabilities and lab build contexts against the real engine and Ansible.

Each test first shows the hole closed (exit 2, the host file never written, nothing created),
then that the same input really would have done it when trusted: the test can fail.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, nothing_left, run_lab

pytestmark = pytest.mark.engine

HOST_CODE = """\
scenario: untrusted-host-code
params: {marker: /nonexistent/marker}
topology:
  networks: {lan: {}}
  nodes:
    box: {os: debian-12, networks: [lan], command: [sleep, infinity]}
configure:
  - {run: "echo configured > /tmp/configured", on: box}
  - {playbook: playbooks/touch-host.yml, vars: {marker: "${params.marker}"}}
reproduce:
  steps: [{id: hello, on: box, run: "cat /tmp/configured"}]
  symptom: [{step: hello, stdout: configured}]
verify:
  - suite/test_ok.py
"""

TOUCH_HOST = """\
- name: a playbook from someone else, aimed at the engineer's machine
  hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.copy: {dest: "{{ marker }}", content: "the playbook ran on the host\\n"}
"""

CONFTEST = """\
import os
import pathlib

marker = os.environ.get("H1_CONFTEST_MARKER")
if marker:
    pathlib.Path(marker).write_text("conftest ran on the host\\n")
"""

CAPS = """\
scenario: untrusted-caps
topology:
  networks: {lan: {}}
  nodes:
    box: {os: debian-12, networks: [lan], command: [sleep, infinity], cap_add: [SYS_ADMIN]}
"""

EVIL_LAB = """\
name: evil
versions: {"1": {os: [debian-12]}}
command: [sleep, infinity]
"""

EVIL_SCENARIO = """\
scenario: evil-context
topology:
  networks: {lan: {}}
  nodes:
    e: {lab: evil, networks: [lan]}
reproduce:
  steps: [{id: loot, on: e, run: "cat /loot"}]
  symptom: [{step: loot, stdout: "^host-secret"}]
"""


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    """A project of its own: the repo's debian-12 environment (same inputs, so its image is
    reused) plus `files`."""
    root = tmp_path / "project"
    shutil.copytree(ROOT / "environments" / "debian-12", root / "environments" / "debian-12")
    (root / "labs").mkdir()
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def scenario_objects(client: Any, scenario: str) -> list[str]:
    flt = {"label": f"labharness.scenario={scenario}"}
    return [c.name for c in client.containers.list(all=True, filters=flt, ignore_removed=True)] + [
        n.name for n in client.networks.list(filters=flt)
    ]


def owned_config(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    cfg = tmp_path / "labharness.yaml"
    cfg.write_text(text)
    cfg.chmod(mode)
    return cfg


def test_an_untrusted_scenario_runs_no_playbook_and_no_suite_on_the_host(
    docker_client: Any, tmp_path: Path, reports: Path, cleanup_runs: list[str]
) -> None:
    root = project(
        tmp_path,
        {
            "scenarios/host-code.yaml": HOST_CODE,
            "playbooks/touch-host.yml": TOUCH_HOST,
            "suite/conftest.py": CONFTEST,
            "suite/test_ok.py": "def test_ok() -> None:\n    assert True\n",
        },
    )
    by_playbook, by_conftest = tmp_path / "playbook-was-here", tmp_path / "conftest-was-here"
    args = ["reproduce", str(root / "scenarios/host-code.yaml"), "--project", str(root)]
    args += ["--param", f"marker={by_playbook}"]
    env = {"H1_CONFTEST_MARKER": str(by_conftest), "LABHARNESS_CONFIG": str(tmp_path / "none")}

    refused = run_lab(*args, "--untrusted", reports=reports, **env)
    assert refused.returncode == 2, refused.stderr
    err = refused.stderr
    assert "host-code.yaml:9:16: configure playbook 'playbooks/touch-host.yml'" in err
    assert "host-code.yaml:14:5: verify suite 'suite/test_ok.py' would run pytest" in err
    assert err.count("pass --trust to run it on this machine") == 2
    assert "Traceback" not in err
    assert not by_playbook.exists() and not by_conftest.exists()
    assert not any(reports.iterdir())  # refused before a run folder was made
    assert scenario_objects(docker_client, "untrusted-host-code") == []

    trusted = run_lab(*args, "--untrusted", "--trust", "--json", reports=reports, **env)
    result = json.loads(trusted.stdout)
    cleanup_runs.append(result["run"])
    assert trusted.returncode == 0, trusted.stderr
    assert (result["verdict"], result["checks_green"]) == ("REPRODUCED", True)
    # the same scenario, trusted, does reach the host: these are the holes the refusal closes
    assert by_playbook.read_text() == "the playbook ran on the host\n"
    assert by_conftest.read_text() == "conftest ran on the host\n"
    journal = json.loads((Path(result["folder"]) / "journal.json").read_text())
    assert journal["trust"] == {
        "level": "untrusted, run with --trust",
        "origin": "--untrusted",
        "override": True,
    }
    assert nothing_left(docker_client, result["run"])


def test_capabilities_beyond_the_allowlist_need_the_engineers_own_config(
    docker_client: Any, tmp_path: Path, reports: Path, cleanup_runs: list[str]
) -> None:
    root = project(tmp_path, {"scenarios/caps.yaml": CAPS})
    scen = str(root / "scenarios/caps.yaml")
    cfg = tmp_path / "labharness.yaml"

    no_config = run_lab(
        "up", scen, "--project", str(root), reports=reports, LABHARNESS_CONFIG=str(cfg)
    )
    assert no_config.returncode == 2, no_config.stderr
    assert "caps.yaml:5:81: cap_add: SYS_ADMIN reaches the host" in no_config.stderr
    assert f"allow it in {cfg} allow_capabilities" in no_config.stderr

    owned_config(tmp_path, "allow_capabilities: [SYS_ADMIN]\n", 0o664)
    writable = run_lab(
        "up", scen, "--project", str(root), reports=reports, LABHARNESS_CONFIG=str(cfg)
    )
    assert writable.returncode == 2
    assert "writable by others" in writable.stderr

    cfg.chmod(0o600)
    untrusted = run_lab(
        "up",
        scen,
        "--untrusted",
        "--project",
        str(root),
        reports=reports,
        LABHARNESS_CONFIG=str(cfg),
    )
    assert untrusted.returncode == 2, untrusted.stderr
    assert "caps.yaml:5:81: node 'box': SYS_ADMIN reaches the host" in untrusted.stderr
    assert "an untrusted run (a bundle, or --untrusted) gets only" in untrusted.stderr
    assert scenario_objects(docker_client, "untrusted-caps") == []

    up = run_lab(
        "up", scen, "--json", "--project", str(root), reports=reports, LABHARNESS_CONFIG=str(cfg)
    )
    assert up.returncode == 0, up.stderr
    run = json.loads(up.stdout)["run"]
    cleanup_runs.append(run)
    try:
        caps = docker_client.containers.get(f"lab-{run}-box").attrs["HostConfig"]["CapAdd"]
        assert any(c.removeprefix("CAP_") == "SYS_ADMIN" for c in caps)
    finally:
        run_lab("down", run, reports=reports)
    assert nothing_left(docker_client, run)


def test_a_lab_folder_linking_outside_itself_is_refused_and_builds_nothing(
    docker_client: Any, tmp_path: Path, reports: Path, cleanup_runs: list[str]
) -> None:
    host_file = tmp_path / "hostname"
    host_file.write_text("host-secret\n")
    dockerfile = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY loot /loot\n"
    root = project(
        tmp_path,
        {
            "labs/evil/lab.yaml": EVIL_LAB,
            "labs/evil/Dockerfile": dockerfile,
            "scenarios/evil.yaml": EVIL_SCENARIO,
        },
    )
    loot = root / "labs" / "evil" / "loot"
    loot.symlink_to(host_file)
    args = ["reproduce", str(root / "scenarios/evil.yaml"), "--project", str(root)]

    def evil_images() -> list[Any]:
        return list(docker_client.images.list(name="labharness/lab-evil"))

    before = {i.id for i in evil_images()}
    try:
        refused = run_lab(*args, reports=reports)
        assert refused.returncode == 2, refused.stderr
        assert f"{loot}: a symlink to {str(host_file)!r}" in refused.stderr
        assert "outside the build context" in refused.stderr
        assert {i.id for i in evil_images()} == before == set()  # nothing built from it

        # the control: the same bytes as a file of the lab's own do reach the image
        loot.unlink()
        loot.write_text(host_file.read_text())
        built = run_lab(*args, "--json", reports=reports)
        result = json.loads(built.stdout)
        cleanup_runs.append(result["run"])
        assert (built.returncode, result["verdict"]) == (0, "REPRODUCED"), built.stderr
    finally:
        for image in evil_images():
            if image.id not in before:
                docker_client.images.remove(image.id, force=True)


def test_the_repos_own_scenarios_stay_valid_under_the_new_rules(
    tmp_path: Path, reports: Path
) -> None:
    """The repo's own scenarios stay valid under the new rules (no capability or var refused)."""
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "scenarios").rglob("*.yaml"))
    engine_scenarios = ROOT / "tests/engine/scenarios"  # its folders hold fixtures, not scenarios
    files += sorted(str(p.relative_to(ROOT)) for p in engine_scenarios.glob("*.yaml"))
    files = [f for f in files if "/gates/" not in f]
    proc = run_lab("validate", *files, reports=reports, LABHARNESS_CONFIG=str(tmp_path / "none"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_a_replayed_bundle_runs_no_playbook_suite_or_extra_capability(
    docker_client: Any, tmp_path: Path, reports: Path, cleanup_runs: list[str]
) -> None:
    """The bundle of a trusted run that used a playbook, a suite with a conftest.py and
    SYS_ADMIN (allowed by the engineer's config): `lab replay` refuses all three, even with that
    config in place; `--trust` replays it as the original ran."""
    body = HOST_CODE.replace(
        "command: [sleep, infinity]}",
        "command: [sleep, infinity],\n" + " " * 10 + "cap_add: [SYS_ADMIN]}",
    )
    root = project(
        tmp_path,
        {
            "scenarios/host-code.yaml": body,
            "playbooks/touch-host.yml": TOUCH_HOST,
            "suite/conftest.py": CONFTEST,
            "suite/test_ok.py": "def test_ok() -> None:\n    assert True\n",
        },
    )
    by_playbook, by_conftest = tmp_path / "playbook-was-here", tmp_path / "conftest-was-here"
    cfg = owned_config(tmp_path, "allow_capabilities: [SYS_ADMIN]\n")
    env = {
        "H1_CONFTEST_MARKER": str(by_conftest),
        "LABHARNESS_CONFIG": str(cfg),
        "LABHARNESS_ESCALATIONS": str(tmp_path / "escalations"),
    }
    scen = str(root / "scenarios/host-code.yaml")
    original = run_lab(
        "reproduce",
        scen,
        "--project",
        str(root),
        "--param",
        f"marker={by_playbook}",
        "--json",
        reports=reports,
        **env,
    )
    run = json.loads(original.stdout)["run"]
    cleanup_runs.append(run)
    assert original.returncode == 0, original.stderr
    escalated = run_lab(
        "escalate", run, "--ticket", "SUP-13", "--project", str(root), reports=reports, **env
    )
    assert escalated.returncode == 0, escalated.stderr
    (bundle,) = (tmp_path / "escalations").rglob("*.tar.gz")
    by_playbook.unlink()
    by_conftest.unlink()

    refused = run_lab(
        "replay", str(bundle), "--workdir", str(tmp_path / "w1"), reports=reports, **env
    )
    assert refused.returncode == 2, refused.stderr
    err = refused.stderr
    assert "host-code.yaml:10:16: configure playbook 'playbooks/touch-host.yml'" in err
    assert "this scenario is untrusted (bundle); pass --trust to run it on this machine" in err
    assert "host-code.yaml:15:5: verify suite 'suite/test_ok.py'" in err
    assert "host-code.yaml:7:21: node 'box': SYS_ADMIN reaches the host" in err
    assert not by_playbook.exists() and not by_conftest.exists()
    assert scenario_objects(docker_client, "untrusted-host-code") == []

    trusted = run_lab(
        "replay",
        str(bundle),
        "--trust",
        "--workdir",
        str(tmp_path / "w2"),
        "--json",
        reports=reports,
        **env,
    )
    assert trusted.returncode == 0, trusted.stderr
    replayed = json.loads(trusted.stdout)["replay"]
    cleanup_runs.append(replayed["run"])
    assert by_playbook.exists() and by_conftest.exists()
    inspect = json.loads((Path(replayed["folder"]) / "artifacts/box/inspect.json").read_text())
    assert "SYS_ADMIN" in {c.removeprefix("CAP_") for c in inspect["HostConfig"]["CapAdd"]}
