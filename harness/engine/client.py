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


# tcp engines with TLS: url -> (ca, cert, key); set from a targets file (harness/engine/targets.py)
_TLS: dict[str, tuple[str | None, str | None, str | None]] = {}


def register_tls(url: str, ca: str | None, cert: str | None, key: str | None) -> None:
    """How to reach a tcp:// engine over TLS; before the first connect(url)."""
    _TLS[url] = (ca, cert, key)


def _tls_config(url: str) -> Any:
    if url not in _TLS:
        return None
    import docker.tls

    ca, cert, key = _TLS[url]
    return docker.tls.TLSConfig(
        ca_cert=ca, client_cert=(cert, key) if cert and key else None, verify=bool(ca)
    )


@lru_cache(maxsize=8)
def _client(url: str) -> Any:
    import docker  # lazy: keeps `lab --help` fast

    try:
        client = docker.DockerClient(
            base_url=url,
            version="auto",
            timeout=120,
            tls=_tls_config(url) or False,
            use_ssh_client=url.startswith("ssh://"),
        )
        if not url.startswith("tcp://"):
            # requests scans the whole environment for proxy settings on every call: a third of
            # the harness's CPU per API call; a local socket or ssh tunnel never uses a proxy
            client.api.trust_env = False
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


def answers(url: str | None = None, timeout: float = 10) -> bool:
    """Whether the engine answers now: a fresh connection, not the cached client."""
    import docker

    target = url or engine_url()
    try:
        fresh = docker.DockerClient(
            base_url=target,
            version="auto",
            timeout=timeout,
            tls=_tls_config(target) or False,
            use_ssh_client=target.startswith("ssh://"),
        )
        try:
            return bool(fresh.ping())
        finally:
            fresh.close()
    except Exception:  # any failure means: does not answer
        return False


@lru_cache(maxsize=8)
def engine_version(client: Any) -> str:
    """Asked once per client: the engine runs `runc --version` and `docker-init --version` to
    answer, which is more than a cell should pay each time."""
    with engine_errors("read the engine's version"):
        return str(client.version().get("Version", "unknown"))


@lru_cache(maxsize=8)
def engine_info(client: Any) -> dict[str, Any]:
    """`docker info`, once per client: its id, kernel and CPU count do not change under us."""
    with engine_errors("read the engine's info"):
        return dict(client.info())


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
