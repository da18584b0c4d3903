"""What a sosreport says about its host, parsed from the report's own text files (pure).

The reader (harness/sosreport.py) hands over the few files named in PARTS and the config
folders the catalog asks for, as bytes keyed by their path inside the report; this module turns
them into typed facts: the OS (os-release), the installed packages (`dpkg -l`, or the
installed-rpms list) and the host's addresses (`ip -o addr`, or plain `ip addr`). Nothing here
touches the disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.errors import UsageError
from harness.scenario.readfile import Unreadable, decode_text

# Each part a scenario needs, with the paths sos writes it to (first found wins). The top-level
# names (installed-debs, ip_addr) are sos's own symlinks into sos_commands/.
PARTS: dict[str, tuple[str, ...]] = {
    "os-release": ("etc/os-release", "usr/lib/os-release"),
    "packages": (
        "sos_commands/dpkg/dpkg_-l",
        "installed-debs",
        "installed-rpms",
        "sos_commands/rpm/package-data",
    ),
    "addresses": (
        "sos_commands/networking/ip_-o_addr",  # sos 4.0-4.4
        "ip_addr",  # sos's link to whichever it ran
        "sos_commands/networking/ip_-d_address",  # newer sos
        "sos_commands/networking/ip_addr",
    ),
    "hostname": ("hostname", "sos_commands/host/hostname", "etc/hostname"),
}
# read whole, whatever the file's name: sos links installed-rpms to a command-named file here
PART_FOLDERS = ("sos_commands/rpm/",)
REQUIRED = ("os-release", "packages")  # without these no scenario can be written
# what says a folder or archive is a sosreport at all
MARKERS = ("sos_commands", "sos_logs", "sos_reports", "version.txt")


@dataclass(frozen=True)
class Skipped:
    """Something in the report that was not carried over, and why (said to the user)."""

    path: str
    reason: str


@dataclass(frozen=True)
class SosEvidence:
    """The parts of one report the import reads, as the reader found them."""

    source: str  # the folder or tarball given
    name: str  # the report's own name (its top folder), or the source's
    parts: dict[str, bytes]  # report path -> content, for the paths in PARTS that exist
    files: dict[str, bytes]  # report path (etc/nginx/nginx.conf) -> content, config folders
    skipped: list[Skipped] = field(default_factory=list)


@dataclass(frozen=True)
class OsRelease:
    id: str
    version_id: str
    codename: str
    pretty: str
    like: tuple[str, ...] = ()


@dataclass(frozen=True)
class Package:
    name: str
    version: str


@dataclass(frozen=True)
class HostAddress:
    interface: str
    family: str  # inet / inet6
    address: str
    prefix: int


def part(evidence: SosEvidence, name: str) -> tuple[str, str] | None:
    """(report path, text) of the first of PARTS[name] the report holds; None when none.
    A part that is not text is bad input (exit 2), located by its path in the report."""
    for path in PARTS[name]:
        data = evidence.parts.get(path)
        if data is not None:
            return path, as_text(evidence, path, data)
    return None


def as_text(evidence: SosEvidence, path: str, data: bytes) -> str:
    if b"\0" in data:
        raise UsageError(f"{evidence.source}: {path}: binary data, expected text")
    try:
        return decode_text(data)
    except Unreadable as exc:
        raise UsageError(f"{evidence.source}: {path}: {exc.message}") from None


def require_parts(evidence: SosEvidence) -> None:
    """Every part a scenario needs is there, or one message naming each missing one (exit 2)."""
    missing = [n for n in REQUIRED if not any(p in evidence.parts for p in PARTS[n])]
    if not missing:
        return
    why = {s.path: s.reason for s in evidence.skipped}
    lines = []
    for n in missing:
        looked = ", ".join(PARTS[n])
        reasons = [f"{p}: {why[p]}" for p in PARTS[n] if p in why]
        extra = f" ({'; '.join(reasons)})" if reasons else ""
        lines.append(f"{evidence.source}: missing {n}: looked for {looked}{extra}")
    raise UsageError(
        "\n".join(lines),
        hint="make the report with the dpkg (or rpm) plugin enabled; os-release is always "
        "collected by sos",
    )


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse_os_release(text: str) -> OsRelease:
    """os-release(5): KEY=value lines, values optionally quoted."""
    keys: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() and not name.lstrip().startswith("#"):
            keys[name.strip()] = _unquote(value)
    codename = keys.get("VERSION_CODENAME", "")
    if not codename:  # Debian 10 and older: VERSION="10 (buster)"
        m = re.search(r"\(([a-z]+)\)", keys.get("VERSION", ""))
        codename = m.group(1) if m else ""
    return OsRelease(
        id=keys.get("ID", "").lower(),
        version_id=keys.get("VERSION_ID", ""),
        codename=codename.lower(),
        pretty=keys.get("PRETTY_NAME", "") or keys.get("NAME", ""),
        like=tuple(keys.get("ID_LIKE", "").lower().split()),
    )


_DPKG_LINE = re.compile(
    r"^(?P<want>[uirph])(?P<state>[ncuhfwti])\S?\s+(?P<name>\S+)\s+(?P<ver>\S+)"
)
_RPM_NVR = re.compile(r"^(?P<name>.+)-(?P<ver>[^-]+)-(?P<rel>[^-]+?)(?:\.(?P<arch>[^.\s]+))?$")


def parse_dpkg_list(text: str) -> list[Package]:
    """`dpkg -l`: the rows whose state is installed (ii, hi; not rc, un...)."""
    out = []
    for line in text.splitlines():
        m = _DPKG_LINE.match(line)
        if m and m.group("state") == "i":
            out.append(Package(m.group("name").split(":", 1)[0], m.group("ver")))
    return out


def parse_rpm_list(text: str) -> list[Package]:
    """sos's installed-rpms: `name-version-release.arch  date`, one a line."""
    out = []
    for line in text.splitlines():
        first = line.split(maxsplit=1)[0] if line.strip() else ""
        m = _RPM_NVR.match(first)
        if m:
            out.append(Package(m.group("name"), m.group("ver")))
    return out


def parse_packages(path: str, text: str) -> list[Package]:
    if "rpm" in path:
        return parse_rpm_list(text)
    return parse_dpkg_list(text)


_IP_ONE = re.compile(
    r"^\d+:\s+(?P<dev>[^\s:@]+)(?:@\S+)?:?\s+(?P<fam>inet6?)\s+(?P<addr>[^\s/]+)/(?P<len>\d+)"
)
_IP_HEAD = re.compile(r"^\d+:\s+(?P<dev>[^\s:@]+)(?:@[^\s:]+)?:\s+<")
_IP_ADDR = re.compile(r"^\s+(?P<fam>inet6?)\s+(?P<addr>[^\s/]+)/(?P<len>\d+)")


def parse_ip_addr(text: str) -> list[HostAddress]:
    """`ip -o addr` (one address a line) or `ip addr` (an interface header, then its
    addresses), in the order the host listed them."""
    out = []
    device = ""
    for line in text.splitlines():
        one = _IP_ONE.match(line)
        if one:
            out.append(HostAddress(one["dev"], one["fam"], one["addr"], int(one["len"])))
            continue
        head = _IP_HEAD.match(line)
        if head:
            device = head["dev"]
            continue
        addr = _IP_ADDR.match(line)
        if addr and device:
            out.append(HostAddress(device, addr["fam"], addr["addr"], int(addr["len"])))
    return out
