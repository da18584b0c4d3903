"""An 8-cell matrix with warm images at -j1, -j2 and -j4, in the same run: wall time and the
speed-up ratios (target: -j2 at least 1.6x faster than -j1 on a 2-core machine).

Beside it, interleaved in the same rounds, the engine's floor (bench/matrix_floor.py): the same
cells' engine calls straight through the Docker SDK at -j1 and -j2. Its ratio is the most any
client can get from this engine and kernel for this workload."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "bench" / "scenarios" / "matrix-eight.yaml"
FLOOR = ROOT / "bench" / "matrix_floor.py"
ROUNDS = int(os.environ.get("BENCH_MATRIX_ROUNDS", "4"))


def busy_seconds() -> float:
    """The whole machine's busy CPU seconds so far (/proc/stat): how many cores a run kept busy
    says whether more cells at once could still help."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle, iowait


def run(jobs: int, env: dict[str, str], cores: dict[int, list[float]] | None = None) -> float:
    b0 = busy_seconds()
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-m", "harness", "-q", "matrix", str(SCENARIO), "-j", str(jobs), "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    dt = time.perf_counter() - t0
    if cores is not None:
        cores.setdefault(jobs, []).append((busy_seconds() - b0) / dt)
    r = json.loads(p.stdout)
    if r["summary"]["PASS"] != 8:
        raise SystemExit(f"-j{jobs}: expected 8 PASS, got {r['summary']}\n{p.stderr[-2000:]}")
    return dt


def floor_spec() -> list[dict[str, object]]:
    """The floor's cells: each cell's nodes with the images the harness resolved for it (the
    warm-up built or found them) and the URL of its one step."""
    from harness.engine import client as engine
    from harness.engine import images as engine_images
    from harness.engine.objects import _has_own_init
    from harness.scenario.catalog import load_catalog
    from harness.verbs.matrix import plan_cells

    catalog = load_catalog(ROOT)
    client = engine.connect()
    planned, _ = plan_cells(SCENARIO, ROOT, catalog, None)
    cells: list[dict[str, object]] = []
    for _, loaded, _ in planned:
        assert loaded is not None and loaded.raw.reproduce is not None
        images = engine_images.ensure_images(client, loaded.topology, catalog)
        nodes = [
            {
                "name": n.name,
                "image": images[n.name],
                "command": list(n.command) if n.command is not None else None,
                "init": not _has_own_init(client, images[n.name]),
            }
            for n in loaded.topology.nodes
        ]
        step = loaded.raw.reproduce.steps[0]
        assert step.http is not None
        cells.append({"nodes": nodes, "url": step.http.url})
    return cells


def run_floor(jobs: int, spec: Path) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, str(FLOOR), str(jobs), str(spec)], capture_output=True, text=True
    )
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"floor -j{jobs} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return dt


def main() -> None:
    env = {**os.environ, "LABHARNESS_REPORTS": tempfile.mkdtemp(prefix="lab-bench-matrix-")}
    run(4, env)  # warm-up: images built or reused
    spec = Path(env["LABHARNESS_REPORTS"]) / "floor.json"
    spec.write_text(json.dumps(floor_spec()))
    run_floor(2, spec)  # warm-up
    times: dict[int, list[float]] = {1: [], 2: [], 4: []}
    floor: dict[int, list[float]] = {1: [], 2: []}
    cores: dict[int, list[float]] = {}
    for i in range(ROUNDS):
        # alternate the order so drift, and the engine's cleanup of the run before, fall on
        # every -j alike
        for jobs in (1, 2, 4) if i % 2 == 0 else (4, 2, 1):
            times[jobs].append(run(jobs, env, cores))
        for jobs in (1, 2) if i % 2 == 0 else (2, 1):
            floor[jobs].append(run_floor(jobs, spec))
        print(f"matrix round {i + 1}/{ROUNDS} done", file=sys.stderr)
    med = {j: statistics.median(t) for j, t in times.items()}
    print(
        f"\n8-cell matrix (2 attempts per cell), warm images, {ROUNDS} rounds, medians (s), "
        f"{os.cpu_count()} cores"
    )
    for j in (1, 2, 4):
        spread = f"{min(times[j]):.2f}-{max(times[j]):.2f}"
        busy = statistics.median(cores[j])
        print(
            f"  -j{j}: {med[j]:.2f}s (runs {spread})  speed-up {med[1] / med[j]:.2f}x"
            f"  cores busy {busy:.2f} of {os.cpu_count()}"
        )
    fmed = {j: statistics.median(t) for j, t in floor.items()}
    print("  engine floor (same cells' engine calls through the Docker SDK, no harness):")
    for j in (1, 2):
        spread = f"{min(floor[j]):.2f}-{max(floor[j]):.2f}"
        print(
            f"  floor -j{j}: {fmed[j]:.2f}s (runs {spread})  harness/floor {med[j] / fmed[j]:.2f}x"
        )
    ok = med[1] / med[2] >= 1.6
    print(f"-j2 vs -j1: {med[1] / med[2]:.2f}x (target >= 1.6: {'met' if ok else 'MISSED'})")
    print(f"floor -j2 vs -j1: {fmed[1] / fmed[2]:.2f}x (what this engine allows any client)")
    out = ROOT / "reports" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "matrix.json").write_text(
        json.dumps(
            {
                "medians": med,
                "runs": times,
                "cores_busy": cores,
                "floor_medians": fmed,
                "floor_runs": floor,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
