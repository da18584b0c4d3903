"""The parts of a normalised Compose file (`docker-compose config --format json`) an import reads.

`config` has already resolved anchors, `x-` fields, `env_file`, profiles and interpolation,
and written every short form in its long one (ports, volumes, depends_on, healthcheck), so
these models only type that canonical shape. Keys they do not name are kept (`extra`), so
the import can list each one it did not carry over instead of dropping it silently.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")

    def extra_keys(self) -> list[str]:
        """Keys the compose file set that this model does not name, in file order; `x-`
        extension fields are the file's own notes, never compose settings."""
        extra = self.__pydantic_extra__ or {}
        return [k for k, v in extra.items() if v is not None and not k.startswith("x-")]


class IpamConfig(_Open):
    subnet: str | None = None


class Ipam(_Open):
    config: list[IpamConfig] = Field(default_factory=list)


class ComposeNetwork(_Open):
    name: str | None = None
    driver: str | None = None
    internal: bool = False
    external: bool = False
    enable_ipv6: bool = False
    ipam: Ipam = Field(default_factory=Ipam)


class ServiceNetwork(_Open):
    ipv4_address: str | None = None
    ipv6_address: str | None = None


class Healthcheck(_Open):
    test: list[str] | str | None = None
    interval: str | None = None
    timeout: str | None = None
    start_period: str | None = None
    retries: int | None = None
    disable: bool = False


class DependsOn(_Open):
    condition: str = "service_started"


class Mount(_Open):
    type: str
    source: str | None = None
    target: str


class ComposePort(_Open):
    """One published port in `config`'s long form (a short `8080:80` range already expanded)."""

    target: int
    published: str | int | None = None
    protocol: str = "tcp"
    host_ip: str | None = None
    mode: str | None = None


class ComposeService(_Open):
    image: str | None = None
    command: list[str] | str | None = None
    entrypoint: list[str] | str | None = None
    environment: dict[str, str | None] = Field(default_factory=dict)
    healthcheck: Healthcheck | None = None
    depends_on: dict[str, DependsOn] = Field(default_factory=dict)
    networks: dict[str, ServiceNetwork | None] = Field(default_factory=dict)
    network_mode: str | None = None
    volumes: list[Mount] = Field(default_factory=list)
    cap_add: list[str] = Field(default_factory=list)
    profiles: list[str] = Field(default_factory=list)
    # node settings (harness/scenario/compose_settings.py), as `config --format json` gives them
    extra_hosts: list[str] | dict[str, Any] | None = None
    dns: list[str] | str | None = None
    cpus: float | str | None = None
    mem_limit: int | str | None = None
    tmpfs: list[str] | str | None = None
    sysctls: dict[str, Any] | list[str] | None = None
    ulimits: dict[str, Any] | None = None
    user: str | None = None
    working_dir: str | None = None
    ports: list[ComposePort] = Field(default_factory=list)


class ComposeProject(_Open):
    """The whole normalised file: `name` is compose's project name (the folder's, or `name:`)."""

    name: str = ""
    services: dict[str, ComposeService] = Field(default_factory=dict)
    networks: dict[str, ComposeNetwork | None] = Field(default_factory=dict)
    volumes: dict[str, Any] = Field(default_factory=dict)
