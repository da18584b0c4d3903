"""Teardown guarantee: SIGINT or SIGTERM at any moment of `lab up` leaves nothing labelled, and
Ctrl-C in every phase of `lab reproduce` (build, up, configure, steps, verify, collect) ends the
run within 2 s, exit 130, journal written, lab gone."""

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


def _capture_project(tmp: Path) -> Path:
    """Two nodes, one network captured, and a step that runs long enough to be hit."""
    proj = tmp / "project"
    shutil.copytree(ROOT / "environments", proj / "environments")
    (proj / "scenario.yaml").write_text(
        "scenario: signal-steps\ntopology:\n  networks: {wire: {}}\n  nodes:\n"
        "    a: {os: debian-12, networks: [wire], command: [sleep, infinity]}\n"
        "    b: {os: debian-12, networks: [wire], command: [sleep, infinity]}\n"
        "reproduce:\n  steps:\n"
        "    - {id: ping, on: a, run: 'ping -c 2 -W 1 b'}\n"
        "    - {id: long, on: a, run: 'sleep 120', timeout: 300s}\n"
        "  symptom:\n    - {step: long, exit_code: 0}\n"
        "collect:\n  capture: [wire]\n"
    )
    return proj


def _start_reproduce(proj: Path, reports: Path) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [*LAB, "reproduce", "scenario.yaml", "--project", str(proj)],
        cwd=proj,
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


def _tcpdumps_writing_under(folder: Path) -> list[int]:
    """Pids of tcpdump processes whose command line names a file under the run folder."""
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            argv = (p / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"tcpdump") and str(folder).encode() in b" ".join(argv):
            pids.append(int(p.name))
    return pids


def test_sigint_during_a_step_is_honoured_within_2s(
    docker_client: Any, reports: Path, tmp_path: Path, cleanup_runs: list[str]
) -> None:
    import json

    from harness.engine import capture

    proj = _capture_project(tmp_path)
    proc, lines = _start_reproduce(proj, reports)
    run = wait_for_line(proc, lines, "run ").split()[1]
    cleanup_runs.append(run)
    wait_for_line(proc, lines, "long:")  # the step is running in the node
    time.sleep(0.5)
    sent = time.time()
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(60)
    assert rc == 130, "\n".join(lines)
    folder = next(reports.glob(f"*/{run}"))
    journal = json.loads((folder / "journal.json").read_text())
    attempt = next(p for p in journal["phases"] if p["phase"] == "attempt-1")
    from datetime import datetime

    assert attempt["result"] == "interrupted", attempt
    assert datetime.fromisoformat(attempt["end"]).timestamp() - sent < 2.0
    assert journal.get("ended") and any(p["phase"] == "down" for p in journal["phases"])
    assert nothing_left(docker_client, run), "\n".join(lines)
    assert not any("Traceback" in x for x in lines), "\n".join(lines)
    if capture.host_tcpdump() is not None:
        assert not _tcpdumps_writing_under(folder)


def test_a_sigkilled_run_takes_its_captures_along(
    docker_client: Any, reports: Path, tmp_path: Path, cleanup_runs: list[str]
) -> None:
    """SIGKILL leaves no chance to clean up: the kernel ends tcpdump (PR_SET_PDEATHSIG), and
    `lab gc` removes the rest of the run."""
    from harness.engine import capture
    from harness.verbs import runs

    assert capture.host_tcpdump() is not None, capture.MISSING_TCPDUMP  # setup.sh installs it
    proj = _capture_project(tmp_path)
    proc, lines = _start_reproduce(proj, reports)
    run = wait_for_line(proc, lines, "run ").split()[1]
    cleanup_runs.append(run)
    wait_for_line(proc, lines, "long:")
    folder = next(reports.glob(f"*/{run}"))
    assert _tcpdumps_writing_under(folder), "the capture should be running"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    deadline = time.monotonic() + 5
    while _tcpdumps_writing_under(folder) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _tcpdumps_writing_under(folder), "tcpdump outlived its run"
    pcap = folder / "captures" / "wire.pcap"
    assert pcap.exists()
    collected = runs.gc(runs=[run])
    assert collected and collected[0].removed["containers"] == 2
    # collect never ran: gc masks the pcap the kill left (harness/run/collect.mask_captures)
    assert collected[0].masked and collected[0].masked["captures"] == ["captures/wire.pcap"], (
        collected
    )
    assert collected[0].masked["with"] == "scenario scenario.yaml", collected
    assert nothing_left(docker_client, run)


def test_gc_ends_a_capture_its_dead_run_left(tmp_path: Path) -> None:
    """The fallback when the death signal could not fire (a capture started by a thread that
    lives on): the pid file beside the pcap; a pid reused by another process is never hit."""
    from harness.engine import capture

    tcpdump = capture.host_tcpdump()
    assert tcpdump is not None, capture.MISSING_TCPDUMP
    folder = tmp_path / "run"
    pcap = folder / "captures" / "lo.pcap"
    pcap.parent.mkdir(parents=True)
    orphan = subprocess.Popen(
        [tcpdump, "-i", "lo", "-w", str(pcap), "-U", "-n"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        time.sleep(0.3)
        capture._write_pid_file(pcap, orphan.pid)
        (folder / "captures" / "other.pcap.pid").write_text(f"{bystander.pid} 1\n")  # reused
        assert capture.stop_orphans(folder) == [orphan.pid]
        assert orphan.wait(5) is not None
        assert bystander.poll() is None
        assert not list(folder.glob("captures/*.pid"))
    finally:
        for p in (orphan, bystander):
            if p.poll() is None:
                p.kill()
                p.wait()


def _processes_naming(text: str) -> list[str]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmd:
                out.append(f"{p.name}: {cmd[:200]}")
    return out


def test_sigint_during_a_playbook_is_honoured_within_2s(
    docker_client: Any, reports: Path, tmp_path: Path, cleanup_runs: list[str]
) -> None:
    """configure runs ansible-runner in the run's thread: the signal stops it and the
    playbook's processes, then the usual teardown; exit 130."""
    import json
    from datetime import datetime

    proj = _capture_project(tmp_path)
    shutil.copy(ROOT / "tests" / "engine" / "playbooks" / "sleep.yml", proj / "sleep.yml")
    text = (proj / "scenario.yaml").read_text()
    (proj / "scenario.yaml").write_text(
        text.replace("reproduce:", "configure:\n  - {playbook: sleep.yml, hosts: a}\nreproduce:")
    )
    proc, lines = _start_reproduce(proj, reports)
    run = wait_for_line(proc, lines, "run ").split()[1]
    cleanup_runs.append(run)
    wait_for_line(proc, lines, "- configure")
    folder = next(reports.glob(f"*/{run}"))
    deadline = time.monotonic() + 60
    while not _processes_naming("sleep 60") and time.monotonic() < deadline:
        time.sleep(0.1)  # until the task runs in the node
    time.sleep(0.5)
    sent = time.time()
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(60)
    assert rc == 130, "\n".join(lines)
    journal = json.loads((folder / "journal.json").read_text())
    configure = next(p for p in journal["phases"] if p["phase"] == "configure")
    assert configure["result"] == "interrupted", configure
    assert datetime.fromisoformat(configure["end"]).timestamp() - sent < 2.0
    assert nothing_left(docker_client, run), "\n".join(lines)
    time.sleep(1)
    assert not _processes_naming(str(folder)), "ansible outlived its run"


# -- Ctrl-C in every phase: build, up (the health wait), configure `run:`, verify ------------

_NODES = (
    "topology:\n  networks: {wire: {}}\n  nodes:\n"
    "    a: {os: debian-12, networks: [wire], command: [sleep, infinity]NODE_EXTRA}\n"
)
_STEPS = (
    "reproduce:\n  steps:\n    - {id: s, on: a, run: 'true'}\n"
    "  symptom:\n    - {step: s, exit_code: 0}\n"
)
_SLOW_TEST = "import time\n\n\ndef test_slow():\n    time.sleep(120)\n"

# phase -> (scenario text, what shows the phase is running: a stderr line, then a process)
PHASES: dict[str, tuple[str, str, str | None]] = {
    "up": (
        "scenario: sigint-up\n"
        + _NODES.replace("NODE_EXTRA", ", health: {command: 'test -e /never', timeout: 300s}")
        + _STEPS,
        "started",  # the node is started: the health wait is on
        None,
    ),
    "configure": (
        "scenario: sigint-configure\n"
        + _NODES.replace("NODE_EXTRA", "")
        + "configure:\n  - {run: 'sleep 117', on: a}\n"
        + _STEPS,
        "- configure",
        "sleep 117",
    ),
    "verify-run": (
        "scenario: sigint-verify-run\n"
        + _NODES.replace("NODE_EXTRA", "")
        + _STEPS
        + "verify:\n  - {run: 'sleep 118', on: a}\n",
        "- verify",
        "sleep 118",
    ),
    "verify-suite": (
        "scenario: sigint-verify-suite\n"
        + _NODES.replace("NODE_EXTRA", "")
        + _STEPS
        + "verify:\n  - test_slow_suite.py\n",
        "- verify",
        "test_slow_suite.py",
    ),
}


def _phase_project(tmp: Path, phase: str) -> tuple[Path, str, str | None]:
    if phase == "build":
        proj = _slow_build_project(tmp)
        text = (proj / "scenario.yaml").read_text()
        (proj / "scenario.yaml").write_text(text + _STEPS.replace("on: a", "on: x"))
        return proj, "RUN sleep 30", None
    proj = tmp / "project"
    shutil.copytree(ROOT / "environments", proj / "environments")
    (proj / "labs").mkdir()
    text, needle, process = PHASES[phase]
    (proj / "scenario.yaml").write_text(text)
    (proj / "test_slow_suite.py").write_text(_SLOW_TEST)
    return proj, needle, process


@pytest.mark.parametrize("phase", ["build", *PHASES])
def test_sigint_in_every_phase_ends_the_run_within_2s(
    phase: str, docker_client: Any, reports: Path, tmp_path: Path, cleanup_runs: list[str]
) -> None:
    """SIGINT while the phase runs (its progress line seen, and its command running where it
    has one): the process exits 130 within 2 s of the signal, with journal.json naming the
    phase interrupted, and nothing of the run left on the engine."""
    import json

    proj, needle, process = _phase_project(tmp_path, phase)
    proc, lines = _start_reproduce(proj, reports)
    run = wait_for_line(proc, lines, "run ").split()[1]
    cleanup_runs.append(run)
    wait_for_line(proc, lines, needle)
    if process is not None:
        deadline = time.monotonic() + 60
        while not _processes_naming(process) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _processes_naming(process), f"{process!r} never ran:\n" + "\n".join(lines)
    time.sleep(0.5)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(60)
    gap = time.monotonic() - sent
    print(f"{phase}: exit {rc} {gap:.2f}s after SIGINT")
    assert rc == 130, "\n".join(lines)
    assert gap < 2.0, f"{phase}: the run ended {gap:.2f}s after SIGINT:\n" + "\n".join(lines)
    folder = next(reports.glob(f"*/{run}"))
    journal = json.loads((folder / "journal.json").read_text())
    name = "verify" if phase.startswith("verify") else phase
    rec = next(p for p in journal["phases"] if p["phase"] == name)
    assert rec["result"] == "interrupted", rec
    assert journal.get("ended"), journal
    assert '"state": "interrupted"' in (folder / "run.json").read_text()
    assert nothing_left(docker_client, run), "\n".join(lines)
    assert not any("Traceback" in x for x in lines), "\n".join(lines)
    if process is not None:
        time.sleep(0.5)
        assert not _processes_naming(process), f"{process!r} outlived its run"
