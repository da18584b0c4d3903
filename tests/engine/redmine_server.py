"""A throwaway Redmine (Debian's redmine + redmine-sqlite packages) for the tracker tests.

Its own instance folder under tmp (config/database.yml -> sqlite there, files/, log/, tmp/),
reached by Debian's multi-tenancy: REDMINE_INSTANCE=<name> and a symlink
/usr/share/redmine/instances/<name> -> the folder (removed at the end). The migrated database
with default data, a user, a project and issues is cached under $LABHARNESS_CACHE (keyed by the
Redmine version and this file's setup script); each session copies it and sets a fresh API key.
`kill()` and `restart()` take the server down and bring it back on the same port and database
(the "tracker went away mid-escalation" tests).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REDMINE = Path("/usr/share/redmine")
APT = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "redmine", "redmine-sqlite"]
ISSUES = 3  # independent issues, so tests do not see each other's attachments

SETUP_RB = """
Setting.rest_api_enabled = '1'
Setting.login_required = '1'
u = User.new(firstname: 'Lab', lastname: 'Harness', mail: 'lab@example.invalid')
u.login = 'labharness'
u.password = 'labharness-pass-1'
u.password_confirmation = 'labharness-pass-1'
u.status = User::STATUS_ACTIVE
u.save!
Token.create!(user: u, action: 'api').update_column(:value, 'set-per-session')
p = Project.new(name: 'Support', identifier: 'support')
p.trackers = Tracker.all
p.enabled_module_names = ['issue_tracking']
p.save!
Project.create!(name: 'Other', identifier: 'other', trackers: Tracker.all,
                enabled_module_names: ['issue_tracking'])
Member.create!(project: p, principal: u, roles: [Role.find_by(name: 'Developer')])
IssueCustomField.create!(name: 'Customer', field_format: 'string', is_for_all: true,
                         trackers: Tracker.all)
%d.times do |n|
  Issue.create!(project: p, tracker: p.trackers.first, subject: "Customer problem #{n + 1}",
                author: u, priority: IssuePriority.default || IssuePriority.first,
                status: IssueStatus.find_by(name: 'New'))
end
"""


@dataclass
class Redmine:
    url: str
    key: str
    issues: list[int]
    folder: Path
    timings: dict[str, float] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    link: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0

    def kill(self) -> None:
        """The server process only (SIGKILL: gone at once, like a crash); data stays."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        if self.link is not None and self.link.is_symlink():
            self.link.unlink()

    def restart(self) -> float:
        """Bring a killed server back on the same port and database; seconds it took."""
        self.kill()
        t = time.monotonic()
        _launch(self)
        return time.monotonic() - t


def ensure_installed() -> None:
    if (REDMINE / "bin" / "rails").exists() and _has_sqlite_adapter():
        return
    if os.geteuid() != 0:
        raise RuntimeError(f"Redmine is not installed; run: sudo {' '.join(APT)}")
    subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
    subprocess.run(
        APT,
        check=True,
        capture_output=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def _has_sqlite_adapter() -> bool:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Status}", "redmine-sqlite"], capture_output=True, text=True
    )
    return "installed" in out.stdout


def redmine_version() -> str:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "redmine"], capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(tmp: Path, cache_root: Path) -> Redmine:
    t0 = time.monotonic()
    ensure_installed()
    timings = {"install_check": time.monotonic() - t0}
    tenant = f"labharness-test-{os.getpid()}-{secrets.token_hex(3)}"
    folder = tmp / "redmine"
    for sub in ("config", "files", "log", "tmp", "public"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    db = folder / "db.sqlite3"
    (folder / "config" / "database.yml").write_text(
        f"production:\n  adapter: sqlite3\n  database: {db}\n  timeout: 5000\n"
    )
    (folder / "config" / "secret_key.txt").write_text(secrets.token_hex(32))
    (folder / "Gemfile").write_text('eval_gemfile "/usr/share/redmine/Gemfile"\ngem "webrick"\n')
    link = REDMINE / "instances" / tenant
    link.symlink_to(folder)
    env = {
        **os.environ,
        "REDMINE_INSTANCE": tenant,
        "RAILS_ENV": "production",
        "BUNDLE_GEMFILE": str(folder / "Gemfile"),
        "REDMINE_LANG": "en",
    }
    rm = Redmine(url="", key="", issues=list(range(1, ISSUES + 1)), folder=folder, link=link)
    try:
        setup = SETUP_RB % ISSUES
        digest = hashlib.sha256(f"{redmine_version()}\n{setup}".encode()).hexdigest()[:16]
        cached = cache_root / f"redmine-{digest}.sqlite3"
        t1 = time.monotonic()
        if cached.is_file():
            shutil.copyfile(cached, db)
            timings["db_from_cache"] = time.monotonic() - t1
        else:
            _rails(["bin/rake", "db:migrate"], env, folder)
            _rails(["bin/rake", "redmine:load_default_data"], env, folder)
            (folder / "setup.rb").write_text(setup)
            _rails(["bin/rails", "runner", str(folder / "setup.rb")], env, folder)
            cache_root.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(db, cached.with_suffix(".part"))
            os.replace(cached.with_suffix(".part"), cached)
            timings["db_migrated"] = time.monotonic() - t1
        rm.key = secrets.token_hex(20)
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE tokens SET value = ? WHERE action = 'api'", (rm.key,))
        rm.port = free_port()
        rm.url = f"http://127.0.0.1:{rm.port}"
        rm.env = env
        t2 = time.monotonic()
        _launch(rm)
        timings["server_up"] = time.monotonic() - t2
        timings["total"] = time.monotonic() - t0
        rm.timings = timings
        return rm
    except BaseException:
        rm.stop()
        raise


def _launch(rm: Redmine) -> None:
    folder = rm.folder
    pid = folder / "tmp" / "server.pid"
    pid.unlink(missing_ok=True)  # a killed server leaves it, and rails refuses to start then
    rm.proc = subprocess.Popen(
        [
            "bin/rails",
            "server",
            "-u",
            "webrick",
            "-b",
            "127.0.0.1",
            "-p",
            str(rm.port),
            "-e",
            "production",
            "-P",
            str(pid),
        ],
        cwd=REDMINE,
        env=rm.env,
        stdout=(folder / "log" / "server.out").open("ab"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait_up(rm, folder)


def _rails(cmd: list[str], env: dict[str, str], folder: Path) -> None:
    proc = subprocess.run(cmd, cwd=REDMINE, env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def _wait_up(rm: Redmine, folder: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert rm.proc is not None
        if rm.proc.poll() is not None:
            out = (folder / "log" / "server.out").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"Redmine exited with {rm.proc.returncode}:\n{out}")
        try:
            req = urllib.request.Request(
                f"{rm.url}/issue_statuses.json", headers={"X-Redmine-API-Key": rm.key}
            )
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError("Redmine did not answer within 60 s")
