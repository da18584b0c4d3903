"""`lab import sos PATH`: a scenario and its fixtures from a customer's sosreport.

The report is read without being extracted (harness/sosreport.py), mapped to a scenario
(harness/scenario/from_sos.py), its config files redacted on the way in (the bundle's project
redaction: secrets become the bare word REDACTED, so the files still parse), and everything is
written to a staging folder first, then moved into place: the fixtures folder by one rename,
the scenario file by one link, and both removed again if anything fails (the written scenario
must pass `lab validate`), so an error or Ctrl-C leaves nothing behind.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from harness.errors import UsageError
from harness.escalation.redaction import PROJECT_MASK, ProjectRedactor
from harness.run.redact import Redactor
from harness.scenario.catalog import Catalog, load_catalog
from harness.scenario.from_sos import FileCarried, Imported, default_name, from_sos
from harness.scenario.load import validate_file
from harness.scenario.schema import SCENARIO_PATTERN
from harness.sosreport import read_sosreport
from harness.verbs.results import ImportSosResult

SCHEMA = "schemas/scenario.schema.json"


def import_sos(
    source: Path, *, root: Path, out: Path | None = None, name: str | None = None
) -> ImportSosResult:
    """Read the report, write scenarios/<name>.yaml (or `out`) and fixtures/<name>/."""
    catalog = load_catalog(root)
    folders = [f for lab in catalog.labs.values() for f in lab.definition.installed.config]
    evidence = read_sosreport(source, folders)
    name = name if name is not None else default_name(evidence)
    if not re.match(SCENARIO_PATTERN, name):
        raise UsageError(
            f"--name {name!r}: expected a scenario name (lowercase letters, digits and '-', "
            "at most 40 characters, a letter or digit at both ends)"
        )
    scenario_file = Path(os.path.abspath(out or root / "scenarios" / f"{name}.yaml"))
    fixtures_dir = root / "fixtures" / name
    for existing in (scenario_file, fixtures_dir):
        if os.path.lexists(existing):
            raise UsageError(
                f"{existing}: exists; give another --name or --out (nothing was written)"
            )
    schema_ref = os.path.relpath(root / SCHEMA, scenario_file.parent)
    imported = from_sos(evidence, catalog, name=name, schema_ref=schema_ref)
    redactor = ProjectRedactor(Redactor())
    fixtures, counts = {}, {}
    for rel, data in imported.fixtures.items():
        fixtures[rel] = redactor.bytes_(data)
        counts[rel] = fixtures[rel].count(PROJECT_MASK.encode()) - data.count(PROJECT_MASK.encode())
    scenario_text = redactor.text(imported.scenario_yaml)
    _place(
        root,
        catalog,
        scenario_file=scenario_file,
        fixtures_dir=fixtures_dir,
        text=scenario_text,
        fixtures=fixtures,
    )
    return _result(
        imported,
        source=source,
        report=evidence.name,
        scenario_file=scenario_file,
        fixtures_dir=fixtures_dir,
        counts=counts,
    )


def _result(
    imported: Imported,
    *,
    source: Path,
    report: str,
    scenario_file: Path,
    fixtures_dir: Path,
    counts: dict[str, int],
) -> ImportSosResult:
    s = imported.summary
    files = [
        FileCarried(node=f.node, path=f.path, fixture=f.fixture, redacted=counts.get(f.fixture, 0))
        for f in s.files
    ]
    return ImportSosResult(
        scenario=imported.name,
        file=str(scenario_file),
        fixtures=str(fixtures_dir) if files else "",
        source=str(source),
        report=report,
        os=s.os,
        software=s.software,
        networks=s.networks,
        files=files,
        not_carried=s.not_carried,
        unknown_packages=s.unknown_packages,
    )


def _place(
    root: Path,
    catalog: Catalog,
    *,
    scenario_file: Path,
    fixtures_dir: Path,
    text: str,
    fixtures: dict[str, bytes],
) -> None:
    """Stage, move into place, validate; on any failure remove what was placed."""
    placed: list[Path] = []
    stage = Path(tempfile.mkdtemp(prefix=".lab-import-", dir=root))
    try:
        for rel, data in fixtures.items():
            target = stage / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        if fixtures:
            placed += _mkdirs(fixtures_dir.parent)
            os.rename(stage / "fixtures" / fixtures_dir.name, fixtures_dir)
            placed.append(fixtures_dir)
        placed += _mkdirs(scenario_file.parent)
        staged = scenario_file.parent / f".{scenario_file.name}.{os.getpid()}.tmp"
        staged.write_text(text, encoding="utf-8")
        try:
            os.link(staged, scenario_file)  # never replaces a file that appeared meanwhile
        finally:
            staged.unlink()
        placed.append(scenario_file)
        problems = validate_file(scenario_file, root=root, catalog=catalog)
        if problems:
            lines = "\n".join(str(p) for p in problems)
            raise UsageError(f"the scenario written from this report is not valid:\n{lines}")
    except FileExistsError as exc:
        _remove(placed)
        raise UsageError(f"{exc.filename}: appeared while writing; nothing was written") from None
    except BaseException:
        _remove(placed)
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _mkdirs(folder: Path) -> list[Path]:
    """Create folder and its missing parents; the ones created, outermost last."""
    made = []
    here = folder
    while not here.exists():
        made.append(here)
        here = here.parent
    folder.mkdir(parents=True, exist_ok=True)
    return made


def _remove(placed: list[Path]) -> None:
    for p in reversed(placed):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def render_lines(r: ImportSosResult) -> list[str]:
    """The result for a person: what was carried over, then what was not and why."""
    fixtures = f" and {r.fixtures}/ ({len(r.files)} files)" if r.files else ""
    lines = [f"wrote {r.file}{fixtures} from {r.report}"]
    note = f"  ({r.os.note})" if r.os.note else ""
    lines.append(f"os        {r.os.found} -> {r.os.environment}{note}")
    for s in r.software:
        note = f"  ({s.note})" if s.note else ""
        lines.append(f"software  {s.node}: {s.package} {s.installed} -> {s.lab} {s.version}{note}")
    for n in r.networks:
        where = f"host at {n.address}" if n.static else f"host's {n.address} not kept"
        six = f" and {n.subnet6} (host at {n.address6})" if n.subnet6 else ""
        lines.append(f"network   {n.network}: {n.subnet}{six} (from {n.interface}; {where})")
    redacted = sum(f.redacted for f in r.files)
    if r.files:
        nodes = ", ".join(sorted({f.node for f in r.files}))
        lines.append(
            f"files     {len(r.files)} config files into {nodes}; {redacted} values redacted"
        )
    if r.not_carried:
        lines.append(f"not carried over ({len(r.not_carried)}):")
        lines += [f"  {n.what}: {n.why}" for n in r.not_carried]
    lines.append(f"next: lab validate {r.file} && lab up {r.file}")
    return lines
