"""`clock:` (issue 18 point 4) proved inside the nodes on the real engine: a node two hours
ahead (Debian 12) and one 90 seconds behind (Debian 11: its own glibc generation's libfaketime)
read that offset from the real time in their own command's output, in a reproduce step (date
and Python) and in `lab exec`, while a node without `clock:` and this machine keep the real time;
the nodes' images stay as they are, no capability is added, and `lab down` leaves nothing.
The run's REPRODUCE.sh, run by hand with another prefix, gives the nodes the same clocks."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, nothing_left, run_json, run_lab

pytestmark = pytest.mark.engine
SCENARIO = "tests/engine/scenarios/node-clock.yaml"
OFFSETS = {"ahead": 7200, "behind": -90, "real": 0}
SLACK = 5  # seconds: the nodes start and the steps run a moment apart


def _started_at(container: Any) -> int:
    """What the node's own command printed when it started (`date +%s`, through its LD_PRELOAD)."""
    m = re.search(r"started at (\d+)", container.logs().decode(errors="replace"))
    assert m is not None, container.logs()
    return int(m.group(1))


def _steps(folder: Path) -> dict[str, int]:
    journal = json.loads((folder / "journal.json").read_text())
    steps = [s for p in journal["phases"] for s in p.get("steps") or []]
    return {str(s["id"]): int(str(s["stdout"]).strip()) for s in steps}


def _near(seen: int, real: float, offset: int, what: str) -> None:
    assert abs(seen - (real + offset)) <= SLACK, f"{what}: {seen}, not {real:.0f} {offset:+d}"


def test_a_nodes_clock_is_off_by_its_offset_inside_and_nowhere_else(
    reports: Path, tmp_path: Path, docker_client: Any, cleanup_runs: list[str]
) -> None:
    before = time.time()
    r = run_json("reproduce", SCENARIO, "--destroy", "never", reports=reports)
    cleanup_runs.append(r["run"])
    after = time.time()
    assert r["verdict"] == "REPRODUCED", r
    real = {n: docker_client.containers.get(f"lab-{r['run']}-{n}") for n in OFFSETS}
    # the node's own command (PID 1's child), against the clock-less node started with it
    started = {n: _started_at(c) for n, c in real.items()}
    assert before - SLACK <= started["real"] <= after + SLACK, started
    for node in ("ahead", "behind"):
        _near(started[node], started["real"], OFFSETS[node], f"{node}'s command")
    # the reproduce steps: `date` and Python's time.time() (each a `docker exec`)
    steps = _steps(Path(r["folder"]))
    # the journal and the report say whose clock is off, and by how much
    journal = json.loads((Path(r["folder"]) / "journal.json").read_text())
    recorded = {n["name"]: n.get("clock_s") for n in journal["topology"]["nodes"]}
    assert recorded == {"ahead": 7200, "behind": -90, "real": None}, recorded
    html = (Path(r["folder"]) / "report.html").read_text()
    assert "(clock +2h)" in html and "(clock -1m 30s)" in html
    assert abs(steps["skew-ahead"] - 7200) <= 1 and abs(steps["skew-behind"] + 90) <= 1, steps
    assert steps["skew-real"] == 0, steps
    _near(steps["ahead"], steps["real"], 7200, "step on ahead")
    _near(steps["ahead-python"], steps["real"], 7200, "python step on ahead")
    _near(steps["behind"], steps["real"], -90, "step on behind")
    assert before - SLACK <= steps["real"] <= after + SLACK, steps
    # `lab exec`, now; and this machine's clock is the real one throughout
    for node, offset in OFFSETS.items():
        p = run_lab("exec", r["run"], node, "--", "date", "+%s", reports=reports, check=True)
        _near(int(p.stdout.strip()), time.time(), offset, f"lab exec on {node}")
    # what the node's monotonic clock and kernel say stays real: only the wall clock moves
    rc, out = real["ahead"].exec_run(["cat", "/proc/uptime"])
    host_uptime = float(Path("/proc/uptime").read_text().split()[0])
    assert rc == 0 and abs(float(out.split()[0]) - host_uptime) < SLACK
    for node, c in real.items():
        host = c.attrs["HostConfig"]
        assert not host.get("CapAdd") and not host.get("Privileged"), (node, host.get("CapAdd"))
        env = dict(e.split("=", 1) for e in c.attrs["Config"]["Env"])
        assert ("FAKETIME" in env) == (OFFSETS[node] != 0), env
    images = {n: c.attrs["Config"]["Image"] for n, c in real.items()}
    assert images["ahead"] == images["real"], images  # the node's own image, unchanged
    run_lab("down", r["run"], reports=reports, check=True)
    assert nothing_left(docker_client, r["run"])
    _reproduce_sh_shows_the_same(Path(r["folder"]), tmp_path)


def _reproduce_sh_shows_the_same(folder: Path, tmp: Path) -> None:
    """REPRODUCE.sh, alone in another folder, copies libfaketime in by hand (from each node's
    own image): its probes (the node's clock against the real one, inside it) hold too."""
    script = tmp / "copy" / "REPRODUCE.sh"
    script.parent.mkdir()
    shutil.copy(folder / "REPRODUCE.sh", script)
    prefix = f"lab-manual-t{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PREFIX": prefix, "PROJECT": str(ROOT)}
    p = subprocess.run(
        ["sh", str(script)], cwd=tmp, env=env, capture_output=True, text=True, timeout=300
    )
    text = p.stdout + p.stderr
    assert p.returncode == 0 and "REPRODUCED (1/1)" in text, text
    assert text.count(": held") == 3, text
    left = subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True
    ).stdout
    assert prefix not in left, left
