"""Run ids: sortable by time, short enough for container names, unique across parallel runs."""

from __future__ import annotations

import os
import re
import secrets
import socket
from datetime import UTC, datetime
from pathlib import Path

RUN_ID = re.compile(r"^\d{6}-\d{6}-[0-9a-f]{4}$")


def new_run_id(now: datetime | None = None) -> str:
    t = now or datetime.now(UTC)
    return f"{t:%y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _start_time(pid: int) -> str:
    """Process start time in clock ticks; with the pid it survives pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "?"
    return stat.rsplit(")", 1)[1].split()[19]


def owner_token(pid: int | None = None) -> str:
    pid = pid or os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def owner_alive(token: str) -> bool:
    """Whether the process that wrote `token` still runs (only knowable on the same host)."""
    try:
        host, pid_s, start = token.rsplit(":", 2)
        pid = int(pid_s)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True  # another machine's run: never ours to judge dead
    return Path(f"/proc/{pid}").exists() and _start_time(pid) == start and not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Killed but not yet reaped by its parent: gone, for what it owned."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
