"""Building and finding images on the Docker engine: environments, labs, plain images.

The plan (what goes in, the hash, the tag) comes from harness.images; this module only makes the
engine hold an image with that tag:

- present by tag -> reused, nothing else happens;
- an environment: pulled `registry_image` plus its packages when a registry answers, else built
  offline with debootstrap from the Debian mirror configured for apt on this machine, then
  imported with `docker import`;
- a lab: `docker build` (legacy builder) of exactly the hashed files, FROM the environment image.

Builds take a per-tag file lock under the cache folder, so two processes building the same tag
wait for each other instead of racing. Progress goes to an optional callback as plain dicts.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.engine.api import LABEL_IMAGE, LABEL_INPUTS, BuildOutcome, ProgressFn
from harness.engine.client import engine_errors
from harness.errors import InfraError, UsageError
from harness.images import (
    FAKETIME_DOCKERFILE,
    EnvPlan,
    FaketimePlan,
    ImagePlan,
    InputFile,
    LabPlan,
    current_tags,
    faketime_plans,
    plan_environment,
    plan_image,
    plan_lab,
)
from harness.scenario.catalog import Catalog, find_project_root, load_catalog
from harness.scenario.resolved import Topology

# More labels on the images the harness builds (LABEL_IMAGE/LABEL_INPUTS come from client.py).
LABEL_KIND = "labharness.kind"  # env | lab
LABEL_LAB = "labharness.lab"
LABEL_VERSION = "labharness.version"
LABEL_OS = "labharness.os"


PULL_TIMEOUT = 15.0  # seconds: a registry that does not answer by then counts as unreachable
TAIL_LINES = 20
_pull_failed: set[str] = set()  # registries (by image ref) that already failed in this process

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Written into every environment image, whichever way it was built.
_APT_CONF = """\
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Acquire::Retries "3";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
"""
_DPKG_EXCLUDES = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
"""


# ---------------------------------------------------------------------------------------------
# small helpers


def cache_dir() -> Path:
    """$LABHARNESS_CACHE, else ~/.cache/labharness (created)."""
    d = Path(os.environ.get("LABHARNESS_CACHE") or Path.home() / ".cache" / "labharness")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _emit(on_progress: ProgressFn | None, image: str, phase: str, line: str = "") -> None:
    if on_progress is not None:
        on_progress({"image": image, "phase": phase, "line": line})


@contextlib.contextmanager
def tag_lock(tag: str, on_progress: ProgressFn | None = None) -> Iterator[None]:
    """An exclusive file lock for one tag; other processes building it wait here."""
    locks = cache_dir() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    path = locks / (re.sub(r"[^A-Za-z0-9_.-]", "_", tag) + ".lock")
    with path.open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _emit(on_progress, tag, "wait", "another process is building this image; waiting")
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def image_exists(client: Any, ref: str) -> bool:
    """True when the engine holds `ref` (a tag or an id)."""
    return not _image_missing(client, ref)


def _image_missing(client: Any, ref: str) -> bool:
    import docker.errors

    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return True
    except docker.errors.APIError as exc:
        raise InfraError(
            f"engine refused to look up image {ref}: {exc.explanation or exc}"
        ) from None
    return False


def apt_mirror(
    sources_dir: Path = Path("/etc/apt/sources.list.d"),
    sources_list: Path = Path("/etc/apt/sources.list"),
) -> str:
    """The Debian archive URI this machine's apt uses (never hard-coded: read from apt's config).

    $LABHARNESS_DEBIAN_MIRROR wins when set. Security and backports sources are skipped.
    """
    override = os.environ.get("LABHARNESS_DEBIAN_MIRROR")
    if override:
        return override
    candidates: list[tuple[str, list[str]]] = []
    if sources_dir.is_dir():
        for f in sorted(sources_dir.glob("*.sources")):
            candidates.extend(_deb822_sources(f))
        for f in sorted(sources_dir.glob("*.list")):
            candidates.extend(_one_line_sources(f))
    if sources_list.is_file():
        candidates.extend(_one_line_sources(sources_list))
    for uri, suites in candidates:
        if "security" in uri or any(s.endswith(("-security", "/updates")) for s in suites):
            continue
        if suites and all(s.endswith("-backports") for s in suites):
            continue
        return uri.rstrip("/")
    raise InfraError(
        "cannot find a Debian mirror in this machine's apt configuration",
        hint="add one to /etc/apt/sources.list.d/ or set LABHARNESS_DEBIAN_MIRROR",
    )


def _deb822_sources(path: Path) -> list[tuple[str, list[str]]]:
    """(uri, suites) of each enabled `deb` stanza of a deb822 .sources file, in file order."""
    out: list[tuple[str, list[str]]] = []
    for stanza in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "deb").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = fields.get("suites", "").split()
        out.extend((uri, suites) for uri in fields.get("uris", "").split())
    return out


def _one_line_sources(path: Path) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = re.sub(r"\[[^\]]*\]", " ", raw.split("#", 1)[0]).split()
        if len(line) >= 3 and line[0] == "deb":
            out.append((line[1], [line[2]]))
    return out


def _labels(plan: EnvPlan | LabPlan) -> dict[str, str]:
    if isinstance(plan, EnvPlan):
        return {
            LABEL_IMAGE: f"env-{plan.name}",
            LABEL_INPUTS: plan.inputs_hash,
            LABEL_KIND: "env",
            LABEL_OS: plan.name,
            LABEL_VERSION: plan.suite,
        }
    return {
        LABEL_IMAGE: f"lab-{plan.lab}",
        LABEL_INPUTS: plan.inputs_hash,
        LABEL_KIND: "lab",
        LABEL_LAB: plan.lab,
        LABEL_VERSION: plan.version,
        LABEL_OS: plan.os,
    }


def _env_config(plan: EnvPlan) -> tuple[list[str] | None, list[str]]:
    """(entrypoint, cmd) of an environment image: tini as PID 1 when installed; stay up."""
    entrypoint = ["/usr/bin/tini", "--"] if "tini" in plan.packages else None
    return entrypoint, ["sleep", "infinity"]


def _failure(what: str, tail: deque[str], hint: str) -> InfraError:
    lines = "\n".join(f"  | {line}" for line in tail) or "  | (no output)"
    return InfraError(f"{what}; last lines of its output:\n{lines}", hint=hint)


# ---------------------------------------------------------------------------------------------
# environments


def _try_registry(client: Any, ref: str, on_progress: ProgressFn | None, image: str) -> bool:
    """True when `ref` is on the engine, pulling it if a registry answers within PULL_TIMEOUT."""
    if not _image_missing(client, ref):
        return True
    if os.environ.get("LABHARNESS_OFFLINE") or ref in _pull_failed:
        return False
    _emit(on_progress, image, "pull", f"trying to pull {ref}")
    result: dict[str, bool] = {}

    def pull() -> None:
        try:
            repo, _, tag = ref.rpartition(":") if ":" in ref.split("/")[-1] else (ref, "", "latest")
            client.api.pull(repo, tag=tag or "latest")
            result["ok"] = True
        except Exception:
            result["ok"] = False

    t = threading.Thread(target=pull, daemon=True, name=f"pull {ref}")
    t.start()
    t.join(PULL_TIMEOUT)
    if result.get("ok") and not _image_missing(client, ref):
        return True
    _pull_failed.add(ref)
    _emit(on_progress, image, "pull", f"no registry answers for {ref}; building offline")
    return False


def _build_env_from_registry(client: Any, plan: EnvPlan, on_progress: ProgressFn | None) -> None:
    entrypoint, cmd = _env_config(plan)
    pkgs = " ".join(plan.packages)
    apt_conf = _APT_CONF.replace("\\", "\\\\").replace("\n", "\\n").replace("'", "'\\''")
    excludes = _DPKG_EXCLUDES.replace("\n", "\\n")
    lines = [
        f"FROM {plan.registry_image}",
        "ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8",
        f"RUN printf '{apt_conf}' > /etc/apt/apt.conf.d/90labharness"
        f" && printf '{excludes}' > /etc/dpkg/dpkg.cfg.d/90labharness"
        + (
            f" && apt-get update && apt-get install -y --no-install-recommends {pkgs}"
            if pkgs
            else ""
        )
        + " && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin",
        "ENV DEBIAN_FRONTEND=",
    ]
    if entrypoint:
        lines.append(f"ENTRYPOINT {json.dumps(entrypoint)}")
    lines.append(f"CMD {json.dumps(cmd)}")
    dockerfile = ("\n".join(lines) + "\n").encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(dockerfile))
    buf.seek(0)
    _docker_build(
        client,
        tag=plan.tag,
        fileobj=buf,
        dockerfile="Dockerfile",
        buildargs={},
        labels=_labels(plan),
        on_progress=on_progress,
        what=f"environment {plan.name}",
        hint=f"check the package names in {plan.folder}/environment.yaml",
    )


def _clean_stale_rootfs(base: Path) -> None:
    """Remove rootfs folders left by killed builds (their pid is in the folder name)."""
    for d in base.glob("rootfs-*"):
        m = re.match(r"rootfs-.*-p(\d+)-", d.name)
        if not m:
            continue
        pid = int(m.group(1))
        try:
            os.kill(pid, 0)
            continue  # still alive
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            continue


def _finalize_rootfs(root: Path) -> None:
    """What a container base image needs after debootstrap: apt/dpkg config, no host leftovers."""
    (root / "etc/apt/apt.conf.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/apt/apt.conf.d/90labharness").write_text(_APT_CONF)
    (root / "etc/dpkg/dpkg.cfg.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/dpkg/dpkg.cfg.d/90labharness").write_text(_DPKG_EXCLUDES)
    # the engine bind-mounts these at run time; never ship the build host's
    for name in ("etc/resolv.conf", "etc/hostname"):
        p = root / name
        if p.is_symlink() or p.exists():
            p.unlink()
        p.write_text("")
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n")
    _prune_caches(root)
    _prune_docs(root / "usr/share/doc")


def _remove(p: Path) -> None:
    """A file, a symlink (never followed) or a whole directory, gone; missing is fine."""
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def _prune_caches(root: Path) -> None:
    """apt's downloads and lists, logs, man and info pages: not needed in a base image."""
    for pattern in (
        "var/cache/apt/archives/*.deb",
        "var/cache/apt/*.bin",
        "var/lib/apt/lists/*",
        "var/log/*.log",
        "var/log/apt/*",
        "usr/share/man/*",
        "usr/share/info/*",
        "usr/share/lintian/*",
    ):
        for p in root.glob(pattern):
            if p.name not in ("partial", "lock"):
                _remove(p)


def _prune_docs(doc: Path) -> None:
    """Every package's docs except its copyright file (the licence text stays)."""
    if not doc.is_dir():
        return
    for pkg in doc.iterdir():
        if pkg.is_dir() and not pkg.is_symlink():
            for item in pkg.iterdir():
                if item.name != "copyright":
                    _remove(item)


def _run_streaming(
    cmd: list[str], image: str, phase: str, on_progress: ProgressFn | None, tail: deque[str]
) -> int:
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        env={**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"},
    )
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            tail.append(line)
            _emit(on_progress, image, phase, line)
        return proc.wait()
    except BaseException:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()
        raise


def _build_env_offline(client: Any, plan: EnvPlan, on_progress: ProgressFn | None) -> None:
    _check_offline_build(plan)
    mirror = apt_mirror()
    base = cache_dir() / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    _clean_stale_rootfs(base)
    debs = cache_dir() / "debs" / plan.suite
    debs.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"rootfs-{plan.name}-p{os.getpid()}-", dir=base))
    try:
        rootfs = work / "rootfs"
        _debootstrap(plan, rootfs, mirror, debs, on_progress)
        _finalize_rootfs(rootfs)
        tarball = work / "rootfs.tar"
        _pack_rootfs(plan, rootfs, tarball, on_progress)
        shutil.rmtree(rootfs, ignore_errors=True)  # free the space before the import
        _import_rootfs(client, plan, tarball, on_progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check_offline_build(plan: EnvPlan) -> None:
    """An offline build needs debootstrap and root: say so before making any directory."""
    if shutil.which("debootstrap") is None:
        raise InfraError(
            f"cannot build environment {plan.name}: no registry answers and debootstrap is "
            "not installed",
            hint="apt-get install -y debootstrap (or make a registry reachable)",
        )
    if os.geteuid() != 0:
        raise InfraError(
            f"cannot build environment {plan.name} offline: debootstrap needs root",
            hint="run `lab images build` once as root (images are then reused by tag)",
        )


def _debootstrap(
    plan: EnvPlan, rootfs: Path, mirror: str, debs: Path, on_progress: ProgressFn | None
) -> None:
    """A minbase root file system of the plan's suite and packages; its log's tail on failure."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    cmd = ["debootstrap", "--variant=minbase", f"--cache-dir={debs}"]
    if plan.packages:
        cmd.append(f"--include={','.join(plan.packages)}")
    cmd += [plan.suite, str(rootfs), mirror]
    _emit(on_progress, plan.tag, "debootstrap", " ".join(cmd))
    rc = _run_streaming(cmd, plan.tag, "debootstrap", on_progress, tail)
    if rc != 0:
        log = rootfs / "debootstrap/debootstrap.log"
        if log.is_file():
            tail.extend(log.read_text(errors="replace").splitlines()[-TAIL_LINES:])
        raise _failure(
            f"debootstrap of {plan.suite} for environment {plan.name} failed (exit {rc})",
            tail,
            hint=f"check the mirror {mirror} (read from /etc/apt) and the package names "
            f"in {plan.folder}/environment.yaml",
        )


def _pack_rootfs(
    plan: EnvPlan, rootfs: Path, tarball: Path, on_progress: ProgressFn | None
) -> None:
    """The root file system as one tar, numeric owners and xattrs kept, for `docker import`."""
    _emit(on_progress, plan.tag, "import", "packing the root file system")
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    rc = _run_streaming(
        ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", str(rootfs),
         "-cf", str(tarball), "."],
        plan.tag, "import", on_progress, tail,
    )  # fmt: skip
    if rc != 0:
        raise _failure(f"packing {rootfs} failed (exit {rc})", tail, hint="disk full?")


def _import_rootfs(
    client: Any, plan: EnvPlan, tarball: Path, on_progress: ProgressFn | None
) -> None:
    """The tar imported as the plan's tag, with its PATH, entrypoint, command and labels."""
    entrypoint, cmd_default = _env_config(plan)
    changes = [f"ENV PATH={DEFAULT_PATH}", "ENV LANG=C.UTF-8"]
    if entrypoint:
        changes.append(f"ENTRYPOINT {json.dumps(entrypoint)}")
    changes.append(f"CMD {json.dumps(cmd_default)}")
    changes += [f"LABEL {k}={json.dumps(v)}" for k, v in _labels(plan).items()]
    _emit(on_progress, plan.tag, "import", f"docker import as {plan.tag}")
    repo, _, tag = plan.tag.rpartition(":")
    with engine_errors(f"import environment {plan.name}"):
        out = client.api.import_image(src=str(tarball), repository=repo, tag=tag, changes=changes)
    text = out if isinstance(out, str) else json.dumps(out)
    if "error" in text.lower() and _image_missing(client, plan.tag):
        raise InfraError(f"docker import of environment {plan.name} failed: {text[-500:]}")
    _emit(on_progress, plan.tag, "import", text.strip()[:200])


def _ensure_env_plan(client: Any, plan: EnvPlan, on_progress: ProgressFn | None) -> BuildOutcome:
    start = time.monotonic()
    if not _image_missing(client, plan.tag):
        _emit(on_progress, plan.tag, "reused", "already on the engine")
        return BuildOutcome(plan.tag, "env", False, time.monotonic() - start, "reused")
    with tag_lock(plan.tag, on_progress):
        if not _image_missing(client, plan.tag):  # built by another process meanwhile
            _emit(on_progress, plan.tag, "reused", "built by another process")
            return BuildOutcome(plan.tag, "env", False, time.monotonic() - start, "reused")
        how = "debootstrap"
        if plan.registry_image and _try_registry(client, plan.registry_image, on_progress,
                                                 plan.tag):  # fmt: skip
            how = "registry"
            _build_env_from_registry(client, plan, on_progress)
        else:
            _build_env_offline(client, plan, on_progress)
    seconds = time.monotonic() - start
    _emit(on_progress, plan.tag, "done", f"built in {seconds:.1f} s ({how})")
    return BuildOutcome(plan.tag, "env", True, seconds, how)


# ---------------------------------------------------------------------------------------------
# labs


def _read_as_hashed(f: InputFile) -> bytes:
    """A build input's bytes, read without following a symlink and only if they are still
    the bytes the image's tag was hashed from: a file swapped for a link (to a host file)
    between planning and building is refused, not copied into the image."""
    try:
        fd = os.open(f.source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise UsageError(f"{f.source}: cannot read this build input: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise UsageError(f"{f.source}: this build input is no longer a regular file")
        data = fh.read()
    if hashlib.sha256(data).hexdigest() != f.sha256:
        raise UsageError(
            f"{f.source}: this build input changed after it was hashed; run again",
        )
    return data


def _context_tar(plan: LabPlan) -> io.BytesIO:
    """Exactly the hashed files (nothing else reaches the builder), with their modes; a tar
    built here, so the builder never sees a symlink to follow."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in plan.files:
            data = _read_as_hashed(f)
            info = tarfile.TarInfo(f.path)
            info.size = len(data)
            info.mode = f.mode
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def _docker_build(
    client: Any,
    *,
    tag: str,
    fileobj: io.BytesIO,
    dockerfile: str,
    buildargs: dict[str, str],
    labels: dict[str, str],
    on_progress: ProgressFn | None,
    what: str,
    hint: str,
) -> None:
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    error: str | None = None
    with engine_errors(f"build {what}"):
        stream = client.api.build(
            fileobj=fileobj,
            custom_context=True,
            tag=tag,
            dockerfile=dockerfile,
            buildargs=buildargs,
            labels=labels,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        )
        pending = ""
        for chunk in stream:
            if "stream" in chunk:
                pending += str(chunk["stream"])
                *lines, pending = pending.split("\n")
                for line in lines:
                    tail.append(line)
                    _emit(on_progress, tag, "build", line)
            elif "error" in chunk:
                error = str(chunk.get("error") or chunk.get("errorDetail"))
            elif "status" in chunk:
                _emit(on_progress, tag, "build", str(chunk["status"]))
        if pending:
            tail.append(pending)
            _emit(on_progress, tag, "build", pending)
    if error is not None:
        tail.append(error.rstrip())
        raise _failure(f"building {what} failed: {error.strip().splitlines()[-1]}", tail, hint)
    if _image_missing(client, tag):
        raise _failure(f"building {what} produced no image {tag}", tail, hint)


def _ensure_lab_plan(client: Any, plan: LabPlan, on_progress: ProgressFn | None) -> BuildOutcome:
    start = time.monotonic()
    if not _image_missing(client, plan.tag):
        _emit(on_progress, plan.tag, "reused", "already on the engine")
        return BuildOutcome(plan.tag, "lab", False, time.monotonic() - start, "reused")
    _ensure_env_plan(client, plan.env, on_progress)
    with tag_lock(plan.tag, on_progress):
        if not _image_missing(client, plan.tag):
            _emit(on_progress, plan.tag, "reused", "built by another process")
            return BuildOutcome(plan.tag, "lab", False, time.monotonic() - start, "reused")
        _docker_build(
            client,
            tag=plan.tag,
            fileobj=_context_tar(plan),
            dockerfile=plan.dockerfile,
            buildargs=plan.args(),
            labels=_labels(plan),
            on_progress=on_progress,
            what=f"lab {plan.lab} {plan.version} on {plan.os}",
            hint=f"fix {plan.context / plan.dockerfile} (or the files it uses), then build again",
        )
    seconds = time.monotonic() - start
    _emit(on_progress, plan.tag, "done", f"built in {seconds:.1f} s")
    return BuildOutcome(plan.tag, "lab", True, seconds, "build")


def _faketime_context() -> io.BytesIO:
    data = FAKETIME_DOCKERFILE.encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size, info.mtime = len(data), 0
        tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def ensure_faketime(
    client: Any, plan: FaketimePlan, on_progress: ProgressFn | None = None
) -> BuildOutcome:
    """The image `clock:` nodes of one environment take libfaketime from (built once, from
    the environment's own Debian archive, then reused by tag)."""
    start = time.monotonic()
    if not _image_missing(client, plan.tag):
        _emit(on_progress, plan.tag, "reused", "already on the engine")
        return BuildOutcome(plan.tag, "faketime", False, time.monotonic() - start, "reused")
    _ensure_env_plan(client, plan.env, on_progress)
    with tag_lock(plan.tag, on_progress):
        if _image_missing(client, plan.tag):
            _docker_build(
                client,
                tag=plan.tag,
                fileobj=_faketime_context(),
                dockerfile="Dockerfile",
                buildargs={"BASE_IMAGE": plan.env.tag},
                labels={
                    LABEL_IMAGE: f"faketime-{plan.os}",
                    LABEL_INPUTS: plan.inputs_hash,
                    LABEL_KIND: "faketime",
                    LABEL_OS: plan.os,
                },
                on_progress=on_progress,
                what=f"libfaketime for {plan.os}",
                hint="`clock:` needs the package libfaketime from the environment's Debian "
                "archive: check that the engine's containers reach it",
            )
    seconds = time.monotonic() - start
    _emit(on_progress, plan.tag, "done", f"built in {seconds:.1f} s")
    return BuildOutcome(plan.tag, "faketime", True, seconds, "build")


# ---------------------------------------------------------------------------------------------
# public API


def ensure_plan(
    client: Any, plan: ImagePlan, *, on_progress: ProgressFn | None = None
) -> BuildOutcome:
    """Make the engine hold the image a plan describes; build it (and its base) if missing."""
    if isinstance(plan, EnvPlan):
        return _ensure_env_plan(client, plan, on_progress)
    if isinstance(plan, LabPlan):
        return _ensure_lab_plan(client, plan, on_progress)
    start = time.monotonic()
    ref = plan.ref
    if _try_registry(client, ref, on_progress, ref):
        return BuildOutcome(ref, "plain", False, time.monotonic() - start, "local")
    raise InfraError(
        f"image {ref} is not on the engine and no registry answers",
        hint=f"load it first (`docker load -i {ref.split('/')[-1].replace(':', '_')}.tar`), "
        "or use a lab or an environment instead",
    )


def ensure_environment(
    client: Any, catalog: Catalog, os_name: str, *, on_progress: ProgressFn | None = None
) -> str:
    """The tag of environment `os_name`'s image, building it if it is not on the engine."""
    return _ensure_env_plan(client, plan_environment(catalog, os_name), on_progress).tag


def ensure_lab_image(
    client: Any,
    catalog: Catalog,
    lab: str,
    version: str,
    os_name: str,
    *,
    on_progress: ProgressFn | None = None,
) -> str:
    """The tag of `lab` `version` on `os_name`, building it (and its environment) if missing."""
    return _ensure_lab_plan(client, plan_lab(catalog, lab, version, os_name), on_progress).tag


def ensure_images(
    client: Any,
    topology: Topology,
    catalog: Catalog | None = None,
    *,
    on_progress: ProgressFn | None = None,
) -> dict[str, str]:
    """{node name: image tag} for every node; builds what is missing, each distinct image once.

    Without `catalog`, the project is found above the scenario file (or the current folder).
    """
    if catalog is None:
        start = topology.source.parent if topology.source else None
        catalog = load_catalog(find_project_root(start))
    plans: dict[str, ImagePlan] = {n.name: plan_image(catalog, n.image) for n in topology.nodes}
    done: dict[str, str] = {}
    result: dict[str, str] = {}
    for node, plan in plans.items():
        if plan.tag not in done:
            done[plan.tag] = ensure_plan(client, plan, on_progress=on_progress).tag
        result[node] = done[plan.tag]
    for clock in faketime_plans(catalog, topology):  # only when a node has `clock:`
        ensure_faketime(client, clock, on_progress)
    return result


def _short_tags(image: Any) -> list[str]:
    """The tags of an image the harness built itself (an image built FROM one of ours inherits
    its labels: only tags in our repositories ending with the inputs hash count)."""
    labels = image.labels or {}
    inputs = labels.get(LABEL_INPUTS, "")[:12]
    name = labels.get(LABEL_IMAGE, "")
    if not inputs or not name:
        return []
    return [
        t for t in (image.tags or []) if t.startswith(f"labharness/{name}:") and t.endswith(inputs)
    ]


def _short_id(image: Any) -> str:
    return str(image.id).removeprefix("sha256:")[:12]


def list_images(client: Any, catalog: Catalog | None = None) -> list[dict[str, Any]]:
    """Every image the harness built: tag, kind, name, version, os, size, created, current."""
    with engine_errors("list images"):
        images = client.images.list(filters={"label": LABEL_IMAGE})
    current = current_tags(catalog) if catalog is not None else None
    rows: list[dict[str, Any]] = []
    for img in images:
        labels = img.labels or {}
        for tag in _short_tags(img):
            rows.append(
                {
                    "tag": tag,
                    "id": _short_id(img),
                    "kind": labels.get(LABEL_KIND, "?"),
                    "name": labels.get(LABEL_LAB) or labels.get(LABEL_OS, "?"),
                    "version": labels.get(LABEL_VERSION, ""),
                    "os": labels.get(LABEL_OS, ""),
                    "inputs": labels.get(LABEL_INPUTS, "")[:12],
                    "size_mb": round(int(img.attrs.get("Size", 0)) / 1e6, 1),
                    "created": str(img.attrs.get("Created", ""))[:19],
                    "current": None if current is None else tag in current,
                }
            )
    rows.sort(key=lambda r: (r["kind"] != "env", r["name"], r["version"], r["os"], r["tag"]))
    return rows


def prune_images(
    client: Any, catalog: Catalog, *, keep_current: bool = True, only: str | None = None
) -> list[dict[str, Any]]:
    """Remove harness-built images: stale ones (tag no longer current), or all with
    keep_current=False. Never images a container (running or stopped) uses, never others'.

    `only`: consider only tags starting with this prefix (e.g. "labharness/lab-nginx:").
    Returns one row per image considered: {"tag", "action": removed|kept|in-use|failed, ...}.
    """
    import docker.errors

    current = current_tags(catalog)
    with engine_errors("list images and containers"):
        images = client.images.list(filters={"label": LABEL_IMAGE})
        # sparse: one call, and a container another run removes meanwhile cannot fail it
        in_use = {c.attrs.get("ImageID") for c in client.containers.list(all=True, sparse=True)}
    rows: list[dict[str, Any]] = []
    # labs first: an environment image is the parent of lab images
    images.sort(key=lambda i: (i.labels or {}).get(LABEL_KIND) == "env")
    for img in images:
        tags = [t for t in _short_tags(img) if only is None or t.startswith(only)]
        # (untagged or not ours: never touched)
        if img.id in in_use:
            rows += [{"tag": t, "id": _short_id(img), "action": "in-use"} for t in tags]
            continue
        for tag in tags:
            if keep_current and tag in current:
                rows.append({"tag": tag, "id": _short_id(img), "action": "kept"})
                continue
            try:
                client.images.remove(tag, noprune=False)
                rows.append({"tag": tag, "id": _short_id(img), "action": "removed"})
            except docker.errors.APIError as exc:
                reason = str(exc.explanation or exc)
                rows.append({"tag": tag, "id": _short_id(img), "action": "failed", "why": reason})
    return rows
