"""What a file of evidence is (by its bytes, never its name) and its lines, streamed.

A capture is pcap or pcapng by magic (gzip-compressed too: tshark reads those itself); a log is
text (gzip-compressed too, as logrotate leaves them); anything else is binary, and says why.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from harness.errors import UsageError

PCAP_MAGIC = (
    b"\xd4\xc3\xb2\xa1",  # pcap, little-endian, microseconds
    b"\xa1\xb2\xc3\xd4",  # pcap, big-endian
    b"\x4d\x3c\xb2\xa1",  # pcap, little-endian, nanoseconds
    b"\xa1\xb2\x3c\x4d",  # pcap, big-endian, nanoseconds
    b"\x0a\x0d\x0d\x0a",  # pcapng section header block
)
GZIP_MAGIC = b"\x1f\x8b"
SNIFF = 8192  # bytes looked at to tell text from binary
LINE_MAX = 1 << 20  # a line longer than this is read (and matched) in pieces
_CONTROL = set(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D, 0x1B}  # not in text (ESC: colours)

Kind = Literal["capture", "log", "binary", "empty"]


class BadEvidence(UsageError):
    """A file that cannot be read as evidence (exit 2): it names the file and what was wrong."""


@dataclass(frozen=True)
class Sniffed:
    kind: Kind
    gzipped: bool = False
    why: str = ""  # binary/empty: why it is not evidence


def _head(path: Path) -> tuple[bytes, bool]:
    """The first bytes of the file, decompressed when it is gzip."""
    with path.open("rb") as f:
        raw = f.read(SNIFF)
    if not raw.startswith(GZIP_MAGIC):
        return raw, False
    try:
        with gzip.open(path, "rb") as g:
            return g.read(SNIFF), True
    except (OSError, EOFError, zlib.error) as exc:
        raise BadEvidence(f"{path}: a gzip file that does not decompress: {exc}") from None


def binary_why(head: bytes) -> str | None:
    """Why these bytes are not text, or None when they are."""
    nul = head.find(b"\0")
    if nul >= 0:
        return f"binary data (a NUL byte at offset {nul})"
    control = sum(1 for b in head if b in _CONTROL)
    if head and control * 20 > len(head):
        return f"binary data ({control} control bytes in the first {len(head)})"
    return None


def sniff(path: Path) -> Sniffed:
    """Capture, log, binary or empty, by content; a file that cannot be opened raises."""
    try:
        head, gz = _head(path)
    except OSError as exc:
        raise BadEvidence(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not head:
        return Sniffed("empty", gz, "an empty file: no evidence in it")
    if head[:4] in PCAP_MAGIC:
        return Sniffed("capture", gz)
    why = binary_why(head)
    if why:
        start = head[:8].hex(" ")
        return Sniffed(
            "binary", gz, f"neither a pcap/pcapng capture nor a text log: {why}, it starts {start}"
        )
    return Sniffed("log", gz)


def _open(path: Path, gzipped: bool) -> IO[bytes]:
    if gzipped:
        return gzip.open(path, "rb")  # type: ignore[return-value]  # a GzipFile reads bytes
    return path.open("rb")


def lines(path: Path, gzipped: bool = False) -> Iterator[str]:
    """The file's lines, decoded (bad UTF-8 replaced), one at a time; a line past LINE_MAX
    comes in pieces. A compressed file cut short raises BadEvidence where it ends."""
    n = 0
    try:
        with _open(path, gzipped) as f:
            for raw in iter(lambda: f.readline(LINE_MAX), b""):
                n += 1
                yield raw.decode("utf-8", errors="replace")
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        why = f"compressed data cut short or damaged after line {n}: {exc}"
        raise BadEvidence(f"{path}: {why}") from None
    except OSError as exc:
        raise BadEvidence(f"{path}: cannot read after line {n}: {exc.strerror or exc}") from None
