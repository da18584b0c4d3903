"""`lab import sos` on small hand-made sosreports (folders and tarballs), against the real
catalog's lab.yaml files: what is carried over, nearest versions, redaction on the way in,
and bad input (missing parts, truncated or hostile archives) refused with exit 2 and nothing
left behind."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from harness.cli import app
from harness.errors import UsageError
from harness.scenario.catalog import load_catalog
from harness.scenario.load import validate_file
from harness.scenario.sos_facts import parse_dpkg_list, parse_ip_addr, parse_rpm_list
from harness.scenario.sos_match import nearest, numbers
from harness.sosreport import SosLimits, read_sosreport
from harness.verbs import import_sos as verb
from harness.verbs.import_sos import import_sos
from tests.unit.sos_craft import (
    DPKG,
    NGINX_CONF,
    OS_RELEASE_12,
    SECRET,
    SITE,
    TOP,
    as_folder,
    as_tarball,
    report,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with the real catalog (lab.yaml and environment.yaml files only, and the
    packages lab.yaml names: the catalog checks they are there)."""
    root = tmp_path / "project"
    for pattern in ("labs/*/lab.yaml", "environments/*/environment.yaml", "labs/*/packages/*"):
        for f in REPO.glob(pattern):
            target = root / f.relative_to(REPO)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, target)
    (root / "scenarios").mkdir()
    return root


def tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def written_text(root: Path) -> str:
    return "".join(
        p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file()
    )


# -- carried over -----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["folder", "tar.xz", "tar.gz", "tar"])
def test_a_report_becomes_a_valid_scenario(tmp_path: Path, project: Path, shape: str) -> None:
    members = report()
    if shape == "folder":
        source = as_folder(tmp_path, members)
    else:
        mode = {"tar.xz": "w:xz", "tar.gz": "w:gz", "tar": "w"}[shape]
        source = as_tarball(tmp_path, members, mode)
    r = import_sos(source, root=project)

    assert r.scenario == "sos-web1" and r.report == TOP
    scenario_file = project / "scenarios" / "sos-web1.yaml"
    assert r.file == str(scenario_file)
    assert validate_file(scenario_file, root=project, catalog=load_catalog(project)) == []
    doc = yaml.safe_load(scenario_file.read_text())
    assert scenario_file.read_text().startswith(
        "# yaml-language-server: $schema=../schemas/scenario.schema.json\n"
    )
    assert r.os.environment == "debian-12" and r.os.exact
    got = {s.lab: (s.package, s.version, s.os, s.exact) for s in r.software}
    assert got == {
        "curl": ("curl", "7.88", "debian-12", True),
        "nginx": ("nginx", "1.22", "debian-12", True),
        "postgres": ("postgresql-15", "15", "debian-12", True),
    }  # redis-server is `rc` (removed): not carried
    nodes = doc["topology"]["nodes"]
    assert set(nodes) == {"nginx", "postgres", "client"}
    # IPv6 beside IPv4 where the host had both (dual stack): its subnet6, and the host's
    # address kept by the node that keeps its IPv4 one
    assert doc["topology"]["networks"] == {
        "eth0": {"subnet": "10.70.3.0/24", "subnet6": "2001:db8::/64"},
        "eth1": {"subnet": "10.71.0.0/24", "subnet6": "fd00:71::/64"},
    }
    # the first service keeps the host's address; .1 is the lab's gateway, so not kept; every
    # other address is static too, from the top of the subnet (none the engine could give first)
    assert nodes["nginx"]["networks"] == {
        "eth0": {"ipv4": "10.70.3.5", "ipv6": "2001:db8::5"},
        "eth1": {"ipv4": "10.71.0.254"},
    }
    assert nodes["postgres"]["networks"] == {
        "eth0": {"ipv4": "10.70.3.254"},
        "eth1": {"ipv4": "10.71.0.253"},
    }
    assert nodes["client"] == {
        "lab": "curl",
        "version": "7.88",
        "os": "debian-12",
        "networks": {"eth0": {"ipv4": "10.70.3.253"}, "eth1": {"ipv4": "10.71.0.252"}},
    }
    assert nodes["nginx"]["files"] == {
        "/etc/nginx/nginx.conf": "fixtures/sos-web1/etc/nginx/nginx.conf",
        "/etc/nginx/sites-available/default": "fixtures/sos-web1/etc/nginx/sites-available/default",
        "/etc/nginx/sites-enabled/default": "fixtures/sos-web1/etc/nginx/sites-enabled/default",
    }
    fixtures = project / "fixtures" / "sos-web1"
    # the link inside the report is carried as the file it names (redacted, like the file)
    enabled = (fixtures / "etc/nginx/sites-enabled/default").read_text()
    assert enabled == SITE.replace(SECRET, "REDACTED")
    assert not (fixtures / "etc/nginx/sites-enabled/default").is_symlink()
    assert (fixtures / "etc/postgresql/15/main/postgresql.conf").is_file()
    assert SECRET not in written_text(project)
    assert {f.path: f.redacted for f in r.files}["/etc/nginx/sites-enabled/default"] == 1

    why = {n.what: n.why for n in r.not_carried}
    assert "does not hold" in why["etc/nginx/modules-enabled/50-mod-geoip.conf"]
    assert "out of the report" in why["etc/nginx/escape"]
    assert why["etc/nginx/logo.png"].startswith("binary")
    assert why["etc/redis/"] == "redis is not installed"
    assert "not in effect" in why["etc/postgresql/ (in effect)"]
    assert "container or VM bridge" in why["docker0 inet 172.17.0.1/16"]
    assert "at most /30" in why["tun0 inet 10.9.9.9/32"]
    assert "eth0 inet6 2001:db8::5/64" not in why  # carried
    assert "a second IPv6 address on eth0" in why["eth0 inet6 2001:db8::6/64"]
    assert "reserved for the gateway" in why["eth1 inet6 fd00:71::1/64"]
    assert "no IPv4 network carried over" in why["wg0 inet6 fd00:77::2/64"]
    assert "gateway" in why["eth1 inet 10.71.0.1/24"]
    assert "2 installed packages" in why["packages"]  # adduser, libc6
    assert r.unknown_packages == ["adduser", "libc6"]
    assert not any("fe80" in w or "127.0.0.1" in w for w in why)  # silent: every host has them
    assert not [p for p in project.iterdir() if p.name.startswith(".lab-import-")]


def test_nearest_versions_and_os_are_said(tmp_path: Path, project: Path) -> None:
    """A Debian the catalog has no environment for (14, forky) maps to the newest it has,
    and versions the catalog lacks to the nearest on it: each said, not guessed silently."""
    forky = OS_RELEASE_12.replace("12", "14").replace("bookworm", "forky")
    dpkg = DPKG.replace("1.22.1-9 ", "1.28.0-1 ").replace(
        "postgresql-15     15.5", "postgresql-18 18.1"
    )
    source = as_folder(
        tmp_path, report(**{"usr/lib/os-release": forky, "sos_commands/dpkg/dpkg_-l": dpkg})
    )
    r = import_sos(source, root=project, name="nearest")
    assert r.os.environment == "debian-13" and not r.os.exact
    assert "nearest: debian-13" in r.os.note
    nginx = next(s for s in r.software if s.lab == "nginx")
    assert (nginx.version, nginx.exact) == ("1.26", False)
    assert "nginx 1.28.0-1 is not in the catalog for debian-13; nearest: 1.26" in nginx.note
    pg = next(s for s in r.software if s.lab == "postgres")
    assert (pg.version, pg.exact) == ("17", False)
    assert validate_file(Path(r.file), root=project, catalog=load_catalog(project)) == []


def test_a_debian_13_host_maps_to_its_own_generation(tmp_path: Path, project: Path) -> None:
    trixie = OS_RELEASE_12.replace("12", "13").replace("bookworm", "trixie")
    dpkg = DPKG.replace("1.22.1-9 ", "1.26.3-3+deb13u1 ").replace(
        "postgresql-15     15.5", "postgresql-17 17.6"
    )
    source = as_folder(
        tmp_path, report(**{"usr/lib/os-release": trixie, "sos_commands/dpkg/dpkg_-l": dpkg})
    )
    r = import_sos(source, root=project, name="trixie-host")
    assert (r.os.environment, r.os.exact) == ("debian-13", True)
    found = {s.lab: (s.version, s.os, s.exact) for s in r.software}
    assert found["nginx"] == ("1.26", "debian-13", True)
    assert found["postgres"] == ("17", "debian-13", True)


def test_version_arithmetic() -> None:
    assert numbers("5:7.0.15-1~deb12u1") == (7, 0, 15)
    assert numbers("15.5-0+deb12u1") == (15, 5)
    assert nearest("1.24.0", ["1.18", "1.22"]) == ("1.22", False)
    assert nearest("1.18.0-6.1+deb11u3", ["1.18", "1.22"]) == ("1.18", True)
    assert nearest("16.1", ["13", "15"]) == ("15", False)
    assert nearest("6.0.16", ["6.0", "7.0"]) == ("6.0", True)


def test_an_ubuntu_host_maps_to_the_newest_debian(tmp_path: Path, project: Path) -> None:
    ubuntu = (
        'NAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\n'
        'PRETTY_NAME="Ubuntu 22.04.3 LTS"\nVERSION_CODENAME=jammy\n'
    )
    r = import_sos(as_folder(tmp_path, report(**{"usr/lib/os-release": ubuntu})), root=project)
    assert (r.os.environment, r.os.exact) == ("debian-13", False)
    assert "Ubuntu 22.04.3 LTS" in r.os.note


def test_a_debian_11_host_with_only_known_packages(tmp_path: Path, project: Path) -> None:
    bullseye = (
        'PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nVERSION_ID="11"\nID=debian\n'
        "VERSION_CODENAME=bullseye\n"
    )
    dpkg = "ii  redis-server  5:6.0.16-1+deb11u2  amd64  Persistent key-value database\n"
    members = report(
        **{
            "usr/lib/os-release": bullseye,
            "sos_commands/dpkg/dpkg_-l": dpkg,
            "sos_commands/networking/ip_-o_addr": None,
        }
    )
    r = import_sos(as_folder(tmp_path, members), root=project, name="redis-host")
    assert [(s.lab, s.version, s.os) for s in r.software] == [("redis", "6.0", "debian-11")]
    doc = yaml.safe_load(Path(r.file).read_text())
    assert doc["topology"]["networks"] == {"lan": {}}
    assert doc["topology"]["nodes"]["redis"]["files"] == {
        "/etc/redis/redis.conf": "fixtures/redis-host/etc/redis/redis.conf"
    }
    assert doc["topology"]["nodes"]["client"]["os"] == "debian-11"
    conf = (project / "fixtures/redis-host/etc/redis/redis.conf").read_text()
    assert "hunter2hunter2" not in conf and "requirepass REDACTED" in conf
    assert any(n.what == "addresses" for n in r.not_carried)
    assert validate_file(Path(r.file), root=project, catalog=load_catalog(project)) == []


def test_nothing_known_installed_gives_a_bare_host(tmp_path: Path, project: Path) -> None:
    dpkg = "ii  adduser  3.134  all  add users\n"
    r = import_sos(as_folder(tmp_path, report(**{"sos_commands/dpkg/dpkg_-l": dpkg})), root=project)
    doc = yaml.safe_load(Path(r.file).read_text())
    assert doc["topology"]["nodes"]["host"]["os"] == "debian-12"
    assert r.files == [] and r.fixtures == ""
    assert not (project / "fixtures").exists()
    assert validate_file(Path(r.file), root=project, catalog=load_catalog(project)) == []


def test_a_small_subnet_runs_out_of_addresses_and_says_so(tmp_path: Path, project: Path) -> None:
    ip = "2: eth0    inet 10.80.0.2/30 brd 10.80.0.3 scope global eth0\\  valid_lft forever\n"
    members = report(**{"sos_commands/networking/ip_-o_addr": ip})
    r = import_sos(as_folder(tmp_path, members), root=project, name="tiny")
    doc = yaml.safe_load(Path(r.file).read_text())
    nodes = doc["topology"]["nodes"]
    assert nodes["nginx"]["networks"] == {"eth0": {"ipv4": "10.80.0.2"}}
    assert nodes["postgres"]["networks"] == {"eth0": None}
    why = {n.what: n.why for n in r.not_carried}
    assert why["postgres on eth0"] == "no address left in 10.80.0.0/30"
    assert validate_file(Path(r.file), root=project, catalog=load_catalog(project)) == []


@pytest.mark.parametrize("shape", ["folder", "tar.xz"])
def test_an_rpm_host(tmp_path: Path, project: Path, shape: str) -> None:
    """A RHEL report: installed-rpms is sos's link to a command-named file; the OS and nginx
    map to the nearest the catalog has, said so."""
    rhel = 'NAME="Red Hat Enterprise Linux"\nVERSION_ID="9.3"\nID="rhel"\nPRETTY_NAME="RHEL 9.3"\n'
    rpm_out = "sos_commands/rpm/sh_-c_rpm_--nodigest_-qa_--qf_NAME_-_VERSION_-_RELEASE_.ARCH"
    rpms = "nginx-1.20.1-14.el9_2.1.x86_64     Tue Nov  7 2023\nbash-5.1.8-6.el9.x86_64  x\n"
    members = report(
        **{
            "usr/lib/os-release": rhel,
            "sos_commands/dpkg/dpkg_-l": None,
            "installed-debs": None,
            rpm_out: rpms,
            "installed-rpms": ("link", rpm_out),
            "sos_commands/networking/ip_-o_addr": None,
            "sos_commands/networking/ip_-d_address": (
                "2: eth0@if9: <BROADCAST,MULTICAST,UP> mtu 1500 qdisc noqueue\n"
                "    link/ether 02:42:0a:00:00:05 brd ff:ff:ff:ff:ff:ff link-netnsid 0\n"
                "    inet 10.60.0.5/24 brd 10.60.0.255 scope global eth0\n"
            ),
            "ip_addr": ("link", "sos_commands/networking/ip_-d_address"),
        }
    )
    source = as_folder(tmp_path, members) if shape == "folder" else as_tarball(tmp_path, members)
    r = import_sos(source, root=project, name="rhel")
    assert (r.os.environment, r.os.exact) == ("debian-13", False)  # the newest Debian
    assert [(s.lab, s.installed, s.version, s.exact) for s in r.software] == [
        ("nginx", "1.20.1", "1.26", False)  # debian-13 has one nginx
    ]
    assert [(n.network, n.subnet, n.address) for n in r.networks] == [
        ("eth0", "10.60.0.0/24", "10.60.0.5")
    ]
    assert r.unknown_packages == ["bash"]
    assert validate_file(Path(r.file), root=project, catalog=load_catalog(project)) == []


def test_parsers() -> None:
    assert [p.name for p in parse_dpkg_list(DPKG)] == [
        "adduser",
        "curl",
        "nginx",
        "nginx-core",
        "postgresql-15",
        "libc6",
    ]
    rpms = "nginx-1.20.1-14.el9.x86_64           Mon Jan  1 2024\ncurl-7.76.1-26.el9.x86_64  x\n"
    assert [(p.name, p.version) for p in parse_rpm_list(rpms)] == [
        ("nginx", "1.20.1"),
        ("curl", "7.76.1"),
    ]
    plain = (
        "1: lo: <LOOPBACK,UP> mtu 65536\n    inet 127.0.0.1/8 scope host lo\n"
        "7: eth0@if8: <BROADCAST,UP> mtu 1500\n    link/ether 02:42:ac:11:00:02\n"
        "    inet 10.5.0.7/16 brd 10.5.255.255 scope global eth0\n"
    )
    assert [(a.interface, a.address, a.prefix) for a in parse_ip_addr(plain)] == [
        ("lo", "127.0.0.1", 8),
        ("eth0", "10.5.0.7", 16),
    ]


# -- bad input: exit 2, nothing left behind ---------------------------------------------------


def refused(source: Path, project: Path, *words: str, **kw: Any) -> str:
    before = tree(project)
    with pytest.raises(UsageError) as exc:
        import_sos(source, root=project, **kw)
    assert exc.value.exit_code == 2
    assert tree(project) == before, "something was left behind"
    text = str(exc.value)
    for w in words:
        assert w in text, text
    return text


def test_missing_parts_are_named(tmp_path: Path, project: Path) -> None:
    members = report(
        **{
            "usr/lib/os-release": None,
            "etc/os-release": None,
            "sos_commands/dpkg/dpkg_-l": None,
            "installed-debs": None,
        }
    )
    text = refused(as_folder(tmp_path, members), project, "missing os-release", "missing packages")
    assert "etc/os-release" in text and "sos_commands/dpkg/dpkg_-l" in text


def test_a_dangling_os_release_link_is_missing(tmp_path: Path, project: Path) -> None:
    source = as_tarball(tmp_path, report(**{"usr/lib/os-release": None}))
    refused(source, project, "missing os-release", "etc/os-release: symbolic link to usr/lib")


def test_binary_os_release_is_located(tmp_path: Path, project: Path) -> None:
    source = as_folder(tmp_path, report(**{"usr/lib/os-release": b"ID=debian\0\xff"}))
    refused(source, project, "etc/os-release: binary data, expected text")


def test_not_a_sosreport(tmp_path: Path, project: Path) -> None:
    (tmp_path / "empty").mkdir()
    refused(tmp_path / "empty", project, "not a sosreport")
    junk = tmp_path / "junk.tar.xz"
    junk.write_bytes(b"this is not an archive at all" * 40)
    refused(junk, project, "not a tar archive")
    refused(tmp_path / "nowhere", project, "no such file or folder")
    os.mkfifo(tmp_path / "report.fifo")
    refused(tmp_path / "report.fifo", project, "not a regular file or a folder")
    other = as_tarball(tmp_path, {"README": "hello\n"}, top="project-1.0")
    refused(other, project, "not a sosreport")


@pytest.mark.parametrize("mode", ["w:xz", "w:gz", "w"])
def test_a_truncated_tarball(tmp_path: Path, project: Path, mode: str) -> None:
    big = {f"sos_commands/logs/part{i}": os.urandom(20_000).hex() for i in range(4)}
    whole = as_tarball(tmp_path, report(**big), mode)
    cut = tmp_path / f"cut-{whole.name}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    refused(cut, project, "truncated or corrupt archive")


@pytest.mark.parametrize(
    ("name", "why"),
    [("../../evil.conf", "'..' in the path"), ("/etc/cron.d/evil", "absolute path")],
)
def test_a_traversal_member_is_refused(tmp_path: Path, project: Path, name: str, why: str) -> None:
    source = as_tarball(tmp_path, report())
    with tarfile.open(source, "r:xz") as tar:
        members = [(ti, tar.extractfile(ti).read() if ti.isreg() else None) for ti in tar]  # type: ignore[union-attr]
    evil = tarfile.TarInfo(name)
    evil.size = 5
    with tarfile.open(source, "w:xz") as tar:
        for ti, data in members:
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
        tar.addfile(evil, io.BytesIO(b"evil\n"))
    refused(source, project, why, repr(name))


def test_a_device_member_is_refused(tmp_path: Path, project: Path) -> None:
    source = tmp_path / "dev.tar"
    with tarfile.open(source, "w") as tar:
        for path, data in [(f"{TOP}/version.txt", b"4.0\n")]:
            ti = tarfile.TarInfo(path)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
        dev = tarfile.TarInfo(f"{TOP}/etc/nginx/null")
        dev.type = tarfile.CHRTYPE
        tar.addfile(dev)
    refused(source, project, "device file")


def test_a_fifo_in_a_folder_is_refused_without_blocking(tmp_path: Path, project: Path) -> None:
    source = as_folder(tmp_path, report())
    os.mkfifo(source / "etc/nginx/conf.d.fifo")
    result: list[BaseException | None] = []

    def go() -> None:
        try:
            import_sos(source, root=project)
            result.append(None)
        except BaseException as exc:
            result.append(exc)

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(20)
    assert not t.is_alive(), "blocked on a FIFO"
    assert isinstance(result[0], UsageError) and "FIFO" in str(result[0])
    assert not (project / "fixtures").exists() and list((project / "scenarios").iterdir()) == []


def test_a_folder_link_out_of_the_report_is_not_followed(tmp_path: Path, project: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "stolen.conf").write_text(f"password={SECRET}\n")
    source = as_folder(tmp_path, report(**{"etc/nginx/sites-enabled/default": None}))
    os.symlink(outside, source / "etc/nginx/sites-enabled")
    os.symlink(outside / "stolen.conf", source / "etc/nginx/abs.conf")
    r = import_sos(source, root=project)
    why = {n.what: n.why for n in r.not_carried}
    assert (
        "a link to a dir" in why["etc/nginx/sites-enabled"]
        or "does not hold" in why["etc/nginx/sites-enabled"]
    )
    assert "etc/nginx/abs.conf" in why
    assert SECRET not in written_text(project)  # the target is named, its content never read


def test_a_part_linked_to_a_host_file_is_never_read(tmp_path: Path, project: Path) -> None:
    """In a folder, a part that is a link to the engineer's own /etc/passwd is resolved inside
    the report (etc/passwd there, which the import does not read), never on this machine."""
    members = report(**{"sos_commands/dpkg/dpkg_-l": None})
    source = as_folder(tmp_path, members)
    (source / "sos_commands/dpkg").mkdir(parents=True)
    os.symlink("/etc/passwd", source / "sos_commands/dpkg/dpkg_-l")
    text = refused(source, project, "missing packages")
    assert "symbolic link to etc/passwd" in text
    assert "root:" not in text


def test_size_limits(tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = "# padding\n" * 200_000  # 2 MB, over the 1 MiB config limit
    source = as_tarball(tmp_path, report(**{"etc/nginx/conf.d/huge.conf": big}))
    r = import_sos(source, root=project, name="limits")
    why = {n.what: n.why for n in r.not_carried}
    assert "over the 1.0 MiB limit" in why["etc/nginx/conf.d/huge.conf"]
    monkeypatch.setenv("LABHARNESS_SOS_MAX_TOTAL", "100000")
    refused(source, project, "pass 97.7 KiB together", name="limits-2")
    monkeypatch.setenv("LABHARNESS_SOS_MAX_TOTAL", "lots")
    refused(source, project, "expected a whole number", name="limits-3")


def test_a_bomb_stops_at_the_limit_before_its_content(tmp_path: Path) -> None:
    source = tmp_path / "bomb.tar.gz"
    with tarfile.open(source, "w:gz") as tar:
        ti = tarfile.TarInfo(f"{TOP}/sos_commands/big")
        ti.size = 64 << 20
        tar.addfile(ti, io.BytesIO(bytes(ti.size)))
    assert source.stat().st_size < 200_000
    with pytest.raises(UsageError, match="together"):
        read_sosreport(source, [], SosLimits(total=8 << 20))


def test_existing_outputs_are_never_replaced(tmp_path: Path, project: Path) -> None:
    source = as_folder(tmp_path, report())
    (project / "scenarios" / "sos-web1.yaml").write_text("mine\n")
    refused(source, project, "exists")
    assert (project / "scenarios" / "sos-web1.yaml").read_text() == "mine\n"
    (project / "fixtures" / "other").mkdir(parents=True)
    refused(source, project, "exists", name="other")
    refused(source, project, "expected a scenario name", name="Bad_Name")


def test_an_invalid_result_is_rolled_back(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.scenario.problems import Problem

    monkeypatch.setattr(verb, "validate_file", lambda *a, **k: [Problem("x.yaml", 1, 1, "boom")])
    refused(as_folder(tmp_path, report()), project, "not valid", "boom")
    assert not (project / "fixtures").exists()


def test_an_interrupt_while_placing_leaves_nothing(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*a: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(verb.os, "link", interrupted)
    before = tree(project)
    with pytest.raises(KeyboardInterrupt):
        import_sos(as_folder(tmp_path, report()), root=project)
    assert tree(project) == before


# -- the command ------------------------------------------------------------------------------


def test_cli_json_and_text(tmp_path: Path, project: Path) -> None:
    source = as_tarball(tmp_path, report())
    runner = CliRunner()
    args = ["import", "sos", str(source), "--project", str(project)]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["scenario"] == "sos-web1" and data["os"]["environment"] == "debian-12"
    assert SECRET not in r.output
    r = runner.invoke(app, [*args, "--name", "again"])
    assert r.exit_code == 0, r.output
    assert "os        Debian GNU/Linux 12 (bookworm) -> debian-12" in r.stdout
    assert "not carried over (" in r.stdout and "etc/nginx/logo.png: binary" in r.stdout
    assert (
        "network   eth0: 10.70.3.0/24 and 2001:db8::/64 (host at 2001:db8::5)"
        " (from eth0; host at 10.70.3.5)" in r.stdout
    )


def test_cli_bad_input_is_exit_2_without_traceback(tmp_path: Path, project: Path) -> None:
    junk = tmp_path / "x.tar.gz"
    junk.write_bytes(b"\x1f\x8b\x08\x00garbage")
    r = CliRunner().invoke(app, ["import", "sos", str(junk), "--project", str(project)])
    assert r.exit_code == 2
    assert "Traceback" not in r.output and "error:" in r.output
    r = CliRunner().invoke(app, ["import", "sos", str(junk), "--project", str(project), "--json"])
    assert r.exit_code == 2 and json.loads(r.stdout)["exit_code"] == 2


def test_a_part_that_is_not_utf8_is_located(tmp_path: Path, project: Path) -> None:
    dpkg = b"ii  nginx  1.22.1-9  all  caf\xe9\n"
    source = as_tarball(tmp_path, report(**{"sos_commands/dpkg/dpkg_-l": dpkg}))
    refused(source, project, "sos_commands/dpkg/dpkg_-l: not UTF-8 text", "(line 1)")


def test_hard_links_and_bare_archives(tmp_path: Path, project: Path) -> None:
    """A hard link member names another member by its archive name; an archive without a top
    folder and without folder members is read the same."""
    source = tmp_path / "bare.tar"
    with tarfile.open(source, "w") as tar:
        for path, text in [
            ("sos_commands/dpkg/dpkg_-l", DPKG),
            ("usr/lib/os-release", OS_RELEASE_12),
            ("etc/nginx/nginx.conf", NGINX_CONF),
        ]:
            ti = tarfile.TarInfo(path)
            ti.size = len(text.encode())
            tar.addfile(ti, io.BytesIO(text.encode()))
        hard = tarfile.TarInfo("etc/os-release")
        hard.type = tarfile.LNKTYPE
        hard.linkname = "usr/lib/os-release"
        tar.addfile(hard)
    r = import_sos(source, root=project, name="bare")
    assert r.os.environment == "debian-12" and r.report == "bare.tar"
    assert [f.path for f in r.files] == ["/etc/nginx/nginx.conf"]


def test_an_encrypted_report_is_named(tmp_path: Path, project: Path) -> None:
    enc = tmp_path / "sosreport-web1.tar.xz.gpg"
    enc.write_bytes(b"\x85\x01\x0c\x03" + bytes(100))
    refused(enc, project, "encrypted report", "gpg -d")


def test_out_elsewhere_in_the_project(tmp_path: Path, project: Path) -> None:
    out = project / "scenarios" / "cases" / "sup-1.yaml"
    r = import_sos(as_folder(tmp_path, report()), root=project, out=out, name="sup-1")
    assert r.file == str(out)
    assert out.read_text().startswith("# yaml-language-server: $schema=../../schemas/")
    assert validate_file(out, root=project, catalog=load_catalog(project)) == []


def test_a_failure_removes_the_folders_it_made(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.scenario.problems import Problem

    monkeypatch.setattr(verb, "validate_file", lambda *a, **k: [Problem("x.yaml", 1, 1, "boom")])
    out = project / "scenarios" / "new" / "deeper" / "x.yaml"
    refused(as_folder(tmp_path, report()), project, "boom", out=out, name="x")
    assert not (project / "scenarios" / "new").exists()


def test_a_link_loop_and_the_member_limit(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = report(
        **{"etc/nginx/a.conf": ("link", "b.conf"), "etc/nginx/b.conf": ("link", "a.conf")}
    )
    source = as_tarball(tmp_path, members)
    r = import_sos(source, root=project, name="loop")
    why = {n.what: n.why for n in r.not_carried}
    assert why["etc/nginx/a.conf"] == "too many levels of symbolic links"
    monkeypatch.setenv("LABHARNESS_SOS_MAX_MEMBERS", "5")
    refused(source, project, "more than 5 members", name="loop-2")
