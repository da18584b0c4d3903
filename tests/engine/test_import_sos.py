"""`lab import sos` on a real sosreport: Debian's sosreport package, run with `sos report
--batch` in a container of the nginx lab's image on a network with a known subnet; the
tarball it writes is imported, the scenario validated and brought up with `lab up`, and the
nginx node answers at the address the reported host had. Real engine, real sos, real CLI."""

from __future__ import annotations

import contextlib
import io
import json
import secrets
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, nothing_left, run_json, run_lab
from tests.unit.sos_craft import DPKG, OS_RELEASE_12, as_tarball, report

pytestmark = [pytest.mark.engine, pytest.mark.slow]

LABEL = "labharness.test"
MINE = "importsos"
SOS = (
    "set -eu; apt-get update -qq; "
    "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
    "sosreport >/dev/null; mkdir -p /tmp/sos; "
    "sos report --batch --tmp-dir /tmp/sos -o {plugins} >/tmp/sos/log 2>&1 "
    "|| {{ cat /tmp/sos/log; exit 1; }}; ls /tmp/sos/sosreport-*.tar.?z"
)
PLUGINS = "nginx,dpkg,networking,host,release"
SECRET = "Pw-sos-import-7Hq2Xv9Lk"


def _image(reports: Path) -> str:
    built = run_json("images", "build", "--lab", "nginx", "--os", "debian-12", reports=reports)
    return next(b["tag"] for b in built if b["kind"] == "lab" and b["name"] == "nginx")


def _project(tmp: Path) -> Path:
    """A project of the repo's labs and environments (same content, so the same image tags)."""
    project = tmp / "project"
    for part in ("labs", "environments", "schemas"):
        shutil.copytree(ROOT / part, project / part, symlinks=True)
    return project


@pytest.fixture()
def mine(docker_client: Any) -> Iterator[list[Any]]:
    """Containers and networks this test made (not a run's): removed whatever happens."""
    made: list[Any] = []
    yield made
    for obj in reversed(made):
        with contextlib.suppress(Exception):  # already gone
            obj.remove(force=True) if hasattr(obj, "exec_run") else obj.remove()


def _sosreport(docker_client: Any, image: str, mine: list[Any], tmp: Path) -> tuple[Path, str]:
    """A real sosreport tarball of a nginx-lab container, and the address that host had."""
    third = secrets.randbelow(200) + 20
    subnet = f"10.251.{third}.0/24"
    import docker.types  # the test talks to the engine itself: it is the customer's host

    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)])
    tag = secrets.token_hex(3)
    net = docker_client.networks.create(
        f"{MINE}-{tag}", driver="bridge", ipam=ipam, labels={LABEL: MINE}
    )
    mine.append(net)
    host = docker_client.containers.create(
        image, name=f"{MINE}-{tag}", hostname="web1", labels={LABEL: MINE}, network=net.name
    )
    mine.append(host)
    host.start()
    # a customer's site, with a secret in it (redaction on the way in)
    site = (
        'server {\n  listen 8080;\n  location / { return 200 "customer\\n"; }\n'
        f"  # upstream auth: password={SECRET}\n}}\n"
    ).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        ti = tarfile.TarInfo("customer.conf")
        ti.size = len(site)
        tar.addfile(ti, io.BytesIO(site))
    host.put_archive("/etc/nginx/conf.d", buf.getvalue())
    code, out = host.exec_run(["sh", "-c", SOS.format(plugins=PLUGINS)])
    text = out.decode("utf-8", "replace")
    assert code == 0, text
    path = text.strip().splitlines()[-1]
    stream, _ = host.get_archive(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.next()
        assert member is not None
        data = tar.extractfile(member).read()  # type: ignore[union-attr]
    host.reload()
    address = host.attrs["NetworkSettings"]["Networks"][net.name]["IPAddress"]
    host.remove(force=True)
    net.remove()  # its subnet is the lab's now
    out_file = tmp / Path(path).name
    out_file.write_bytes(data)
    return out_file, address


def test_a_real_sosreport_imports_validates_and_comes_up(
    docker_client: Any, reports: Path, tmp_path: Path, mine: list[Any], cleanup_runs: list[str]
) -> None:
    image = _image(reports)
    tarball, address = _sosreport(docker_client, image, mine, tmp_path)
    project = _project(tmp_path)

    got = run_json("import", "sos", str(tarball), "--project", str(project), reports=reports)
    assert got["scenario"] == "sos-web1", got
    assert got["os"] == {
        "found": "Debian GNU/Linux 12 (bookworm)",
        "environment": "debian-12",
        "exact": True,
        "note": "",
    }
    nginx = next(s for s in got["software"] if s["lab"] == "nginx")
    assert (nginx["version"], nginx["os"], nginx["exact"]) == ("1.22", "debian-12", True)
    assert [n["address"] for n in got["networks"]] == [address]
    scenario = Path(got["file"])
    doc = yaml.safe_load(scenario.read_text())
    nodes = doc["topology"]["nodes"]
    assert nodes["nginx"]["networks"] == {got["networks"][0]["network"]: {"ipv4": address}}
    fixture = project / "fixtures/sos-web1/etc/nginx/nginx.conf"
    assert fixture.read_text() == (ROOT / "labs/nginx/nginx.conf").read_text()
    customer = project / "fixtures/sos-web1/etc/nginx/conf.d/customer.conf"
    assert "REDACTED" in customer.read_text() and "listen 8080;" in customer.read_text()
    for f in project.rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f

    # the same report as a folder (extracted the way an engineer would) imports the same
    folder = tmp_path / "extracted"
    with tarfile.open(tarball) as tar:
        tar.extractall(folder, filter="data")
    again = run_json(
        "import",
        "sos",
        str(folder),
        "--project",
        str(project),
        "--name",
        "again",
        reports=reports,
    )
    assert (again["os"], again["software"], again["networks"]) == (
        got["os"],
        got["software"],
        got["networks"],
    )
    assert [f["path"] for f in again["files"]] == [f["path"] for f in got["files"]]

    valid = run_lab("validate", str(scenario), "--project", str(project), reports=reports)
    assert valid.returncode == 0, valid.stderr
    up = run_json("up", str(scenario), "--project", str(project), reports=reports)
    run = up["run"]
    cleanup_runs.append(run)
    addresses = {n["name"]: n["addresses"] for n in up["nodes"]}
    assert list(addresses["nginx"].values()) == [address]
    page = run_lab(
        "exec", run, "client", "--", "curl", "-sS", f"http://{address}/health", reports=reports
    )
    assert page.stdout == "ok\n", page.stderr
    # the customer's own site is in effect too
    site = run_lab(
        "exec", run, "client", "--", "curl", "-sS", "http://nginx:8080/", reports=reports
    )
    assert site.stdout == "customer\n", site.stderr
    run_json("down", run, reports=reports)
    assert nothing_left(docker_client, run)
    left = docker_client.containers.list(all=True, filters={"label": f"{LABEL}={MINE}"})
    assert left == []
    assert json.loads(json.dumps(got))  # the result is plain JSON


def test_a_host_with_two_services_on_two_networks_comes_up(
    docker_client: Any, reports: Path, tmp_path: Path, cleanup_runs: list[str]
) -> None:
    """A hand-made report of a host running nginx and PostgreSQL on two subnets (the host is
    .1 on the second, the lab's gateway), dual stack on the first: every node gets a static
    address, none collides, the host's IPv6 address is nginx's, and the services answer."""
    a, b = secrets.randbelow(100) + 100, secrets.randbelow(100) + 100
    six = f"fd00:252:{a:x}::7"
    ip = (
        f"2: eth0    inet 10.252.{a}.7/24 brd 10.252.{a}.255 scope global eth0\\\\  x\n"
        f"2: eth0    inet6 {six}/64 scope global \\\\  x\n"
        f"3: eth1    inet 10.253.{b}.1/24 brd 10.253.{b}.255 scope global eth1\\\\  x\n"
    )
    members = report(
        **{
            "sos_commands/networking/ip_-o_addr": ip,
            "sos_commands/dpkg/dpkg_-l": DPKG,
            "usr/lib/os-release": OS_RELEASE_12,
            "etc/nginx/nginx.conf": (ROOT / "labs/nginx/nginx.conf").read_text(),
            "etc/nginx/sites-available/default": (ROOT / "labs/nginx/default.conf").read_text(),
        }
    )
    tarball = as_tarball(tmp_path, members)
    project = _project(tmp_path)
    got = run_json("import", "sos", str(tarball), "--project", str(project), reports=reports)
    doc = yaml.safe_load(Path(got["file"]).read_text())
    wanted = {
        name: {net: spec["ipv4"] for net, spec in node["networks"].items()}
        for name, node in doc["topology"]["nodes"].items()
    }
    assert wanted["nginx"] == {"eth0": f"10.252.{a}.7", "eth1": f"10.253.{b}.254"}
    up = run_json("up", got["file"], "--project", str(project), reports=reports)
    run = up["run"]
    cleanup_runs.append(run)
    assert {n["name"]: n["addresses"] for n in up["nodes"]} == wanted
    assert doc["topology"]["networks"]["eth0"]["subnet6"] == f"fd00:252:{a:x}::/64"
    six_of = {n["name"]: n.get("addresses6", {}) for n in up["nodes"]}
    assert six_of["nginx"] == {"eth0": six} and set(six_of["client"]) == {"eth0"}, six_of
    page6 = run_lab(
        "exec", run, "client", "--", "curl", "-sS", "-g", f"http://[{six}]/health", reports=reports
    )
    assert page6.stdout == "ok\n", page6.stderr
    page = run_lab(
        "exec", run, "client", "--", "curl", "-sS", f"http://10.252.{a}.7/health", reports=reports
    )
    assert page.stdout == "ok\n", page.stderr
    pg = run_lab(
        "exec",
        run,
        "postgres",
        "--",
        "pg_isready",
        "-q",
        "-h",
        wanted["postgres"]["eth1"],
        reports=reports,
    )
    assert pg.returncode == 0, pg.stderr
    run_json("down", run, reports=reports)
    assert nothing_left(docker_client, run)
