"""OpenLDAP lab health: the package at the lab's version, a configuration slaptest accepts,
slapd running as openldap, listening on the LDAP port, its root DSE naming every suffix of
slapd.conf, each database's files owned by openldap, and the clients (ldap-utils) present.
Runs on every node of the topology running the openldap lab (docs/pytest-plugin.md); it only
reads the root DSE anonymously (never an entry), so it holds whatever access rules a scenario
gave the directory."""

from __future__ import annotations

import re
from typing import Any

from harness.pytest_plugin import Node, same_version

CONF = "/etc/ldap/slapd.conf"


def _directives(host: Any, name: str) -> list[str]:
    """The values of one directive of slapd.conf (unquoted), in order."""
    conf = host.file(CONF).content_string
    pattern = rf"^{name}\s+\"?([^\"\n]+?)\"?\s*$"
    return [m[1] for m in re.finditer(pattern, conf, re.M | re.I)]


def test_package_at_lab_version(host: Any, node: Node) -> None:
    pkg = host.package("slapd")
    assert pkg.is_installed
    assert node.version and same_version(pkg.version, node.version), (  # 2.5.13+dfsg-5 is 2.5
        f"slapd {pkg.version}, lab version {node.version}"
    )


def test_config_valid(host: Any) -> None:
    r = host.run(f"slaptest -u -f {CONF}")
    assert r.rc == 0, r.stdout + r.stderr


def test_slapd_runs_as_openldap(host: Any) -> None:
    procs = host.check_output("ps -eo user=,args= 2>/dev/null || true")
    assert re.search(rf"^openldap\s+/usr/sbin/slapd .*-f {CONF}", procs, re.M), procs


def test_listening_on_ldap_port(host: Any) -> None:
    assert host.socket("tcp://0.0.0.0:389").is_listening, "nothing listens on 389"


def test_root_dse_names_every_suffix(host: Any) -> None:
    suffixes = _directives(host, "suffix")
    assert suffixes, f"{CONF} has no suffix"
    r = host.run('ldapsearch -x -LLL -H ldap://127.0.0.1 -b "" -s base namingContexts')
    assert r.rc == 0, r.stdout + r.stderr
    named = {m.lower() for m in re.findall(r"^namingContexts: (.+)$", r.stdout, re.M)}
    assert {s.lower() for s in suffixes} <= named, r.stdout


def test_databases_owned_by_openldap(host: Any) -> None:
    folders = _directives(host, "directory")
    assert folders, f"{CONF} has no database directory"
    for folder in folders:
        d = host.file(folder)
        assert d.is_directory and d.user == "openldap", f"{folder}: {d.user}"
        data = host.file(f"{folder}/data.mdb")
        assert data.exists and data.user == "openldap", f"{folder}/data.mdb: {data.user}"


def test_clients_installed(host: Any) -> None:
    assert host.package("ldap-utils").is_installed
    for tool in ("ldapsearch", "ldapwhoami", "ldapadd", "ldapmodify"):
        assert host.exists(tool), f"{tool} missing"
