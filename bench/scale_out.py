"""The 8-cell matrix (bench/scenarios/matrix-eight.yaml) through a Dask cluster: one engine (one
worker, 1 slot) versus two engines (the host's and a second dockerd in its own netns, one
worker of 1 slot each), in the same run. Prints the ratio (target: at least 1.5x)."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SCENARIO = "bench/scenarios/matrix-eight.yaml"
LAB = [sys.executable, "-m", "harness", "-q"]
ROUNDS = int(os.environ.get("BENCH_SCALE_ROUNDS", "4"))


def main() -> None:
    from tests.engine.conftest_cluster import matrix_images
    from tests.engine.second_engine import copy_images, second_engine

    reports = tempfile.mkdtemp(prefix="lab-bench-scale-")
    env = {**os.environ, "LABHARNESS_REPORTS": reports}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    addr = f"tcp://127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []

    def worker(url: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(
            [*LAB, "worker", "--engine", url, "--scheduler", addr, "--slots", "1",
             "--images", "copy"],
            cwd=ROOT, env=env, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        procs.append(p)
        return p

    def wait_workers(n: int) -> None:
        from distributed import Client

        with Client(addr) as c:  # type: ignore[no-untyped-call]
            deadline = time.monotonic() + 60
            while len(c.scheduler_info()["workers"]) != n:  # exactly n: one may be leaving
                if time.monotonic() > deadline:
                    raise SystemExit(f"expected {n} worker(s) on the scheduler")
                time.sleep(0.2)

    def matrix(n_workers: int) -> float:
        wait_workers(n_workers)
        t0 = time.perf_counter()
        p = subprocess.run(
            [*LAB, "matrix", SCENARIO, "--cluster", addr, "--json"],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
        dt = time.perf_counter() - t0
        r = json.loads(p.stdout)
        if r["summary"]["PASS"] != 8:
            raise SystemExit(f"{n_workers} engine(s): {r['summary']}\n{p.stderr[-2000:]}")
        return dt

    with second_engine(f"labbench{os.getpid()}") as eng:
        copy_images(eng.url, matrix_images(SCENARIO))
        sched = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", str(port), "--dashboard-address", ":0"],
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        procs.append(sched)
        ones: list[float] = []
        twos: list[float] = []
        try:
            worker("unix:///var/run/docker.sock")
            for i in range(ROUNDS):
                ones.append(matrix(1))
                w2 = worker(eng.url)
                twos.append(matrix(2))
                w2.send_signal(signal.SIGTERM)  # back to one engine for the next round
                w2.wait(60)
                procs.remove(w2)
                wait_workers(1)
                print(f"scale-out round {i + 1}/{ROUNDS} done", file=sys.stderr)
        finally:
            for p in reversed(procs):
                p.terminate()
            for p in procs:
                p.wait(60)
    one, two = statistics.median(ones), statistics.median(twos)
    ratio = one / two
    print(
        f"\n8-cell matrix, warm images, {os.cpu_count()} cores, one slot per engine,"
        f" {ROUNDS} rounds, medians"
    )
    print(f"  one engine:  {one:.2f}s  {[round(x, 2) for x in ones]}")
    print(f"  two engines: {two:.2f}s  {[round(x, 2) for x in twos]}")
    print(f"two vs one: {ratio:.2f}x (target >= 1.5: {'met' if ratio >= 1.5 else 'MISSED'})")
    out = ROOT / "reports" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale_out.json").write_text(json.dumps({"one": ones, "two": twos, "ratio": ratio}))


if __name__ == "__main__":
    main()
