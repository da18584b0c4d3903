"""The labs catalog (labs/<name>/lab.yaml) and environments (environments/<name>/environment.yaml).

Read-only knowledge of what can be built: the scenario validator checks names against it and the
image builder turns an entry into build inputs. Pure: reads files, never touches an engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import re2  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.errors import UsageError
from harness.scenario.labpackage import package_problem
from harness.scenario.yamlpos import Located, load_yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabHealth(_Strict):
    """Same keys as a node's `health:` override in a scenario."""

    command: str | None = None
    port: int | None = None
    log: str | None = None
    timeout: float = 60.0
    interval: float = 0.25


class LabVersion(_Strict):
    os: list[str] = Field(min_length=1, description="environments this version builds on")
    build_args: dict[str, str] = Field(default_factory=dict)
    description: str | None = None
    package: str | None = Field(
        default=None,
        min_length=1,
        description="a vendor's .deb in the lab folder (relative path) this version is "
        "installed from; the Dockerfile gets its path in the build context as LAB_PACKAGE",
    )


class LabBuild(_Strict):
    dockerfile: str = "Dockerfile"
    context: str = "."  # relative to the lab folder; every file in it is a build input
    args: dict[str, str] = Field(default_factory=dict)


class RunningConfig(_Strict):
    """How to print the configuration a running node has in effect (`nginx -T`, pg_settings,
    Redis `CONFIG GET *`): run in the node after configure and at the end of a run."""

    command: str = Field(min_length=1)
    timeout: float = Field(default=30.0, gt=0, le=300)


class Installed(_Strict):
    """How this lab's software shows on a customer's host, for `lab import sos`: the packages
    (shell patterns on Debian or RPM package names) whose installed version is the lab's
    version, and the folders holding its configuration (carried over as fixtures)."""

    packages: list[str] = Field(default_factory=list)
    config: list[str] = Field(default_factory=list, description="absolute folders, /etc/nginx")
    config_note: str = ""  # said when its config files are carried: how they take effect


def compile_signature(pattern: str, capture: bool = False) -> Any:
    """A log signature's pattern as RE2 (linear time on any line; a bad one raises re2.error
    quietly: the error is ours to report, not RE2's to log on stderr)."""
    opts = re2.Options()
    opts.log_errors = False
    opts.never_capture = not capture
    return re2.compile(pattern, opts)


class LogSignature(_Strict):
    """A line a lab's software prints when something known is wrong (`lab analyze`): an RE2
    pattern (linear time on any line), searched in each line of the lab's logs."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="stable key: log:<id>")
    title: str = Field(min_length=1)
    pattern: str = Field(min_length=1, description="RE2 regular expression, searched per line")
    files: list[str] = Field(
        default_factory=list,
        description="globs of the log paths it applies to (a glob without / matches the file "
        "name, e.g. container.log for the node's output); empty: every log of the lab",
    )
    severity: Literal["error", "warning", "info"] = "error"
    scope: Literal["lab", "any"] = Field(
        default="lab",
        description="lab: searched in this lab's logs; any: in every node's (an error reply "
        "the software sends its clients, printed in the client's log: Redis OOM, NOAUTH)",
    )
    hint: str | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            compile_signature(v)
        except re2.error as exc:
            why = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
            raise ValueError(f"{v!r} is not an RE2 regular expression ({why})") from None
        return v


class LabDef(_Strict):
    name: str
    description: str = ""
    kind: Literal["service", "client"] = "service"
    versions: dict[str, LabVersion] = Field(min_length=1)
    default_os: str | None = None
    build: LabBuild = Field(default_factory=LabBuild)
    command: list[str] | None = None
    health: LabHealth | None = None
    logs: list[str] = Field(default_factory=list)
    ports: list[int] = Field(default_factory=list)
    cap_add: list[str] = Field(default_factory=list)
    running_config: RunningConfig | None = None
    # how a running node takes changed files (a live rerun, `lab reproduce --on`): a command
    # run inside it with `sh -c`, done when it exits 0; none given, or not 0: the node restarts
    reload: str | None = None
    installed: Installed = Field(default_factory=Installed)
    signatures: list[LogSignature] = Field(default_factory=list)

    @field_validator("signatures")
    @classmethod
    def _unique(cls, v: list[LogSignature]) -> list[LogSignature]:
        ids = [s.id for s in v]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"signature ids must be unique; repeated: {', '.join(dup)}")
        return v

    def versions_for(self, os_name: str) -> list[str]:
        return [v for v, spec in self.versions.items() if os_name in spec.os]

    def oses(self) -> list[str]:
        seen: list[str] = []
        for spec in self.versions.values():
            for o in spec.os:
                if o not in seen:
                    seen.append(o)
        return seen


class EnvironmentDef(_Strict):
    name: str
    description: str = ""
    distribution: Literal["debian"] = "debian"
    suite: str  # bookworm, bullseye, ...
    registry_image: str | None = None  # tried first when a registry answers
    packages: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Lab:
    path: Path
    definition: LabDef


@dataclass(frozen=True)
class Environment:
    path: Path
    definition: EnvironmentDef


@dataclass(frozen=True)
class Catalog:
    root: Path
    labs: dict[str, Lab]
    environments: dict[str, Environment]

    def lab(self, name: str) -> Lab:
        try:
            return self.labs[name]
        except KeyError:
            raise UsageError(
                f"unknown lab {name!r}; known: {', '.join(sorted(self.labs))}"
            ) from None

    def environment(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments))
            raise UsageError(f"unknown environment {name!r}; known: {known}") from None


def _read(path: Path) -> Located:
    """The file's data and where each key and value is written (for located errors)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    located, problems = load_yaml(text, str(path))
    if problems or located is None:
        raise UsageError("\n".join(str(p) for p in problems) or f"{path}: cannot read")
    return located


def _fail(path: Path, exc: ValidationError, located: Located) -> UsageError:
    """One line per problem: file:line:col: the key's path: what was wrong."""
    lines = []
    for err in exc.errors():
        line, col = located.key_pos(tuple(err["loc"]))
        where = ".".join(str(p) for p in err["loc"]) or "(top)"
        lines.append(f"{path}:{line}:{col}: {where}: {err['msg']}")
    return UsageError("\n".join(lines))


def _check_packages(path: Path, d: LabDef, located: Located) -> None:
    """Every `package:` names a Debian package of its version inside the lab folder: a lab
    folder may come from someone else, so this is refused before any build (exit 2)."""
    lines = []
    for version, spec in d.versions.items():
        if spec.package is None:
            continue
        problem = package_problem(path.parent, spec.package, version)
        if problem is not None:
            line, col = located.value_pos(("versions", version, "package"))
            lines.append(f"{path}:{line}:{col}: versions.{version}.package: {problem}")
    if lines:
        raise UsageError("\n".join(lines))


def load_catalog(root: Path) -> Catalog:
    """Read every labs/*/lab.yaml and environments/*/environment.yaml under the project root."""
    labs: dict[str, Lab] = {}
    for f in sorted((root / "labs").glob("*/lab.yaml")):
        located = _read(f)
        try:
            d = LabDef.model_validate(located.data)
        except ValidationError as exc:
            raise _fail(f, exc, located) from None
        if d.name != f.parent.name:
            raise UsageError(f"{f}: name {d.name!r} must match its folder {f.parent.name!r}")
        _check_packages(f, d, located)
        labs[d.name] = Lab(f.parent, d)
    envs: dict[str, Environment] = {}
    for f in sorted((root / "environments").glob("*/environment.yaml")):
        located = _read(f)
        try:
            e = EnvironmentDef.model_validate(located.data)
        except ValidationError as exc:
            raise _fail(f, exc, located) from None
        if e.name != f.parent.name:
            raise UsageError(f"{f}: name {e.name!r} must match its folder {f.parent.name!r}")
        envs[e.name] = Environment(f.parent, e)
    return Catalog(root, labs, envs)


def find_project_root(start: Path | None = None) -> Path:
    """The nearest folder above `start` holding labs/ or pyproject.toml with labs beside it."""
    here = (start or Path.cwd()).resolve()
    for d in [here, *here.parents]:
        if (d / "labs").is_dir() and (d / "environments").is_dir():
            return d
    raise UsageError(
        f"no labharness project found at or above {here}",
        hint="run from the project folder (it holds labs/ and environments/), or pass --project",
    )
