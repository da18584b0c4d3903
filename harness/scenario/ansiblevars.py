"""Variable names a scenario's `vars` may not set, because Ansible gives them meaning.

A configure item's `vars` reach ansible-playbook as extra vars, which beat the inventory. So
`vars: {ansible_connection: local}` (or ansible_host, ansible_python_interpreter, any
`ansible_*`) would turn a lab's own playbook onto the engineer's machine, and `hostvars`,
`inventory_hostname` and the other magic variables would lie to it about where it runs.
`lab validate` refuses them located (validate.py) and harness/ansible.py refuses them again
just before a playbook runs. Pure: no I/O.
"""

from __future__ import annotations

# Ansible's magic variables (docs: "Special Variables"), which a playbook trusts to say where
# and against what it runs.
MAGIC = frozenset(
    {
        "hostvars",
        "groups",
        "group_names",
        "inventory_hostname",
        "inventory_hostname_short",
        "inventory_dir",
        "inventory_file",
        "play_hosts",
        "playbook_dir",
        "role_name",
        "role_names",
        "role_path",
        "omit",
        "vars",
        "environment",
    }
)


def reserved_var(name: object) -> str | None:
    """Why `name` may not be set from a scenario, or None when it may."""
    if not isinstance(name, str):
        return None
    low = name.lower()
    if low.startswith("ansible_"):
        return (
            f"vars may not set {name!r}: ansible_* variables choose how and where Ansible "
            "connects (ansible_connection: local would run the playbook on this machine); "
            "the harness sets them in the inventory"
        )
    if low in MAGIC:
        return (
            f"vars may not set {name!r}: it is one of Ansible's magic variables, which tell a "
            "playbook where it runs"
        )
    return None
