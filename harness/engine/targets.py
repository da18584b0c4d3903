"""Docker engines as configuration, and getting a cell's images onto one of them.

A targets file (YAML) lists engines and how many cells each runs at once:

    engines:
      - {name: local, url: "unix:///var/run/docker.sock", slots: 2}
      - name: rack2
        url: tcp://10.0.0.12:2376
        slots: 4
        tls: {ca: certs/ca.pem, cert: certs/cert.pem, key: certs/key.pem}
        images: copy          # docker save/load from the local engine (no archive there)
      - name: rack3
        url: ssh://lab@rack3:22
        ssh: {identity: keys/id_ed25519, known_hosts: keys/known_hosts}   # relative to the file

Without a file there is one target: the local engine (DOCKER_HOST, else the default socket).
`tls` needs a tcp:// URL: `ca` verifies the engine's certificate, `cert` and `key` are the client
certificate it asks for. `ssh` needs an ssh:// URL (the remote user runs `docker system
dial-stdio`): `identity` is the only key offered, `known_hosts` the host keys trusted besides
~/.ssh/known_hosts, `strict_host_key_checking: false` accepts an unknown host key (never a changed
one). Without an `ssh` block: ~/.ssh/config, ~/.ssh/known_hosts, the default keys and the agent.
`images: build` (the default) builds a missing image on the engine itself; the content-hash tag
makes that a no-op when it is present. `images: copy` builds it (if needed) on the local engine
and streams `docker save` into `docker load` on the target.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.engine import client as engine
from harness.engine.api import ProgressFn
from harness.errors import InfraError, UsageError

if TYPE_CHECKING:  # types only: resolving a target must not load the image builder
    from harness.scenario.catalog import Catalog
    from harness.scenario.resolved import Topology

TARGETS_ENV = "LABHARNESS_TARGETS"


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Tls(_M):
    ca: str | None = None
    cert: str | None = None
    key: str | None = None


class Ssh(_M):
    identity: str | None = None  # private key; the only one offered
    known_hosts: str | None = None  # host keys trusted, besides ~/.ssh/known_hosts
    strict_host_key_checking: bool = True  # false: accept an unknown (never a changed) host key


class Target(_M):
    name: str
    url: str = Field(pattern=r"^(unix|tcp|ssh|npipe)://")
    slots: int = Field(default=1, ge=1)
    tls: Tls | None = None
    ssh: Ssh | None = None
    images: Literal["build", "copy"] = "build"

    @model_validator(mode="after")
    def _scheme_fits(self) -> Target:
        if self.tls is not None and not self.url.startswith("tcp://"):
            raise ValueError(f"tls: is for tcp:// engines, not {self.url}")
        if self.tls is not None and (self.tls.cert is None) != (self.tls.key is None):
            raise ValueError("tls: give both cert and key (the client certificate and its key)")
        if self.ssh is not None and not self.url.startswith("ssh://"):
            raise ValueError(f"ssh: is for ssh:// engines, not {self.url}")
        return self

    def register(self, base: Path | None = None) -> None:
        """Make engine.connect(url) use this target's TLS or ssh settings (files relative to
        base, the targets file's folder); a missing file is a usage error."""

        def rel(field: str, p: str | None) -> str | None:
            if p is None:
                return None
            full = (base / Path(p).expanduser() if base else Path(p).expanduser()).resolve()
            if not full.is_file():
                raise UsageError(f"engine {self.name}: {field}: no such file: {full}")
            return str(full)

        if self.tls is not None:
            t = self.tls
            engine.register_tls(
                self.url, rel("tls.ca", t.ca), rel("tls.cert", t.cert), rel("tls.key", t.key)
            )
        if self.ssh is not None:
            s = self.ssh
            engine.register_ssh(
                self.url,
                rel("ssh.identity", s.identity),
                rel("ssh.known_hosts", s.known_hosts),
                s.strict_host_key_checking,
            )


class TargetsFile(_M):
    engines: list[Target] = Field(min_length=1)


def local_target(slots: int = 1) -> Target:
    return Target(name="local", url=engine.engine_url(), slots=slots)


def load_targets(path: Path | None = None) -> list[Target]:
    """The targets file's engines (TLS registered), or the local engine alone."""
    if path is None and os.environ.get(TARGETS_ENV):
        path = Path(os.environ[TARGETS_ENV])
    if path is None:
        return [local_target()]
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML: {exc}") from None
    try:
        targets = TargetsFile.model_validate(data).engines
    except ValidationError as exc:
        raise UsageError(
            "\n".join(
                f"{path}: {'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}"
                for e in exc.errors()
            )
        ) from None
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise UsageError(f"{path}: engine names must be unique: {', '.join(names)}")
    for t in targets:
        try:
            t.register(path.parent)
        except UsageError as exc:
            raise UsageError(f"{path}: {exc.message}") from None
    return targets


def resolve(wanted: str | None, path: Path | None = None) -> Target:
    """An engine by name (from the targets file) or by URL; None is the local engine."""
    if wanted is None:
        return local_target()
    targets = load_targets(path) if (path or os.environ.get(TARGETS_ENV)) else []
    for t in targets:
        if wanted in (t.name, t.url):
            return t
    if "://" not in wanted:
        raise UsageError(
            f"no engine named {wanted!r}",
            hint="give a URL (unix://, tcp://, ssh://) or a name from the targets file",
        )
    return Target(name=wanted, url=wanted)


def copy_image(source: Any, target: Any, tag: str) -> None:
    """`docker save TAG | docker load` between two engines, streamed."""
    from harness.engine.images import image_exists

    with engine.engine_errors(f"copy image {tag} between engines"):
        chunks = source.images.get(tag).save(named=True)
        target.api.load_image(chunks, quiet=True)
    if not image_exists(target, tag):
        raise InfraError(f"copied image {tag}, but the target engine does not hold it")


def ensure_images_on(
    client: Any,
    topology: Topology,
    catalog: Catalog,
    *,
    copy_from: str | None = None,
    on_progress: ProgressFn | None = None,
) -> dict[str, str]:
    """{node: tag} on `client`'s engine: built there, or (copy_from set) built on that engine
    and moved with save/load. Each distinct image once; present tags cost one lookup."""
    from harness.engine.images import ensure_plan, image_exists
    from harness.images import plan_image

    source = engine.connect(copy_from) if copy_from else None
    done: dict[str, str] = {}
    out: dict[str, str] = {}
    for node in topology.nodes:
        plan = plan_image(catalog, node.image)
        if plan.tag not in done:
            if image_exists(client, plan.tag):
                done[plan.tag] = plan.tag
            elif source is not None:
                tag = ensure_plan(source, plan, on_progress=on_progress).tag
                if not image_exists(client, tag):
                    copy_image(source, client, tag)
                done[plan.tag] = tag
            else:
                done[plan.tag] = ensure_plan(client, plan, on_progress=on_progress).tag
        out[node.name] = done[plan.tag]
    _ensure_clocks_on(client, source, topology, catalog, on_progress)
    return out


def _ensure_clocks_on(
    client: Any,
    source: Any,
    topology: Topology,
    catalog: Catalog,
    on_progress: ProgressFn | None,
) -> None:
    """The libfaketime image of each `clock:` node's environment, there too (built on the
    source engine and copied, like the nodes' images)."""
    from harness.engine.images import ensure_faketime, image_exists
    from harness.images import faketime_plans

    for plan in faketime_plans(catalog, topology):
        if image_exists(client, plan.tag):
            continue
        if source is None:
            ensure_faketime(client, plan, on_progress)
            continue
        ensure_faketime(source, plan, on_progress)
        copy_image(source, client, plan.tag)
