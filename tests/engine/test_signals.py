"""Teardown guarantee: SIGINT or SIGTERM at any moment of `lab up` leaves nothing labelled."""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LAB, ROOT, lab_env, nothing_left

WIDE = "tests/engine/scenarios/wide.yaml"


def start_up(
    scenario: str, reports: Path, cwd: Path = ROOT
) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [*LAB, "up", scenario, "--project", str(cwd)],
        cwd=cwd,
        env=lab_env(reports),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    return proc, lines


def wait_for_line(
    proc: subprocess.Popen[str], lines: list[str], needle: str, timeout: float = 300
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(lines):
            if needle in line:
                return line
        if proc.poll() is not None and not any(needle in x for x in lines):
            time.sleep(0.2)
            if not any(needle in x for x in lines):
                raise AssertionError(
                    f"lab up ended ({proc.returncode}) before {needle!r}:\n" + "\n".join(lines)
                )
        time.sleep(0.02)
    raise AssertionError(f"no {needle!r} within {timeout}s:\n" + "\n".join(lines))


def _slow_build_project(tmp: Path) -> Path:
    """A project whose one lab takes a while to build, with a fresh input so it always builds.

    The engine's builder finishes a step after the client has gone (Docker 20.10 does not
    cancel a running RUN), so the slow step then fails: a build that succeeded there would
    leave an untagged image behind every test run."""
    proj = tmp / "project"
    shutil.copytree(ROOT / "environments", proj / "environments")
    lab = proj / "labs" / "slowbuild"
    lab.mkdir(parents=True)
    (lab / "lab.yaml").write_text(
        "name: slowbuild\nversions:\n  '1':\n    os: [debian-12]\ncommand: [sleep, infinity]\n"
    )
    (lab / "Dockerfile").write_text(
        f"ARG BASE_IMAGE\nFROM $BASE_IMAGE\n# {uuid.uuid4()}\nRUN sleep 30 && false\n"
    )
    (proj / "scenario.yaml").write_text(
        "scenario: slowbuild\ntopology:\n  networks: {net: {}}\n"
        "  nodes:\n    x: {lab: slowbuild, networks: [net]}\n"
    )
    return proj


MOMENTS = {
    # moment -> stderr line that proves lab up is there
    "networks": "network(s)",
    "nodes": "started",
    "health": "ready in",
}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("moment", ["build", *MOMENTS])
def test_signal_during_up_tears_everything_down(
    moment: str,
    sig: signal.Signals,
    docker_client: Any,
    reports: Path,
    tmp_path: Path,
    cleanup_runs: list[str],
) -> None:
    if moment == "build":
        proj = _slow_build_project(tmp_path)
        proc, lines = start_up("scenario.yaml", reports, cwd=proj)
        needle = ""
    else:
        proc, lines = start_up(WIDE, reports)
        needle = MOMENTS[moment]
    run = wait_for_line(proc, lines, "run ").split()[1]
    cleanup_runs.append(run)
    if moment == "build":
        needle = "RUN sleep 30"  # the builder is inside the slow step
    wait_for_line(proc, lines, needle)
    proc.send_signal(sig)
    rc = proc.wait(60)
    assert rc == 128 + sig, "\n".join(lines)
    assert any("tearing down" in x for x in lines)
    assert nothing_left(docker_client, run), "\n".join(lines)
    assert not any("Traceback" in x for x in lines), "\n".join(lines)
    folder = next(reports.glob(f"*/{run}"))
    assert '"state": "interrupted"' in (folder / "run.json").read_text()
