"""Evidence after every run (passed, failed or interrupted): per node its output, `docker
inspect`, the lab's log files, the files the scenario put in, and the scenario's `collect.logs`.

Everything goes through the run's Redactor before it touches the disk.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from harness.engine.api import CopyStopped, Engine
from harness.run.folder import RunFolder
from harness.run.redact import Redactor
from harness.scenario.resolved import Topology

MAX_FILE = 16 * 1024 * 1024  # bytes kept of any one collected file
MAX_NODE = 64 * 1024 * 1024  # bytes kept per node, output and files together
LINE_MAX = 1 << 20  # a "line" longer than this is redacted in pieces
CHUNK = 1 << 20  # bytes read at a time


def _safe(path: str) -> str:
    return path.strip("/").replace("..", "_")


@dataclass
class Cut:
    """A file (or a node's output) that was not kept whole: what, how much of it, why."""

    node: str
    path: str
    kept: int
    size: int | None
    why: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "path": self.path,
            "kept_bytes": self.kept,
            "size": self.size,
            "why": self.why,
        }


@dataclass
class Collected:
    files: dict[str, list[str]] = field(default_factory=dict)  # node -> files written
    cut: list[Cut] = field(default_factory=list)
    stopped: bool = False  # a Ctrl-C ended the collection early


class _Budget:
    """What one node may still write."""

    def __init__(self, total: int) -> None:
        self.left = total


class _RedactedSink:
    """Writes through the redactor a line at a time (a secret never straddles two writes),
    keeping at most `cap` bytes; counts what came in."""

    def __init__(self, out: IO[bytes], redactor: Redactor, cap: int) -> None:
        self.out, self.redactor, self.cap = out, redactor, cap
        self.pending = b""
        self.seen = 0
        self.kept = 0

    @property
    def full(self) -> bool:
        return self.kept + len(self.pending) >= self.cap

    def write(self, chunk: bytes) -> None:
        self.seen += len(chunk)
        room = self.cap - self.kept - len(self.pending)
        if room <= 0:
            return
        self.pending += chunk[:room]
        cut = self.pending.rfind(b"\n") + 1
        if cut == 0 and len(self.pending) >= LINE_MAX:
            cut = len(self.pending)
        if cut:
            self._emit(self.pending[:cut])
            self.pending = self.pending[cut:]

    def close(self) -> None:
        if self.pending:
            self._emit(self.pending)
            self.pending = b""

    def _emit(self, data: bytes) -> None:
        self.out.write(self.redactor.bytes_(data))
        self.kept += len(data)


def _copy(
    src: IO[bytes] | Any,
    dest: Path,
    redactor: Redactor,
    cap: int,
    stop: Callable[[], bool],
) -> tuple[int, int, bool]:
    """Stream src into dest (redacted), at most cap bytes. (kept, read, whole)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("wb") as out:
        sink = _RedactedSink(out, redactor, cap)
        try:
            while not sink.full:
                if stop():
                    raise CopyStopped("copy stopped")
                chunk = src.read(CHUNK)
                if not chunk:
                    break
                sink.write(chunk)
            whole = not sink.full or not src.read(1)
        finally:
            sink.close()
    return sink.kept, sink.seen, whole


def _collect_output(
    engine: Engine,
    run: str,
    node: str,
    out: Path,
    *,
    redactor: Redactor,
    budget: _Budget,
    stop: Callable[[], bool],
    since: datetime | None = None,
) -> Cut | None:
    cap = min(MAX_FILE, budget.left)
    dest = out / "container.log"
    with dest.open("wb") as f:
        sink = _RedactedSink(f, redactor, cap)
        try:
            for chunk in engine.output_chunks(run, node, stop, since):
                sink.write(chunk)
                if sink.full:
                    break
        finally:
            sink.close()
    budget.left -= sink.kept
    if sink.full:
        return Cut(node, "(container output)", sink.kept, None, _why(cap))
    return None


def _why(cap: int) -> str:
    if cap >= MAX_FILE:
        return f"over the {MAX_FILE >> 20} MiB limit per file"
    return f"the node's {MAX_NODE >> 20} MiB limit was reached"


def _collect_path(
    engine: Engine,
    run: str,
    node: str,
    path: str,
    out: Path,
    *,
    redactor: Redactor,
    budget: _Budget,
    stop: Callable[[], bool],
    result: Collected,
    files: list[str],
    skip: dict[str, int] | None = None,
) -> None:
    parent = _safe(posixpath.dirname(path.rstrip("/")))
    base = out / "files"
    for member, stream in engine.file_entries(run, node, path, stop):
        rel = posixpath.normpath(_safe(posixpath.join(parent, member.name)))
        shown = posixpath.join(posixpath.dirname(path.rstrip("/")), member.name)
        if stream is None or not member.regular or rel.startswith(("..", "/")) or rel == ".":
            continue
        if budget.left <= 0:
            result.cut.append(Cut(node, shown, 0, member.size, _why(0)))
            continue
        cap = min(MAX_FILE, budget.left)
        start = (skip or {}).get(posixpath.normpath(shown), 0)
        if 0 < start <= member.size:  # a live rerun: what the file held before it began
            _discard(stream, start)
        kept, _, whole = _copy(stream, base / rel, redactor, cap, stop)
        budget.left -= kept
        files.append(f"files/{rel}")
        if not whole:
            result.cut.append(Cut(node, shown, kept, member.size, _why(cap)))
            if "/" not in member.name:
                break  # a single file: the rest of it is not even read off the wire


def _discard(stream: IO[bytes], n: int) -> None:
    while n > 0:
        got = stream.read(min(n, 1 << 20))
        if not got:
            return
        n -= len(got)


def collect_nodes(
    engine: Engine,
    run_id: str,
    topology: Topology,
    *,
    extra_logs: list[str],
    folder: Path,
    redactor: Redactor,
    stop: Callable[[], bool] = lambda: False,
    since: datetime | None = None,
    skip: dict[str, dict[str, int]] | None = None,
    since_for: dict[str, datetime] | None = None,
) -> Collected:
    """Write artifacts/<node>/...: output, inspect, files; each file at most MAX_FILE bytes and
    each node at most MAX_NODE, streamed (never a whole file in memory); what was cut is in
    `cut`. Best effort: never raises; `stop()` true (Ctrl-C) ends it between chunks.
    A live rerun passes `since` (its start: the output nodes printed before is not its own),
    `since_for` (a node reloaded by the rerun: from the end of its reload, so what the old
    configuration printed until then is not this rerun's evidence) and `skip` (node -> log
    file -> its size then: only what was appended since is copied)."""
    wanted = _wanted(topology, extra_logs)
    result = Collected()
    try:
        containers = engine.find(run_id).containers
    except Exception:
        return result
    try:
        for c in containers:
            _collect_node(
                engine,
                run_id,
                c.node,
                wanted.get(c.node, []),
                out=folder / "artifacts" / c.node,
                redactor=redactor,
                stop=stop,
                result=result,
                since=(since_for or {}).get(c.node, since),
                skip=(skip or {}).get(c.node),
            )
    except CopyStopped:
        result.stopped = True
    return result


def _wanted(topology: Topology, extra_logs: list[str]) -> dict[str, list[str]]:
    """Node -> the paths to copy out: its log paths, its files, then `collect.logs` entries."""
    wanted: dict[str, list[str]] = {}
    for spec in topology.nodes:
        wanted[spec.name] = [*spec.log_paths, *(f.target for f in spec.files)]
    for entry in extra_logs:
        node_name, _, path = entry.partition(":")
        wanted.setdefault(node_name, []).append(path)
    return wanted


def _collect_node(
    engine: Engine,
    run_id: str,
    node: str,
    paths: list[str],
    *,
    out: Path,
    redactor: Redactor,
    stop: Callable[[], bool],
    result: Collected,
    since: datetime | None = None,
    skip: dict[str, int] | None = None,
) -> None:
    """One node's output, inspect and paths into out, within one MAX_NODE budget; a failure
    skips only what failed, a stop (CopyStopped) ends the whole collection."""
    files: list[str] = []
    result.files[node] = files
    budget = _Budget(MAX_NODE)
    try:
        out.mkdir(parents=True, exist_ok=True)
        cut = _collect_output(
            engine, run_id, node, out, redactor=redactor, budget=budget, stop=stop, since=since
        )
        files.append("container.log")
        if cut:
            result.cut.append(cut)
        inspect = engine.inspect(run_id, node)
        (out / "inspect.json").write_text(redactor.text(json.dumps(inspect, indent=2, default=str)))
        files.append("inspect.json")
    except CopyStopped:
        raise
    except Exception:
        pass
    for path in dict.fromkeys(paths):
        try:
            _collect_path(
                engine,
                run_id,
                node,
                path,
                out,
                redactor=redactor,
                budget=budget,
                stop=stop,
                result=result,
                files=files,
                skip=skip,
            )
        except CopyStopped:
            raise
        except Exception:
            continue


def sweep(folder: Path, redactor: Redactor) -> int:
    """Redact every file under the run folder in place: the net for what third-party tools
    (ansible-runner, tcpdump) wrote themselves. Records the masked pcaps in run.json
    (`masked_captures`). Returns how many files changed."""
    changed = 0
    pcaps = set(capture_files(folder))
    masked: dict[str, str] = {}
    for f in folder.rglob("*"):
        if not f.is_file() or f.is_symlink():
            continue
        try:
            data = f.read_bytes()
        except OSError:
            continue
        clean = redactor.bytes_(data)
        if clean != data:
            f.write_bytes(clean)
            changed += 1
        if f in pcaps:
            masked[f.relative_to(folder).as_posix()] = _sha256(clean)
    _record_masked(folder, masked)
    return changed


# run.json key: each masked pcap ("captures/<net>.pcap") -> the sha256 of its masked bytes. A
# pcap missing there, or whose bytes changed since, was never masked (a SIGKILLed run's, until
# `lab down`/`lab gc` masks it) and is never bundled (harness/escalation/bundle.py).
MASKED_CAPTURES = "masked_captures"


def capture_files(folder: Path) -> list[Path]:
    """The run's pcaps (captures/*.pcap), links left out."""
    d = folder / "captures"
    if not d.is_dir() or d.is_symlink():
        return []
    return sorted(p for p in d.glob("*.pcap") if p.is_file() and not p.is_symlink())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def masked_captures(run_json: dict[str, Any]) -> dict[str, str]:
    got = run_json.get(MASKED_CAPTURES)
    return {str(k): str(v) for k, v in got.items()} if isinstance(got, dict) else {}


def is_masked(rel: str, data: bytes, run_json: dict[str, Any]) -> bool:
    """True when these bytes are the pcap `rel` exactly as it was masked."""
    return masked_captures(run_json).get(rel) == _sha256(data)


def unmasked_captures(folder: Path) -> list[str]:
    """The run's pcaps not (or no longer) as they were masked."""
    run_json = RunFolder(folder).read()
    out = []
    for p in capture_files(folder):
        rel = p.relative_to(folder).as_posix()
        try:
            if is_masked(rel, p.read_bytes(), run_json):
                continue
        except OSError:
            pass
        out.append(rel)
    return out


def _record_masked(folder: Path, masked: dict[str, str]) -> None:
    """Add `masked` (pcap -> sha256 of the bytes written) to run.json's record."""
    if not masked or not (folder / "run.json").is_file():
        return
    rf = RunFolder(folder)
    rf.write(**{MASKED_CAPTURES: {**masked_captures(rf.read()), **masked}})


def mask_captures(folder: Path, redactor: Redactor | Callable[[], Redactor]) -> list[str]:
    """Mask in place, as collect's sweep does, every pcap of the run folder not yet recorded
    as masked (a SIGKILLed run's: its capture outlived it and collect never ran), and record
    them. Each is rewritten whole (a temporary file, then rename), so a kill never leaves
    half of one masked. Each pcap is read once; `redactor` may be a factory, called only when
    one needs masking. Returns the pcaps masked ("captures/<net>.pcap")."""
    known = masked_captures(RunFolder(folder).read())
    done: dict[str, str] = {}
    made: list[Redactor] = []

    def the_redactor() -> Redactor:
        if not made:
            made.append(redactor if isinstance(redactor, Redactor) else redactor())
        return made[0]

    for p in capture_files(folder):
        rel = p.relative_to(folder).as_posix()
        try:
            data = p.read_bytes()
        except OSError:
            continue
        if known.get(rel) == _sha256(data):
            continue
        clean = the_redactor().binary(data) if data else data
        tmp = p.with_name(f".{p.name}.masking")
        tmp.write_bytes(clean)
        tmp.replace(p)
        done[rel] = _sha256(clean)
    _record_masked(folder, done)
    return list(done)


STEPS_LOG = "steps.log"  # artifacts/<node>/steps.log: what the steps run on the node printed


def write_step_logs(folder: Path, phases: list[dict[str, Any]], redactor: Redactor) -> list[str]:
    """Each node's step transcript, artifacts/<node>/steps.log: every attempt's steps run on it,
    a header line each (attempt, step, command, exit code), then what it printed. The steps'
    output is in journal.json too; as a node's log file it is evidence `lab analyze` reads
    with the node's lab's signatures (a client's `curl: (58) ...`). Returns the files written."""
    by_node: dict[str, list[str]] = {}
    for ph in phases:
        name = str(ph.get("phase", ""))
        if not name.startswith("attempt-"):
            continue
        for st in ph.get("steps") or []:
            node, out = st.get("node"), (st.get("stdout") or "") + (st.get("stderr") or "")
            if not node or not out:
                continue
            exit_code = st.get("exit_code")
            head = f"# {name} step {st.get('id')}: {st.get('command') or st.get('description')}"
            head += f" (exit {exit_code})" if exit_code is not None else ""
            by_node.setdefault(str(node), []).append(f"{head}\n{out.rstrip()}\n")
    written: list[str] = []
    for node, parts in sorted(by_node.items()):
        path = folder / "artifacts" / _safe(node) / STEPS_LOG
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(redactor.text("".join(parts)), encoding="utf-8")
        written.append(path.relative_to(folder).as_posix())
    return written
