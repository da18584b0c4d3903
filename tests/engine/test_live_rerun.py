"""`lab reproduce FILE --on RUN` on the real engine (issue 17, points 1, 2 and 4): a lab from
`lab up` brought in line with a changed file, then replayed; the live verdict and evidence are
those a fresh `lab reproduce` of the changed file gives, on three shipped cases: one configured
by Ansible (a changed var: configure runs again), one with an impairment (a changed env: the
node is recreated and its loss applied again), one with PostgreSQL (a changed fixture: copied
in, the node restarted). Each case runs in a copy of the project, so the edit is its own."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, nothing_left, run_lab

pytestmark = pytest.mark.engine


def _project(tmp: Path, case: str) -> Path:
    proj = tmp / "project"
    for d in ("labs", "environments"):
        shutil.copytree(ROOT / d, proj / d, ignore=shutil.ignore_patterns("__pycache__"))
    if (ROOT / "fixtures" / case).is_dir():
        shutil.copytree(ROOT / "fixtures" / case, proj / "fixtures" / case)
    (proj / "scenarios" / "cases").mkdir(parents=True)
    shutil.copy(ROOT / "scenarios" / "cases" / f"{case}.yaml", proj / "scenarios" / "cases")
    return proj


def _lab(proj: Path, reports: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    proc = run_lab(*args, "--project", str(proj), "--json", reports=reports, timeout=900)
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        out = {}
    return proc.returncode, out, proc.stderr


def _journal(result: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((Path(result["folder"]) / "journal.json").read_text())
    return data


def _evidence(result: dict[str, Any]) -> dict[str, Any]:
    """What must match between a live and a fresh run: the verdict, each attempt's symptom
    and decisive step outcomes, and the finding signatures the run's own evidence shows."""
    j = _journal(result)
    attempts = [p for p in j["phases"] if p["phase"].startswith("attempt-")]
    analyze = next(p for p in j["phases"] if p["phase"] == "analyze")
    return {
        "verdict": result["verdict"],
        "held": [a["symptom"].get("held") for a in attempts],
        "exit_codes": [
            [s.get("exit_code") for s in a["steps"] if s.get("kind") == "run"] for a in attempts
        ],
        "signatures": sorted(
            {f["signature"] for s in analyze.get("sources", []) for f in s.get("findings", [])}
        ),
    }


def _sync(result: dict[str, Any]) -> dict[str, Any]:
    phases = result["phases"] if "phases" in result else _journal(result)["phases"]
    return next(p for p in phases if p["phase"] == "sync")


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def _ansible_edit(proj: Path) -> None:
    _edit(
        proj / "scenarios/cases/tls-min-version.yaml",
        "vars: {protocols: TLSv1.2}}\nreproduce",
        'vars: {protocols: "TLSv1.2 TLSv1.3"}}\nreproduce',
    )


def _ansible_sync(sync: dict[str, Any]) -> None:
    assert sync["plan"]["configure"], sync["plan"]  # its inputs changed: configure again
    assert not sync["plan"]["replace"] and not sync["plan"]["copy"]


def _impairment_edit(proj: Path) -> None:  # the lab is up with the retries; they go
    _edit(
        proj / "scenarios/cases/lossy-link-intermittent.yaml",
        'RETRY_OPTS: "--retry 5 --retry-all-errors --retry-delay 1"}',
        'RETRY_OPTS: ""}',
    )


def _impairment_sync(sync: dict[str, Any]) -> None:
    assert "client" in sync["plan"]["replace"], sync["plan"]
    assert "RETRY_OPTS" in sync["plan"]["replace"]["client"]
    assert sync["impairments"], "the recreated client's loss was not applied again"


def _postgres_edit(proj: Path) -> None:
    _edit(
        proj / "fixtures/postgres-too-many-clients/pool.py",
        'POOL_SIZE = int(env("POOL_SIZE", "15"))',
        'POOL_SIZE = min(4, int(env("POOL_SIZE", "15")))',
    )


def _postgres_sync(sync: dict[str, Any]) -> None:
    assert sync["plan"]["copy"] == {"app": ["/opt/customer/pool.py"]}, sync["plan"]
    (act,) = sync["actions"]
    assert act["node"] == "app" and act["action"] == "copied+restarted"


def _unbound_edit(proj: Path) -> None:  # the static zone made transparent: a reload, no restart
    _edit(
        proj / "fixtures/unbound-static-local-zone/unbound.conf",
        'local-zone: "corp.example." static',
        'local-zone: "corp.example." transparent',
    )


def _unbound_sync(sync: dict[str, Any]) -> None:
    assert sync["plan"]["copy"] == {"resolver": ["/etc/unbound/unbound.conf"]}, sync["plan"]
    (act,) = sync["actions"]
    assert act["node"] == "resolver" and act["action"] == "copied+reloaded", act


def _mosquitto_edit(proj: Path) -> None:  # the workaround, typed into the customer's file
    _edit(
        proj / "fixtures/mosquitto-anonymous-refused/mosquitto.conf",
        "listener 1883\n",
        "listener 1883\nallow_anonymous true\n",
    )


def _mosquitto_sync(sync: dict[str, Any]) -> None:  # allow_anonymous: SIGHUP, no restart
    assert sync["plan"]["copy"] == {"broker": ["/etc/mosquitto/mosquitto.conf"]}, sync["plan"]
    (act,) = sync["actions"]
    assert act["node"] == "broker" and act["action"] == "copied+reloaded", act
    assert act["reload"]["exit_code"] == 0, act


def _haproxy_edit(proj: Path) -> None:  # the check path corrected in the customer's file
    _edit(
        proj / "fixtures/haproxy-healthcheck-path/haproxy.cfg",
        "option httpchk GET /healthcheck",
        "option httpchk GET /health",
    )


def _haproxy_sync(sync: dict[str, Any]) -> None:  # checked, then SIGUSR2 to the master
    assert sync["plan"]["copy"] == {"lb": ["/etc/haproxy/haproxy.cfg"]}, sync["plan"]
    (act,) = sync["actions"]
    assert act["node"] == "lb" and act["action"] == "copied+reloaded", act
    assert act["reload"]["exit_code"] == 0, act


CASE_ARGS = {
    "tls-min-version": ([], _ansible_edit, _ansible_sync),
    "lossy-link-intermittent": (
        ["--param", "loss=35%", "--param", "polls=2"],
        _impairment_edit,
        _impairment_sync,
    ),
    "postgres-too-many-clients": ([], _postgres_edit, _postgres_sync),
    "unbound-static-local-zone": ([], _unbound_edit, _unbound_sync),
    "mosquitto-anonymous-refused": ([], _mosquitto_edit, _mosquitto_sync),
    "haproxy-healthcheck-path": ([], _haproxy_edit, _haproxy_sync),
}
UP_ARGS = {"lossy-link-intermittent": ["--fix", "client-retries"]}


@pytest.mark.parametrize("case", sorted(CASE_ARGS))
def test_live_rerun_gives_what_a_fresh_run_of_the_changed_file_gives(
    case: str, tmp_path: Path, reports: Path, docker_client: Any, cleanup_runs: list[str]
) -> None:
    proj = _project(tmp_path, case)
    params, edit, check_sync = CASE_ARGS[case]
    scenario = str(proj / "scenarios" / "cases" / f"{case}.yaml")
    rc, up, err = _lab(proj, reports, "up", scenario, *params, *UP_ARGS.get(case, []))
    assert rc == 0, err
    run = up["run"]
    cleanup_runs.append(run)
    lab_folder = Path(up["folder"])
    assert (lab_folder / "lab-state.json").is_file()
    if case == "lossy-link-intermittent":  # up with the fix: its file now names RETRY_OPTS
        _edit(
            proj / "scenarios/cases/lossy-link-intermittent.yaml",
            'TIMEOUT_OPTS: "--connect-timeout 1 -m 2"}',
            'TIMEOUT_OPTS: "--connect-timeout 1 -m 2", RETRY_OPTS: '
            '"--retry 5 --retry-all-errors --retry-delay 1"}',
        )
        first_rc, first, err = _lab(proj, reports, "reproduce", scenario, *params, "--on", run)
        assert first_rc in (0, 1), err
        assert _sync(first)["plan"]["replace"] == {}, "an unchanged lab was changed"
    edit(proj)
    rc, live, err = _lab(proj, reports, "reproduce", scenario, *params, "--on", run)
    assert rc in (0, 1), err
    assert Path(live["folder"]).parent == lab_folder / "live"
    check_sync(_sync(live))
    rc, fresh, err = _lab(proj, reports, "reproduce", scenario, *params, "--destroy", "always")
    assert rc in (0, 1), err
    cleanup_runs.append(fresh["run"])
    if case == "lossy-link-intermittent":  # which attempts lose a packet is chance
        assert live["verdict"] == fresh["verdict"] == "REPRODUCED"
    else:
        assert _evidence(live) == _evidence(fresh)
    assert nothing_left(docker_client, fresh["run"])
    assert not nothing_left(docker_client, run), "the live rerun removed the lab"
    listed = json.loads((lab_folder / "run.json").read_text())
    assert listed["state"] == "up" and listed["reruns"][-1]["verdict"] == live["verdict"]
    run_lab("down", run, reports=reports, check=True)
    assert nothing_left(docker_client, run)


def test_quick_repro_live_loop_verify_fix_and_refusals(
    tmp_path: Path, reports: Path, docker_client: Any, cleanup_runs: list[str]
) -> None:
    """The example: rerun unchanged (nothing to do), verify-fix on the live lab (FIXED, the
    verification beside the lab's reruns), and a new network refused with exit 2 before any
    folder is made."""
    proj = tmp_path / "project"
    for d in ("labs", "environments"):
        shutil.copytree(ROOT / d, proj / d, ignore=shutil.ignore_patterns("__pycache__"))
    (proj / "scenarios").mkdir()
    scenario = proj / "scenarios" / "quick-repro.yaml"
    shutil.copy(ROOT / "scenarios" / "examples" / "quick-repro.yaml", scenario)
    rc, up, err = _lab(proj, reports, "up", str(scenario))
    assert rc == 0, err
    run = up["run"]
    cleanup_runs.append(run)
    rc, again, err = _lab(proj, reports, "reproduce", str(scenario), "--on", run)
    assert rc == 0 and again["verdict"] == "REPRODUCED", err
    assert _sync(again)["plan"] == {"replace": {}, "copy": {}, "configure": None}
    assert _sync(again)["actions"] == []
    rc, fixed, err = _lab(
        proj, reports, "verify-fix", str(scenario), "--fix", "add-page", "--on", run
    )
    assert rc == 0 and fixed["verdict"] == "FIXED", err
    # the lab already ran this very baseline (the rerun above): it is put beside, not rerun
    assert fixed["baseline"]["folder"] == again["folder"]
    assert Path(fixed["candidate"]["folder"]).parent == Path(up["folder"]) / "live"
    assert fixed["candidate"]["folder"] != again["folder"]
    # the lab now runs the candidate: a plain rerun brings the baseline back (configure again)
    rc, back, err = _lab(proj, reports, "reproduce", str(scenario), "--on", run)
    assert rc == 0 and back["verdict"] == "REPRODUCED", err
    assert _sync(back)["plan"]["configure"]
    assert Path(fixed["verification_folder"], "report.html").is_file()
    _edit(scenario, "    lan: {}\n", "    lan: {}\n    extra: {}\n")
    before = sorted((Path(up["folder"]) / "live").iterdir())
    proc = run_lab("reproduce", str(scenario), "--project", str(proj), "--on", run, reports=reports)
    assert proc.returncode == 2, proc.stderr
    assert "cannot take live" in proc.stderr and "the networks changed" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted((Path(up["folder"]) / "live").iterdir()) == before
    assert not nothing_left(docker_client, run)
    run_lab("down", run, reports=reports, check=True)
    assert nothing_left(docker_client, run)


def test_watch_reruns_on_save_and_ctrl_c_leaves_the_lab(
    tmp_path: Path, reports: Path, docker_client: Any, cleanup_runs: list[str]
) -> None:
    """`lab watch --on RUN`: a verdict line at once, another after a save (through the OS's
    file events), a located line for a save that breaks the file (the watch goes on), and
    Ctrl-C ends it with the lab still up."""
    import os
    import signal
    import subprocess
    import sys

    proj = tmp_path / "project"
    for d in ("labs", "environments"):
        shutil.copytree(ROOT / d, proj / d, ignore=shutil.ignore_patterns("__pycache__"))
    (proj / "scenarios").mkdir()
    scenario = proj / "scenarios" / "quick-repro.yaml"
    shutil.copy(ROOT / "scenarios" / "examples" / "quick-repro.yaml", scenario)
    (proj / "fixtures" / "watch").mkdir(parents=True)
    fixture = proj / "fixtures" / "watch" / "note.txt"
    fixture.write_text("first\n")
    _edit(
        scenario,
        "client: {lab: curl, networks: [lan]}",
        "client: {lab: curl, networks: [lan], files: {/opt/note.txt: fixtures/watch/note.txt}}",
    )
    rc, up, err = _lab(proj, reports, "up", str(scenario))
    assert rc == 0, err
    run = up["run"]
    cleanup_runs.append(run)
    env = {**os.environ, "LABHARNESS_REPORTS": str(reports)}
    argv = [sys.executable, "-m", "harness", "watch", str(scenario), "--on", run]
    proc = subprocess.Popen(
        [*argv, "--project", str(proj), "--json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    import queue
    import threading

    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for text in proc.stdout:
            lines.put(text)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()

    def next_line() -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(lines.get(timeout=180))
        except queue.Empty:
            raise AssertionError("lab watch printed no line within 180 s") from None
        return data

    try:
        first = next_line()
        assert first["verdict"] == "REPRODUCED" and "status=404" in first["decided"]
        fixture.write_text("second\n")  # a file the scenario reads, not the scenario
        again = next_line()
        assert again["changed"] == [str(fixture.resolve())] and again["verdict"] == "REPRODUCED"
        assert _sync(_journal({"folder": again["folder"]}))["plan"]["copy"] == {
            "client": ["/opt/note.txt"]
        }
        _edit(scenario, "  page: status.html", "  page: index.html")  # the page exists
        second = next_line()
        assert second["verdict"] == "NOT_REPRODUCED", second
        assert str(scenario) in second["changed"]
        _edit(scenario, "  page: index.html", "  page: [index.html")  # not YAML any more
        third = next_line()
        assert third["verdict"] is None and "quick-repro.yaml" in third["error"]
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        assert proc.stderr is not None
        err = proc.stderr.read()
        reader.join(10)
        out = "".join(lines.get() for _ in range(lines.qsize()))  # the WatchResult, at the end
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out)["ended"] == "stopped"
    assert "Traceback" not in err
    assert not nothing_left(docker_client, run), "Ctrl-C removed the lab"
    run_lab("down", run, reports=reports, check=True)
    assert nothing_left(docker_client, run)
