"""Image planning: what goes into an environment or lab image, its content hash and its tag.

Pure: reads the catalog's files, never talks to an engine. The Docker side
(harness/engine/images.py) builds exactly what a plan describes, so the hash covers everything
that can change the image:

- an environment: its environment.yaml (as parsed) and every other file in its folder (recipes);
- a lab image: every file in the build context (sorted relative paths, file modes and contents,
  after .dockerignore), the Dockerfile name, the version, the build args, and the hash of the
  environment image it builds on.

Same inputs -> same tag; any change -> a new tag. Tags:
``labharness/env-<os>:<hash12>`` and ``labharness/lab-<lab>:<version>-<os>-<hash12>``.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import UsageError
from harness.scenario.catalog import Catalog
from harness.scenario.resolved import (
    FAKETIME_DIR,
    EnvImage,
    ImageSource,
    LabImage,
    PlainImage,
    Topology,
    node_os,
)

# Bump when the builder itself changes in a way that changes images (debootstrap flags, the
# rootfs clean-up, the env Dockerfile template...): every tag changes with it.
BUILDER_VERSION = "1"
REPO_PREFIX = "labharness"
HASH_LEN = 12

# Never build inputs, whatever .dockerignore says.
ALWAYS_IGNORED = ("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".git")


@dataclass(frozen=True)
class InputFile:
    """One file of a build context: its path relative to the context, mode and content hash."""

    path: str  # posix, relative
    mode: int  # permission bits (0o755...)
    sha256: str
    source: Path  # absolute path on the host

    def digest_line(self) -> str:
        return f"{self.path}\0{self.mode:o}\0{self.sha256}"


@dataclass(frozen=True)
class EnvPlan:
    """How to build one environment's base image."""

    name: str  # debian-12
    suite: str  # bookworm
    distribution: str
    registry_image: str | None
    packages: tuple[str, ...]
    folder: Path
    files: tuple[InputFile, ...]  # every file in the environment folder (environment.yaml too)
    inputs_hash: str  # full hex sha256

    @property
    def repository(self) -> str:
        return f"{REPO_PREFIX}/env-{self.name}"

    @property
    def tag(self) -> str:
        return f"{self.repository}:{self.inputs_hash[:HASH_LEN]}"

    @property
    def kind(self) -> str:
        return "env"

    def describe(self) -> dict[str, str]:
        return {"kind": "env", "name": self.name, "os": self.name, "version": self.suite}


@dataclass(frozen=True)
class LabPlan:
    """How to build one lab image: one version on one environment."""

    lab: str
    version: str
    os: str
    context: Path  # absolute build-context folder
    dockerfile: str  # relative to the context
    build_args: tuple[tuple[str, str], ...]  # sorted; BASE_IMAGE and LAB_VERSION included
    files: tuple[InputFile, ...]
    env: EnvPlan
    inputs_hash: str

    @property
    def repository(self) -> str:
        return f"{REPO_PREFIX}/lab-{self.lab}"

    @property
    def tag(self) -> str:
        return (
            f"{self.repository}:{_tag_safe(self.version)}-{self.os}-{self.inputs_hash[:HASH_LEN]}"
        )

    @property
    def kind(self) -> str:
        return "lab"

    def args(self) -> dict[str, str]:
        return dict(self.build_args)

    def describe(self) -> dict[str, str]:
        return {"kind": "lab", "name": self.lab, "os": self.os, "version": self.version}


@dataclass(frozen=True)
class PlainPlan:
    """An image the scenario names directly; nothing to build."""

    ref: str
    files: tuple[InputFile, ...] = field(default=())

    @property
    def tag(self) -> str:
        return self.ref

    @property
    def kind(self) -> str:
        return "plain"


ImagePlan = EnvPlan | LabPlan | PlainPlan

# The libfaketime a `clock:` node gets, from the Debian archive of the node's own environment
# (its C library's ABI), gathered at one path whatever the architecture's multiarch folder.
FAKETIME_DOCKERFILE = f"""\
ARG BASE_IMAGE
FROM ${{BASE_IMAGE}}
RUN set -eu; apt-get update; \\
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libfaketime; \\
    mkdir -p {FAKETIME_DIR}; \\
    cp "$(dpkg -L libfaketime | grep '/libfaketime\\.so\\.1$')" {FAKETIME_DIR}/; \\
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin; \\
    dpkg-query -W libfaketime
"""


@dataclass(frozen=True)
class FaketimePlan:
    """The image libfaketime is taken from for `clock:` nodes of one environment. Never a
    node's image: the library is copied into the node's container, so the node's own image
    (and every image of a scenario without `clock:`) stays as it is."""

    env: EnvPlan
    inputs_hash: str

    @property
    def os(self) -> str:
        return self.env.name

    @property
    def repository(self) -> str:
        return f"{REPO_PREFIX}/faketime-{self.env.name}"

    @property
    def tag(self) -> str:
        return f"{self.repository}:{self.inputs_hash[:HASH_LEN]}"

    @property
    def kind(self) -> str:
        return "faketime"


def _tag_safe(text: str) -> str:
    """Docker tags allow [A-Za-z0-9_.-], at most 128 characters."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:64]


def _sha256_file(path: Path) -> str:
    """The content hash of a regular file, opened without following a symlink in its place."""
    return hash_regular(path)[1]


def hash_regular(path: Path) -> tuple[int, str]:
    """(permission bits, sha256) of the regular file at `path`, read from the descriptor that
    was checked: a symlink, fifo or device swapped in is refused, never followed or waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(f"{path}: became a symlink while the build inputs were read") from None
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{path}: not a regular file")
        h = hashlib.sha256()
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return stat.S_IMODE(st.st_mode), h.hexdigest()


def outside_link(link: Path, context: Path) -> str | None:
    """Why the symlink `link` may not be in the build context `context` (absolute, resolved),
    or None when it resolves to somewhere inside it. A link out of the folder would put a host
    file (labs/evil/loot -> /etc/shadow, then `COPY loot /loot`) into the image."""
    target = Path(os.path.realpath(link))
    if target == context or target.is_relative_to(context):
        return None
    return (
        f"{link}: a symlink to {os.readlink(link)!r}, which resolves to {target}, outside the "
        f"build context {context}; nothing outside a lab's folder may go into its image "
        "(copy the file into the folder instead)"
    )


def read_ignore_file(context: Path) -> list[str]:
    """Patterns from <context>/.dockerignore (simple globs; `!` exceptions are not supported)."""
    f = context / ".dockerignore"
    if not f.is_file():
        return []
    patterns: list[str] = []
    for raw in f.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            raise UsageError(f"{f}: exception patterns ('{line}') are not supported")
        patterns.append(line.strip("/").removeprefix("./"))
    return patterns


def _ignored(rel: str, patterns: list[str]) -> bool:
    parts = rel.split("/")
    for p in ALWAYS_IGNORED:
        if any(fnmatch.fnmatchcase(part, p) for part in parts):
            return True
    # a pattern matches the path itself or any folder above it
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatchcase(pre, pat) for pat in patterns for pre in prefixes)


def context_files(context: Path, *, honour_ignore: bool = True) -> tuple[InputFile, ...]:
    """Every regular file under `context`, sorted by relative path. A symlink is followed only
    when it resolves inside the context; one that leads outside is a UsageError naming it."""
    if not context.is_dir():
        raise UsageError(f"build context {context} is not a folder")
    real = Path(os.path.realpath(context))
    patterns = read_ignore_file(context) if honour_ignore else []
    out: list[InputFile] = []
    for dirpath, dirnames, filenames in os.walk(context):
        dirnames.sort()
        base = Path(dirpath)
        for d in dirnames:  # os.walk does not descend into linked folders: only check them
            link = base / d
            if link.is_symlink() and not _ignored(link.relative_to(context).as_posix(), patterns):
                problem = outside_link(link, real)
                if problem is not None:
                    raise UsageError(problem)
        for name in sorted(filenames):
            p = base / name
            rel = p.relative_to(context).as_posix()
            if _ignored(rel, patterns):
                continue
            source = p
            if p.is_symlink():
                problem = outside_link(p, real)
                if problem is not None:
                    raise UsageError(problem)
                source = Path(os.path.realpath(p))
            try:
                st = source.lstat()
            except OSError as exc:
                raise UsageError(f"{p}: cannot read: {exc.strerror}") from None
            if not stat.S_ISREG(st.st_mode):
                continue
            mode, digest = hash_regular(source)
            out.append(InputFile(rel, mode, digest, source))
    out.sort(key=lambda f: f.path)
    return tuple(out)


def _digest(parts: list[str]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def plan_environment(catalog: Catalog, os_name: str) -> EnvPlan:
    env = catalog.environment(os_name)
    d = env.definition
    files = context_files(env.path, honour_ignore=False)
    # environment.yaml enters both as parsed (so comments/formatting alone do not matter...)
    # ...and, like every recipe file, by content (anything in the folder is an input).
    parts = [
        f"labharness-env builder={BUILDER_VERSION}",
        json.dumps(d.model_dump(mode="json"), sort_keys=True),
        *(f.digest_line() for f in files),
    ]
    return EnvPlan(
        name=d.name,
        suite=d.suite,
        distribution=d.distribution,
        registry_image=d.registry_image,
        packages=tuple(d.packages),
        folder=env.path,
        files=files,
        inputs_hash=_digest(parts),
    )


def plan_lab(catalog: Catalog, lab: str, version: str, os_name: str) -> LabPlan:
    entry = catalog.lab(lab)
    d = entry.definition
    spec = d.versions.get(version)
    if spec is None:
        known = ", ".join(d.versions)
        raise UsageError(f"lab {lab!r} has no version {version!r}; known: {known}")
    if os_name not in spec.os:
        raise UsageError(
            f"lab {lab!r} version {version!r} does not build on {os_name!r}; "
            f"it builds on: {', '.join(spec.os)}"
        )
    env = plan_environment(catalog, os_name)
    context = (entry.path / d.build.context).resolve()
    lab_root = entry.path.resolve()
    if context != lab_root and lab_root not in context.parents:
        raise UsageError(f"lab {lab!r}: build context {d.build.context!r} leaves the lab folder")
    files = context_files(context)
    dockerfile = d.build.dockerfile
    if not (context / dockerfile).is_file():
        raise UsageError(f"lab {lab!r}: no {dockerfile} in {context}")
    if dockerfile not in {f.path for f in files}:
        raise UsageError(f"lab {lab!r}: {dockerfile} is excluded by .dockerignore")
    args = {**d.build.args, **spec.build_args, "BASE_IMAGE": env.tag, "LAB_VERSION": version}
    if spec.package is not None:
        args["LAB_PACKAGE"] = _package_in_context(lab, spec.package, lab_root, context, files)
        _check_takes_package(lab, context / dockerfile)
    build_args = tuple(sorted(args.items()))
    parts = [
        f"labharness-lab builder={BUILDER_VERSION}",
        f"lab={d.name}",
        f"version={version}",
        f"os={os_name}",
        f"env={env.inputs_hash}",
        f"dockerfile={dockerfile}",
        *(f"arg {k}={v}" for k, v in build_args),
        *(f.digest_line() for f in files),
    ]
    return LabPlan(
        lab=d.name,
        version=version,
        os=os_name,
        context=context,
        dockerfile=dockerfile,
        build_args=build_args,
        files=files,
        env=env,
        inputs_hash=_digest(parts),
    )


def _package_in_context(
    lab: str, package: str, lab_root: Path, context: Path, files: tuple[InputFile, ...]
) -> str:
    """The package's path in the build context (LAB_PACKAGE): it must be one of the hashed
    files, so that its bytes are in the tag and the build gets exactly them."""
    rel = Path(os.path.relpath(lab_root / package, context)).as_posix()
    if rel.startswith("../"):
        raise UsageError(f"lab {lab!r}: package {package!r} is outside the build context {context}")
    if rel not in {f.path for f in files}:
        raise UsageError(f"lab {lab!r}: package {package!r} is excluded by .dockerignore")
    return rel


def _check_takes_package(lab: str, dockerfile: Path) -> None:
    """A Dockerfile that never declares `ARG LAB_PACKAGE` would build the version without its
    package (Docker only warns about an unused build arg): refuse that before building."""
    text = dockerfile.read_text(encoding="utf-8", errors="replace")
    if not re.search(r"(?im)^\s*ARG\s+LAB_PACKAGE\b", text):
        raise UsageError(
            f"lab {lab!r}: a version has a package, but {dockerfile} declares no "
            "`ARG LAB_PACKAGE` to install it (see labs/sample-product/Dockerfile)"
        )


def plan_faketime(catalog: Catalog, os_name: str) -> FaketimePlan:
    env = plan_environment(catalog, os_name)
    parts = [f"labharness-faketime builder={BUILDER_VERSION}", env.inputs_hash, FAKETIME_DOCKERFILE]
    return FaketimePlan(env, _digest(parts))


def faketime_plans(catalog: Catalog, topology: Topology) -> list[FaketimePlan]:
    """One libfaketime image per environment that `clock:` nodes run on (none without)."""
    oses = {node_os(n.image) for n in topology.nodes if n.settings.clock is not None}
    return [plan_faketime(catalog, o) for o in sorted(o for o in oses if o is not None)]


def plan_image(catalog: Catalog, source: ImageSource) -> ImagePlan:
    """The plan for a node's image source."""
    if isinstance(source, LabImage):
        return plan_lab(catalog, source.lab, source.version, source.os)
    if isinstance(source, EnvImage):
        return plan_environment(catalog, source.os)
    if isinstance(source, PlainImage):
        return PlainPlan(source.ref)
    raise TypeError(f"unknown image source {source!r}")


def plan_all(
    catalog: Catalog,
    labs: list[str] | None = None,
    oses: list[str] | None = None,
) -> tuple[list[EnvPlan], list[LabPlan]]:
    """Every environment and every lab version on every OS it builds on (or a subset).

    `labs`/`oses` restrict the set; unknown names are a UsageError. With `labs` given, only the
    environments those labs need are included (restricted to `oses` when also given).
    """
    for name in oses or []:
        catalog.environment(name)
    for name in labs or []:
        catalog.lab(name)
    lab_plans: list[LabPlan] = []
    for name in sorted(catalog.labs):
        if labs is not None and name not in labs:
            continue
        d = catalog.labs[name].definition
        for version, spec in d.versions.items():
            for os_name in spec.os:
                if oses is not None and os_name not in oses:
                    continue
                lab_plans.append(plan_lab(catalog, name, version, os_name))
    if labs is None:
        env_names = sorted(n for n in catalog.environments if oses is None or n in oses)
    else:
        env_names = sorted({p.os for p in lab_plans})
    env_plans = [plan_environment(catalog, n) for n in env_names]
    return env_plans, lab_plans


def current_tags(catalog: Catalog) -> set[str]:
    """The tags every current catalog entry maps to (what `prune` keeps)."""
    envs, labs = plan_all(catalog)
    clocks = {plan_faketime(catalog, p.name).tag for p in envs}
    return {p.tag for p in envs} | {p.tag for p in labs} | clocks
