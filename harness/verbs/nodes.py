"""`lab exec`, `lab shell` and `lab cp`: an engineer's hands in a node of a live run."""

from __future__ import annotations

import os
import posixpath
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from harness.engine.api import Engine
from harness.engine.connection import connect_engine
from harness.errors import UsageError
from harness.scenario.suggest import unknown
from harness.verbs.results import CopyResult, ExecResult
from harness.verbs.runs import _runs, resolve_run


def _run_on(run: str, node: str, engine: Engine | None) -> tuple[str, Engine]:
    """The run id and its engine, with `node` checked against the run's nodes: a misspelt
    node is bad input (did-you-mean, exit 2), not an engine error."""
    engine = engine or connect_engine()
    run_id = resolve_run(list(_runs(engine)), run)
    nodes = {c.node for c in engine.find(run_id, sparse=True).containers if c.node}
    if node not in nodes:
        raise UsageError(
            f"run {run_id}: {unknown('node', node, nodes)}",
            hint=f"`lab ls` lists the runs; the nodes of {run_id} are: {', '.join(sorted(nodes))}",
        )
    return run_id, engine


def exec_in(
    run: str,
    node: str,
    argv: list[str],
    engine: Engine | None = None,
    stdin: IO[bytes] | None = None,
) -> ExecResult:
    """Run argv in the node; `stdin` (what was piped to `lab exec`) is streamed to it."""
    run_id, engine = _run_on(run, node, engine)
    rc, out, err = engine.exec_argv(run_id, node, argv, stdin)
    return ExecResult(
        run=run_id,
        node=node,
        command=argv,
        exit_code=rc,
        stdout=out.decode(errors="replace"),
        stderr=err.decode(errors="replace"),
    )


def shell_argv(run: str, node: str, shell: str = "sh", engine: Engine | None = None) -> list[str]:
    run_id, engine = _run_on(run, node, engine)
    return engine.interactive_argv(run_id, node, shell)


# -- lab cp ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _InNode:
    node: str
    path: str


def _endpoint(text: str) -> _InNode | Path:
    """`NODE:/abs/path` is a path in a node; anything else is a local path."""
    node, sep, path = text.partition(":")
    if sep and node and path.startswith("/") and "/" not in node:
        return _InNode(node, path)
    return Path(text)


def copy(run: str, source: str, dest: str, engine: Engine | None = None) -> CopyResult:
    """Copy a file or folder into a node or out of it, as `docker cp` does: into an existing
    folder it lands under its own name, else it takes the name given. Exactly one side is
    `NODE:/path`."""
    src, dst = _endpoint(source), _endpoint(dest)
    if isinstance(src, _InNode) == isinstance(dst, _InNode):
        raise UsageError(
            f"lab cp needs exactly one side in a node (NODE:/path), got {source!r} and {dest!r}",
            hint="lab cp RUN web:/etc/nginx/nginx.conf ./nginx.conf  |  "
            "lab cp RUN ./nginx.conf web:/etc/nginx/",
        )
    if isinstance(src, _InNode):
        assert isinstance(dst, Path)
        return _copy_out(run, src, dst, engine)
    assert isinstance(dst, _InNode)
    return _copy_in(run, src, dst, engine)


def _copy_in(run: str, src: Path, dst: _InNode, engine: Engine | None) -> CopyResult:
    if not src.exists() and not src.is_symlink():
        raise UsageError(f"{src}: no such file or folder")
    run_id, engine = _run_on(run, dst.node, engine)
    target = posixpath.normpath(dst.path)
    rc, _, _ = engine.exec_argv(run_id, dst.node, ["test", "-d", target])
    if rc == 0:  # an existing folder: into it, under the source's name
        parent, name = target, src.resolve().name
    else:
        parent, name = posixpath.split(target)
        mk, _, err = engine.exec_argv(run_id, dst.node, ["mkdir", "-p", parent or "/"])
        if mk != 0:
            raise UsageError(
                f"{dst.node}:{parent}: cannot create the folder: {err.decode(errors='replace')}"
            )
    moved = engine.put_path(run_id, dst.node, src, parent or "/", name)
    where = posixpath.join(parent or "/", name)
    return CopyResult(
        run=run_id,
        node=dst.node,
        direction="in",
        source=str(src),
        dest=f"{dst.node}:{where}",
        files=moved.files,
        bytes=moved.bytes,
    )


def _safe_member(name: str) -> str:
    """A member name from the node, refused when it would leave the destination."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts or name.startswith("/"):
        raise UsageError(f"refusing the entry {name!r} from the node: it leaves the destination")
    return "/".join(parts)


def _local_target(dest: Path, rel: str, into: bool) -> Path:
    """Where a member named `rel` (its first part is the asked path's name) is written:
    `into` an existing folder under its own name, else as `dest` itself."""
    if into:
        return dest / rel
    rest = rel.partition("/")[2]
    return dest / rest if rest else dest


def _copy_out(run: str, src: _InNode, dest: Path, engine: Engine | None) -> CopyResult:
    run_id, engine = _run_on(run, src.node, engine)
    files = size = 0
    into = dest.is_dir()  # decided once: the first folder written must not change it
    seen = False
    for member, stream in engine.file_entries(run_id, src.node, src.path):
        seen = True
        target = _local_target(dest, _safe_member(member.name), into)
        if target.is_symlink():
            raise UsageError(f"{target}: is a symbolic link; refusing to write through it")
        if member.folder:
            target.mkdir(parents=True, exist_ok=True)
            continue
        if stream is None or not member.regular:
            continue  # links and devices in the node are not copied out
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(stream, out, 64 * 1024)
        files, size = files + 1, size + member.size
    if not seen:
        raise UsageError(f"{src.node}:{src.path}: no such file or folder in the node")
    return CopyResult(
        run=run_id,
        node=src.node,
        direction="out",
        source=f"{src.node}:{src.path}",
        dest=str(dest),
        files=files,
        bytes=size,
    )
