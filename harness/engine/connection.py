"""The connect factory: which engine (a URL, a targets file's name) and a handle on it.

With harness.engine.api, the only engine module the run layer, the verbs and the CLI import
(pyproject.toml's import-linter contract). Targets are plain configuration (pydantic models).
"""

from __future__ import annotations

from harness.engine import client as _client
from harness.engine.api import Engine
from harness.engine.targets import TARGETS_ENV, Target, load_targets, local_target, resolve

__all__ = [
    "TARGETS_ENV",
    "Target",
    "answers",
    "connect_engine",
    "engine_url",
    "load_targets",
    "local_target",
    "resolve",
]


def connect_engine(url: str | None = None) -> Engine:
    """The engine at `url` (None: DOCKER_HOST, else the local socket), or InfraError (exit 3)
    with one sentence when it does not answer."""
    from harness.engine.dockerengine import DockerEngine

    return DockerEngine(url)


def engine_url() -> str:
    """The local engine's URL: DOCKER_HOST, else the default socket."""
    return _client.engine_url()


def answers(url: str | None = None, timeout: float = 10) -> bool:
    """Whether the engine answers now (a fresh connection, not the cached client)."""
    return _client.answers(url, timeout)
