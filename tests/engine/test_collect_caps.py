"""Collection is capped and streamed: a huge file or folder in a node costs neither memory nor
disk beyond the limits, and what was cut is in the journal; Ctrl-C during collect is honoured
(issue 13, points 4 and 8)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.run.collect import MAX_FILE, MAX_NODE
from tests.conftest import LAB, ROOT, lab_env, nothing_left

MiB = 1 << 20


def _project(tmp: Path, setup: str, logs: list[str]) -> Path:
    proj = tmp / "project"
    shutil.copytree(ROOT / "environments", proj / "environments")
    (proj / "scenario.yaml").write_text(
        json.dumps(
            {
                "scenario": "collect-caps",
                "topology": {
                    "networks": {"net": {}},
                    "nodes": {
                        "x": {
                            "os": "debian-12",
                            "networks": ["net"],
                            "command": ["sh", "-c", f"{setup} && touch /tmp/ready && sleep inf"],
                            "health": {"command": "test -f /tmp/ready", "timeout": "60s"},
                        }
                    },
                },
                "reproduce": {
                    "steps": [{"id": "s", "on": "x", "run": "true"}],
                    "symptom": [{"step": "s", "exit_code": 0}],
                },
                "collect": {"logs": logs},
            }
        )
    )
    return proj


# `lab` started from a small launcher that forks it and writes its rusage: a child's peak RSS
# (ru_maxrss) starts at what its parent had when it forked, so measured from the test process
# (grown by every test before it) it would be the suite's size, not the harness's.
_LAUNCH = (  # a signal to the launcher is passed on to `lab` (the Ctrl-C test)
    "import json, os, signal, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execvp(sys.argv[2], sys.argv[2:])\n"
    "for s in (signal.SIGINT, signal.SIGTERM):\n"
    "    signal.signal(s, lambda n, _f: os.kill(pid, n))\n"
    "_, st, ru = os.wait4(pid, 0)\n"
    "open(sys.argv[1], 'w').write(json.dumps({'maxrss_kib': ru.ru_maxrss}))\n"
    "sys.exit(os.waitstatus_to_exitcode(st))\n"
)


def _start(proj: Path, reports: Path, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            _LAUNCH,
            str(out / "rusage.json"),
            *LAB,
            "reproduce",
            "scenario.yaml",
            "--project",
            str(proj),
        ],
        cwd=proj,
        env=lab_env(reports),
        stdout=(out / "stdout").open("wb"),
        stderr=(out / "stderr").open("wb"),
    )


def _folder(reports: Path) -> Path:
    return next(reports.glob("*/*/journal.json")).parent


def _node_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in (folder / "artifacts" / "x").rglob("*") if f.is_file())


def test_huge_file_and_folder_are_capped_streamed_and_noted(
    tmp_path: Path, docker_client: Any, cleanup_runs: list[str]
) -> None:
    setup = (
        "mkdir -p /data/dir && truncate -s 300M /data/big.bin"
        " && for f in a c d e; do truncate -s 100M /data/dir/$f.bin; done"
        " && echo small > /data/dir/b.txt"
    )
    proj = _project(tmp_path, setup, ["x:/data/big.bin", "x:/data/dir"])
    reports = tmp_path / "reports"
    reports.mkdir()
    proc = _start(proj, reports, tmp_path)
    proc.wait()
    err = (tmp_path / "stderr").read_text()
    folder = _folder(reports)
    journal = json.loads((folder / "journal.json").read_text())
    cleanup_runs.append(journal["run"])
    assert proc.returncode == 0, err

    rss_mib = json.loads((tmp_path / "rusage.json").read_text())["maxrss_kib"] / 1024
    print(f"lab reproduce peak RSS: {rss_mib:.0f} MiB for 700 MB of files in the node")
    assert rss_mib < 250, f"peak RSS {rss_mib:.0f} MiB: collection held files in memory"

    big = folder / "artifacts" / "x" / "files" / "data" / "big.bin"
    assert big.stat().st_size == MAX_FILE
    assert _node_bytes(folder) <= MAX_NODE + 64 * 1024  # + inspect.json
    collect = next(p for p in journal["phases"] if p["phase"] == "collect")
    cut = {c["path"]: c for c in collect["cut"]}
    assert cut["/data/big.bin"]["kept_bytes"] == MAX_FILE
    assert cut["/data/big.bin"]["size"] == 300 * MiB
    assert "16 MiB limit per file" in cut["/data/big.bin"]["why"]
    dir_cuts = [c for p, c in cut.items() if p.startswith("/data/dir/")]
    assert len(dir_cuts) == 4, cut  # four 100 MB files, none kept whole
    assert any("64 MiB limit was reached" in c["why"] for c in dir_cuts), dir_cuts
    assert nothing_left(docker_client, journal["run"])


def _wait_for(path: Path, needle: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in path.read_text(errors="replace"):
            return
        assert proc.poll() is None, path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"no {needle!r} in {timeout}s: {path.read_text()}")


def test_ctrl_c_during_collect_is_honoured(
    tmp_path: Path, docker_client: Any, cleanup_runs: list[str]
) -> None:
    """A folder of 8 GB of (sparse) files takes far longer than 2 s to stream past: the signal
    lands inside collect, which stops at the next chunk; exit 130, journal written, lab gone."""
    setup = "mkdir -p /data/dir && for f in 1 2 3 4 5 6 7 8; do truncate -s 1G /data/dir/$f; done"
    proj = _project(tmp_path, setup, ["x:/data/dir"])
    reports = tmp_path / "reports"
    reports.mkdir()
    proc = _start(proj, reports, tmp_path)
    try:
        _wait_for(tmp_path / "stderr", "- collect", proc, 300)
        time.sleep(0.5)  # well inside the stream
        sent = time.time()
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = (tmp_path / "stderr").read_text()
    folder = _folder(reports)
    journal = json.loads((folder / "journal.json").read_text())
    cleanup_runs.append(journal["run"])
    assert rc == 130, err
    assert "Traceback" not in err
    collect = next(p for p in journal["phases"] if p["phase"] == "collect")
    assert collect["result"] == "interrupted", collect
    assert "interrupted" in collect["stopped"]
    ended = datetime.fromisoformat(collect["end"]).timestamp()
    assert ended - sent < 2.0, f"collect went on {ended - sent:.2f}s after the signal"
    assert journal["result"] == "ERROR" and journal.get("ended")
    assert any(p["phase"] == "down" for p in journal["phases"])
    assert '"state": "interrupted"' in (folder / "run.json").read_text()
    assert nothing_left(docker_client, journal["run"])


def test_collect_of_a_node_output_is_capped(tmp_path: Path) -> None:
    """The redacting sink keeps at most its cap and never splits a line across writes."""
    import io

    from harness.run.collect import _RedactedSink
    from harness.run.redact import Redactor

    red = Redactor.build(env=[("DB_PASSWORD", "hunter2-secret")])
    out = io.BytesIO()
    sink = _RedactedSink(out, red, cap=1000)
    payload = b"x" * 5 + b"hunter2-" + b"secret\n"  # the value arrives in two chunks
    sink.write(payload[:9])
    sink.write(payload[9:])
    for _ in range(100):
        sink.write(b"y" * 99 + b"\n")
    sink.close()
    data = out.getvalue()
    assert b"hunter2" not in data
    assert sink.kept == 1000 and sink.full and sink.seen > 1000
