"""A second Docker engine on this machine, in its own network namespace (MACHINE-NOTES.md,
"Scale-out"): its own data root under /tmp, its own bridge subnets (10.214.0.0/16) so nothing
overlaps the host engine, reachable from the host through a unix socket. Never started in the
host namespace: a second dockerd there can delete the first engine's docker0 bridge.

Used by the cluster tests (tests/engine/conftest_cluster.py) and `nox -s bench`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")


@dataclass
class SecondEngine:
    netns: str
    base: Path
    socket: Path
    pidfile: Path

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None


def _mount_script(base: Path, sock: Path, pidfile: Path) -> str:
    mounts = ["mount -t tmpfs cgroup_root /sys/fs/cgroup"]
    for c in CONTROLLERS:
        mounts.append(
            f"mkdir -p /sys/fs/cgroup/{c} && mount -t cgroup -o {c} cgroup /sys/fs/cgroup/{c}"
        )
    mounts.append(
        "mkdir -p /sys/fs/cgroup/systemd && "
        "mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd"
    )
    mounts.append("ip link set lo up")
    mounts.append(
        f"exec dockerd --data-root {base}/data --exec-root {base}/exec --pidfile {pidfile} "
        f"-H unix://{sock} --default-address-pool base=10.214.0.0/16,size=24 "
        f"--bip 10.214.255.1/24 --iptables=true >{base}/dockerd.log 2>&1"
    )
    return " && ".join(mounts)


def start(
    name: str | None = None, timeout: float = 60
) -> tuple[SecondEngine, subprocess.Popen[bytes]]:
    netns = name or f"labtest{os.getpid()}"
    base = Path(tempfile.mkdtemp(prefix="lab-engine2-"))
    sock, pidfile = base / "docker.sock", base / "docker.pid"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    proc = subprocess.Popen(
        ["ip", "netns", "exec", netns, "sh", "-c", _mount_script(base, sock, pidfile)],
        start_new_session=True,
    )
    eng = SecondEngine(netns, base, sock, pidfile)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ok = (
            subprocess.run(
                ["docker", "-H", eng.url, "version"], capture_output=True, timeout=10
            ).returncode
            == 0
        )
        if ok:
            return eng, proc
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    log = (base / "dockerd.log").read_text(errors="replace")[-3000:] if base.exists() else ""
    stop(eng, proc)
    raise RuntimeError(f"second dockerd did not come up:\n{log}")


def stop(eng: SecondEngine, proc: subprocess.Popen[bytes]) -> None:
    """Every container on it, then dockerd, its mounts, the netns and the data root."""
    if proc.poll() is None:
        ids = subprocess.run(
            ["docker", "-H", eng.url, "ps", "-aq"], capture_output=True, text=True, timeout=30
        ).stdout.split()
        if ids:
            subprocess.run(["docker", "-H", eng.url, "rm", "-f", *ids], capture_output=True)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    pid = eng.pid()
    if pid is not None and Path(f"/proc/{pid}").exists():
        os.kill(pid, signal.SIGKILL)
    # containerd-shims of killed containers would hold the data root busy
    subprocess.run(["ip", "netns", "pids", eng.netns], capture_output=True)
    left = subprocess.run(["ip", "netns", "pids", eng.netns], capture_output=True, text=True)
    for p in left.stdout.split():
        with suppress(ProcessLookupError, ValueError):
            os.kill(int(p), signal.SIGKILL)
    subprocess.run(["ip", "netns", "delete", eng.netns], capture_output=True)
    # overlay mounts under the data root live in the netns' mount namespace, gone with it
    subprocess.run(["umount", "-R", "-l", str(eng.base / "data")], capture_output=True)
    shutil.rmtree(eng.base, ignore_errors=True)


@contextmanager
def second_engine(name: str | None = None) -> Iterator[SecondEngine]:
    eng, proc = start(name)
    try:
        yield eng
    finally:
        stop(eng, proc)


def copy_images(url: str, tags: list[str]) -> None:
    """`docker save | DOCKER_HOST=... docker load`, for the tags the target lacks."""
    for tag in tags:
        have = (
            subprocess.run(
                ["docker", "-H", url, "image", "inspect", tag], capture_output=True
            ).returncode
            == 0
        )
        if have:
            continue
        save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "-H", url, "load", "-q"], stdin=save.stdout, check=True, capture_output=True
        )
        if save.wait() != 0:
            raise RuntimeError(f"docker save {tag} failed")
