"""The engineer's own settings: what no scenario or bundle may grant itself.

A scenario from a colleague or a bundle from a ticket is untrusted input; what it may do on this
machine beyond the safe defaults is decided here, in a file the engineer owns:

    $LABHARNESS_CONFIG, else ~/.config/labharness/config.yaml

    allow_capabilities: [SYS_PTRACE]      # beyond DEFAULT_CAPABILITIES
    bundle_public_keys: [~/.config/labharness/team.pub]  # Ed25519 keys whose bundles are trusted
    bundle_signing_key: ~/.config/labharness/me.key      # what `lab escalate` signs with
    results_store: postgresql://lab:pw@db.example/lab    # one results index for the team

The file is honoured only when it is a regular file owned by the current user (or root) and not
writable by group or others: a file someone else can write could grant itself anything.
A missing file means the defaults.
"""

from __future__ import annotations

import os
import stat
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import UsageError

CONFIG_ENV = "LABHARNESS_CONFIG"
MAX_CONFIG_BYTES = 64 * 1024

# Docker's own default set (granted to every container anyway, so naming one adds nothing) plus
# NET_ADMIN, which impairments (tc, iptables) need inside a node. Anything else (SYS_ADMIN,
# DAC_READ_SEARCH, SYS_MODULE, SYS_PTRACE...) reaches the host and needs allow_capabilities.
DEFAULT_CAPABILITIES: frozenset[str] = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "NET_RAW",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
        "NET_ADMIN",
    }
)


class LocalConfig(BaseModel):
    """What the engineer allows on this machine; the defaults are the safe ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow_capabilities: tuple[str, ...] = ()
    bundle_public_keys: tuple[str, ...] = ()
    bundle_signing_key: str | None = None
    results_store: str | None = None  # the team's store: postgresql://user:pw@host/db
    source: str | None = Field(default=None, exclude=True)  # the file it came from


def config_path() -> Path:
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".config" / "labharness" / "config.yaml"


def _check_owned(path: Path, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{path}: the local configuration must be a regular file")
    if st.st_uid not in (os.getuid(), 0):
        raise UsageError(
            f"{path}: the local configuration is owned by uid {st.st_uid}, not by you",
            hint="only a file you own can allow what scenarios may not (chown it, or remove it)",
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UsageError(
            f"{path}: the local configuration is writable by others",
            hint=f"chmod go-w {path}",
        )


def _normalise_cap(cap: str) -> str:
    c = cap.strip().upper()
    return c[4:] if c.startswith("CAP_") else c


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> LocalConfig:
    p = Path(path)
    fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        _check_owned(p, st)
        if st.st_size > MAX_CONFIG_BYTES:
            raise UsageError(f"{p}: the local configuration is over {MAX_CONFIG_BYTES} bytes")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            text = fh.read(MAX_CONFIG_BYTES + 1).decode("utf-8", errors="replace")
    finally:
        os.close(fd)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise UsageError(f"{p}{where}: not valid YAML") from None
    if not isinstance(data, dict):
        raise UsageError(f"{p}: expected a mapping of settings")
    try:
        cfg = LocalConfig.model_validate({**data, "source": str(p)})
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(x) for x in err["loc"])
        raise UsageError(f"{p}: {key}: {err['msg']}") from None
    caps = tuple(_normalise_cap(c) for c in cfg.allow_capabilities)
    return cfg.model_copy(update={"allow_capabilities": caps})


def load_local_config() -> LocalConfig:
    """The engineer's settings, or the defaults when there is no file. Refuses a file that
    someone else could have written (UsageError, exit 2)."""
    path = config_path()
    try:
        st = path.lstat()
    except FileNotFoundError:
        return LocalConfig()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the local configuration: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise UsageError(f"{path}: the local configuration must not be a symlink")
    return _load(str(path), st.st_mtime_ns)


def allowed_capabilities(cfg: LocalConfig | None = None) -> frozenset[str]:
    cfg = cfg if cfg is not None else load_local_config()
    return DEFAULT_CAPABILITIES | frozenset(cfg.allow_capabilities)
