"""Connecting to the engine, and turning its failures into one clear sentence (exit 3)."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from harness.errors import InfraError


def engine_url() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


# tcp engines with TLS: url -> (ca, cert, key); set from a targets file (harness/engine/targets.py)
_TLS: dict[str, tuple[str | None, str | None, str | None]] = {}
# ssh engines: url -> (identity, known_hosts, strict host key checking); from a targets file
_SSH: dict[str, tuple[str | None, str | None, bool]] = {}


def register_tls(url: str, ca: str | None, cert: str | None, key: str | None) -> None:
    """How to reach a tcp:// engine over TLS; before the first connect(url)."""
    _TLS[url] = (ca, cert, key)


def register_ssh(
    url: str, identity: str | None, known_hosts: str | None, strict: bool = True
) -> None:
    """How to log in to an ssh:// engine's host; before the first connect(url). Without it:
    ~/.ssh/config, ~/.ssh/known_hosts, the default keys and the agent, as `ssh` would."""
    _SSH[url] = (identity, known_hosts, strict)


def _tls_config(url: str) -> Any:
    if url not in _TLS:
        return None
    import docker.tls

    ca, cert, key = _TLS[url]
    return docker.tls.TLSConfig(
        ca_cert=ca, client_cert=(cert, key) if cert and key else None, verify=bool(ca)
    )


SSH_SESSIONS = 8  # HTTP connections (ssh sessions) at once: below sshd's MaxSessions (10)
SSH_POOL_WAIT = 300  # s a request waits for a free session before it fails


def _ssh_adapter(url: str, timeout: float) -> Any:
    """docker-py's paramiko transport (one ssh connection, a session running `docker system
    dial-stdio` per HTTP connection), logging in with the target's key and host keys, and
    keeping to one pool of at most SSH_SESSIONS sessions (docker-py keeps a pool per request
    URL, whose idle sessions soon pass sshd's MaxSessions: "ChannelException: Connect failed")."""
    import paramiko  # type: ignore[import-untyped]
    from docker.transport.sshconn import SSHConnectionPool, SSHHTTPAdapter

    identity, known_hosts, strict = _SSH.get(url, (None, None, True))

    class Pool(SSHConnectionPool):  # type: ignore[misc]
        def _get_conn(self, timeout: float | None = None) -> Any:
            return super()._get_conn(SSH_POOL_WAIT if timeout is None else timeout)

    class Adapter(SSHHTTPAdapter):  # type: ignore[misc]
        def _create_paramiko_client(self, base_url: str) -> None:
            super()._create_paramiko_client(base_url)  # ~/.ssh/config, system known_hosts
            wait = min(timeout, 30)
            self.ssh_params.update(timeout=wait, banner_timeout=wait, auth_timeout=wait)
            if identity:  # only this key: a wrong one fails rather than falling back
                self.ssh_params.update(key_filename=identity, look_for_keys=False)
                self.ssh_params.update(allow_agent=False)
            if known_hosts:  # load(), not load_host_keys(): never written back
                self.ssh_client.get_host_keys().load(known_hosts)
            if not strict:  # an unknown host key is accepted (a changed one never is)
                self.ssh_client.set_missing_host_key_policy(paramiko.AutoAddPolicy())

        def get_connection(self, url: str, proxies: Any = None) -> Any:
            with self.pools.lock:
                pool = self.pools.get("ssh")
                transport = self.ssh_client.get_transport()
                if transport is None or not transport.is_active():
                    self._connect()  # the ssh connection dropped: log in again
                    pool = None
                if pool is None:
                    pool = Pool(
                        ssh_client=self.ssh_client,
                        timeout=self.timeout,
                        maxsize=self.max_pool_size,
                        host=self.ssh_host,
                    )
                    pool.block = True  # wait for a free session rather than open one more
                    self.pools["ssh"] = pool
            return pool

    return Adapter(url, timeout, pool_connections=1, max_pool_size=SSH_SESSIONS)


def _docker_sdk(ssh: bool) -> Any:
    """The docker package. When this process imports it first, paramiko (a tenth of a second,
    for ssh:// engines only) is kept out of that import; an ssh engine loads it when needed
    and hands docker-py the transport it would have found."""
    if "docker" not in sys.modules and "paramiko" not in sys.modules:
        sys.modules["paramiko"] = None  # type: ignore[assignment]  # an ImportError for docker-py
        try:
            import docker
        finally:
            if sys.modules.get("paramiko", 0) is None:
                del sys.modules["paramiko"]
    import docker
    import docker.api.client
    import docker.transport

    if ssh and not hasattr(docker.api.client, "SSHHTTPAdapter"):
        from docker.transport.sshconn import SSHHTTPAdapter

        docker.transport.SSHHTTPAdapter = SSHHTTPAdapter
        docker.api.client.SSHHTTPAdapter = SSHHTTPAdapter
    return docker


def _new_client(url: str, timeout: float) -> Any:
    """A DockerClient for url (TLS or ssh settings applied) that has talked to the engine."""
    docker = _docker_sdk(url.startswith("ssh://"))
    from docker import constants, errors, utils

    # built without touching the network (a fixed version asks nothing; the ssh transport in
    # shell-out mode connects lazily) so that the transport is set before the first request;
    # then the engine's API version is asked, as version="auto" would
    client = docker.DockerClient(
        base_url=url,
        version=constants.DEFAULT_DOCKER_API_VERSION,
        timeout=timeout,
        tls=_tls_config(url) or False,
        use_ssh_client=url.startswith("ssh://"),
    )
    api = client.api
    try:
        if url.startswith("ssh://"):  # docker-py has no way to pass a key or host keys
            adapter = _ssh_adapter(url, timeout)
            api._custom_adapter = adapter
            api.mount("http+docker://ssh", adapter)
        if not url.startswith("tcp://") or url in _TLS:
            # requests scans the whole environment for proxy settings on every call: a third of
            # the harness's CPU per API call; a local socket or ssh tunnel never uses a proxy.
            # With TLS, the environment's REQUESTS_CA_BUNDLE would also replace the engine's CA
            api.trust_env = False
        # what version="auto" asks, kept whole: the engine runs `runc --version` and
        # `docker-init --version` for each /version, so engine_version reuses this answer
        answer = api.version(api_version=False)
        if "ApiVersion" not in answer:
            raise errors.DockerException("the engine's /version answer has no ApiVersion")
        api._version = answer["ApiVersion"]
        client.lab_version = answer
        if utils.version_lt(api._version, constants.MINIMUM_DOCKER_API_VERSION):
            raise errors.InvalidVersion(f"the engine's API {api._version} is too old")
    except BaseException:
        client.close()
        raise
    return client


def _chain(exc: BaseException) -> list[BaseException]:
    """exc and what caused it: requests and urllib3 keep the cause in args or .reason."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 20:
        e = todo.pop(0)
        if any(e is s for s in seen):
            continue
        seen.append(e)
        more = (e.__cause__, e.__context__, getattr(e, "reason", None), *e.args)
        todo += [m for m in more if isinstance(m, BaseException)]
    return seen


def _why(url: str, exc: BaseException) -> str | None:
    """What went wrong reaching url, in words, when it is about TLS or ssh; else None."""
    chain = _chain(exc)
    why = _tls_why(chain)
    if why is None and url.startswith("ssh://"):
        why = _ssh_why(chain)
    if why is None and any(
        "Client sent an HTTP request to an HTTPS server" in str(e) for e in chain
    ):
        why = "it speaks TLS: give the engine a tls: block in the targets file"
    return why


def _tls_why(chain: list[BaseException]) -> str | None:
    """The first TLS failure in the chain, in words (certificate refused either way, handshake)."""
    import ssl

    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            return (
                f"its TLS certificate was not accepted ({e.verify_message}): tls.ca in the "
                "targets file must be the CA that signed the engine's certificate"
            )
        if isinstance(e, ssl.SSLError):
            reason = str(e.reason or e)
            if "CERTIFICATE" in reason.upper() or "UNKNOWN_CA" in reason.upper():
                return (
                    f"it refused our TLS client certificate ({reason}): tls.cert and tls.key "
                    "must be a certificate signed by the engine's CA, and its key"
                )
            return f"the TLS handshake failed ({reason})"
    return None


def _ssh_why(chain: list[BaseException]) -> str | None:
    """The first ssh failure in the chain, in words: key refused, host key changed or unknown."""
    from paramiko import ssh_exception as sx

    for e in chain:
        if isinstance(e, sx.AuthenticationException):
            return (
                f"ssh refused our key ({str(e).rstrip('.')}): ssh.identity in the targets "
                "file must be a private key whose public half is in the remote authorized_keys"
            )
        if isinstance(e, sx.BadHostKeyException):
            return (
                "the ssh host key differs from the one known_hosts lists (a machine in the "
                "middle, or a reinstalled host)"
            )
        if isinstance(e, sx.SSHException) and "known_hosts" in str(e):
            return (
                "its ssh host key is not in known_hosts: add it to the file named by "
                "ssh.known_hosts, or set ssh.strict_host_key_checking: false"
            )
        if isinstance(e, sx.SSHException | sx.NoValidConnectionsError):
            return f"ssh failed: {e}"
    return None


@lru_cache(maxsize=8)
def _client(url: str) -> Any:
    try:
        client = _new_client(url, timeout=120)  # it has asked the engine's version
    except Exception as exc:  # the SDK raises many kinds; all mean the same to the user
        why = _why(url, exc)
        if why is not None:
            raise InfraError(f"cannot use the Docker engine at {url}: {why}") from None
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
    target = url or engine_url()
    try:
        _new_client(target, timeout).close()  # it has asked the engine's version
        return True
    except Exception:  # any failure means: does not answer
        return False


@lru_cache(maxsize=8)
def engine_version(client: Any) -> str:
    """Asked once per client (connecting asked already): the engine runs `runc --version` and
    `docker-init --version` to answer, which is more than a cell should pay each time."""
    answer = getattr(client, "lab_version", None)
    if answer is None:
        with engine_errors("read the engine's version"):
            answer = client.version()
    return str(answer.get("Version", "unknown"))


_INFO_LOCK = threading.Lock()  # the first cells ask at once; /info costs the engine two execs


def engine_info(client: Any) -> dict[str, Any]:
    """`docker info`, once per client: its id, kernel and CPU count do not change under us."""
    with _INFO_LOCK:
        return _engine_info(client)


@lru_cache(maxsize=8)
def _engine_info(client: Any) -> dict[str, Any]:
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
