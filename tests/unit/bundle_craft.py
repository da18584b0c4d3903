"""Crafted bundles for the bundle tests: the real format (bundle.write_tar, the manifest's keys as
bundle.build_manifest writes them), with whatever a hostile author puts in them."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

from harness.escalation.bundle import KIND, MANIFEST, Member, write_tar
from harness.escalation.signing import Signer, generate, load_signer

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = "261201-101010-beef"
NOWHERE = "unix:///nonexistent/labharness-test-docker.sock"  # no engine: an infra error

SCENARIO = b"""scenario: crafted
topology:
  networks: {lan: {}}
  nodes:
    a: {image: "debian:12", networks: [lan]}
reproduce:
  steps:
    - {id: s, on: a, run: "true"}
  symptom:
    - {step: s, exit_code: 0}
"""
PLAYBOOK_SCENARIO = SCENARIO.replace(
    b"reproduce:", b"configure:\n  - {playbook: playbooks/p.yml, hosts: a}\nreproduce:"
)
PLAYBOOK = b"- hosts: all\n  tasks: []\n"
BASIC = {"bundle/project/scenarios/s.yaml": SCENARIO, "bundle/run/journal.json": b"{}\n"}


def manifest_for(files: dict[str, bytes], **run: Any) -> dict[str, Any]:
    return {
        "kind": KIND,
        "bundle_version": 1,
        "harness": {"bundled_by": "test", "run": "test"},
        "engine": "20.10.24",
        "run": {
            "id": RUN_ID,
            "scenario": "crafted",
            "scenario_file": "project/scenarios/s.yaml",
            "fix": None,
            "fix_file": None,
            "params": {},
            "replay_params": {},
            "matrix_cell": {},
            "folder": "run",
            "verdict": "REPRODUCED",
            "rate": "1/1",
            **run,
        },
        "nodes": [],
        "images": [],
        "redaction": {"note": "", "patterns": [], "files": []},
        "files": [
            {
                "path": n,
                "sha256": hashlib.sha256(d).hexdigest(),
                "size": len(d),
                "mode": "644",
            }
            for n, d in sorted(files.items())
        ],
    }


def craft(
    path: Path,
    files: dict[str, bytes] | None = None,
    *,
    manifest: dict[str, Any] | None = None,
    signer: Signer | None = None,
    **run: Any,
) -> Path:
    files = BASIC if files is None else files
    members = [Member(n, d, 0o644) for n, d in sorted(files.items())]
    write_tar(path, members, manifest or manifest_for(files, **run), 0, signer)
    return path


def repack(src: Path, dest: Path, change: str, flip: bool = True) -> Path:
    """The same members in the same order, one byte of `change` flipped."""
    with tarfile.open(src, "r:gz") as tar:
        members = [(m, (tar.extractfile(m) or io.BytesIO()).read()) for m in tar.getmembers()]
    with tarfile.open(dest, "w:gz") as tar:
        for ti, data in members:
            if ti.name == change and flip:
                b = bytearray(data)
                b[len(b) // 2] ^= 0x01
                data = bytes(b)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    return dest


def keys(folder: Path, name: str = "team") -> tuple[Signer, Path]:
    priv, pub = generate(folder, name)
    return load_signer(priv), pub


def local_config(folder: Path, **settings: Any) -> Path:
    """An engineer's own configuration file (mode 600), as harness/localconfig.py honours."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / "config.yaml"
    cfg.write_text(yaml.safe_dump(settings))
    os.chmod(cfg, stat.S_IRUSR | stat.S_IWUSR)
    return cfg


def replay(
    bundle: Path, cwd: Path, *args: str, config: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ)
    e.pop("LABHARNESS_REPORTS", None)
    e["PYTHONPATH"] = str(ROOT)
    e["DOCKER_HOST"] = NOWHERE
    e["LABHARNESS_CONFIG"] = str(config or cwd / "no-config.yaml")
    e.update(env)
    return subprocess.run(
        [sys.executable, "-m", "harness", "replay", str(bundle), *args],
        cwd=cwd,
        env=e,
        capture_output=True,
        text=True,
        timeout=120,
    )


def tree(folder: Path) -> list[str]:
    """Everything below folder, as relative paths (what a test expects to be left)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def zero_bundle(
    path: Path, sizes: dict[str, int], declared: dict[str, int] | None = None, level: int = 1
) -> Path:
    """A bundle of members full of zeros, streamed through gzip without holding them in memory:
    the tar headers say `sizes`, the manifest says `declared` (default: the same, with the
    zeros' real checksums). Gigabytes of zeros make a few megabytes of bundle."""
    import json
    import zlib

    digests: dict[int, str] = {}

    def zero_sha(n: int) -> str:
        if n not in digests:
            h = hashlib.sha256()
            chunk = b"\0" * (1 << 20)
            left = n
            while left:
                h.update(chunk[: min(left, len(chunk))])
                left -= min(left, len(chunk))
            digests[n] = h.hexdigest()
        return digests[n]

    files = {"bundle/project/scenarios/s.yaml": SCENARIO}
    m = manifest_for(files)
    for name, n in (declared or sizes).items():
        m["files"].append({"path": name, "sha256": zero_sha(n), "size": n, "mode": "644"})
    gz = zlib.compressobj(level, zlib.DEFLATED, 31)
    with path.open("wb") as out:

        def put(data: bytes) -> None:
            out.write(gz.compress(data))

        def member(name: str, size: int, data: bytes | None) -> None:
            ti = tarfile.TarInfo(name)
            ti.size = size
            ti.mode = 0o644
            put(ti.tobuf(tarfile.GNU_FORMAT))
            if data is not None:
                put(data)
            else:
                chunk = b"\0" * (1 << 20)
                left = size
                while left:
                    put(chunk[: min(left, len(chunk))])
                    left -= min(left, len(chunk))
            if size % 512:
                put(b"\0" * (512 - size % 512))

        head = json.dumps(m, indent=2, sort_keys=True).encode() + b"\n"
        member(MANIFEST, len(head), head)
        for name, data in files.items():
            member(name, len(data), data)
        for name, n in sizes.items():
            member(name, n, None)
        put(b"\0" * 1024)
        out.write(gz.flush())
    return path
