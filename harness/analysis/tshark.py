"""The tshark adapter: one `tshark -T fields` pass per capture, and tshark's own names for
field values (`tshark -G values`). No packet byte is parsed here: tshark dissects, we read
its columns.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from harness.analysis.evidence import BadEvidence
from harness.errors import InfraError

# The frames worth a finding; each field below is one column of the output, in this order.
FILTER = (
    "tls.alert_message || tls.handshake.type == 1 || tls.handshake.type == 2"
    " || tcp.flags.reset == 1 || tcp.analysis.retransmission || tcp.analysis.fast_retransmission"
    " || tcp.analysis.zero_window || http.response || (dns.flags.response == 1"
    " && dns.flags.rcode != 0) || icmp.type == 3 || icmpv6.type == 1"
)
FIELDS = (
    *("frame.number", "frame.time_epoch", "frame.time_relative"),
    *("ip.src", "ipv6.src", "tcp.srcport", "udp.srcport"),
    *("ip.dst", "ipv6.dst", "tcp.dstport", "udp.dstport", "tcp.stream"),
    *("tls.alert_message.level", "tls.alert_message.desc", "tls.handshake.type"),
    *("tcp.flags.reset", "tcp.analysis.retransmission", "tcp.analysis.fast_retransmission"),
    *("tcp.analysis.zero_window", "http.response.code", "http.response_for.uri"),
    *("dns.flags.rcode", "dns.qry.name", "icmp.type", "icmp.code", "icmpv6.type"),
    *("icmpv6.code", "_ws.col.Info"),
)
_NOISE = ("Running as user", "This could be dangerous")
_FRAMES = re.compile(r"^\|\s*[\d.]+\s*<>\s*[\d.]+\s*\|\s*(\d+)\s*\|", re.MULTILINE)
_CUT = "cut short in the middle of a packet"


@dataclass(frozen=True)
class Read:
    """tshark's columns for the frames of FILTER, the capture's frame count, and the error
    tshark ended with (a capture cut short still gives the frames before the cut)."""

    rows: list[dict[str, str]]
    frames: int
    error: str | None
    truncated: bool


def binary() -> str:
    found = shutil.which("tshark")
    if not found:
        raise InfraError(
            "tshark is not installed: captures are read with tshark",
            hint="apt-get install -y --no-install-recommends tshark",
        )
    return found


def _too_long(what: Path | str, timeout: float) -> BadEvidence:
    return BadEvidence(
        f"{what}: tshark did not finish within {timeout:g} s",
        hint="split the capture (editcap -c 100000 IN OUT) or give --timeout more seconds",
    )


def _run(argv: list[str], timeout: float, what: Path | str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, errors="replace", timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise _too_long(what, timeout) from None
    except OSError as exc:
        raise InfraError(f"tshark could not run: {exc}") from None


def _error(stderr: str) -> str | None:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    lines = [ln.removeprefix("tshark: ") for ln in lines if not ln.startswith(_NOISE)]
    return " ".join(lines) or None


def _argv(tshark: str, source: str) -> list[str]:
    argv = [tshark, "-r", source, "-n", "-Y", FILTER, "-T", "fields"]
    argv += ["-E", "separator=/t", "-E", "occurrence=f", "-z", "io,stat,0"]
    for f in FIELDS:
        argv += ["-e", f]
    return argv


# -- tshark started ahead ------------------------------------------------------------------
# tshark spends about 0.35 s loading its dissectors before it opens a file: most of what one
# small capture costs. A run knows early which captures it will read, so it starts that many
# tshark processes ahead (prewarm), each blocked opening its own FIFO once it is ready; read()
# then copies the capture into one and only waits for the dissection. Same argv, same output.

WARM_MAX = 8  # processes kept ready at most
# a warm tshark outlives an unused wait by this much at most (coreutils timeout): one whose
# harness was killed (no atexit) would otherwise wait on its FIFO for ever
WARM_LIFE = 900


@dataclass
class _Warm:
    proc: subprocess.Popen[str]
    fifo: Path


_warm: list[_Warm] = []
_warm_lock = threading.Lock()


def prewarm(count: int = 1) -> int:
    """Have `count` tshark processes ready for read(); how many were started. Nothing when
    tshark is missing (read() then says so) or the FIFO cannot be made."""
    tshark = shutil.which("tshark")
    if tshark is None:
        return 0
    started = 0
    with _warm_lock:
        _warm[:] = [w for w in _warm if w.proc.poll() is None or _drop(w)]
        while len(_warm) < min(count, WARM_MAX):
            try:
                fifo = Path(tempfile.mkdtemp(prefix="labharness-tshark-")) / "capture"
                os.mkfifo(fifo, 0o600)
                life = shutil.which("timeout")
                bound = [life, "-k", "5", str(WARM_LIFE)] if life else []
                proc = subprocess.Popen(
                    [*bound, *_argv(tshark, str(fifo))],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    errors="replace",
                    start_new_session=True,  # its own group: _drop ends timeout and tshark
                )
            except OSError:
                return started
            _warm.append(_Warm(proc, fifo))
            started += 1
    return started


def _drop(w: _Warm) -> bool:
    """End a warm tshark and remove its FIFO; False (for the filter above)."""
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        # the whole group: a tshark whose timeout wrapper died is still in it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(w.proc.pid, signal.SIGKILL)
        w.proc.communicate(timeout=5)
    with contextlib.suppress(OSError):
        w.fifo.unlink()
        w.fifo.parent.rmdir()
    return False


@atexit.register
def _drop_all() -> None:
    with _warm_lock:
        for w in _warm:
            _drop(w)
        _warm.clear()


def _take() -> _Warm | None:
    with _warm_lock:
        while _warm:
            w = _warm.pop(0)
            if w.proc.poll() is None:
                return w
            _drop(w)
    return None


def _open_writer(w: _Warm, deadline: float) -> int | None:
    """The FIFO opened for writing once the warm tshark opened it for reading (it may still be
    loading its dissectors); None when it died first or did not get there by `deadline`."""
    while time.monotonic() < deadline and w.proc.poll() is None:
        try:
            fd = os.open(w.fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                return None
            time.sleep(0.005)
            continue
        os.set_blocking(fd, True)
        return fd
    return None


def _feed(fd: int, path: Path) -> None:
    with contextlib.suppress(OSError), os.fdopen(fd, "wb") as out, path.open("rb") as src:
        shutil.copyfileobj(src, out, 1 << 20)  # a tshark that stops early: BrokenPipeError


def _run_warm(w: _Warm, path: Path, timeout: float) -> subprocess.CompletedProcess[str] | None:
    """The capture through a warm tshark; None when it cannot take it (then run one cold).
    The timeout counts from here, the wait for it to open its FIFO included."""
    deadline = time.monotonic() + timeout
    fd = _open_writer(w, deadline)
    if fd is None:
        alive = w.proc.poll() is None
        _drop(w)
        if alive:  # still not reading after the whole timeout: as stuck as a cold one
            raise _too_long(path, timeout)
        return None
    feeder = threading.Thread(target=_feed, args=(fd, path), daemon=True)
    feeder.start()
    try:
        out, err = w.proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        _drop(w)
        raise _too_long(path, timeout) from None
    finally:
        feeder.join(timeout=5)
        with contextlib.suppress(OSError):
            w.fifo.unlink()
            w.fifo.parent.rmdir()
    err = err.replace(str(w.fifo), str(path))  # tshark names the file it read: the capture
    return subprocess.CompletedProcess(w.proc.args, w.proc.returncode, out, err)


def read(path: Path, timeout: float = 120.0) -> Read:
    """One pass over the capture: FIELDS of the frames FILTER keeps, plus the frame count
    (through a tshark started ahead when prewarm() left one ready)."""
    warm = _take()
    done = _run_warm(warm, path, timeout) if warm is not None else None
    if done is None:
        done = _run(_argv(binary(), str(path)), timeout, path)
    head, _, stats = done.stdout.partition("\n=====")
    rows = []
    for line in head.splitlines():
        cols = line.split("\t")
        if len(cols) == len(FIELDS):
            rows.append(dict(zip(FIELDS, cols, strict=True)))
    m = _FRAMES.search(stats)
    error = (_error(done.stderr) or f"tshark exited {done.returncode}") if done.returncode else None
    return Read(rows, int(m.group(1)) if m else len(rows), error, bool(error and _CUT in error))


@functools.cache
def value_names(timeout: float = 60.0) -> dict[str, dict[str, str]]:
    """tshark's names for the values of FIELDS (`tshark -G values`): field -> value -> name,
    e.g. tls.alert_message.desc -> 70 -> Protocol Version. Read once per tshark binary and kept
    in the user's cache folder: the full table is ~1.4 M lines, about 2 s to produce and parse
    on a small machine, and every run with a capture needs it."""
    tshark = binary()
    cache = _cache_file(tshark)
    if cache is not None:
        try:
            data = json.loads(cache.read_text())
            if isinstance(data, dict):
                return data
        except (OSError, ValueError):
            pass
    done = _run([tshark, "-G", "values"], timeout, "tshark -G values")
    wanted = set(FIELDS)
    names: dict[str, dict[str, str]] = {}
    for line in done.stdout.splitlines():
        if not line.startswith("V\t"):
            continue
        parts = line.split("\t")
        if len(parts) == 4 and parts[1] in wanted:
            names.setdefault(parts[1], {})[parts[2]] = parts[3]
    if cache is not None and done.returncode == 0 and names:
        with contextlib.suppress(OSError):
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(names, sort_keys=True))
            tmp.replace(cache)
    return names


def _cache_file(tshark: str) -> Path | None:
    """Where this tshark's value names are kept: named by its path, size and mtime (a new
    Wireshark is read again) and by FIELDS; None when there is no home to keep it in."""
    try:
        st = os.stat(tshark)
    except OSError:
        return None
    base = os.environ.get("XDG_CACHE_HOME") or (
        os.path.join(os.path.expanduser("~"), ".cache") if os.path.expanduser("~") != "~" else ""
    )
    if not base:
        return None
    key = hashlib.sha256(
        f"{os.path.realpath(tshark)}\0{st.st_size}\0{st.st_mtime_ns}\0{FIELDS}".encode()
    ).hexdigest()[:20]
    return Path(base) / "labharness" / f"tshark-values-{key}.json"
