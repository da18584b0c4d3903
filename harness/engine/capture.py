"""Packet captures of a whole network, taken on the host on the network's bridge.

The bridge (`br-<first 12 chars of the network id>`, or the name set by the network's
`com.docker.network.bridge.name` option) sees every frame between the network's nodes, and tc/
iptables impairments live inside the nodes, so a capture keeps working while they are active
(a packet dropped by loss in the receiver still shows on the bridge; one dropped in the sender
does not).

Needs tcpdump on the host (Debian: `apt-get install -y --no-install-recommends tcpdump`) and the
right to capture (root, or CAP_NET_RAW). When capture is impossible (no tcpdump, no bridge on this
host because the engine is remote, tcpdump refused), start() does NOT fail the run: it returns a
Capture that did nothing and whose stop() says why in "warning".

API
---
start(client, network, out, *, snaplen=0) -> Capture
    network: the Docker network's name (or id); out: the pcap file to write (parent created).
Capture.stop(timeout=5.0) -> dict
    {"network", "path", "packets", "bytes", "dropped", "warning"}: SIGINT to tcpdump, wait for it
    to flush; idempotent (later calls return the same dict), safe to call from a finally.
Capture.warning: str | None   set at start when nothing is being captured
host_tcpdump() -> str | None    the tcpdump binary, or None
pcap_summary(path) -> dict      {"packets", "bytes", "linktype"} read from a classic pcap file
stop_orphans(folder) -> list    end the tcpdumps a dead run left (its pid files), for `lab gc`

A capture never outlives its run: tcpdump is started with PR_SET_PDEATHSIG (SIGTERM when the
thread that started it dies, so a SIGKILLed `lab` takes its captures along), and writes a pid
file beside the pcap (`<pcap>.pid`: pid and the process's start time, so a reused pid is never
signalled) that `lab down`/`lab gc` use to end any capture still running for the run.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import struct
import subprocess
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from harness.engine.client import engine_errors

MISSING_TCPDUMP = (
    "no tcpdump on this host: captures are skipped (install it: apt-get install -y"
    " --no-install-recommends tcpdump)"
)


def host_tcpdump() -> str | None:
    return shutil.which("tcpdump") or next(
        (p for p in ("/usr/bin/tcpdump", "/usr/sbin/tcpdump") if os.access(p, os.X_OK)), None
    )


def bridge_name(client: Any, network: str) -> str:
    with engine_errors(f"inspect network {network}"):
        net = client.networks.get(network)
    opts = net.attrs.get("Options", {}) or {}
    return str(opts.get("com.docker.network.bridge.name") or f"br-{net.id[:12]}")


def pcap_summary(path: Path) -> dict[str, Any]:
    """Packet count and captured bytes of a classic pcap file (what tcpdump -w writes)."""
    data = path.read_bytes() if path.exists() else b""
    if len(data) < 24:
        return {"packets": 0, "bytes": len(data), "linktype": None}
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        return {"packets": 0, "bytes": len(data), "linktype": None}
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    packets, off = 0, 24
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8 : off + 12])[0]
        if off + 16 + incl > len(data):
            break  # a record cut short by a kill: not counted
        packets += 1
        off += 16 + incl
    return {"packets": packets, "bytes": len(data), "linktype": linktype}


class Capture:
    """One tcpdump on one network's bridge. stop() ends it; idempotent and thread-safe."""

    def __init__(
        self,
        network: str,
        path: Path,
        proc: subprocess.Popen[bytes] | None,
        warning: str | None = None,
        stderr_path: Path | None = None,
    ) -> None:
        self.network = network
        self.path = path
        self.warning = warning
        self._proc = proc
        self._stderr_path = stderr_path
        self._lock = threading.Lock()
        self._result: dict[str, Any] | None = None

    @property
    def active(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 5.0) -> dict[str, Any]:
        with self._lock:
            if self._result is None:
                self._result = self._stop(timeout)
            return dict(self._result)

    def _stop(self, timeout: float) -> dict[str, Any]:
        result: dict[str, Any] = {
            "network": self.network,
            "path": None,
            "packets": 0,
            "bytes": 0,
            "dropped": None,
            "warning": self.warning,
        }
        proc = self._proc
        if proc is None:
            return result
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # tcpdump flushes and writes its counts
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
                result["warning"] = f"tcpdump on {self.network} did not stop in {timeout}s"
        elif proc.returncode not in (0, None) and not self.warning:
            result["warning"] = (
                f"tcpdump on {self.network} ended early (exit {proc.returncode}):"
                f" {self._stderr()[-300:]}"
            )
        err = self._stderr()
        for line in err.splitlines():
            if line.endswith("packets dropped by kernel"):
                result["dropped"] = int(line.split()[0])
        if self._stderr_path is not None:
            self._stderr_path.unlink(missing_ok=True)
        _pid_file(self.path).unlink(missing_ok=True)
        if self.path.exists():
            summary = pcap_summary(self.path)
            result.update(path=str(self.path), packets=summary["packets"], bytes=summary["bytes"])
        return result

    def _stderr(self) -> str:
        if self._stderr_path is None or not self._stderr_path.exists():
            return ""
        return self._stderr_path.read_text(errors="replace")


def start(client: Any, network: str, out: Path, *, snaplen: int = 0) -> Capture:
    """Start capturing the network to `out`; see the module doc for when it only warns."""
    out = Path(out)
    tcpdump = host_tcpdump()
    if tcpdump is None:
        return Capture(network, out, None, MISSING_TCPDUMP)
    bridge = bridge_name(client, network)
    if not Path("/sys/class/net", bridge).exists():
        return Capture(
            network,
            out,
            None,
            f"network {network}'s bridge {bridge} is not on this host (a remote engine?):"
            " capture skipped",
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    err_path = out.with_name(out.name + ".tcpdump.log")
    argv = [tcpdump, "-i", bridge, "-w", str(out), "-U", "--immediate-mode", "-n"]
    argv += ["-s", str(snaplen), "-Z", "root"]
    with err_path.open("wb") as err:
        # its own session: a Ctrl-C in the terminal reaches the harness, which stops it in order
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()),
        )
    _write_pid_file(out, proc.pid)
    cap = Capture(network, out, proc, None, err_path)
    # tcpdump says "listening on" once the socket is open: wait for it (or for it to fail)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            msg = cap._stderr().strip()[-300:]
            cap.warning = f"tcpdump could not capture on {bridge} for {network}: {msg}"
            return cap
        if "listening on" in cap._stderr():
            return cap
        time.sleep(0.02)
    return cap


PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> Any:
    """preexec_fn: SIGTERM this child when its parent dies (tcpdump flushes on SIGTERM). The
    kernel sends it when the *thread* that forked dies: captures are started from the run's
    own thread, which outlives them."""

    def arm() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: go now
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


def _pid_file(pcap: Path) -> Path:
    return pcap.with_name(pcap.name + ".pid")


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat: when the process started (ticks since boot)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _write_pid_file(pcap: Path, pid: int) -> None:
    started = _start_time(pid)
    if started is not None:
        _pid_file(pcap).write_text(f"{pid} {started}\n")


def stop_orphans(folder: Path, timeout: float = 5.0) -> list[int]:
    """End every capture whose pid file is under the run folder and whose process is still
    that tcpdump (same pid, same start time); returns the pids ended. Never raises."""
    ended: list[int] = []
    for pid_file in sorted(Path(folder).glob("captures/*.pid")):
        try:
            pid_s, started = pid_file.read_text().split()
            pid = int(pid_s)
        except (OSError, ValueError):
            continue
        if _start_time(pid) == started and _is_tcpdump(pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                continue
            deadline = time.monotonic() + timeout
            while _start_time(pid) == started and time.monotonic() < deadline:
                time.sleep(0.05)
            if _start_time(pid) == started:
                with suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            ended.append(pid)
        pid_file.unlink(missing_ok=True)
    return ended


def _is_tcpdump(pid: int) -> bool:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        return False
    return os.path.basename(argv0.decode(errors="replace")) == "tcpdump"
