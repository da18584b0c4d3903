"""Engines reached like remote ones, for real: tcp+TLS (a dockerd in its own netns behind a veth
pair, certificates made by openssl) and ssh (a private sshd whose `docker system dial-stdio`
reaches the host engine). Through the harness only: a targets file, `lab gc --engine NAME`, and
a 2-cell matrix run by `lab worker --engine NAME --targets FILE` on a Dask scheduler. A wrong
certificate or key is one sentence and exit 3."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import LAB, ROOT, lab_env, labelled
from tests.engine.conftest_cluster import Cluster, engine_leftovers, free_port, matrix_images
from tests.engine.remote_engines import Sshd, TlsEngine, private_sshd, tls_engine

MATRIX = "tests/engine/matrices/remote-small.yaml"
EXPECTED = {"page=index.html": "PASS", "page=missing.html": "FAIL"}


@pytest.fixture(scope="module")
def images() -> list[str]:
    return matrix_images(MATRIX)  # on the host engine (built when missing)


@pytest.fixture(scope="module")
def tls() -> Iterator[TlsEngine]:
    with tls_engine() as eng:
        yield eng


@pytest.fixture(scope="module")
def sshd() -> Iterator[Sshd]:
    with private_sshd() as s:
        yield s


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(f"tcp://127.0.0.1:{free_port()}", tmp_path)
    try:
        c.start_scheduler()
        yield c
    finally:
        c.stop()


def write_targets(folder: Path, **engine: Any) -> Path:
    path = folder / "engines.yaml"
    path.write_text(yaml.safe_dump({"engines": [engine]}))
    return path


def lab(*args: str, reports: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LAB, "-q", *args], cwd=ROOT, env=lab_env(reports),
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def run_matrix_on(cluster: Cluster, name: str, targets: Path) -> dict[str, Any]:
    """`lab worker --engine NAME --targets FILE` alone on the scheduler, then the matrix."""
    log = open(cluster.reports / f"worker-{name}.log", "w")  # noqa: SIM115
    p = subprocess.Popen(
        [*LAB, "worker", "--engine", name, "--targets", str(targets),
         "--scheduler", cluster.scheduler],
        cwd=ROOT, env=lab_env(cluster.reports), stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    cluster.workers[name] = p
    cluster.procs.append(p)
    try:
        cluster.wait_workers(1, timeout=60)
    except Exception:
        raise AssertionError(
            f"lab worker never joined:\n{(cluster.reports / f'worker-{name}.log').read_text()}"
        ) from None
    m = lab("matrix", MATRIX, "--cluster", cluster.scheduler, "--json",
            reports=cluster.reports, timeout=240)  # fmt: skip
    assert m.stdout, f"lab matrix exited {m.returncode}:\n{m.stderr[-3000:]}"
    r: dict[str, Any] = json.loads(m.stdout)
    return r


def assert_cells_ran_on(r: dict[str, Any], name: str, url: str) -> list[str]:
    """Both cells right (PASS and the deliberate FAIL), on that engine; their run ids."""
    by = {c["label"]: c for c in r["cells"]}
    assert {k: c["status"] for k, c in by.items()} == EXPECTED, json.dumps(r["cells"], indent=1)
    for c in r["cells"]:
        assert (c["engine"], c["engine_url"]) == (name, url), c
        assert c["run"], c
    return [c["run"] for c in r["cells"]]


def assert_one_sentence(p: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit 3, one `error:` line on stderr naming the cause, no traceback."""
    assert p.returncode == 3, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot use the Docker engine at"), lines
    assert "Traceback" not in p.stderr + p.stdout
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


# -- tcp + TLS ---------------------------------------------------------------------------------


def tls_folder(tls: TlsEngine, folder: Path, ca: str, client: bool) -> Path:
    """A targets file in folder naming the engine, with its certificates in folder/certs."""
    certs = folder / "certs"
    certs.mkdir(parents=True)
    files = {"ca": ca, **({"cert": "client.pem", "key": "client-key.pem"} if client else {})}
    for f in files.values():
        shutil.copy(tls.certs / f, certs / f)
    return write_targets(
        folder, name="rack-tls", url=tls.url, slots=1, images="copy",
        tls={k: f"certs/{f}" for k, f in files.items()},
    )  # fmt: skip


def test_tls_engine_runs_cells(
    tls: TlsEngine, images: list[str], scheduler: Cluster, docker_client: Any, tmp_path: Path
) -> None:
    targets = tls_folder(tls, tmp_path / "conf", "ca.pem", client=True)
    engine = ["docker", "-H", tls.engine.url]  # its unix socket, for checks outside the harness
    for tag in images:  # the worker must copy them (images: copy) over TLS
        assert subprocess.run([*engine, "image", "inspect", tag], capture_output=True).returncode
    g = lab("gc", "--engine", "rack-tls", "--targets", str(targets), "--json", reports=tmp_path)
    assert g.returncode == 0, g.stderr
    assert json.loads(g.stdout) == []

    since = str(int(time.time()) - 1)
    r = run_matrix_on(scheduler, "rack-tls", targets)
    runs = assert_cells_ran_on(r, "rack-tls", tls.url)
    # the containers were made on the TLS engine, its images came over TLS, nothing is left
    events = subprocess.run(
        [*engine, "events", "--since", since, "--until", str(int(time.time()) + 1),
         "--filter", "type=container", "--filter", "event=create",
         "--format", "{{.Actor.Attributes.name}}"],
        capture_output=True, text=True, timeout=30,
    ).stdout.split()  # fmt: skip
    for run in runs:
        assert {f"lab-{run}-web", f"lab-{run}-client"} <= set(events), (run, events)
        assert not any(labelled(docker_client, run).values())  # not on the host engine
    have = subprocess.run([*engine, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
                          capture_output=True, text=True).stdout.split()  # fmt: skip
    assert set(images) <= set(have), have
    assert engine_leftovers(tls.engine.url) == []
    # and a user's docker CLI with the same certificates reaches it over TCP
    assert subprocess.run([*tls.cli(), "info"], capture_output=True).returncode == 0


def test_tls_engine_refuses_bad_certificates(tls: TlsEngine, tmp_path: Path) -> None:
    no_client = tls_folder(tls, tmp_path / "a", "ca.pem", client=False)
    p = lab("gc", "--engine", "rack-tls", "--targets", str(no_client), reports=tmp_path)
    assert_one_sentence(p, tls.url, "refused our TLS client certificate", "tls.cert")

    wrong_ca = tls_folder(tls, tmp_path / "b", "wrong-ca.pem", client=True)
    p = lab("gc", "--engine", "rack-tls", "--targets", str(wrong_ca), reports=tmp_path)
    assert_one_sentence(p, tls.url, "TLS certificate was not accepted", "tls.ca")

    plain = write_targets(tmp_path, name="rack-tls", url=tls.url)
    p = lab("gc", "--engine", "rack-tls", "--targets", str(plain), reports=tmp_path)
    assert_one_sentence(p, tls.url, "speaks TLS")


# -- ssh -----------------------------------------------------------------------------------------


def ssh_targets(sshd: Sshd, folder: Path, key: Path, known_hosts: str | None) -> Path:
    keys = folder / "keys"
    keys.mkdir(parents=True)
    shutil.copy(key, keys / "id")
    (keys / "id").chmod(0o600)
    ssh = {"identity": "keys/id"}
    if known_hosts is not None:
        (keys / "known_hosts").write_text(known_hosts)
        ssh["known_hosts"] = "keys/known_hosts"
    return write_targets(folder, name="rack-ssh", url=sshd.url, slots=1, ssh=ssh)


def test_ssh_engine_runs_cells(
    sshd: Sshd, images: list[str], scheduler: Cluster, docker_client: Any, tmp_path: Path
) -> None:
    targets = ssh_targets(sshd, tmp_path / "conf", sshd.identity, sshd.known_hosts.read_text())
    logins = sshd.log().count("Accepted publickey for root")
    # --dry-run: the engine behind this sshd is the host's, shared with other tests' runs
    g = lab("gc", "--engine", "rack-ssh", "--targets", str(targets), "--dry-run", "--json",
            reports=tmp_path)  # fmt: skip
    assert g.returncode == 0, g.stderr
    assert isinstance(json.loads(g.stdout), list)
    assert sshd.log().count("Accepted publickey for root") == logins + 1, sshd.log()

    r = run_matrix_on(scheduler, "rack-ssh", targets)
    runs = assert_cells_ran_on(r, "rack-ssh", sshd.url)
    assert sshd.log().count("Accepted publickey for root") >= logins + 2  # the worker's login
    for run in runs:
        assert not any(labelled(docker_client, run).values())


def test_ssh_engine_refuses_wrong_key_or_unknown_host(sshd: Sshd, tmp_path: Path) -> None:
    wrong = ssh_targets(sshd, tmp_path / "a", sshd.wrong_identity, sshd.known_hosts.read_text())
    p = lab("gc", "--engine", "rack-ssh", "--targets", str(wrong), reports=tmp_path)
    assert_one_sentence(p, sshd.url, "refused our key", "ssh.identity")

    unknown = ssh_targets(sshd, tmp_path / "b", sshd.identity, "")
    p = lab("gc", "--engine", "rack-ssh", "--targets", str(unknown), reports=tmp_path)
    assert_one_sentence(p, sshd.url, "not in known_hosts")

    other_key = sshd.known_hosts.read_text().split()[:2]
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "hk")],
                   check=True)  # fmt: skip
    forged = " ".join([other_key[0], *(tmp_path / "hk.pub").read_text().split()[:2]])
    changed = ssh_targets(sshd, tmp_path / "c", sshd.identity, forged + "\n")
    p = lab("gc", "--engine", "rack-ssh", "--targets", str(changed), reports=tmp_path)
    assert_one_sentence(p, sshd.url, "host key differs")


def test_client_cleans_a_dead_tls_worker_s_cell_with_the_targets_file(
    tls: TlsEngine, images: list[str], scheduler: Cluster, tmp_path: Path
) -> None:
    """`lab matrix --cluster ... --targets FILE`: the client reaches the TLS engine of a worker
    killed mid-cell and removes that attempt's containers there."""
    import signal

    targets = tls_folder(tls, tmp_path / "conf", "ca.pem", client=True)
    log = open(scheduler.reports / "worker-dying.log", "w")  # noqa: SIM115
    w = subprocess.Popen(
        [*LAB, "worker", "--engine", "rack-tls", "--targets", str(targets),
         "--scheduler", scheduler.scheduler],
        cwd=ROOT, env=lab_env(scheduler.reports), stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    scheduler.procs.append(w)
    scheduler.wait_workers(1, timeout=60)
    client = subprocess.Popen(
        [*LAB, "-q", "matrix", MATRIX, "--cluster", scheduler.scheduler, "--targets",
         str(targets), "--json"],
        cwd=ROOT, env={**lab_env(scheduler.reports), "LABHARNESS_CLUSTER_WAIT": "5"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not engine_leftovers(tls.engine.url):
        time.sleep(0.2)
    assert engine_leftovers(tls.engine.url), "no cell ever started on the TLS engine"
    w.send_signal(signal.SIGKILL)
    out, err = client.communicate(timeout=300)
    r = json.loads(out)
    # no other engine to re-run on: ERROR, never FAIL (exit 1; exit 3 if a cell was never
    # handed to the worker and waited in vain for another)
    assert client.returncode in (1, 3), err[-2000:]
    assert {c["status"] for c in r["cells"]} == {"ERROR"}, r["cells"]
    lost = [c for c in r["cells"] if c.get("attempts")]
    assert lost, r["cells"]
    started = [c["attempts"][0] for c in lost if c["attempts"][0].get("engine")]
    for attempt in started:  # a cell queued behind it never started: nothing to clean
        assert "worker lost" in attempt["error"] and attempt["engine"] == tls.url, attempt
        assert isinstance(attempt["cleaned"], list), attempt  # the engine answered the client
    assert any(a["cleaned"] for a in started), lost  # the cell with containers up: removed there
    assert engine_leftovers(tls.engine.url) == []


def test_paramiko_is_loaded_only_for_ssh_engines(sshd: Sshd) -> None:
    """A local engine does not pay for paramiko's import (~0.1 s per command); an ssh engine
    reached later in the same process still gets docker-py's ssh transport."""
    code = f"""
import sys
from harness.engine.client import connect, register_ssh
connect("unix:///var/run/docker.sock")
assert "paramiko" not in sys.modules, "paramiko loaded for a local engine"
register_ssh({sshd.url!r}, {str(sshd.identity)!r}, {str(sshd.known_hosts)!r})
assert connect({sshd.url!r}).version()["Version"]
assert "paramiko" in sys.modules
print("ok")
"""
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr[-2000:]
