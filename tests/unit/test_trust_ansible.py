"""ansible.py refuses, at run time, extra vars that would steer Ansible (the validate backstop)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import ansible
from harness.errors import UsageError
from harness.scenario.ansiblevars import reserved_var

PLAYBOOK = Path(__file__).resolve().parents[1] / "engine" / "playbooks" / "write-file.yml"


@pytest.mark.parametrize(
    "name",
    [
        "ansible_connection",
        "ansible_host",
        "ansible_python_interpreter",
        "ANSIBLE_BECOME",
        "hostvars",
        "inventory_hostname",
        "groups",
    ],
)
def test_run_playbook_refuses_before_anything_runs(tmp_path: Path, name: str) -> None:
    private = tmp_path / "private"
    with pytest.raises(UsageError) as exc:
        ansible.run_playbook(
            PLAYBOOK,
            inventory={"all": {"hosts": {}}},
            limit=None,
            extra_vars={"greeting": "hi", name: "local"},
            private_dir=private,
            ident="refused",
        )
    assert exc.value.exit_code == 2
    assert f"vars may not set {name!r}" in exc.value.message
    assert str(PLAYBOOK) in exc.value.message
    assert not private.exists()  # nothing written, ansible-playbook never started


@pytest.mark.parametrize("name", ["greeting", "protocols", "my_ansible_setting", "lab_extra"])
def test_ordinary_names_pass(name: str) -> None:
    assert reserved_var(name) is None
    ansible.refuse_reserved_vars(PLAYBOOK, {name: 1})  # nothing raised
