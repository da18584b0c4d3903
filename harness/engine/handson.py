"""An engineer's hands in a kept lab: a command fed from stdin, files copied into a node.
(`lab exec`, `lab cp`; copying out reuses copyout.entries.) Docker SDK objects stay here."""

from __future__ import annotations

import os
import socket
import stat
import tarfile
import threading
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

from harness.engine.client import engine_errors
from harness.errors import InfraError, UsageError

CHUNK = 64 * 1024


def exec_with_stdin(container: Any, argv: list[str], stdin: IO[bytes]) -> tuple[int, bytes, bytes]:
    """Run argv in the node with `stdin` streamed to it (then closed), as `docker exec -i`
    does; stdout and stderr apart. A writer thread feeds stdin while the frames are read, so
    a command that prints while it reads never deadlocks on a full pipe."""
    from docker.utils.socket import consume_socket_output, demux_adaptor, frames_iter

    api = container.client.api
    with engine_errors("run a command in the node"):
        eid = api.exec_create(container.id, argv, stdin=True, stdout=True, stderr=True)["Id"]
        sock = api.exec_start(eid, socket=True)
    raw = getattr(sock, "_sock", sock)

    def feed() -> None:
        try:
            for chunk in iter(lambda: stdin.read(CHUNK), b""):
                raw.sendall(chunk)
        except OSError:  # the command exited without reading it all: not an error
            pass
        finally:
            with suppress(OSError):
                raw.shutdown(socket.SHUT_WR)

    writer = threading.Thread(target=feed, name="lab-exec-stdin", daemon=True)
    writer.start()
    try:
        with engine_errors("read the command's output"):
            frames = (demux_adaptor(*f) for f in frames_iter(sock, tty=False))
            out, err = consume_socket_output(frames, demux=True)
    finally:
        writer.join(timeout=0.2)  # the command ended: a stdin never closed must not hold us
        with suppress(OSError):
            sock.close()
    with engine_errors("read the command's exit code"):
        rc = api.exec_inspect(eid).get("ExitCode")
    return int(rc if rc is not None else -1), out or b"", err or b""


def _tar_of(source: Path, name: str) -> Iterator[tuple[tarfile.TarInfo, Path | None]]:
    """The members of `source` (a file or a folder) under `name`: regular files and folders
    only. A symlink, fifo or device is refused: `lab cp` copies what the engineer sees."""
    st = source.lstat()
    if stat.S_ISDIR(st.st_mode):
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, stat.S_IMODE(st.st_mode), st.st_mtime
        yield info, None
        for child in sorted(source.iterdir()):
            yield from _tar_of(child, f"{name}/{child.name}")
        return
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(
            f"{source}: not a regular file or folder",
            hint="lab cp copies files and folders; copy what a link points to instead",
        )
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = st.st_size, stat.S_IMODE(st.st_mode), st.st_mtime
    yield info, source


def put_path(container: Any, source: Path, parent: str, name: str) -> tuple[int, int]:
    """Copy `source` into the node as `parent`/`name` (parent must exist); (files, bytes).
    Spooled through a temporary file, never whole in memory."""
    import tempfile

    files = size = 0
    with tempfile.TemporaryFile() as spool:
        with tarfile.open(fileobj=spool, mode="w") as tar:
            for info, path in _tar_of(source, name):
                if path is None:
                    tar.addfile(info)
                    continue
                with path.open("rb") as fh:
                    if os.fstat(fh.fileno()).st_size != info.size:
                        raise UsageError(f"{path}: changed while being copied")
                    tar.addfile(info, fh)
                files, size = files + 1, size + info.size
        spool.seek(0)
        with engine_errors(f"copy into {parent}"):
            ok = container.client.api.put_archive(container.id, parent, spool)
    if not ok:
        raise InfraError(f"the engine refused the copy into {parent}")
    return files, size
