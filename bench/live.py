"""From a saved edit to the verdict: on a live lab (`lab watch --on RUN`) against a fresh
`lab reproduce` of the same file, for quick-repro, the TLS case and the web tier, in one run.

Each case runs in a copy of the project (the edits are the copy's). Its lab comes up once; a
`lab watch --json` stays on it. Each round saves one edit of the kind that case would see and
times until the watch prints its verdict line (the live figure), then times a fresh `lab
reproduce --destroy always` of the file as it now is, from outside (the fresh figure). The
edits: quick-repro's configure command (configure runs again), a comment in the TLS case's
site.conf and in the web tier's proxy.conf (copied in, nginx reloaded). Medians of ROUNDS.
Targets (issue 17): live at most 0.2x fresh; under 1 s for the two-node case.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAB = [sys.executable, "-m", "harness", "-q"]
ROUNDS = int(os.environ.get("BENCH_LIVE_ROUNDS", "4"))


def _toggle(path: str, a: str, b: str) -> Callable[[Path], None]:
    def edit(proj: Path) -> None:
        f = proj / path
        text = f.read_text()
        f.write_text(text.replace(a, b) if a in text else text.replace(b, a))

    return edit


def _comment(path: str) -> Callable[[Path], None]:
    def edit(proj: Path) -> None:
        f = proj / path
        lines = f.read_text().splitlines(keepends=True)
        if lines and lines[-1].startswith("# bench edit"):
            lines = lines[:-1]
        else:
            lines.append(f"# bench edit {time.time()}\n")
        f.write_text("".join(lines))

    return edit


CASES: list[tuple[str, str, list[str], Callable[[Path], None]]] = [
    (
        "quick-repro (2 nodes)",
        "scenarios/examples/quick-repro.yaml",
        [],
        _toggle(
            "scenarios/examples/quick-repro.yaml",
            'rm -f /var/www/html/status.html"',
            'rm -f /var/www/html/status.html /tmp/bench-edit"',
        ),
    ),
    (
        "tls-protocol-mismatch (2 nodes)",
        "scenarios/cases/tls-protocol-mismatch.yaml",
        ["tls-protocol-mismatch"],
        _comment("fixtures/tls-protocol-mismatch/site.conf"),
    ),
    (
        "web tier (5 nodes)",
        "bench/scenarios/web-tier-repro.yaml",
        ["web-tier"],
        _comment("fixtures/web-tier/proxy.conf"),
    ),
]


def project(tmp: Path, scenario: str, fixtures: list[str]) -> Path:
    proj = tmp / "project"
    for d in ("labs", "environments"):
        shutil.copytree(ROOT / d, proj / d, ignore=shutil.ignore_patterns("__pycache__"))
    for f in fixtures:
        shutil.copytree(ROOT / "fixtures" / f, proj / "fixtures" / f)
    (proj / scenario).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / scenario, proj / scenario)
    return proj


def lab(env: dict[str, str], *args: str) -> dict[str, object]:
    out = subprocess.run([*LAB, *args, "--json"], env=env, capture_output=True, text=True)
    if out.returncode not in (0, 1):
        raise SystemExit(f"lab {' '.join(args)} exited {out.returncode}:\n{out.stderr[-2000:]}")
    data: dict[str, object] = json.loads(out.stdout)
    return data


def one_case(name: str, scenario: str, fixtures: list[str], edit: Callable[[Path], None]) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="lab-bench-live-"))
    proj = project(tmp, scenario, fixtures)
    env = {**os.environ, "LABHARNESS_REPORTS": str(tmp / "reports")}
    file = str(proj / scenario)
    run = str(lab(env, "up", file, "--project", str(proj))["run"])
    watch = subprocess.Popen(
        [*LAB, "watch", file, "--on", run, "--project", str(proj), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    live: list[float] = []
    fresh: list[float] = []
    verdicts: set[str] = set()
    try:
        assert watch.stdout is not None
        first = json.loads(watch.stdout.readline())  # the rerun it starts with
        if first.get("error"):
            raise SystemExit(f"{name}: {first['error']}")
        for _ in range(ROUNDS):
            edit(proj)
            t0 = time.monotonic()
            line = json.loads(watch.stdout.readline())
            live.append(time.monotonic() - t0)
            if line.get("error"):
                raise SystemExit(f"{name}: {line['error']}")
            verdicts.add(f"live {line['verdict']}")
            t0 = time.monotonic()
            r = lab(env, "reproduce", file, "--project", str(proj), "--destroy", "always")
            fresh.append(time.monotonic() - t0)
            verdicts.add(f"fresh {r['verdict']}")
    finally:
        watch.send_signal(signal.SIGINT)
        try:
            watch.wait(timeout=30)
        except subprocess.TimeoutExpired:
            watch.kill()
        subprocess.run([*LAB, "down", run], env=env, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return {"name": name, "live": live, "fresh": fresh, "verdicts": sorted(verdicts)}


def main() -> None:
    results = []
    for case in CASES:
        results.append(one_case(*case))
        print(f"live bench: {case[0]} done", flush=True)
    print(f"\nfrom a saved edit to the verdict, {ROUNDS} rounds, medians (s), 2 cores")
    for r in results:
        lv, fr = statistics.median(r["live"]), statistics.median(r["fresh"])
        ratio = lv / fr
        two = "under 1 s: met" if lv < 1 else "under 1 s: MISSED"
        target = f"target <= 0.2x: {'met' if ratio <= 0.2 else 'MISSED'}"
        extra = f"; {two}" if "2 nodes" in r["name"] and "quick" in r["name"] else ""
        print(
            f"  {r['name']:32} live {lv:5.2f} (runs {min(r['live']):.2f}-{max(r['live']):.2f})"
            f"  fresh {fr:5.2f} (runs {min(r['fresh']):.2f}-{max(r['fresh']):.2f})"
            f"  live/fresh {ratio:.2f}x ({target}{extra})  [{', '.join(r['verdicts'])}]"
        )


if __name__ == "__main__":
    main()
