"""Byte sizes: how a limit reads in a message, and a limit taken from the environment.

Shared by the readers of untrusted archives (escalation bundles, sosreports), whose limits the
user can raise with an environment variable.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, TypeVar

from harness.errors import UsageError

T = TypeVar("T")
KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30


def human(n: int) -> str:
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def env_limit(name: str, default: int) -> int:
    """$name as a whole number of bytes (or members), else `default`; bad text is exit 2."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit():
        raise UsageError(f"${name}={text!r}: expected a whole number >= 0")
    return int(text)


def limits_from_env(defaults: T, variables: dict[str, str]) -> T:
    """A frozen dataclass of limits with each field named in `variables` (field -> variable)
    taken from the environment when set there."""
    changes: dict[str, Any] = {
        field: env_limit(var, getattr(defaults, field)) for field, var in variables.items()
    }
    return dataclasses.replace(defaults, **changes)  # type: ignore[type-var]
