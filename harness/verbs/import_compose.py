"""`lab import compose FILE`: a scenario plus fixtures from a Docker Compose file (issue 16.5).

The compose tool normalises the file (harness/compose.py), the pure mapping makes the scenario
(scenario/from_compose.py), the engine, when one answers, says which image nodes' images it
has (no registry is reachable here, so a missing one is reported, not silently accepted), and
the scenario and its fixtures are written all or nothing, checked by `lab validate`'s own rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.compose import Normalised, normalise
from harness.engine.connection import answers, connect_engine
from harness.errors import InfraError, UsageError
from harness.escalation.redaction import ProjectRedactor
from harness.run.redact import for_settings
from harness.run.secret_rules import FULL_RULES
from harness.run.secret_values import SECRET_NAME, is_secret_setting, looks_random
from harness.scenario.catalog import Catalog, load_catalog
from harness.scenario.compose_parts import scenario_name
from harness.scenario.from_compose import Imported, ImportInput, from_compose
from harness.scenario.imported_text import scenario_yaml, schema_ref
from harness.scenario.load import validate_file
from harness.scenario.problems import ScenarioInvalid, display_path
from harness.scenario.schema import SCENARIO_PATTERN
from harness.verbs.results import (
    ImportComposeResult,
    ImportedNode,
    ImportNote,
    NotCarriedOver,
)
from harness.verbs.scenario_files import FileCopy, write_scenario

ENGINE_TIMEOUT = 3.0  # seconds to wait for an engine to say which images it holds


def _name(name: str | None, norm: Normalised) -> str:
    chosen = name if name is not None else scenario_name(norm.project.name)
    if not re.match(SCENARIO_PATTERN, chosen):
        raise UsageError(
            f"--name {chosen!r}: a scenario name is lowercase letters, digits and '-', "
            "at most 40 characters, not starting or ending with '-'"
        )
    return chosen


def _redactor(norm: Normalised) -> ProjectRedactor:
    """The file's secret values, known to everything the command prints (a compose error
    quoting one too) and masked in the fixtures as a bundle masks project files."""
    pairs = [
        (k, v)
        for svc in norm.project.services.values()
        for k, v in svc.environment.items()
        if v is not None
    ]
    settings = [*pairs, *norm.variables.items()]
    base = for_settings(settings)
    base.add_values(s for k, v in settings for s in secrets_in(k, v))  # a URL's password too
    return ProjectRedactor(base)


def _copies(
    imported: Imported, scen: str, redactor: ProjectRedactor
) -> tuple[list[FileCopy], list[str]]:
    """The fixtures as they will be written, redacted on the way in (`REDACTED`, the secret
    params' placeholder too, so a config and an env var that shared a secret still agree),
    and those whose content that changed."""
    out: list[FileCopy] = []
    changed: list[str] = []
    for f in imported.fixtures:
        try:
            raw = f.source.read_bytes()
        except OSError as exc:
            raise UsageError(f"{f.source}: cannot read the mounted file: {exc.strerror}") from None
        data = redactor.bytes_(raw)
        out.append(FileCopy(f.source, f.dest.removeprefix(f"fixtures/{scen}/"), data))
        if data != raw:
            changed.append(f.dest)
    return out, changed


def secrets_in(name: str, value: str) -> list[str]:
    """The secrets an env var or variable holds: the whole value when its name says so or it
    looks generated; else what a rule finds inside it (a URL's password: the URL stays, so the
    app still finds its database); else, when it is a secret at all, the whole value."""
    if not is_secret_setting(name, value):
        return []
    if SECRET_NAME.search(name) or looks_random(value):
        return [value]
    inner = [s for s in FULL_RULES.find(value) if s != value and s in value and len(s) >= 4]
    return inner or [value]


def images_present(images: Sequence[str]) -> dict[str, bool | None]:
    """{image: whether the local engine holds it}; None for each when no engine answers."""
    if not images:
        return {}
    try:
        if not answers(timeout=ENGINE_TIMEOUT):
            return dict.fromkeys(images)
        engine = connect_engine()
        return {i: engine.has_image(i) for i in images}
    except InfraError:
        return dict.fromkeys(images)


def _check(root: Path, catalog: Catalog) -> Callable[[Path], None]:
    """`lab validate`'s own check of the written scenario, its fixtures in place."""

    def check(path: Path) -> None:
        problems = validate_file(path, root=root, catalog=catalog)
        if problems:  # a bug of the import: say it plainly, write nothing
            raise ScenarioInvalid(problems)

    return check


def import_compose(
    file: Path,
    *,
    root: Path,
    profiles: Sequence[str] = (),
    name: str | None = None,
    output: Path | None = None,
    force: bool = False,
) -> ImportComposeResult:
    """Write the scenario (default scenarios/imported/<name>.yaml) and fixtures/<name>/."""
    catalog = load_catalog(root)
    norm = normalise(file, profiles)
    redactor = _redactor(norm)
    scen = _name(name, norm)
    source = display_path(file)
    imported = from_compose(
        ImportInput(
            norm.project,
            scen,
            catalog,
            file.resolve().parent,
            secrets_in,
            norm.variables,
            source=source,
        )
    )
    present = images_present(sorted({i for _, i in imported.images}))
    target = (output or root / "scenarios" / "imported" / f"{scen}.yaml").resolve()
    missing = [i for i, ok in present.items() if ok is False]
    text = scenario_yaml(imported, source, schema_ref(target, root), missing)
    fixtures = root / "fixtures" / scen
    copies, redacted = _copies(imported, scen, redactor)
    check = _check(root, catalog)
    write_scenario(target, text, fixtures=fixtures, copies=copies, force=force, check=check)
    result = _result(imported, norm, target, source, profiles=profiles, present=present)
    result.notes += [
        ImportNote(
            service="", what=f"{f}: secrets in it replaced by REDACTED; check it still works"
        )
        for f in redacted
    ]
    return result


def _result(
    imported: Imported,
    norm: Normalised,
    target: Path,
    source: str,
    *,
    profiles: Sequence[str],
    present: dict[str, bool | None],
) -> ImportComposeResult:
    services = {n: s for s, n in _service_nodes(norm, imported).items()}
    nodes = [
        ImportedNode(
            name=n,
            service=services.get(n, n),
            lab=node.lab,
            version=node.version,
            image=node.image,
            image_present=present.get(node.image) if node.image else None,
        )
        for n, node in imported.scenario.topology.nodes.items()
    ]
    notes = [ImportNote(service="", what=f"docker-compose: {w}") for w in norm.warnings]
    notes += [ImportNote(service=n.service, what=n.what) for n in imported.notes]
    notes += [
        ImportNote(service="", what=_image_note(i, ok)) for i, ok in present.items() if not ok
    ]
    return ImportComposeResult(
        scenario=imported.scenario.scenario,
        file=display_path(target),
        source=source,
        profiles=list(profiles),
        nodes=nodes,
        networks=list(imported.scenario.topology.networks),
        fixtures=[f.dest for f in imported.fixtures],
        params=list(imported.secrets),
        not_carried=[
            NotCarriedOver(service=d.service, key=d.key, why=d.why) for d in imported.not_carried
        ],
        notes=notes,
        valid=True,
    )


def _image_note(image: str, present: bool | None) -> str:
    if present is None:
        return f"image {image}: not checked (no engine answered); `lab up` needs it on the engine"
    return f"image {image} is not on this engine and no registry answers: `docker load` it first"


def _service_nodes(norm: Normalised, imported: Imported) -> dict[str, str]:
    """service -> node, in file order (the mapping names nodes in that order)."""
    return dict(zip(norm.project.services, imported.scenario.topology.nodes, strict=True))
