"""Files, folders and output of a node, streamed out in chunks: what evidence collection reads.

`get_archive` sends a path as a tar stream; reading it whole (as a 600 MB log, or a folder
whose tar header says "4096 bytes") takes the whole thing into memory. Here the tar is read
as it arrives, one member and one chunk at a time, and the caller decides per chunk how much
to keep; `stop()` is asked before every chunk so a Ctrl-C is honoured mid-file.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from contextlib import suppress
from datetime import datetime
from typing import IO, Any

from harness.engine import hostview
from harness.engine.api import CopyStopped, Member, Stop
from harness.engine.client import engine_errors

CHUNK = 1 << 20
SMALL = 1 << 20  # files up to this size are read straight from /proc/<pid>/root when possible


def _never() -> bool:
    return False


class _ChunkStream(io.RawIOBase):
    """A read-only file over the SDK's chunk generator, asking stop() before every chunk."""

    def __init__(self, chunks: Iterator[bytes], stop: Stop) -> None:
        self._chunks = chunks
        self._stop = stop
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if not self._buf:
            if self._stop():
                raise CopyStopped("copy stopped")
            self._buf = next(self._chunks, b"")
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            with suppress(Exception):
                close()
        super().close()


def entries(
    container: Any, path: str, stop: Stop = _never
) -> Iterator[tuple[Member, IO[bytes] | None]]:
    """(member, its content stream or None) for `path` in the node, a file or a whole folder.

    Absent path: nothing. A member's stream must be read (or left) before the next one; the
    rest of a member not read is skipped on the wire, never held. Raises CopyStopped when
    stop() turns true; engine failures are InfraError.
    """
    import docker.errors

    if stop():
        raise CopyStopped("copy stopped")
    small = _small_from_host(container, path)
    if small is not None:
        name = path.rstrip("/").rsplit("/", 1)[-1]
        yield Member(name, len(small), True, False), io.BytesIO(small)
        return
    with engine_errors(f"read {path}"):  # it turns every SDK error into InfraError: so inside
        try:
            chunks, _ = container.get_archive(path, chunk_size=CHUNK)
        except docker.errors.NotFound:
            return
    raw = _ChunkStream(iter(chunks), stop)
    try:
        with tarfile.open(fileobj=io.BufferedReader(raw, CHUNK), mode="r|") as tar:
            for info in tar:
                if stop():
                    raise CopyStopped("copy stopped")
                member = Member(info.name, info.size, info.isfile(), info.isdir())
                yield member, tar.extractfile(info) if info.isfile() else None
    finally:
        raw.close()


def _small_from_host(container: Any, path: str) -> bytes | None:
    """A small regular file's bytes through /proc (no engine work), or None: ask the engine."""
    try:
        return hostview.read_file(container, path, SMALL)
    except hostview.NotHere:
        return None


def precise(since: datetime) -> float:
    """`since` for the engine to the microsecond: the SDK sends a datetime as whole seconds,
    so up to a second of what came before (an earlier attempt, a reload) would count."""
    return since.timestamp()


def output_chunks(
    container: Any, stop: Stop = _never, since: datetime | None = None
) -> Iterator[bytes]:
    """The node's stdout and stderr so far (since `since`: a live rerun's own), in chunks as
    the engine sends them."""
    extra = {"since": precise(since)} if since is not None else {}
    with engine_errors("read the node's output"):
        stream = container.logs(stdout=True, stderr=True, stream=True, follow=False, **extra)
    try:
        for chunk in stream:
            if stop():
                raise CopyStopped("copy stopped")
            yield bytes(chunk)
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            with suppress(Exception):
                close()
