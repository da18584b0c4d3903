"""`lab serve` itself, as a process: a missing index or an unreachable store is one message and
its exit code (never a traceback, never a password), a port in use too; a real server on
127.0.0.1 that refuses traversal sent raw over a socket (no client normalising the path) and a
foreign Host name, and stops cleanly on Ctrl-C and on SIGTERM."""

from __future__ import annotations

import json
import re
import select
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import LAB, ROOT, lab_env
from tests.unit.webkit import SECRET, Index, build


def lab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LAB, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def ix(tmp_path_factory: pytest.TempPathFactory) -> Index:
    return build(tmp_path_factory.mktemp("serve"))


def test_missing_index_is_exit_2_with_the_hint(tmp_path: Path) -> None:
    p = lab("serve", "--store", f"sqlite:///{tmp_path / 'none.sqlite'}", "--port", "0")
    assert p.returncode == 2, p.stderr
    assert "does not exist" in p.stderr and "lab index" in p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""


def test_unreachable_store_is_exit_3_without_its_password() -> None:
    p = lab("serve", "--store", "postgresql://lab:s3cret-pw@127.0.0.1:1/lab", "--port", "0")
    assert p.returncode == 3, p.stderr
    assert "lab:***@127.0.0.1:1/lab" in p.stderr and "s3cret-pw" not in p.stderr + p.stdout
    assert "Traceback" not in p.stderr


def test_port_in_use_is_exit_2(ix: Index) -> None:
    with socket.create_server(("127.0.0.1", 0)) as held:
        port = held.getsockname()[1]
        p = lab("serve", "--store", ix.url, "--port", str(port))
    assert p.returncode == 2, p.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in p.stderr and "--port" in p.stderr


def test_help_says_loopback_unless_asked() -> None:
    p = lab("serve", "--help")
    assert p.returncode == 0 and "127.0.0.1" in p.stdout and "--host" in p.stdout


@contextmanager
def server(ix: Index) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(
        [*LAB, "serve", "--store", ix.url, "--port", "0"],
        cwd=ROOT,
        env=lab_env(ix.root),  # the folders the index names are under this reports root
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready and proc.stdout is not None, "lab serve printed no URL"
        line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert found, line
        yield proc, found.group(0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def raw_http(url: str, path: str, host: str = "127.0.0.1") -> tuple[int, bytes]:
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), data


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_real_server_serves_refuses_and_stops_cleanly(ix: Index, sig: signal.Signals) -> None:
    with server(ix) as (proc, url):
        with urllib.request.urlopen(url + "api/about", timeout=10) as r:
            assert json.loads(r.read())["counts"]["run"] == 12
        for path in (
            "/reports/quick-repro/r1/../../../secret.txt",
            "/reports/quick-repro/r1/../../index.sqlite",
            "/reports/quick-repro/r1/%2e%2e/%2e%2e/%2e%2e/secret.txt",
            "/reports/..%2f..%2fsecret.txt",
            "/reports/quick-repro/r1/artifacts/leak.txt",
        ):
            status, data = raw_http(url, path)
            assert status == 404 and SECRET not in data and b"SQLite format" not in data, path
        assert raw_http(url, "/reports/quick-repro/r1/report.html")[0] == 200
        assert raw_http(url, "/", host="evil.example")[0] == 400  # a rebound DNS name
        assert raw_http(url, "/", host=f"localhost:{url.rsplit(':', 1)[1].strip('/')}")[0] == 200
        proc.send_signal(sig)
        assert proc.wait(30) == 0
        assert proc.stderr is not None
        err = proc.stderr.read()
        assert "lab serve: stopped" in err and "Traceback" not in err
