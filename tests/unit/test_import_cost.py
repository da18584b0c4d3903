"""No module of the package imports the docker SDK at its top: harness/engine/client.py imports it
first, with paramiko kept out (~65 ms of every local command's start; an ssh:// engine loads it
when it needs it, tests/engine/test_remote_engines.py). A top-level `import docker.errors` in any
module undoes that silently, as harness/engine/waits.py once did."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CODE = """
import importlib, pkgutil, sys
import harness
for m in pkgutil.walk_packages(harness.__path__, "harness."):
    if m.name == "harness.__main__":
        continue
    importlib.import_module(m.name)
from harness.engine.client import _docker_sdk
_docker_sdk(False)
print("docker" in sys.modules, "paramiko" in sys.modules)
"""


def test_no_module_loads_paramiko_for_a_local_engine() -> None:
    p = subprocess.run(
        [sys.executable, "-c", CODE], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.split() == ["True", "False"], "a module imports docker at its top level"
