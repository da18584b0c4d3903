"""`lab escalate RUN --ticket T --tracker redmine-lab` end to end: a real run, the CLI in a
subprocess, a real Redmine 5 (its own instance, started for this module, so it may be killed
and restarted), and for the proxy cases a real nginx run as a private process.

Each case says what was and was not attached, and that nothing is lost: the bundle stays in
the local tracker, the ledger records the failure, and a rerun completes what was missing.
Network: 127.0.0.1 only.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import ROOT
from tests.engine.redmine_server import Redmine, free_port, start
from tests.unit.test_trackers_redirect import Listener

pytestmark = [pytest.mark.engine]

QUICK = "scenarios/examples/quick-repro.yaml"
KEY_ENV = "LAB_TEST_REDMINE_KEY"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture(scope="module")
def area(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("redmine-escalate")


@pytest.fixture(scope="module")
def rm(area: Path) -> Iterator[Redmine]:
    cache = Path(os.environ.get("LABHARNESS_CACHE", Path.home() / ".cache" / "labharness"))
    server = start(area, cache / "redmine-test")
    try:
        yield server
    finally:
        server.stop()


def _env(area: Path, env: dict[str, str]) -> dict[str, str]:
    base = {**os.environ, "LABHARNESS_REPORTS": str(area / "reports"), "PYTHONPATH": str(ROOT)}
    return {**base, **env}


def lab(area: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=ROOT,
        env=_env(area, env),
        capture_output=True,
        text=True,
        timeout=600,
    )


def lab_bg(area: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    """`lab` in the background, for a test that changes the world while it runs."""
    return subprocess.Popen(
        [sys.executable, "-m", "harness", *args],
        cwd=ROOT,
        env=_env(area, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def run_id(area: Path, docker_client: Any) -> str:
    p = lab(area, "reproduce", QUICK, "--destroy", "always", "--json")
    r = json.loads(p.stdout)
    assert (p.returncode, r["verdict"]) == (0, "REPRODUCED"), p.stderr
    return str(r["run"])


def new_issue(rm: Redmine, subject: str) -> int:
    r = requests.post(
        f"{rm.url}/issues.json",
        json={"issue": {"project_id": "support", "subject": subject}},
        headers={"X-Redmine-API-Key": rm.key},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return int(r.json()["issue"]["id"])


def issue(rm: Redmine, n: int) -> dict[str, Any]:
    r = requests.get(
        f"{rm.url}/issues/{n}.json?include=attachments,journals",
        headers={"X-Redmine-API-Key": rm.key},
        timeout=30,
    )
    r.raise_for_status()
    return dict(r.json()["issue"])


def notes(i: dict[str, Any]) -> list[str]:
    return [j["notes"] for j in i["journals"] if j["notes"]]


def trackers_yaml(tmp_path: Path, url: str, retries: str = "[0.1, 0.2]") -> Path:
    cfg = tmp_path / "trackers.yaml"
    cfg.write_text(
        "trackers:\n  redmine-lab:\n    kind: redmine\n"
        f"    url: {url}\n    project: support\n    api_key_env: {KEY_ENV}\n"
        f"    retries: {retries}\n    timeout: 20\n"
    )
    return cfg


def escalate(
    area: Path, run_id: str, n: int, cfg: Path, esc: Path, key: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return lab(
        area,
        "escalate",
        run_id,
        "--ticket",
        str(n),
        "--tracker",
        "redmine-lab",
        "--trackers",
        str(cfg),
        *extra,
        LABHARNESS_ESCALATIONS=str(esc),
        **{KEY_ENV: key},
    )


def by_tracker(r: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["tracker"]: t for t in r["trackers"]}


def ledger(esc: Path) -> list[dict[str, Any]]:
    return list(json.loads((esc / "ledger.json").read_text())["escalations"])


def assert_kept_locally(esc: Path, n: int, names: list[str]) -> None:
    assert sorted(p.name for p in (esc / str(n)).iterdir() if p.name in names) == sorted(names)


def sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def assert_on_issue(rm: Redmine, n: int, esc: Path, names: list[str]) -> dict[str, Any]:
    """Each file once on the issue, its bytes (downloaded again) those of the local copy."""
    i = issue(rm, n)
    got = []
    for a in i["attachments"]:
        r = requests.get(a["content_url"], headers={"X-Redmine-API-Key": rm.key}, timeout=30)
        r.raise_for_status()
        got.append((a["filename"], hashlib.sha256(r.content).hexdigest()))
    assert sorted(got) == sorted((name, sha256(esc / str(n) / name)) for name in names)
    return i


# -- the happy path ----------------------------------------------------------------------------


def test_escalate_attaches_everything_and_a_rerun_attaches_nothing_new(
    area: Path, rm: Redmine, run_id: str, tmp_path: Path
) -> None:
    n = new_issue(rm, "happy path")
    cfg, esc = trackers_yaml(tmp_path, rm.url), tmp_path / "esc"
    p = escalate(area, run_id, n, cfg, esc, rm.key, "--note", "L2: please look", "--json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    names = r["attachments"]
    assert len(names) == 3 and names[0] == r["bundle"]  # bundle, report.html, REPRODUCE.md
    local, red = by_tracker(r)["local"], by_tracker(r)["redmine-lab"]
    assert sorted(local["attached"]) == sorted(names)
    assert (red["attached"], red["already"], red["not_attached"]) == (names, [], [])
    assert red["url"] == f"{rm.url}/issues/{n}"
    i = assert_on_issue(rm, n, esc, names)
    assert len(notes(i)) == 1 and "L2: please look" in notes(i)[0] and r["bundle"] in notes(i)[0]

    p = escalate(area, run_id, n, cfg, esc, rm.key, "--note", "L2: please look", "--json")
    assert p.returncode == 0, p.stderr
    red = by_tracker(json.loads(p.stdout))["redmine-lab"]
    assert (red["attached"], sorted(red["already"])) == ([], sorted(names))
    after = assert_on_issue(rm, n, esc, names)  # still each file once
    assert len(after["journals"]) == len(i["journals"])  # no second note
    text = escalate(area, run_id, n, cfg, esc, rm.key, "--note", "L2: please look").stdout
    assert "redmine-lab already there, not added again:" in text, text
    assert rm.key not in p.stdout + p.stderr


# -- Redmine dies after the first upload ---------------------------------------------------------


class Relay:
    """A loopback relay to Redmine; `after(method, path)` runs once Redmine has answered a
    request and before that answer is passed on. When Redmine does not answer, the client's
    connection is dropped, as a dead server's would be."""

    def __init__(self, upstream: int, after: Callable[[str, str], None]) -> None:
        self.seen: list[tuple[str, str, int | None]] = []
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def _go(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=30)
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    r = conn.getresponse()
                    data = r.read()
                    conn.close()
                except OSError:
                    relay.seen.append((self.command, self.path, None))
                    self.close_connection = True
                    return
                relay.seen.append((self.command, self.path, r.status))
                after(self.command, self.path)
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _go

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_redmine_killed_after_the_first_upload_then_a_rerun_completes(
    area: Path, rm: Redmine, run_id: str, tmp_path: Path
) -> None:
    n = new_issue(rm, "killed mid-escalation")
    killed: list[str] = []

    def kill_after_first_upload(method: str, path: str) -> None:
        if method == "POST" and path.startswith("/uploads.json") and not killed:
            rm.kill()
            killed.append(path)

    relay = Relay(rm.port, kill_after_first_upload)
    cfg, esc = trackers_yaml(tmp_path, relay.url), tmp_path / "esc"
    try:
        p = escalate(area, run_id, n, cfg, esc, rm.key, "--json")
        assert p.returncode == 3, p.stderr
        r = json.loads(p.stdout)
        names = r["attachments"]
        red = by_tracker(r)["redmine-lab"]
        assert red["attached"] == [] and red["not_attached"] == names
        assert "did not answer" in red["error"] and "after 3 attempts" in red["error"]
        assert "kept in local" in r["error"] and "rerun" in r["error"]
        assert killed and [s for *_, s in relay.seen].count(None) == 3  # 2nd upload, 3 tries
        assert_kept_locally(esc, n, names)  # nothing lost
        assert [t["error"] is not None for t in ledger(esc)[-1]["trackers"]] == [False, True]

        took = rm.restart()
        assert issue(rm, n)["attachments"] == []  # the first upload was never put on it
        assert notes(issue(rm, n)) == []

        p = escalate(area, run_id, n, cfg, esc, rm.key, "--json")
        assert p.returncode == 0, p.stderr
        red = by_tracker(json.loads(p.stdout))["redmine-lab"]
        assert (red["attached"], red["already"], red["not_attached"]) == (names, [], [])
        i = assert_on_issue(rm, n, esc, names)
        assert len(notes(i)) == 1
        assert [t["error"] for t in ledger(esc)[-1]["trackers"]] == [None, None]
        print(f"\nredmine restart {took:.1f}s")
    finally:
        relay.close()
        if rm.proc is None or rm.proc.poll() is not None:
            rm.restart()  # the later tests need it


# -- a real nginx in front: 502, then it recovers -------------------------------------------------


class Nginx:
    """nginx as a private process: its own prefix, config, logs and temp dirs in `folder`."""

    def __init__(self, folder: Path, upstream: int) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        for sub in ("logs", "tmp"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        self.conf = folder / "nginx.conf"
        self.write(upstream)
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(folder), "-c", str(self.conf), "-e", str(folder / "logs/error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read() if self.proc.stderr else b""
                raise RuntimeError(f"nginx exited: {err.decode(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not listen within 20 s")

    def write(self, upstream: int) -> None:
        f = self.folder
        self.conf.write_text(
            f"""
daemon off;
master_process on;
worker_processes 1;
user root;
pid {f}/nginx.pid;
error_log {f}/logs/error.log;
events {{ worker_connections 64; }}
http {{
  access_log {f}/logs/access.log;
  client_body_temp_path {f}/tmp/body;
  proxy_temp_path {f}/tmp/proxy;
  fastcgi_temp_path {f}/tmp/fastcgi;
  uwsgi_temp_path {f}/tmp/uwsgi;
  scgi_temp_path {f}/tmp/scgi;
  client_max_body_size 100m;
  server {{
    listen 127.0.0.1:{self.port};
    location / {{
      proxy_pass http://127.0.0.1:{upstream};
      proxy_set_header Host $http_host;
    }}
  }}
}}
"""
        )

    def reload(self, upstream: int) -> None:
        """Point it at another backend, as an operator's `nginx -s reload` would."""
        self.write(upstream)
        self.proc.send_signal(signal.SIGHUP)

    def statuses(self) -> list[int]:
        log = self.folder / "logs/access.log"
        lines = log.read_text().splitlines() if log.is_file() else []
        return [int(line.split('"')[2].split()[0]) for line in lines]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()


def test_nginx_answering_502_then_recovering(
    area: Path, rm: Redmine, run_id: str, tmp_path: Path
) -> None:
    assert os.access(NGINX, os.X_OK), "nginx is missing: scripts/setup.sh installs nginx-light"
    n = new_issue(rm, "behind nginx")
    nginx = Nginx(tmp_path / "nginx", upstream=free_port())  # its backend is gone: 502
    try:
        esc = tmp_path / "esc"
        # few retries: still 502 at the end -> exit 3, nothing attached, all kept locally
        p = escalate(area, run_id, n, trackers_yaml(tmp_path, nginx.url, "[0.1]"), esc, rm.key)
        assert p.returncode == 3, p.stderr
        assert "redmine-lab NOT attached:" in p.stdout and "502 Bad Gateway" in p.stdout, p.stdout
        assert "after 2 attempts" in p.stdout and "kept in local" in p.stdout
        assert nginx.statuses() == [502, 502]
        assert issue(rm, n)["attachments"] == []

        # the rerun meets 502 too; the backend comes back while it waits: retries finish it
        cfg = trackers_yaml(tmp_path, nginx.url, "[1, 2, 4, 8, 8]")
        bg = lab_bg(
            area,
            "escalate",
            run_id,
            "--ticket",
            str(n),
            "--tracker",
            "redmine-lab",
            "--trackers",
            str(cfg),
            "--json",
            LABHARNESS_ESCALATIONS=str(esc),
            **{KEY_ENV: rm.key},
        )
        try:
            deadline = time.monotonic() + 120
            while len(nginx.statuses()) < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            nginx.reload(rm.port)
            out, err = bg.communicate(timeout=300)
        finally:
            if bg.poll() is None:
                bg.kill()
                bg.wait()
        assert bg.returncode == 0, err
        red = by_tracker(json.loads(out))["redmine-lab"]
        names = json.loads(out)["attachments"]
        assert (red["attached"], red["not_attached"]) == (names, [])
        assert "502 Bad Gateway; retrying in 1s" in err  # the backoff was taken, and said so
        seen = nginx.statuses()
        first_ok = next(i for i, s in enumerate(seen) if s < 400)
        assert first_ok >= 3 and set(seen[:first_ok]) == {502}, seen  # 502 until the reload,
        assert all(s < 400 for s in seen[first_ok:]), seen  # then every call answered
        assert_on_issue(rm, n, esc, names)
    finally:
        nginx.stop()
    assert nginx.proc.returncode is not None


# -- a redirect to another port: the key never arrives ------------------------------------------


def test_redirect_to_another_port_is_refused_and_the_key_never_arrives(
    area: Path, rm: Redmine, run_id: str, tmp_path: Path
) -> None:
    n = new_issue(rm, "redirected")
    elsewhere = Listener(lambda h, m, b: (200, {}, {"issue": {"id": n}}))
    redirector = Listener(lambda h, m, b: (302, {"Location": f"{elsewhere.url}{h.path}"}, None))
    esc = tmp_path / "esc"
    try:
        p = escalate(area, run_id, n, trackers_yaml(tmp_path, redirector.url), esc, rm.key)
    finally:
        redirector.close()
        elsewhere.close()
    assert p.returncode == 2, p.stderr
    assert elsewhere.seen == []  # no request at all reached the other port, so no key
    assert len(redirector.seen) == 1  # refused at once: a redirect is not retried
    assert f"with 302 to {elsewhere.url}/issues/{n}.json, another origin" in p.stderr
    assert f"${KEY_ENV} was not sent there" in p.stderr
    assert "nothing was attached to redmine-lab" in p.stderr and "kept in local" in p.stderr
    assert rm.key not in p.stdout + p.stderr and "Traceback" not in p.stderr
    entry = ledger(esc)[-1]
    assert_kept_locally(esc, n, entry["trackers"][0]["attached"])
    red = entry["trackers"][1]
    assert red["tracker"] == "redmine-lab" and red["attached"] == []
    assert "another origin" in red["error"]
    assert issue(rm, n)["attachments"] == []


# -- a bad key ---------------------------------------------------------------------------------


def test_bad_key_exit_2_nothing_attached_bundle_kept(
    area: Path, rm: Redmine, run_id: str, tmp_path: Path
) -> None:
    n = new_issue(rm, "bad key")
    bad = "f" * 40
    esc = tmp_path / "esc"
    p = escalate(area, run_id, n, trackers_yaml(tmp_path, rm.url), esc, bad)
    assert p.returncode == 2, p.stderr
    assert f"refused the API key from ${KEY_ENV} (401)" in p.stderr
    assert "nothing was attached to redmine-lab" in p.stderr and "kept in local" in p.stderr
    assert bad not in p.stdout + p.stderr and rm.key not in p.stdout + p.stderr
    entry = ledger(esc)[-1]
    assert_kept_locally(esc, n, entry["trackers"][0]["attached"])
    assert entry["trackers"][1]["attached"] == [] and "(401)" in entry["trackers"][1]["error"]
    assert issue(rm, n)["attachments"] == [] and notes(issue(rm, n)) == []


# -- a verification --------------------------------------------------------------------------


def test_a_verification_reaches_the_issue_with_the_verdict_on_the_fix(
    area: Path, rm: Redmine, tmp_path: Path, docker_client: Any
) -> None:
    """`lab escalate VERIFY-ID --tracker redmine-lab`: the issue gets the verification's bundle,
    its report.html and the baseline's REPRODUCE.md, and a note that leads with the verdict on
    the fix and both sides' rates (never one side's REPRODUCED as the verdict)."""
    p = lab(area, "verify-fix", QUICK, "--fix", "add-page", "--destroy", "always", "--json")
    v = json.loads(p.stdout)
    assert (p.returncode, v["verdict"]) == (0, "FIXED"), p.stderr
    n = new_issue(rm, "a fix to verify")
    cfg, esc = trackers_yaml(tmp_path, rm.url), tmp_path / "esc"
    p = escalate(area, v["verification"], n, cfg, esc, rm.key, "--json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert (r["run"], r["verdict"]) == (v["verification"], "FIXED")
    names = r["attachments"]
    assert names[0] == r["bundle"] and r["bundle"].startswith(f"quick-repro-{v['verification']}")
    assert sorted(names[1:]) == sorted(
        [f"{v['verification']}-report.html", f"{v['baseline']['run']}-REPRODUCE.md"]
    )
    i = assert_on_issue(rm, n, esc, names)
    (note,) = notes(i)
    lines = note.splitlines()
    assert lines[0].endswith(f"verification {v['verification']} of fix add-page (fix)")
    assert lines[2].startswith("Verification: FIXED - baseline 2/2, candidate 0/2")
    assert lines[3].startswith("Baseline (without the fix): REPRODUCED 2/2 (95% CI 34-100%)")
    assert lines[4].startswith("Candidate (with add-page): NOT_REPRODUCED 0/2 (95% CI 0-66%)")
    assert "Verdict: NOT_REPRODUCED" not in note
    (entry,) = ledger(esc)
    assert (entry["run"], entry["verdict"]) == (v["verification"], "FIXED")
