"""`files:` sources are read once, as checked: a swap after validation changes nothing that goes
into a node, and a fifo, device or socket is refused without blocking (issue 13, point 4)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from harness.engine import images as engine_images
from harness.engine import objects, sources
from harness.errors import UsageError
from harness.scenario.catalog import load_catalog
from harness.scenario.load import load_scenario
from tests.conftest import LAB, ROOT, lab_env

SECRET = b"host-only-secret-0f3c\n"
FIXTURE = b"listen 8080\n"


def _project(tmp: Path) -> Path:
    proj = tmp / "project"
    shutil.copytree(ROOT / "environments", proj / "environments")
    (proj / "fixtures" / "case").mkdir(parents=True)
    (proj / "fixtures" / "case" / "app.conf").write_bytes(FIXTURE)
    (proj / "scenario.yaml").write_text(
        "scenario: files-once\ntopology:\n  networks: {net: {}}\n  nodes:\n"
        "    x:\n      os: debian-12\n      networks: [net]\n      command: [sleep, infinity]\n"
        "      files: {/etc/app.conf: fixtures/case/app.conf}\n"
    )
    return proj


def _swap_for_symlink(path: Path, target: Path) -> None:
    """Atomically replace `path` with a symlink to `target` (rename over it)."""
    tmp = path.with_name(path.name + ".swap")
    tmp.symlink_to(target)
    os.replace(tmp, path)


def test_content_comes_from_the_descriptor_checked_first(tmp_path: Path) -> None:
    src = tmp_path / "app.conf"
    src.write_bytes(FIXTURE)
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    with sources.open_source(src) as opened:
        _swap_for_symlink(src, secret)  # the swap lands after the check, before the read
        assert opened.file.read(opened.size) == FIXTURE
    with pytest.raises(UsageError, match="is a symlink"), sources.open_source(src):
        pass


def test_a_symlinked_parent_folder_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "app.conf").write_bytes(FIXTURE)
    (tmp_path / "fixtures").symlink_to(real)
    link = tmp_path / "fixtures" / "app.conf"
    with pytest.raises(UsageError, match=r"under .*/fixtures, which is a symlink"):
        sources.open_source(link).__enter__()


def test_fifo_device_and_socket_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    sock_path = tmp_path / "sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        for path, what in ((fifo, "a fifo"), (Path("/dev/null"), "a character device")):
            done: list[BaseException] = []

            def opener(p: Path = path, done: list[BaseException] = done) -> None:
                try:
                    with sources.open_source(p):
                        pass
                except BaseException as exc:
                    done.append(exc)

            t = threading.Thread(target=opener, daemon=True)
            t.start()
            t.join(2)
            assert not t.is_alive(), f"opening {path} blocked"
            assert isinstance(done[0], UsageError) and what in done[0].message, done
        with pytest.raises(UsageError, match=r"a socket|unreadable"):
            sources.open_source(sock_path).__enter__()
    finally:
        sock.close()


def test_a_fifo_source_is_a_located_usage_error_before_anything_starts(
    tmp_path: Path, docker_client: Any
) -> None:
    import subprocess

    proj = _project(tmp_path)
    conf = proj / "fixtures" / "case" / "app.conf"
    conf.unlink()
    os.mkfifo(conf)
    reports = tmp_path / "reports"
    reports.mkdir()
    t0 = time.monotonic()
    proc = subprocess.run(
        [*LAB, "up", "scenario.yaml", "--project", str(proj)],
        cwd=proj,
        env=lab_env(reports),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert time.monotonic() - t0 < 30
    assert "scenario.yaml:" in proc.stderr and "/etc/app.conf" in proc.stderr, proc.stderr
    assert "is a fifo (named pipe)" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(reports.rglob("run.json")), "refused before a run folder exists"


def test_a_fixture_swapped_after_validation_never_reaches_the_node(
    tmp_path: Path, docker_client: Any
) -> None:
    """The reproduced race, made deterministic: validate, then swap the checked fixture for a
    symlink to a host file (what a build step could do meanwhile), then create the node."""
    proj = _project(tmp_path)
    catalog = load_catalog(proj)
    loaded = load_scenario(proj / "scenario.yaml", root=proj, catalog=catalog)  # validated
    secret = tmp_path / "host-secret"
    secret.write_bytes(SECRET)
    _swap_for_symlink(proj / "fixtures" / "case" / "app.conf", secret)

    images = engine_images.ensure_images(docker_client, loaded.topology, catalog)
    run = f"filesonce{os.getpid()}"
    labels = objects.RunLabels(run, "files-once", "test", str(tmp_path))
    net = loaded.topology.networks[0]
    try:
        network = objects.create_network(docker_client, labels, net)
        node = loaded.topology.nodes[0]
        with pytest.raises(UsageError, match="is a symlink") as err:
            objects.create_node(docker_client, labels, node, images["x"], {net.name: network.name})
        assert "app.conf" in err.value.message
        # whatever got created holds no byte of the host file
        for c in objects.find(docker_client, run).containers:
            with pytest.raises(docker.errors.NotFound):
                c.get_archive("/etc/app.conf")
    finally:
        objects.remove(docker_client, objects.find(docker_client, run))


def test_a_checked_fixture_goes_in_unchanged(tmp_path: Path, docker_client: Any) -> None:
    proj = _project(tmp_path)
    catalog = load_catalog(proj)
    loaded = load_scenario(proj / "scenario.yaml", root=proj, catalog=catalog)
    images = engine_images.ensure_images(docker_client, loaded.topology, catalog)
    run = f"filesok{os.getpid()}"
    labels = objects.RunLabels(run, "files-once", "test", str(tmp_path))
    net = loaded.topology.networks[0]
    try:
        network = objects.create_network(docker_client, labels, net)
        c = objects.create_node(
            docker_client, labels, loaded.topology.nodes[0], images["x"], {net.name: network.name}
        )
        import io
        import tarfile

        stream, _ = c.get_archive("/etc/app.conf")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.extractfile("app.conf")
            assert member is not None and member.read() == FIXTURE
    finally:
        objects.remove(docker_client, objects.find(docker_client, run))
