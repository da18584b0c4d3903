"""Environment and lab images on the real engine (no mocks).

The session fixture builds (or reuses, by tag) every environment and every lab version on every
OS it builds on, once; reruns on a warm engine only check tags.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.engine.images import ensure_images, ensure_plan, image_exists, list_images
from harness.errors import InfraError
from harness.images import plan_all, plan_lab
from harness.scenario import labpackage
from harness.scenario.catalog import Catalog, load_catalog
from harness.scenario.resolved import (
    Attachment,
    EnvImage,
    LabImage,
    NodeSpec,
    PlainImage,
    Topology,
)
from harness.verbs.images import build_all

pytestmark = [pytest.mark.engine, pytest.mark.slow]

TEST_LABEL = {"labharness.test": "images"}


@pytest.fixture(scope="session")
def catalog(root: Path) -> Catalog:
    return load_catalog(root)


@pytest.fixture(scope="session")
def built(root: Path, catalog: Catalog, docker_client: Any) -> dict[tuple[str, str, str], str]:
    """{(kind or lab, version, os): tag} for everything in the catalog, built once."""
    events: list[dict[str, Any]] = []
    rows = build_all(root, catalog, on_progress=events.append)
    assert all({"image", "phase", "line"} <= set(e) for e in events)
    out: dict[tuple[str, str, str], str] = {}
    for r in rows:
        key = ("env", r.os, r.os) if r.kind == "env" else (r.name, r.version, r.os)
        out[key] = r.tag
    return out


def run(client: Any, image: str, script: str, **kwargs: Any) -> tuple[int, str]:
    """Run `sh -c script` in a throwaway container; (exit code, output)."""
    c = client.containers.run(image, ["sh", "-c", script], detach=True, labels=TEST_LABEL, **kwargs)
    try:
        rc = int(c.wait(timeout=120)["StatusCode"])
        return rc, c.logs().decode(errors="replace")
    finally:
        c.remove(force=True)


@pytest.mark.parametrize("os_name", ["debian-11", "debian-12", "debian-13"])
def test_environment_has_the_tools(
    built: dict[tuple[str, str, str], str], docker_client: Any, os_name: str
) -> None:
    tag = built[("env", os_name, os_name)]
    rc, out = run(
        docker_client,
        tag,
        "python3 --version && ip -V && iptables --version && tcpdump --version 2>&1 | head -1"
        " && curl --version | head -1 && ps --version"
        " && test -f /etc/ssl/certs/ca-certificates.crt",
    )
    assert rc == 0, out
    assert "Python 3." in out and "iproute2" in out and "iptables v" in out and "tcpdump" in out
    image = docker_client.images.get(tag)
    assert image.labels["labharness.image"] == f"env-{os_name}"
    assert tag.endswith(image.labels["labharness.inputs"][:12])


@pytest.mark.parametrize(
    ("os_name", "expected"),
    [("debian-11", "OpenSSL 1.1."), ("debian-12", "OpenSSL 3.0."), ("debian-13", "OpenSSL 3.5.")],
)
def test_curl_lab_openssl_differs_by_os(
    built: dict[tuple[str, str, str], str], docker_client: Any, os_name: str, expected: str
) -> None:
    version = {"debian-11": "7.74", "debian-12": "7.88", "debian-13": "8.14"}[os_name]
    rc, out = run(docker_client, built[("curl", version, os_name)], "openssl version; curl -V")
    assert rc == 0, out
    assert out.startswith(expected), out
    assert f"curl {version}." in out
    rc, out = run(docker_client, built[("curl", version, os_name)], "dig -v; command -v nc")
    assert rc == 0, out


VERSION_COMMANDS = {
    "nginx": ("nginx -v 2>&1", "nginx/{v}."),
    "postgres": ("postgres --version", "(PostgreSQL) {v}."),
    "redis": ("redis-server --version", "v={v}."),
    "curl": ("curl --version", "curl {v}."),
    "backend": ("python3 /opt/backend/app.py --version", "{v}"),
    "haproxy": ("haproxy -v", "version {v}."),
    "openssh": ("ssh -V 2>&1", "OpenSSH_{v}p"),
    "unbound": ("unbound -V", "Version {v}."),
    # mosquitto -h exits 3; the clients must be the same release as the broker
    "mosquitto": (
        "mosquitto -h | head -n 1; mosquitto_pub --help | sed -n 2p",
        "mosquitto version {v}\nmosquitto_pub version {v} running on libmosquitto {v}.",
    ),
    "sample-product": ("python3 /opt/ledger/ledger.py --version", "{v}"),
    "openldap": ("slapd -VV 2>&1 | head -1", "slapd {v}."),  # 2.4 exits 1 after -VV
}


@pytest.mark.parametrize(
    ("lab", "version", "os_name"),
    [
        ("nginx", "1.18", "debian-11"),
        ("nginx", "1.22", "debian-12"),
        ("postgres", "13", "debian-11"),
        ("postgres", "15", "debian-12"),
        ("redis", "6.0", "debian-11"),
        ("redis", "7.0", "debian-12"),
        ("curl", "7.74", "debian-11"),
        ("curl", "7.88", "debian-12"),
        ("backend", "1.0", "debian-11"),
        ("backend", "1.0", "debian-12"),
        ("nginx", "1.26", "debian-13"),
        ("postgres", "17", "debian-13"),
        ("redis", "8.0", "debian-13"),
        ("curl", "8.14", "debian-13"),
        ("backend", "1.0", "debian-13"),
        ("haproxy", "2.2", "debian-11"),
        ("haproxy", "2.6", "debian-12"),
        ("haproxy", "3.0", "debian-13"),
        ("openssh", "8.4", "debian-11"),
        ("openssh", "9.2", "debian-12"),
        ("openssh", "10.0", "debian-13"),
        ("unbound", "1.13", "debian-11"),
        ("unbound", "1.17", "debian-12"),
        ("unbound", "1.26", "debian-13"),
        ("mosquitto", "2.0.11", "debian-11"),
        ("mosquitto", "2.0.11", "debian-12"),
        ("mosquitto", "2.0.21", "debian-13"),
        ("sample-product", "1.5", "debian-11"),  # from the vendor's .deb in the lab folder
        ("sample-product", "1.5", "debian-12"),
        ("sample-product", "1.5", "debian-13"),
        ("openldap", "2.4", "debian-11"),
        ("openldap", "2.5", "debian-12"),
        ("openldap", "2.6", "debian-13"),
    ],
)
def test_lab_image_runs_its_version(
    built: dict[tuple[str, str, str], str],
    docker_client: Any,
    lab: str,
    version: str,
    os_name: str,
) -> None:
    tag = built[(lab, version, os_name)]
    command, expected = VERSION_COMMANDS[lab]
    rc, out = run(docker_client, tag, command)
    assert rc == 0, out
    assert expected.format(v=version) in out, out
    labels = docker_client.images.get(tag).labels
    assert (labels["labharness.lab"], labels["labharness.version"]) == (lab, version)
    assert labels["labharness.os"] == os_name


def test_second_ensure_is_a_fast_no_op(
    built: dict[tuple[str, str, str], str], catalog: Catalog, docker_client: Any
) -> None:
    envs, labs = plan_all(catalog)
    start = time.monotonic()
    events: list[dict[str, Any]] = []
    outcomes = [ensure_plan(docker_client, p, on_progress=events.append) for p in [*envs, *labs]]
    assert time.monotonic() - start < 5
    assert not any(o.built for o in outcomes)
    assert {e["phase"] for e in events} == {"reused"}
    assert {o.tag for o in outcomes} == set(built.values())


def test_ensure_images_maps_nodes_and_refuses_missing_plain_images(
    built: dict[tuple[str, str, str], str], catalog: Catalog, docker_client: Any
) -> None:
    net = (Attachment("n"),)
    topo = Topology(
        "t",
        (),
        (
            NodeSpec("a", LabImage("nginx", "1.22", "debian-12"), net),
            NodeSpec("b", LabImage("nginx", "1.22", "debian-12"), net),
            NodeSpec("c", EnvImage("debian-11"), net),
        ),
    )
    assert ensure_images(docker_client, topo, catalog) == {
        "a": built[("nginx", "1.22", "debian-12")],
        "b": built[("nginx", "1.22", "debian-12")],
        "c": built[("env", "debian-11", "debian-11")],
    }
    missing = f"labharness-test/absent-{uuid.uuid4().hex[:8]}:1"
    bad = Topology("t", (), (NodeSpec("x", PlainImage(missing), net),))
    with pytest.raises(InfraError, match="is not on the engine and no registry answers"):
        ensure_images(docker_client, bad, catalog)


def test_list_images_marks_current(
    built: dict[tuple[str, str, str], str], catalog: Catalog, docker_client: Any
) -> None:
    rows = {r["tag"]: r for r in list_images(docker_client, catalog)}
    for tag in built.values():
        assert rows[tag]["current"] is True


@pytest.fixture
def scratch_project(tmp_path: Path, root: Path) -> Iterator[Path]:
    """A project with the real environments (same tags: reused) and labs made up per test."""
    proj = tmp_path / "proj"
    shutil.copytree(root / "environments", proj / "environments")
    (proj / "labs").mkdir()
    yield proj


def _remove_built(client: Any, tag: str) -> None:
    if image_exists(client, tag):
        client.images.remove(tag, force=True)


def test_broken_dockerfile_gives_infra_error_with_the_last_lines(
    scratch_project: Path, built: dict[tuple[str, str, str], str], docker_client: Any
) -> None:
    lab = scratch_project / "labs/broken"
    lab.mkdir()
    (lab / "lab.yaml").write_text("name: broken\nversions:\n  '1':\n    os: [debian-12]\n")
    marker = uuid.uuid4().hex  # defeats the build cache
    (lab / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"
        f"RUN echo 'step one says {marker}' && echo 'about to fail' >&2 && exit 7\n"
    )
    plan = plan_lab(load_catalog(scratch_project), "broken", "1", "debian-12")
    try:
        with pytest.raises(InfraError) as info:
            ensure_plan(docker_client, plan)
        text = str(info.value)
        assert "building lab broken 1 on debian-12 failed" in text
        assert f"step one says {marker}" in text
        assert "returned a non-zero code: 7" in text
        assert info.value.hint and "Dockerfile" in info.value.hint
        assert not image_exists(docker_client, plan.tag)
    finally:
        _remove_built(docker_client, plan.tag)


def test_version_check_fails_the_build_clearly(
    scratch_project: Path, root: Path, built: dict[tuple[str, str, str], str], docker_client: Any
) -> None:
    lab = scratch_project / "labs/redis"
    shutil.copytree(root / "labs/redis", lab)
    (lab / "lab.yaml").write_text((lab / "lab.yaml").read_text().replace('"7.0":', '"7.2":'))
    plan = plan_lab(load_catalog(scratch_project), "redis", "7.2", "debian-12")
    try:
        with pytest.raises(InfraError, match=r"ships redis '7\.0\.\d+', not 7\.2"):
            ensure_plan(docker_client, plan)
    finally:
        _remove_built(docker_client, plan.tag)


@pytest.mark.parametrize("os_name", ["debian-11", "debian-12", "debian-13"])
def test_vendor_package_version_is_the_installed_deb(
    built: dict[tuple[str, str, str], str], docker_client: Any, os_name: str
) -> None:
    """ledger 1.5 comes from packages/ledger_1.5.0-1_all.deb: dpkg knows it, its Depends came
    from the archive, its postinst ran in the build (the log folder)."""
    tag = built[("sample-product", "1.5", os_name)]
    rc, out = run(
        docker_client,
        tag,
        "dpkg-query -W -f='${Package} ${Version} ${Status}\\n' ledger python3-redis;"
        " dpkg -L ledger | grep -x /opt/ledger/ledger.py; test -d /var/log/ledger",
    )
    assert rc == 0, out
    assert "ledger 1.5.0-1 install ok installed" in out, out
    assert "python3-redis " in out and out.count("install ok installed") == 2, out
    rc, out = run(docker_client, built[("sample-product", "1.4", os_name)], "dpkg-query -W ledger")
    assert rc != 0, out  # 1.4 comes from versions/1.4/, not from a package


def test_package_version_mismatch_fails_the_build_naming_the_file(
    scratch_project: Path,
    root: Path,
    built: dict[tuple[str, str, str], str],
    docker_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a host without dpkg-deb the catalog cannot read the package's version: the build's
    own check still refuses a .deb of another version, naming the file."""
    lab = scratch_project / "labs/sample-product"
    shutil.copytree(root / "labs/sample-product", lab)
    (lab / "lab.yaml").write_text((lab / "lab.yaml").read_text().replace('"1.5":', '"1.6":'))
    monkeypatch.setattr(labpackage, "_fields", lambda real, st: ("", ""))
    plan = plan_lab(load_catalog(scratch_project), "sample-product", "1.6", "debian-12")
    try:
        with pytest.raises(
            InfraError,
            match=r"packages/ledger_1\.5\.0-1_all\.deb is ledger version '1\.5\.0-1', not 1\.6",
        ):
            ensure_plan(docker_client, plan)
    finally:
        _remove_built(docker_client, plan.tag)


@pytest.fixture
def test_network(docker_client: Any) -> Iterator[Any]:
    net = docker_client.networks.create(
        f"lhtest-images-{uuid.uuid4().hex[:8]}", driver="bridge", labels=TEST_LABEL
    )
    yield net
    for c in docker_client.containers.list(
        all=True, filters={"label": "labharness.test=images"}, ignore_removed=True
    ):
        if net.name in (c.attrs.get("NetworkSettings", {}).get("Networks") or {}):
            c.remove(force=True)
    net.remove()


def _wait_healthy(client: Any, container: Any, command: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rc, _ = container.exec_run(["sh", "-c", command])
        if rc == 0:
            return
        time.sleep(0.25)
    raise AssertionError(f"{container.name} not ready: {container.logs().decode()[-2000:]}")


@pytest.mark.parametrize("os_name", ["debian-11", "debian-12", "debian-13"])
def test_web_tier_services_talk_to_each_other(
    built: dict[tuple[str, str, str], str],
    catalog: Catalog,
    docker_client: Any,
    test_network: Any,
    os_name: str,
) -> None:
    """postgres + redis + backend + nginx on one network, queried from the curl lab."""
    v = {
        "debian-11": ("13", "6.0", "1.18", "7.74"),
        "debian-12": ("15", "7.0", "1.22", "7.88"),
        "debian-13": ("17", "8.0", "1.26", "8.14"),
    }
    pg_v, redis_v, nginx_v, curl_v = v[os_name]
    env = {"POSTGRES_DB": "shop", "POSTGRES_USER": "shop", "POSTGRES_PASSWORD": "s3cret'x"}
    started: dict[str, Any] = {}
    for name, key, extra in [
        ("postgres", ("postgres", pg_v, os_name), {"environment": env}),
        ("redis", ("redis", redis_v, os_name), {}),
        ("backend", ("backend", "1.0", os_name), {"environment": env}),
        ("proxy", ("nginx", nginx_v, os_name), {}),
    ]:
        c = docker_client.containers.create(
            built[key],
            labels=TEST_LABEL,
            name=f"{test_network.name}-{name}",
            hostname=name,
            **extra,
        )
        started[name] = c
        test_network.connect(c, aliases=[name])
        c.start()
    for name, c in started.items():
        health = catalog.lab({"proxy": "nginx"}.get(name, name)).definition.health
        assert health is not None
        check = health.command or (
            f"grep -q ':{health.port:04X} [0-9A-F:]* 0A' /proc/net/tcp /proc/net/tcp6"
        )
        _wait_healthy(docker_client, c, check)
    rc, out = run(
        docker_client,
        built[("curl", curl_v, os_name)],
        "curl -fsS http://backend:8080/health && echo"
        " && curl -fsS http://backend:8080/db && curl -fsS http://backend:8080/cache"
        " && curl -fsS http://backend:8080/cache && curl -fsS http://proxy/health",
        network=test_network.name,
    )
    assert rc == 0, out
    assert out.startswith("ok\n"), out
    assert f"PostgreSQL {pg_v}." in out, out
    assert '"count": 1' in out and '"count": 2' in out, out
    rc, out = started["proxy"].exec_run(["cat", "/var/log/nginx/access.log"])
    assert rc == 0
    rc, out = started["backend"].exec_run(["cat", "/var/log/backend/backend.log"])
    assert b"GET /db" in out
    # PID 1 is tini; the service stops quickly on SIGTERM
    for c in started.values():
        t = time.monotonic()
        c.stop(timeout=10)
        assert time.monotonic() - t < 5, f"{c.name} ignored SIGTERM"


def test_two_processes_building_the_same_tag_do_not_collide(
    scratch_project: Path, built: dict[tuple[str, str, str], str], docker_client: Any, root: Path
) -> None:
    lab = scratch_project / "labs/slow"
    lab.mkdir()
    (lab / "lab.yaml").write_text("name: slow\nversions:\n  '1':\n    os: [debian-12]\n")
    (lab / "Dockerfile").write_text(
        f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nRUN sleep 3 && echo {uuid.uuid4().hex} > /marker\n"
    )
    plan = plan_lab(load_catalog(scratch_project), "slow", "1", "debian-12")
    code = (
        "import json,sys; from pathlib import Path; from harness.engine.client import connect;"
        "from harness.engine.images import ensure_plan; from harness.images import plan_lab;"
        "from harness.scenario.catalog import load_catalog;"
        f"p = plan_lab(load_catalog(Path({str(scratch_project)!r})), 'slow', '1', 'debian-12');"
        "o = ensure_plan(connect(), p); print(json.dumps([o.tag, o.built]))"
    )
    try:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        results = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
        assert all(p.returncode == 0 for p in procs)
        assert {r[0] for r in results} == {plan.tag}
        assert sorted(r[1] for r in results) == [False, True]  # built once, the other waited
    finally:
        _remove_built(docker_client, plan.tag)


def test_environment_from_a_registry_image_when_one_is_local(
    scratch_project: Path, built: dict[tuple[str, str, str], str], docker_client: Any
) -> None:
    """The registry path: `registry_image` already on the engine -> FROM it + packages."""
    fake = f"labharness-test/fake-debian:{uuid.uuid4().hex[:8]}"
    docker_client.images.get(built[("env", "debian-12", "debian-12")]).tag(fake)
    y = scratch_project / "environments/debian-12/environment.yaml"
    text = y.read_text().replace("registry_image: debian:bookworm-slim", f"registry_image: {fake}")
    y.write_text(text.replace("  - tini", "  - tini\n  - less"))
    from harness.images import plan_environment

    plan = plan_environment(load_catalog(scratch_project), "debian-12")
    try:
        outcome = ensure_plan(docker_client, plan)
        assert outcome.built and outcome.how == "registry"
        rc, out = run(docker_client, plan.tag, "command -v less && ps -p 1 -o comm=")
        assert rc == 0 and "tini" in out, out
        assert docker_client.images.get(plan.tag).labels["labharness.os"] == "debian-12"
    finally:
        _remove_built(docker_client, plan.tag)
        docker_client.images.remove(fake)


def test_offline_environment_build_cleans_its_rootfs(
    scratch_project: Path,
    docker_client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """debootstrap + import of a small fresh environment (a new hash), on the real archive."""
    cache = Path(os.environ.get("LABHARNESS_CACHE") or Path.home() / ".cache" / "labharness")
    y = scratch_project / "environments/debian-12/environment.yaml"
    text = y.read_text()
    y.write_text(text[: text.index("packages:")] + "packages: [python3]\n")
    monkeypatch.setenv("LABHARNESS_OFFLINE", "1")
    from harness.images import plan_environment

    plan = plan_environment(load_catalog(scratch_project), "debian-12")
    phases: list[str] = []
    try:
        outcome = ensure_plan(docker_client, plan, on_progress=lambda e: phases.append(e["phase"]))
        assert outcome.built and outcome.how == "debootstrap"
        assert "debootstrap" in phases and "import" in phases
        rc, out = run(docker_client, plan.tag, "python3 -c 'print(42)'; cat /etc/hostname")
        assert rc == 0 and out.strip().startswith("42"), out
        leftovers = [d for d in (cache / "tmp").glob(f"rootfs-debian-12-p{os.getpid()}-*")]
        assert leftovers == []
    finally:
        _remove_built(docker_client, plan.tag)


def test_prune_removes_stale_images_only_and_never_in_use(
    scratch_project: Path,
    built: dict[tuple[str, str, str], str],
    catalog: Catalog,
    docker_client: Any,
) -> None:
    """Images of a lab the real catalog does not know are stale; one in use by a container
    stays; current images are kept (and only --all would remove them)."""
    from harness.engine.images import prune_images

    lab = scratch_project / "labs/prunetest"
    lab.mkdir()
    (lab / "lab.yaml").write_text(
        "name: prunetest\nversions:\n  '1':\n    os: [debian-12]\n  '2':\n    os: [debian-12]\n"
    )
    (lab / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG LAB_VERSION\nRUN echo $LAB_VERSION > /v\n"
    )
    scratch = load_catalog(scratch_project)
    stale = ensure_plan(docker_client, plan_lab(scratch, "prunetest", "1", "debian-12")).tag
    busy = ensure_plan(docker_client, plan_lab(scratch, "prunetest", "2", "debian-12")).tag
    holder = docker_client.containers.create(busy, labels=TEST_LABEL)
    try:
        rows = prune_images(docker_client, catalog, only="labharness/lab-prunetest:")
        actions = {r["tag"]: r["action"] for r in rows}
        assert actions == {stale: "removed", busy: "in-use"}
        assert not image_exists(docker_client, stale) and image_exists(docker_client, busy)
        current = built[("redis", "7.0", "debian-12")]
        rows = prune_images(docker_client, catalog, only=current)
        assert [(r["tag"], r["action"]) for r in rows] == [(current, "kept")]
    finally:
        holder.remove(force=True)
        _remove_built(docker_client, stale)
        _remove_built(docker_client, busy)
