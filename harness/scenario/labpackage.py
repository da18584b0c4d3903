"""A lab version delivered as a package kept in the lab folder (lab.yaml `versions.<v>.package`).

A vendor's hotfix .deb that no archive carries: the lab's Dockerfile installs it (LAB_PACKAGE)
and, being a file of the build context, its bytes are in the image tag's hash. A lab folder may
come from someone else (untrusted), so the file is checked before anything is built: inside the
lab folder (no absolute path, no `..`, no symlink leading out), a regular file under
MAX_PACKAGE_BYTES, a Debian package whose version is the lab version. Nothing of the package
runs on the host: its fields are read with `dpkg-deb --field`, inside a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path, PurePosixPath

from harness.sizes import MiB, env_limit, human

MAX_PACKAGE_BYTES = 64 * MiB  # one package file; the sample product's .deb is under 5 KiB
PACKAGE_LIMIT_VAR = "LABHARNESS_MAX_PACKAGE_BYTES"
DPKG_DEB_TIMEOUT = 20.0  # seconds for `dpkg-deb --field` on one file
_AR_MAGIC = b"!<arch>\n"

# (real path, device, inode, size, mtime) -> the package's (Package, Version): the catalog is
# loaded many times per command, dpkg-deb need run once per file.
_fields_cache: dict[tuple[str, int, int, int, int], tuple[str, str] | str] = {}


def upstream_version(debian_version: str) -> str:
    """`1:1.5.0-1` -> `1.5.0`: without the epoch and the Debian revision."""
    v = debian_version.split(":", 1)[1] if ":" in debian_version else debian_version
    return v.rsplit("-", 1)[0] if "-" in v else v


def version_matches(lab_version: str, upstream: str) -> bool:
    """The same rule as the labs' Dockerfiles: `1.5` accepts `1.5` and `1.5.0`, not `1.50`."""
    return upstream == lab_version or upstream.startswith(lab_version + ".")


def package_problem(lab_dir: Path, rel: str, lab_version: str) -> str | None:
    """Why `rel` (lab.yaml's `package:`) cannot deliver `lab_version`, or None when it can."""
    located = _locate(lab_dir, rel)
    if isinstance(located, str):
        return located
    path, real = located
    try:
        st = os.stat(real)
    except OSError as exc:
        return f"{path}: cannot read: {exc.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file"
    most = env_limit(PACKAGE_LIMIT_VAR, MAX_PACKAGE_BYTES)
    if st.st_size > most:
        return (
            f"{path} is {human(st.st_size)}, over the limit of {human(most)} "
            f"(MAX_PACKAGE_BYTES; ${PACKAGE_LIMIT_VAR} raises it)"
        )
    fields = _fields(real, st)
    if isinstance(fields, str):
        return f"{path}: {fields}"
    name, version = fields
    if name and not version_matches(lab_version, upstream_version(version)):
        return (
            f"{path} is package {name} version {version!r}, not {lab_version}: declare it as "
            f"version {upstream_version(version)!r}, or use the package of {lab_version}"
        )
    return None


def _locate(lab_dir: Path, rel: str) -> tuple[Path, Path] | str:
    """(path as written, path resolved) of a file that exists inside the lab folder, or why
    not: an untrusted lab.yaml must not reach a host file by path or by symlink."""
    pure = PurePosixPath(rel)
    if pure.is_absolute() or rel.startswith("~") or "\\" in rel:
        return f"{rel!r} must be a path relative to the lab folder {lab_dir}"
    if ".." in pure.parts:
        return f"{rel!r} leaves the lab folder ('..'); keep the package inside {lab_dir}"
    path = lab_dir / rel
    if not os.path.lexists(path):
        return f"no such file {path} (put the package in the lab folder)"
    real = Path(os.path.realpath(path))
    lab_real = Path(os.path.realpath(lab_dir))
    if not real.is_relative_to(lab_real):
        return (
            f"{path} resolves to {real}, outside the lab folder {lab_real}; nothing outside a "
            "lab's folder may go into its image (copy the file into the folder instead)"
        )
    return path, real


def _fields(real: Path, st: os.stat_result) -> tuple[str, str] | str:
    """(Package, Version) of the .deb at `real`, or why it is not a Debian package (cached)."""
    key = (str(real), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _fields_cache:
        _fields_cache[key] = _read_fields(real)
    return _fields_cache[key]


def _read_fields(real: Path) -> tuple[str, str] | str:
    """The ar magic checked here first, so dpkg-deb only ever sees something shaped like one."""
    try:
        with real.open("rb") as f:
            head = f.read(len(_AR_MAGIC) + 16)
    except OSError as exc:
        return f"cannot read: {exc.strerror}"
    if not head.startswith(_AR_MAGIC) or not head[len(_AR_MAGIC) :].startswith(b"debian-binary"):
        return "not a Debian package (a .deb is an ar archive starting with debian-binary)"
    dpkg_deb = shutil.which("dpkg-deb")
    if dpkg_deb is None:
        return ("", "")  # cannot read its fields here; the image build checks the version
    with tempfile.TemporaryDirectory(prefix="labharness-deb-") as tmp:
        try:
            p = subprocess.run(
                [dpkg_deb, "--field", str(real), "Package", "Version"],
                capture_output=True,
                text=True,
                errors="replace",
                timeout=DPKG_DEB_TIMEOUT,
                cwd=tmp,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMPDIR": tmp, "LC_ALL": "C"},
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"dpkg-deb did not read it within {DPKG_DEB_TIMEOUT:.0f} s"
    if p.returncode != 0:
        why = (p.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return f"not a Debian package (dpkg-deb: {why})"
    values = dict(
        (k.strip(), v.strip())
        for k, _, v in (line.partition(":") for line in p.stdout.splitlines())
    )
    if not values.get("Package") or not values.get("Version"):
        return "not a Debian package (its control file has no Package or Version field)"
    return values["Package"], values["Version"]
