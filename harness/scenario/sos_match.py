"""Which of the catalog's environments and lab versions a sosreport's host is (pure).

The catalog rarely holds the customer's exact build: Debian 12.5 is `debian-12`, nginx
1.22.1-9+deb12u1 is `1.22`, and what it lacks is mapped to the nearest it has, with a note
saying so (a version from backports, Debian 13, Ubuntu). Versions compare by their numeric
components: the longest common prefix wins, then the smallest gap in the first component that
differs.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from harness.scenario.catalog import Catalog, Lab
from harness.scenario.sos_facts import OsRelease, Package


class Carried(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OsCarried(Carried):
    """The host's OS and the environment its nodes run on."""

    found: str  # PRETTY_NAME, e.g. "Debian GNU/Linux 12 (bookworm)"
    environment: str
    exact: bool
    note: str = ""


class SoftwareCarried(Carried):
    """One installed package the catalog has a lab for, and the node it became."""

    lab: str
    node: str
    package: str
    installed: str  # the package's version as the host has it
    version: str  # the catalog's version the node runs
    os: str
    exact: bool
    note: str = ""


@dataclass(frozen=True)
class Found:
    lab: Lab
    package: Package
    others: tuple[Package, ...]  # more packages of the same lab (postgresql-13 and -15)
    matched: frozenset[str]  # every installed package name the lab's patterns matched


def numbers(version: str) -> tuple[int, ...]:
    """The leading numeric components of a package or catalog version: '5:7.0.15-1' -> 7,0,15."""
    upstream = version.split(":", 1)[1] if re.match(r"^\d+:", version) else version
    m = re.match(r"\d+(?:\.\d+)*", upstream)
    return tuple(int(x) for x in m.group(0).split(".")) if m else ()


def _distance(installed: tuple[int, ...], candidate: str) -> tuple[int, int, int]:
    """Sort key: exact match (a prefix of the installed version) first, then the longest
    common prefix, then the smallest gap at the first component that differs."""
    have = numbers(candidate)
    common = 0
    while common < min(len(have), len(installed)) and have[common] == installed[common]:
        common += 1
    exact = common == len(have) and bool(have)
    gap = abs(have[common] - installed[common]) if common < min(len(have), len(installed)) else 0
    return (0 if exact else 1, -common, gap)


def nearest(installed: str, candidates: list[str]) -> tuple[str, bool]:
    """The candidate nearest to installed, and whether it is its exact (prefix) match."""
    have = numbers(installed)
    best = min(candidates, key=lambda c: (*_distance(have, c), candidates.index(c)))
    return best, _distance(have, best)[0] == 0


def pick_environment(release: OsRelease, catalog: Catalog) -> OsCarried:
    """The environment whose suite is the host's codename or whose name is debian-<major>;
    else the nearest Debian by number (Debian 13 -> debian-12), else the newest (Ubuntu...)."""
    envs = catalog.environments
    found = release.pretty or f"{release.id} {release.version_id}".strip() or "unknown OS"
    major = release.version_id.split(".", 1)[0]
    if release.id == "debian":
        for name, entry in envs.items():
            if release.codename and entry.definition.suite == release.codename:
                return OsCarried(found=found, environment=name, exact=True)
            if major and name == f"debian-{major}":
                return OsCarried(found=found, environment=name, exact=True)
    names = sorted(envs, key=lambda n: numbers(n.rsplit("-", 1)[-1]))
    if not names:
        return OsCarried(found=found, environment="", exact=False, note="no environments")
    if release.id == "debian" and major.isdigit():
        name, _ = nearest(major, [n.rsplit("-", 1)[-1] for n in names])
        env = f"debian-{name}"
    else:
        env = names[-1]
    return OsCarried(
        found=found,
        environment=env,
        exact=False,
        note=f"the catalog has no environment for {found}; nearest: {env}",
    )


def find_software(packages: list[Package], catalog: Catalog) -> list[Found]:
    """Per lab whose `installed.packages` patterns match an installed package: the match with
    the highest version (the first pattern's on a tie), in the catalog's lab order."""
    out = []
    for lab in catalog.labs.values():
        patterns = lab.definition.installed.packages
        hits = [
            (i, p)
            for i, pattern in enumerate(patterns)
            for p in packages
            if fnmatch.fnmatchcase(p.name, pattern)
        ]
        if not hits:
            continue
        hits.sort(key=lambda h: (tuple(-n for n in numbers(h[1].version)), h[0]))
        best = hits[0][1]
        others = tuple(
            dict.fromkeys(p for _, p in hits if numbers(p.version) != numbers(best.version))
        )
        out.append(Found(lab, best, others, frozenset(p.name for _, p in hits)))
    return out


def pick_version(found: Found, environment: str) -> SoftwareCarried:
    """The lab version for an installed package: nearest among those that build on the host's
    environment; when the lab builds on none of them, nearest of all (on its first OS)."""
    d = found.lab.definition
    pkg = found.package
    on_host = d.versions_for(environment)
    version, exact = nearest(pkg.version, on_host or list(d.versions))
    os_name = environment if on_host else d.versions[version].os[0]
    notes = []
    if not exact:
        where = f" for {environment}" if on_host else ""
        notes.append(f"{pkg.name} {pkg.version} is not in the catalog{where}; nearest: {version}")
        elsewhere = [v for v in d.versions if nearest(pkg.version, [v])[1]]
        if elsewhere and on_host:
            oses = ", ".join(d.versions[elsewhere[0]].os)
            notes.append(f"(the catalog has {elsewhere[0]} on {oses} only)")
    if not on_host:
        notes.append(f"{d.name} does not build on {environment}: the node runs {os_name}")
    if found.others:
        also = ", ".join(f"{p.name} {p.version}" for p in found.others)
        notes.append(f"also installed: {also} (one node per lab: the newest is carried)")
    return SoftwareCarried(
        lab=d.name,
        node=d.name,
        package=pkg.name,
        installed=pkg.version,
        version=version,
        os=os_name,
        exact=exact and bool(on_host),
        note=" ".join(notes),
    )
