"""A failed replay removes what it extracted, whatever the failure: a refused bundle, a scenario
that does not load, an untrusted playbook, the engine, Ctrl-C. Each replay here runs the CLI in
a clean folder and must leave nothing but the bundle (or the empty --workdir it was given)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.unit.bundle_craft import (
    BASIC,
    PLAYBOOK,
    PLAYBOOK_SCENARIO,
    ROOT,
    craft,
    repack,
    replay,
    tree,
)


def test_a_refused_bundle_leaves_nothing(tmp_path: Path) -> None:
    good = craft(tmp_path / "good.tar.gz")
    clean = tmp_path / "clean"
    clean.mkdir()
    bad = repack(good, clean / "bad.tar.gz", "bundle/project/scenarios/s.yaml")
    p = replay(bad, clean, "--workdir", "w")
    assert p.returncode == 2 and "checksum mismatch" in p.stderr, p.stderr
    assert tree(clean) == ["bad.tar.gz"]
    (clean / "given").mkdir()  # an empty folder the engineer gave stays, empty
    p = replay(bad, clean, "--workdir", "given")
    assert p.returncode == 2
    assert tree(clean) == ["bad.tar.gz", "given"]


def test_a_scenario_that_fails_to_load_leaves_nothing(tmp_path: Path) -> None:
    files = {**BASIC, "bundle/project/scenarios/s.yaml": b"scenario: crafted\ntopology: 42\n"}
    bundle = craft(tmp_path / "b.tar.gz", files)
    p = replay(bundle, tmp_path, "--workdir", "w")
    assert p.returncode == 2, p.stderr
    assert "scenarios/s.yaml:2" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert tree(tmp_path) == ["b.tar.gz"]
    (tmp_path / "given").mkdir()
    p = replay(bundle, tmp_path, "--workdir", "given")
    assert p.returncode == 2
    assert tree(tmp_path) == ["b.tar.gz", "given"]


def test_an_untrusted_refusal_leaves_nothing(tmp_path: Path) -> None:
    files = {
        **BASIC,
        "bundle/project/scenarios/s.yaml": PLAYBOOK_SCENARIO,
        "bundle/project/playbooks/p.yml": PLAYBOOK,
    }
    bundle = craft(tmp_path / "b.tar.gz", files)
    p = replay(bundle, tmp_path)  # the default folder, ./replay-<run id>
    assert p.returncode == 2 and "pass --trust" in p.stderr, p.stderr
    assert tree(tmp_path) == ["b.tar.gz"]


def test_an_infrastructure_error_leaves_nothing(tmp_path: Path) -> None:
    bundle = craft(tmp_path / "b.tar.gz")
    p = replay(bundle, tmp_path)
    assert p.returncode == 3 and "no Docker engine" in p.stderr, p.stderr
    assert tree(tmp_path) == ["b.tar.gz"]


def test_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    """An engine socket that accepts and never answers holds the replay after extraction;
    SIGINT then ends it: exit 130, the extraction removed."""
    bundle = craft(tmp_path / "b.tar.gz")
    sock = Path(f"/tmp/lab-h2-{os.getpid()}.sock")  # (a unix socket path must be short)
    sock.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock))
    server.listen(4)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DOCKER_HOST": f"unix://{sock}",
        "LABHARNESS_CONFIG": str(tmp_path / "no-config.yaml"),
    }
    env.pop("LABHARNESS_REPORTS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "replay", str(bundle), "--workdir", "w"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        server.settimeout(60)
        conn, _ = server.accept()  # the replay is past extraction, asking the engine
        assert (tmp_path / "w" / "manifest.json").is_file()
        assert (tmp_path / "w" / "project" / "scenarios" / "s.yaml").is_file()
        time.sleep(0.3)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert time.monotonic() - t0 < 2, err
        conn.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.close()
        sock.unlink(missing_ok=True)
    assert proc.returncode == 130, err
    assert "received SIGINT" in err and "internal error" not in err
    assert tree(tmp_path) == ["b.tar.gz"]
