"""The example, end to end: bring web-tier up, show the client reaching the backend through the
proxy (and not reaching the database), then take it down. Exit 0 only if every check held."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAB = [sys.executable, "-m", "harness"]
SCENARIO = "scenarios/examples/web-tier.yaml"


def lab(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([*LAB, *args], cwd=ROOT, text=True, capture_output=True)
    if check and p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit(p.returncode)
    return p


def main() -> int:
    print(f"$ lab up {SCENARIO}", flush=True)
    p = subprocess.run(
        [*LAB, "up", SCENARIO, "--json"], cwd=ROOT, text=True, stdout=subprocess.PIPE
    )
    if p.returncode != 0:
        return p.returncode
    up = json.loads(p.stdout)
    run = up["run"]
    db_ip = next(n for n in up["nodes"] if n["name"] == "db")["addresses"]["data"]
    failures = 0
    try:
        checks = [
            ("client -> proxy -> backend", "curl -fsS http://proxy/health", True),
            ("client -> proxy -> backend -> db", "curl -fsS http://proxy/db", True),
            ("client -> proxy -> backend -> cache", "curl -fsS http://proxy/cache", True),
            ("client cannot reach db by address", f"nc -z -w 2 {db_ip} 5432", False),
        ]
        for what, cmd, should_work in checks:
            r = lab("exec", run, "client", "--", "sh", "-c", cmd, check=False)
            ok = (r.returncode == 0) == should_work
            failures += not ok
            out = (r.stdout or r.stderr).strip().splitlines()
            print(f"  [{'ok' if ok else 'FAILED'}] {what}: {out[0] if out else r.returncode}")
        # the labs' own health suites (the scenario's `verify`), through the pytest plugin
        suites = ["labs/curl/tests", "labs/nginx/tests", "labs/backend/tests"]
        suites += ["labs/postgres/tests", "labs/redis/tests"]
        cmd = [sys.executable, "-m", "pytest", "--lab-run", run, *suites]
        cmd += ["--import-mode=importlib", "-p", "no:cacheprovider", "-q", "--no-header"]
        print(f"$ pytest --lab-run {run} {' '.join(suites)}", flush=True)
        r = subprocess.run(cmd, cwd=ROOT, text=True, capture_output=True)
        tail = (r.stdout or r.stderr).strip().splitlines()
        print(f"  [{'ok' if r.returncode == 0 else 'FAILED'}] lab health suites: {tail[-1]}")
        failures += r.returncode != 0
    finally:
        print(f"$ lab down {run}")
        lab("down", run)
    print("demo passed" if not failures else f"demo FAILED ({failures} checks)")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
