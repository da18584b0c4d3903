"""Connecting to the engine, and turning its failures into one clear sentence (exit 3)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from harness.errors import InfraError

LABEL_RUN = "labharness.run"
LABEL_SCENARIO = "labharness.scenario"
LABEL_NODE = "labharness.node"
LABEL_NETWORK = "labharness.network"
LABEL_OWNER = "labharness.owner"  # host:pid:starttime of the process that created it
LABEL_FOLDER = "labharness.folder"  # the run folder, where run.json says whether the run is live
LABEL_IMAGE = "labharness.image"  # on images the harness built: what they are (lab/env name)
LABEL_INPUTS = "labharness.inputs"  # on images: the hash of their build inputs


def engine_url() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


@lru_cache(maxsize=8)
def _client(url: str) -> Any:
    import docker  # lazy: keeps `lab --help` fast

    try:
        client = docker.DockerClient(base_url=url, version="auto", timeout=120)
        client.ping()
    except Exception as exc:  # the SDK raises many kinds; all mean the same to the user
        raise InfraError(
            f"no Docker engine answers at {url} ({type(exc).__name__})",
            hint="start one (see README: `sudo dockerd &`), or set DOCKER_HOST",
        ) from None
    return client


def connect(url: str | None = None) -> Any:
    """A ready DockerClient, or InfraError with one sentence."""
    return _client(url or engine_url())


def engine_version(client: Any) -> str:
    return str(client.version().get("Version", "unknown"))


@contextmanager
def engine_errors(action: str) -> Iterator[None]:
    """Wrap SDK calls: any engine-side failure becomes InfraError naming the action."""
    import docker.errors
    import requests.exceptions

    try:
        yield
    except docker.errors.APIError as exc:
        raise InfraError(f"engine refused to {action}: {exc.explanation or exc}") from None
    except (requests.exceptions.ConnectionError, docker.errors.DockerException) as exc:
        raise InfraError(f"lost the Docker engine while trying to {action}: {exc}") from None
