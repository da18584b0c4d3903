"""The `lab` command: parse, call one verb, print. Heavy imports happen inside the commands."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from harness import outcomes

if TYPE_CHECKING:
    from pydantic import BaseModel

    from harness.verbs.results import (
        AnalyzeResult,
        BisectResult,
        CopyResult,
        DownResult,
        EscalateResult,
        EscalationsResult,
        ExecResult,
        GateResult,
        GcResult,
        ImageBuilt,
        ImageListed,
        ImagePruned,
        ImportComposeResult,
        ImportSosResult,
        IndexResult,
        KeysResult,
        ListedRun,
        MatrixCell,
        MatrixResult,
        ReplayResult,
        ReportResult,
        ReproduceResult,
        RunResult,
        SchemaResult,
        TriageResult,
        UpResult,
        VerifyFixResult,
    )

T = TypeVar("T")

app = typer.Typer(
    name="lab",
    help="Rebuild a customer's system in containers and prove things about it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # click's own help and usage errors: typer's rich help imports rich.markdown and
    # markdown-it, which cost `lab --help` a tenth of a second (docs/architecture.md)
    rich_markup_mode=None,
    context_settings={"max_content_width": 120},
)
images_app = typer.Typer(
    help="Build, list and prune environment and lab images.", no_args_is_help=True
)
app.add_typer(images_app, name="images")
keys_app = typer.Typer(help="Keys that sign escalation bundles.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
import_app = typer.Typer(
    help="Write a scenario from the customer's evidence.", no_args_is_help=True
)
app.add_typer(import_app, name="import")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
ProjectOpt = Annotated[
    Path | None,
    typer.Option(
        "--project", help="Project folder (holds labs/ and environments/).", show_default=False
    ),
]

UntrustedOpt = Annotated[
    bool,
    typer.Option(
        "--untrusted",
        help="The scenario came from someone else: run none of its playbooks or suites on this "
        "machine, grant only the default capabilities (docs/security.md).",
    ),
]
TrustOpt = Annotated[
    bool,
    typer.Option(
        "--trust",
        help="Run an untrusted scenario's playbooks and suites on this machine anyway, with the "
        "local configuration's capabilities.",
    ),
]


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _plain(data: Any) -> Any:
    """A verb's typed result (and any typed result inside a dict or list) as JSON data."""
    from pydantic import BaseModel

    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, list):
        return [_plain(d) for d in data]
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items()}
    return data


def _emit_json(data: Any) -> None:
    print(json.dumps(_plain(data), indent=2, default=str))


def _root(project: Path | None, near: Path | None = None) -> Path:
    from harness.scenario.catalog import find_project_root

    if project is not None:
        return project.resolve()
    try:
        return find_project_root()
    except Exception:
        if near is not None:  # abspath, not resolve(): a symlink loop must not raise here
            return find_project_root(Path(os.path.abspath(near)).parent)
        raise


def _fail(exc: BaseException, as_json: bool = False) -> NoReturn:
    from harness.errors import HarnessError, Interrupted
    from harness.scenario.problems import ScenarioInvalid
    from harness.verbs.results import ErrorResult, InvalidResult, ProblemAt

    if isinstance(exc, ScenarioInvalid):
        if as_json:
            _emit_json(InvalidResult(problems=[ProblemAt(**p.as_dict()) for p in exc.problems]))
        for p in exc.problems:
            _err(str(p))
        raise typer.Exit(exc.exit_code)
    if isinstance(exc, HarnessError | Interrupted):
        if as_json:
            _emit_json(ErrorResult(error=exc.message, hint=exc.hint, exit_code=exc.exit_code))
        _err(f"error: {exc}")
        raise typer.Exit(exc.exit_code)
    if os.environ.get("LABHARNESS_DEBUG"):
        raise exc
    _err(f"internal error (a bug in labharness): {type(exc).__name__}: {exc}")
    _err("hint: rerun with LABHARNESS_DEBUG=1 for the traceback, and report it")
    raise typer.Exit(outcomes.INFRA)


_STATE: dict[str, Any] = {"quiet": False, "reporter": None}


@app.callback()
def _options(
    *,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress output (errors still show).")
    ] = False,
) -> None:
    """Rebuild a customer's system in containers and prove things about it."""
    _STATE["quiet"] = quiet


def _progress(as_json: bool) -> Any:
    """The reporter of the command being served: events go to stderr, never to stdout."""
    from harness.console import Quiet

    return _STATE["reporter"] or Quiet()


@app.command()
def validate(
    *,
    files: Annotated[list[Path], typer.Argument(help="Scenario files to check.")],
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check scenario files; print every problem as file:line:col: message. Exit 2 if any."""
    try:
        from harness.scenario.catalog import load_catalog
        from harness.scenario.load import validate_file

        root = _root(project, files[0])
        catalog = load_catalog(root)
        report = {str(f): validate_file(f, root=root, catalog=catalog) for f in files}
    except Exception as exc:
        _fail(exc, as_json)
    problems = [p for ps in report.values() for p in ps]
    if as_json:
        from harness.verbs.results import ValidateResult

        per_file = {f: [p.as_dict() for p in ps] for f, ps in report.items()}
        _emit_json(ValidateResult(valid=not problems, files=per_file))
    for p in problems:
        _err(str(p))
    if not as_json:
        for f, ps in report.items():
            print(f"{f}: {'valid' if not ps else f'invalid ({len(ps)} problem(s))'}")
    raise typer.Exit(outcomes.exit_code("validate", outcomes.validate_result(len(problems))))


@app.command()
def schema(
    *,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the JSON Schema ('-' = stdout).")
    ] = Path("schemas/scenario.schema.json"),
    as_json: JsonOpt = False,
) -> None:
    """Write the scenario JSON Schema, for editors (yaml-language-server) to complete and check."""

    def work() -> SchemaResult:
        from harness.scenario.jsonschema import scenario_json_schema_text
        from harness.verbs.results import SchemaResult

        text = scenario_json_schema_text()
        if str(output) == "-":
            return SchemaResult.model_validate({"schema": json.loads(text)})
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        return SchemaResult(written=str(output))

    def render(result: SchemaResult) -> None:
        if result.schema_ is not None:
            print(json.dumps(result.schema_, indent=2))
        else:
            _err(f"wrote {result.written}")

    _serve(as_json, work, render)


def _parse_params(values: list[str] | None) -> dict[str, str]:
    from harness.errors import UsageError

    out: dict[str, str] = {}
    for v in values or []:
        if "=" not in v:
            raise UsageError(f"--param {v!r}: expected NAME=VALUE")
        k, _, val = v.partition("=")
        out[k.strip()] = val
    return out


ParamOpt = Annotated[
    list[str] | None, typer.Option("--param", "-p", help="Override a scenario param: NAME=VALUE.")
]
# scale-out (docs/scale-out.md)
ClusterOpt = Annotated[
    str | None,
    typer.Option("--cluster", help="Dask scheduler ADDR: run every cell on `lab worker`s."),
]
ResumeOpt = Annotated[
    bool,
    typer.Option("--resume", help="With --cluster: run only the cells the last run lacks."),
]
EngineOpt = Annotated[
    str | None,
    typer.Option("--engine", help="Docker engine URL (unix://, tcp://, ssh://) or targets name."),
]
TargetsOpt = Annotated[
    Path | None, typer.Option("--targets", help="Targets file listing the engines.")
]

ClusterTargetsOpt = Annotated[
    Path | None,
    typer.Option(
        "--targets",
        help="With --cluster: targets file with the TLS/ssh settings of the workers' engines,"
        " so a dead attempt's containers can be removed there.",
    ),
]


def _cluster_targets(cluster: str | None, targets: Path | None) -> None:
    from harness.distributed import client_targets

    client_targets(cluster, targets)


class _RedactedStream:
    """stdout or stderr while a run-making verb is served: text goes on a line at a time (a
    secret never straddles two writes), through the command's redactor (redact.Printed)."""

    def __init__(self, stream: Any, redact: Callable[[str], str]) -> None:
        self._stream = stream
        self._redact = redact
        self._pending = ""
        self._lock = threading.RLock()  # a signal handler that prints must not deadlock

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            cut = self._pending.rfind("\n") + 1
            if cut == 0 and len(self._pending) < 1 << 16:
                return len(text)
            if cut == 0:
                cut = len(self._pending)  # a line this long goes on in pieces
            head, self._pending = self._pending[:cut], self._pending[cut:]
            self._stream.write(self._redact(head))
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self._stream.write(self._redact(self._pending))
                self._pending = ""
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding: the stream's own
        return getattr(self._stream, name)


@contextmanager
def _redacted_output() -> Iterator[None]:
    """Every byte printed while a verb that runs scenarios is served passes the redactor: the
    built-in rules, and the values and `redact:` patterns of every run the verb makes."""
    from harness.run.redact import printing

    with printing() as printed:
        out, err = sys.stdout, sys.stderr
        sys.stdout = _RedactedStream(out, printed.text)
        sys.stderr = _RedactedStream(err, printed.text)
        try:
            yield
        finally:
            for stream in (sys.stdout, sys.stderr):
                with suppress(Exception):
                    stream.flush()
            sys.stdout, sys.stderr = out, err


def _serve(
    as_json: bool, work: Callable[[], T], render: Callable[[T], None], redact: bool = False
) -> T:
    """Run one verb: its failures become one message and an exit code; its result is printed
    as JSON (--json) or for a person. `redact`: the verb runs scenarios, so everything it
    prints (progress, errors, results) goes through their redactors."""
    from harness.console import reporter

    with _redacted_output() if redact else nullcontext():
        try:
            with reporter(bool(_STATE["quiet"])) as rep:
                _STATE["reporter"] = rep
                result = work()
        except typer.Exit:
            raise
        except BaseException as exc:  # KeyboardInterrupt too: a clean message, never a traceback
            _fail(exc, as_json)
        if as_json:
            _emit_json(result)
        else:
            render(result)
    return result


FixFileOpt = Annotated[
    Path | None, typer.Option("--fix-file", help="A YAML overlay kept outside the scenario.")
]


def _rows(rows: Sequence[BaseModel]) -> None:
    for r in rows:
        print("  ".join(str(v) for v in r.model_dump(mode="json").values()))


@app.command()
def up(
    *,
    scenario: Annotated[Path, typer.Argument(help="Scenario file.")],
    param: ParamOpt = None,
    fix: Annotated[
        str | None, typer.Option("--fix", help="Bring up this fix's candidate instead.")
    ] = None,
    fix_file: FixFileOpt = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="On failure, leave the nodes for inspection.")
    ] = False,
    untrusted: UntrustedOpt = False,
    trust: TrustOpt = False,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build the scenario's lab as `reproduce` does (configure applied, no steps run) and leave
    it running; print how to get into each node."""

    def work() -> UpResult:
        from harness.verbs.up import up as do_up

        return do_up(
            scenario,
            root=_root(project, scenario),
            params=_parse_params(param),
            fix=fix,
            fix_file=fix_file,
            keep=keep,
            on_event=_progress(as_json),
            untrusted=untrusted,
            trust=trust,
        )

    def render(result: UpResult) -> None:
        run = result.run
        fixed = f", fix {result.fix}" if result.fix else ""
        print(f"run {run} is up ({result.scenario}{fixed}, {len(result.nodes)} nodes)")
        for n in result.nodes:
            addrs = ", ".join(f"{net}={ip}" for net, ip in n.addresses.items())
            addrs += "".join(f", {net}={ip}" for net, ip in n.addresses6.items())
            ports = "".join(f"  {where} -> {port}" for port, where in n.published.items())
            print(f"  {n.name:<16} {addrs}{ports}")
        print(f"get in:   lab shell {run} NODE      run:  lab exec {run} NODE -- CMD")
        print(f"remove:   lab down {run}")

    _serve(as_json, work, render, redact=True)


@app.command()
def down(
    *,
    runs: Annotated[list[str], typer.Argument(help="Run ids (or unique prefixes).")],
    as_json: JsonOpt = False,
) -> None:
    """Remove every container, network and volume of the runs, found by label."""

    def work() -> list[DownResult]:
        from harness.verbs.runs import down as do_down

        return do_down(runs)

    def render(results: list[DownResult]) -> None:
        for r in results:
            rm = r.removed
            print(f"run {r.run} removed: {rm['containers']} containers, {rm['networks']} networks")
            _say_stuck(r)

    _serve(as_json, work, render)


def _say_stuck(result: DownResult | GcResult) -> None:
    """A network the engine would not remove: a warning with its remedy, never a failure."""
    for name in result.disconnected or []:
        print(f"  disconnected {name}, which was still attached", file=sys.stderr)
    for s in result.stuck or []:
        print(
            f"warning: network {s.network} ({s.id}) is left: {s.reason}\n  {s.hint}",
            file=sys.stderr,
        )


@app.command("ls")
def ls_(*, as_json: JsonOpt = False) -> None:
    """List the runs that have objects on the engine."""

    def work() -> list[ListedRun]:
        from harness.verbs.runs import list_runs

        return list_runs()

    def render(runs: list[ListedRun]) -> None:
        if not runs:
            print("no runs on this engine")
            return
        print(f"{'RUN':<20} {'SCENARIO':<24} {'STATE':<12} {'NODES':<8} OWNER")
        for r in runs:
            nodes = f"{r.running}/{r.containers}"
            owner = "running" if r.owner_alive else "gone"
            print(f"{r.run:<20} {r.scenario:<24} {r.state:<12} {nodes:<8} {owner}")

    _serve(as_json, work, render)


@app.command()
def gc(
    *,
    remove_all: Annotated[
        bool, typer.Option("--all", help="Remove every run, live ones included.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
    as_json: JsonOpt = False,
    engine_opt: EngineOpt = None,
    targets: TargetsOpt = None,
) -> None:
    """Remove what runs whose process is gone left behind (runs left up by `lab up` stay)."""

    def work() -> list[GcResult]:
        from harness.verbs.runs import gc as do_gc
        from harness.verbs.runs import gc_engine_url

        url = gc_engine_url(engine_opt, targets)
        return do_gc(remove_all=remove_all, dry_run=dry_run, engine_url=url)

    def render(results: list[GcResult]) -> None:
        if not results:
            print("nothing to collect")
        for r in results:
            verb = "would remove" if r.dry_run else "removed"
            print(f"{verb} run {r.run} ({r.reason})")
            _say_stuck(r)

    _serve(as_json, work, render)


@app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def exec_(
    *,
    run: Annotated[str, typer.Argument(help="Run id (or unique prefix).")],
    node: Annotated[str, typer.Argument(help="Node name.")],
    command: Annotated[list[str], typer.Argument(help="Command, after --.")],
    as_json: JsonOpt = False,
) -> None:
    """Run a command in a node; exit with its exit code. What is piped in goes to its stdin."""

    def work() -> ExecResult:
        from harness.verbs.nodes import exec_in

        piped = None if sys.stdin is None or sys.stdin.isatty() else sys.stdin.buffer
        return exec_in(run, node, command, stdin=piped)

    def render(result: ExecResult) -> None:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)

    result = _serve(as_json, work, render)
    raise typer.Exit(result.exit_code)


@app.command()
def shell(
    *,
    run: Annotated[str, typer.Argument(help="Run id (or unique prefix).")],
    node: Annotated[str, typer.Argument(help="Node name.")],
    sh: Annotated[str, typer.Option("--shell", help="Shell to start.")] = "sh",
) -> None:
    """Open an interactive shell in a node."""

    def work() -> list[str]:
        from harness.verbs.nodes import shell_argv

        return shell_argv(run, node, sh)

    argv = _serve(False, work, lambda _: None)
    os.execv(argv[0], argv)


@app.command()
def cp(
    *,
    run: Annotated[str, typer.Argument(help="Run id (or unique prefix).")],
    source: Annotated[str, typer.Argument(help="NODE:/path in the node, or a local path.")],
    dest: Annotated[str, typer.Argument(help="A local path, or NODE:/path in the node.")],
    as_json: JsonOpt = False,
) -> None:
    """Copy a file or folder into a node or out of it (`lab cp RUN web:/etc/hosts .`)."""

    def work() -> CopyResult:
        from harness.verbs.nodes import copy

        return copy(run, source, dest)

    def render(r: CopyResult) -> None:
        print(f"copied {r.files} file(s), {r.bytes} bytes: {r.source} -> {r.dest}")

    _serve(as_json, work, render)


OnOpt = Annotated[
    str | None,
    typer.Option(
        "--on",
        help="Rerun on this lab (a `lab up` or kept run): changed files copied in and reloaded,"
        " changed nodes replaced, configure again if its inputs changed; the lab stays up.",
    ),
]
DestroyOpt = Annotated[
    str,
    typer.Option(
        "--destroy",
        help="passing (default): remove the lab unless its verdict needs a look; always; never.",
    ),
]


def _listed(items: list[str], what: str) -> str:
    return f" ({what}: {', '.join(items)})" if items else ""


def _render_run(r: RunResult, title: str = "", *, why: bool = True) -> None:
    """The run's summary table, then (a NOT_REPRODUCED) the probe that decided it."""
    from harness.console import summary_table
    from harness.verbs.why import run_lines

    rows: list[tuple[str, str]] = [("run", r.run)]
    if r.fix:
        rows.append(("fix", str(r.fix)))
    for a in r.attempt_results:
        state = outcomes.attempt_state(a.error, a.observed)
        detail = f" ({a.error})" if a.error else ""
        rows.append((f"attempt {a.attempt}", f"symptom {state}{detail}"))
    for c in r.checks:
        rows.append(("check", f"{'ok' if outcomes.check_passed(c) else 'FAILED'}  {c['name']}"))
    if r.error and r.error != r.reason:
        rows.append(("error", r.error))
    if r.hint:
        rows.append(("hint", r.hint))
    if r.evidence is not None:  # the customer's signatures the lab showed, and those it did not
        rows.append(("customer", r.evidence.text + _listed(r.evidence.missing, "not shown")))
    rows.append(("evidence", f"{r.folder}  (report.html, REPRODUCE.md, journal.json)"))
    if r.kept:
        rows.append(("kept", f"lab shell {r.run} NODE  |  remove: lab down {r.run}"))
    head = f"{title}: " if title else ""
    said = f"; {r.evidence.text}" if r.evidence is not None else ""
    summary_table(rows, f"{head}{r.verdict} ({r.reproduction().rate_text()}) - {r.reason}{said}")
    for line in run_lines(r) if why else []:
        print(f"why: {line}")


@app.command()
def reproduce(
    *,
    scenario: Annotated[Path, typer.Argument(help="Scenario file.")],
    param: ParamOpt = None,
    fix: Annotated[str | None, typer.Option("--fix", help="Apply this fix first.")] = None,
    fix_file: FixFileOpt = None,
    destroy: DestroyOpt = "passing",
    cell: Annotated[
        list[str] | None,
        typer.Option("--cell", help="Reproduce one matrix cell: AXIS=VALUE (repeat per axis)."),
    ] = None,
    untrusted: UntrustedOpt = False,
    trust: TrustOpt = False,
    on: OnOpt = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replay the customer's actions and say whether the symptom shows: REPRODUCED k/n (exit 0),
    NOT_REPRODUCED (1), ERROR (3)."""

    def work() -> ReproduceResult:
        from harness.verbs.reproduce import reproduce as do

        return do(
            scenario,
            root=_root(project, scenario),
            params=_parse_params(param),
            fix=fix,
            fix_file=fix_file,
            destroy=destroy,
            on_event=_progress(as_json),
            cell=_parse_cells(cell) or None,
            untrusted=untrusted,
            trust=trust,
            on=on,
        )

    result = _serve(as_json, work, _render_run, redact=True)
    raise typer.Exit(outcomes.exit_code("reproduce", result.verdict))


@app.command()
def watch(
    *,
    scenario: Annotated[Path, typer.Argument(help="Scenario file.")],
    on: Annotated[str, typer.Option("--on", help="The lab to rerun on (`lab up`, a kept run).")],
    param: ParamOpt = None,
    fix: Annotated[str | None, typer.Option("--fix", help="Rerun with this fix.")] = None,
    fix_file: FixFileOpt = None,
    untrusted: UntrustedOpt = False,
    trust: TrustOpt = False,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rerun on a live lab now and on every save of the scenario or a file it reads: one
    verdict line and the probe that decided, each time. Ctrl-C stops; the lab stays up."""
    from harness.verbs.results import WatchRerun, WatchResult

    def line(r: WatchRerun) -> None:
        if as_json:  # one JSON line per rerun as it ends; the whole result at the end
            print(json.dumps(r.model_dump(mode="json")), flush=True)
            return
        when = r.at[11:19]
        if r.error:
            print(f"{when} not rerun: {r.error}" + (f"\n  hint: {r.hint}" if r.hint else ""))
        else:
            where = Path(r.folder or "").name
            print(f"{when} {r.verdict} {r.rate}  {r.decided}  ({r.seconds} s, live/{where})")
        sys.stdout.flush()

    def work() -> WatchResult:
        from harness.verbs.watch import watch as do

        print(
            f"watching {scenario} and the files it reads; Ctrl-C stops (the lab stays up)",
            file=sys.stderr,
        )
        return do(
            scenario,
            root=_root(project, scenario),
            on=on,
            params=_parse_params(param),
            fix=fix,
            fix_file=fix_file,
            untrusted=untrusted,
            trust=trust,
            on_rerun=line,
        )

    def render(r: WatchResult) -> None:
        how = "interrupted during a rerun" if r.ended == "interrupted" else "stopped"
        print(f"{how} after {len(r.reruns)} rerun(s); lab {r.run} is still up: {r.lab_down}")

    result = _serve(as_json, work, render, redact=True)
    if result.ended == "interrupted":
        raise typer.Exit(outcomes.INTERRUPTED)


@app.command("verify-fix")
def verify_fix(
    *,
    scenario: Annotated[Path, typer.Argument(help="Scenario file.")],
    fix: Annotated[str | None, typer.Option("--fix", help="The fix or workaround to test.")] = None,
    fix_file: FixFileOpt = None,
    param: ParamOpt = None,
    destroy: DestroyOpt = "passing",
    untrusted: UntrustedOpt = False,
    trust: TrustOpt = False,
    on: OnOpt = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Baseline and candidate on fresh labs (or both on a live lab, --on): FIXED (exit 0),
    NOT_FIXED, REGRESSION or INCONCLUSIVE (1), ERROR (3)."""

    def work() -> VerifyFixResult:
        from harness.verbs.reproduce import verify_fix as do

        return do(
            scenario,
            root=_root(project, scenario),
            fix=fix,
            fix_file=fix_file,
            params=_parse_params(param),
            destroy=destroy,
            on_event=_progress(as_json),
            untrusted=untrusted,
            trust=trust,
            on=on,
        )

    def render(r: VerifyFixResult) -> None:
        _render_run(r.baseline, "baseline", why=False)
        _render_run(r.candidate, f"candidate {r.kind or 'fix'} {r.fix}", why=False)
        if r.verification_folder:  # before the verdict: the verdict and why end the output
            print(f"verification {r.verification}  ({r.verification_folder}: report.html)")
        for error in r.report_errors:
            print(f"report not written: {error}")
        print(f"{r.verdict} - {r.reason}")
        for line in r.why:
            print(f"why: {line}")

    result = _serve(as_json, work, render, redact=True)
    raise typer.Exit(outcomes.exit_code("verify-fix", result.verdict))


def _parse_cells(values: list[str] | None) -> dict[str, str]:
    from harness.errors import UsageError

    out: dict[str, str] = {}
    for v in values or []:
        k, sep, val = v.partition("=")
        if not sep:
            raise UsageError(f"--only {v!r}: expected AXIS=VALUE")
        out[k.strip()] = val
    return out


def _matrix_row(c: MatrixCell, names: list[str]) -> list[str]:
    """A cell's row: a finished cell's verdict, rate and run; else its reason."""
    done = c.verdict is not None
    return [
        *[str(c.cell.get(n, "")) for n in names],
        c.status,
        str(c.verdict) if done else "",
        (f"{c.rate} ({c.interval})" if c.interval else str(c.rate)) if done else "",
        f"{c.seconds}s" if c.seconds is not None else "",
        str(c.run) if done else str(c.reason),
    ]


def _render_matrix(r: MatrixResult) -> None:
    from harness.console import where

    names = list(r.axes) or sorted({k for c in r.cells for k in c.cell})
    header = [*names, "STATUS", "VERDICT", "RATE", "TIME", "RUN"]
    rows = [_matrix_row(c, names) for c in r.cells]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    s = r.summary
    print(
        f"{s['PASS']} PASS, {s['FAIL']} FAIL, {s['ERROR']} ERROR, {s['SKIP']} SKIP "
        f"in {r.seconds}s ({where({'jobs': r.jobs, 'engines': r.engines})})"
    )
    print(f"results: {r.folder}/results.json  heatmap: {r.folder}/matrix.html")


@app.command()
def matrix(
    *,
    scenario: Annotated[Path, typer.Argument(help="Scenario file with a `matrix:`.")],
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Cells run at once.")] = 1,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Only cells with AXIS=VALUE.")
    ] = None,
    param: ParamOpt = None,
    destroy: Annotated[
        str, typer.Option("--destroy", help="always (default), passing or never, per cell.")
    ] = "always",
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
    cluster: ClusterOpt = None,
    resume: ResumeOpt = False,
    targets: ClusterTargetsOpt = None,
    untrusted: UntrustedOpt = False,
    trust: TrustOpt = False,
) -> None:
    """Run every cell on its own topology: a table of PASS / FAIL / ERROR / SKIP. Exit 0 when
    no cell is FAIL or ERROR."""

    def work() -> MatrixResult:
        from harness.verbs.matrix import run_matrix

        _cluster_targets(cluster, targets)
        return run_matrix(
            scenario,
            root=_root(project, scenario),
            jobs=jobs,
            params=_parse_params(param),
            only=_parse_cells(only),
            destroy=destroy,
            on_event=_progress(as_json),
            cluster=cluster,
            resume=resume,
            untrusted=untrusted,
            trust=trust,
        )

    result = _serve(as_json, work, _render_matrix, redact=True)
    raise typer.Exit(result.exit_code)


@app.command()
def gate(
    *,
    gate_file: Annotated[Path, typer.Argument(help="Gate file (scenarios/gates/<release>.yaml).")],
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="Cells run at once.")] = None,
    save_baseline: Annotated[
        bool, typer.Option("--save-baseline", help="Write the results as the gate's baseline.")
    ] = False,
    baseline_to: Annotated[
        Path | None, typer.Option("--baseline-file", help="Where --save-baseline writes.")
    ] = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
    cluster: ClusterOpt = None,
    resume: ResumeOpt = False,
    targets: ClusterTargetsOpt = None,
    untrusted: UntrustedOpt = False,
    trust: TrustOpt = False,
) -> None:
    """Run a release's suites and compare with the last release's results: PASS (exit 0) only
    with no regression and no ERROR, else FAIL (exit 1)."""

    def work() -> GateResult:
        from harness.verbs.gate import run_gate, save_baseline_target

        _cluster_targets(cluster, targets)
        root = _root(project, gate_file)
        return run_gate(
            gate_file,
            root=root,
            jobs=jobs,
            save_baseline=save_baseline_target(gate_file, save_baseline, baseline_to),
            on_event=_progress(as_json),
            cluster=cluster,
            resume=resume,
            untrusted=untrusted,
            trust=trust,
        )

    def render(r: GateResult) -> None:
        from harness.console import summary_table

        rows = [(c.key, c.status) for c in r.cells]
        diffs = {"regression": r.regressions, "fixed": r.fixed, "new": r.new, "removed": r.removed}
        for kind, cells in diffs.items():
            rows += [(kind, d["cell"]) for d in cells]
        rows.append(("results", f"{r.folder}/results.json, junit.xml"))
        if r.saved_baseline:
            rows.append(("baseline saved", r.saved_baseline))
        summary_table(rows, f"gate {r.gate}: {r.verdict} - {r.reason}")

    result = _serve(as_json, work, render, redact=True)
    raise typer.Exit(outcomes.exit_code("gate", result.verdict))


@app.command()
def bisect(
    *,
    scenario: Annotated[Path, typer.Argument(help="Scenario file.")],
    axis: Annotated[str, typer.Option("--axis", help="A matrix axis, or a param with --values.")],
    values: Annotated[
        str | None, typer.Option("--values", help="Ordered values, comma-separated.")
    ] = None,
    fixed: Annotated[
        bool, typer.Option("--fixed", help="Find where the symptom disappears instead.")
    ] = False,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Fix another axis: AXIS=VALUE.")
    ] = None,
    param: ParamOpt = None,
    untrusted: UntrustedOpt = False,
    trust: TrustOpt = False,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Binary search for the first value where the symptom appears (exit 0 when found, 1 when
    there is no transition, 3 when a probe stayed ERROR)."""

    def work() -> BisectResult:
        from harness.verbs.bisect import run_bisect

        return run_bisect(
            scenario,
            root=_root(project, scenario),
            axis=axis,
            values=[v.strip() for v in values.split(",")] if values else None,
            fixed=fixed,
            only=_parse_cells(only),
            params=_parse_params(param),
            on_event=_progress(as_json),
            untrusted=untrusted,
            trust=trust,
        )

    def render(r: BisectResult) -> None:
        from harness.console import summary_table

        rows = []
        if r.verdict == outcomes.FOUND:
            first = "first fixed" if fixed else "first bad"
            last = "last unfixed" if fixed else "last good"
            rows += [(first, str(r.first)), (last, str(r.last_before))]
        rows.append(("runs used", f"{len(r.probes)} of at most {len(r.values)}"))
        for p in r.probes:
            rows.append((f"{r.axis}={p.value}", f"{p.verdict} {p.rate}  {p.folder}"))
        summary_table(rows, f"bisect {r.axis}: {r.verdict} - {r.reason}")

    result = _serve(as_json, work, render, redact=True)
    raise typer.Exit(outcomes.exit_code("bisect", result.verdict))


@app.command()
def report(
    *,
    run: Annotated[
        str,
        typer.Argument(
            help="Run id (or prefix), run folder or journal.json; or a verification id "
            "(verify-...), folder or verification.json."
        ),
    ],
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Regenerate every report of a run (JUnit, Allure results, report.html, REPRODUCE.md) from
    journal.json, or of a verification (report.html, JUnit, Allure) from verification.json."""

    def work() -> ReportResult:
        from harness.verbs.report import report as do

        try:
            root = _root(project)
        except Exception:
            root = None
        return do(run, root=root)

    def render(r: ReportResult) -> None:
        for kind, path in r.reports.items():
            print(f"{kind:<9} {path}")
        if r.errors:
            print(f"not written: {r.errors}")

    _serve(as_json, work, render)


@app.command()
def escalate(
    *,
    run: Annotated[
        str,
        typer.Argument(
            help="Run id (or prefix), run folder or journal.json; or a verification id "
            "(verify-...) or folder: the verdict on a fix and both its runs."
        ),
    ],
    ticket: Annotated[str, typer.Option("--ticket", help="The ticket to attach to (SUP-48213).")],
    tracker: Annotated[
        str | None,
        typer.Option("--tracker", help="Tracker from trackers.yaml (default: local only)."),
    ] = None,
    note: Annotated[
        str | None, typer.Option("--note", help="A line for the ticket comment and manifest.")
    ] = None,
    fix_file: Annotated[
        Path | None,
        typer.Option(
            "--fix-file",
            help="The overlay the run used (its --fix-file), if the journal does not name it.",
        ),
    ] = None,
    trackers_file: Annotated[
        Path | None,
        typer.Option("--trackers", help="Tracker configuration (default: trackers.yaml)."),
    ] = None,
    signing_key: Annotated[
        Path | None,
        typer.Option(
            "--signing-key",
            help="Ed25519 private key (PEM) to sign the manifest with (default: the local "
            "configuration's bundle_signing_key; none: unsigned).",
        ),
    ] = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Bundle a run (scenario, fixtures, labs, journal, reports, captures, logs, REPRODUCE.md,
    manifest with checksums; redacted), or a verification and both its runs, and attach it to a
    ticket: always in `local`, then in --tracker. Exit 0 attached, 2 bad ticket/token, 3 tracker
    down (what was attached is said)."""

    def work() -> EscalateResult:
        from harness.verbs.escalate import escalate as do

        return do(
            run,
            ticket=ticket,
            root=_root(project),
            tracker=tracker,
            note=note,
            fix_file=fix_file,
            trackers_file=trackers_file,
            signing_key=signing_key,
        )

    def render(r: EscalateResult) -> None:
        from harness.verbs.escalate import render_lines

        for line in render_lines(r):
            print(line)

    result = _serve(as_json, work, render, redact=True)
    raise typer.Exit(result.exit_code)


@app.command()
def replay(
    *,
    bundle: Annotated[Path, typer.Argument(help="An escalation bundle (.tar.gz).")],
    workdir: Annotated[
        Path | None,
        typer.Option("--workdir", help="Fresh folder to extract into (default ./replay-RUN)."),
    ] = None,
    secrets_dir: Annotated[
        Path | None,
        typer.Option(
            "--secrets-dir",
            help="Originals of redacted files, by their path in the project (DIR/fixtures/...).",
        ),
    ] = None,
    param: ParamOpt = None,
    destroy: Annotated[
        str, typer.Option("--destroy", help="always (default), passing or never.")
    ] = "always",
    trust: Annotated[
        bool,
        typer.Option(
            "--trust",
            help="Trust this bundle: run its playbooks and suites on this machine and grant the "
            "local configuration's capabilities (a bundle is untrusted by default).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check every checksum, extract safely, rebuild the images from the bundled labs and rerun
    the reproduction (a verification's bundle: both sides, through verify-fix); print the
    original verdict beside the new one. Exit as `reproduce` (`verify-fix` for a verification);
    2 for a tampered, truncated or unsafe bundle."""

    def work() -> ReplayResult:
        from harness.verbs.replay import replay as do

        return do(
            bundle,
            workdir=workdir,
            destroy=destroy,
            secrets_dir=secrets_dir,
            params=_parse_params(param),
            on_event=_progress(as_json),
            trust=trust,
        )

    def render(r: ReplayResult) -> None:
        from harness.verbs.replay import render_lines

        if r.verification is not None:  # a verification's bundle: both sides ran again
            _render_run(r.verification.baseline, "baseline", why=False)
            _render_run(r.replay, f"candidate {r.fix}", why=False)
        else:
            _render_run(r.replay, "replay")
        for line in render_lines(r):
            print(line)

    result = _serve(as_json, work, render, redact=True)
    raise typer.Exit(result.exit_code)  # as `reproduce`, or as `verify-fix` for a verification


@app.command()
def escalations(
    *,
    ticket: Annotated[str | None, typer.Option("--ticket", help="Only this ticket.")] = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List what was attached where (from the local ledger kept by `lab escalate`)."""

    def work() -> EscalationsResult:
        from harness.verbs.escalations import escalations as do

        return do(root=_root(project), ticket=ticket)

    def render(r: EscalationsResult) -> None:
        from harness.verbs.escalations import render_lines

        for line in render_lines(r):
            print(line)

    _serve(as_json, work, render)


StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="The results store: a SQLite file or sqlite:///PATH, or postgresql://USER@HOST/DB "
        "(default: $LABHARNESS_STORE, results_store in the local configuration, else "
        "<reports>/index.sqlite).",
    ),
]


@app.command("index")
def index_cmd(
    *, store: StoreOpt = None, project: ProjectOpt = None, as_json: JsonOpt = False
) -> None:
    """Rebuild the results index from the report folders on disk (and the escalation ledger)."""

    def work() -> IndexResult:
        from harness.verbs.index import index

        return index(root=_root(project), store=store)

    def render(r: IndexResult) -> None:
        from harness.verbs.index import render_lines

        for line in render_lines(r):
            print(line)

    _serve(as_json, work, render)


@keys_app.command("generate")
def keys_generate(
    *,
    folder: Annotated[Path, typer.Argument(help="Folder for NAME.key and NAME.pub.")],
    name: Annotated[str, typer.Option("--name", help="File name stem.")] = "bundle",
    as_json: JsonOpt = False,
) -> None:
    """Make an Ed25519 key pair: NAME.key (private, mode 600; bundle_signing_key of whoever
    escalates) and NAME.pub (bundle_public_keys of whoever replays). Never overwrites."""

    def work() -> KeysResult:
        from harness.escalation.signing import generate, load_signer
        from harness.verbs.results import KeysResult

        if not name.replace("-", "").replace("_", "").isalnum():
            from harness.errors import UsageError

            raise UsageError(f"--name {name!r}: expected letters, digits, - and _")
        priv, pub = generate(folder, name)
        return KeysResult(private=str(priv), public=str(pub), key_id=load_signer(priv).key_id)

    def render(r: KeysResult) -> None:
        print(f"private  {r.private}  (bundle_signing_key; keep it to yourself)")
        print(f"public   {r.public}  (bundle_public_keys; share it with the team)")
        print(f"key id   {r.key_id}")

    _serve(as_json, work, render)


@import_app.command("compose")
def import_compose(
    *,
    file: Annotated[Path, typer.Argument(help="The customer's compose file.")],
    profile: Annotated[
        list[str] | None,
        typer.Option("--profile", help="Enable a compose profile (repeatable), as compose does."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Scenario name (default: compose's project name).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Scenario file (default scenarios/imported/NAME.yaml)."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the scenario and fixtures/NAME/ if there.")
    ] = False,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a scenario plus fixtures from a compose file; list what was not carried over."""

    def work() -> ImportComposeResult:
        from harness.verbs.import_compose import import_compose as do_import

        return do_import(
            file,
            root=_root(project),
            profiles=profile or [],
            name=name,
            output=output,
            force=force,
        )

    def render(r: ImportComposeResult) -> None:
        print(f"wrote {r.file} ({len(r.nodes)} nodes, {len(r.networks)} networks)")
        for n in r.nodes:
            what = f"lab {n.lab} {n.version or '(newest)'}" if n.lab else f"image {n.image}"
            missing = "  (not on this engine)" if n.image_present is False else ""
            print(f"  {n.name:<16} {what}{missing}")
        for f in r.fixtures:
            print(f"  fixture {f}")
        if r.params:
            print(f"secret params (placeholders; set with --param): {', '.join(r.params)}")
        for note in r.notes:
            print(f"note: {note.service + ': ' if note.service else ''}{note.what}")
        if r.not_carried:
            print("not carried over:")
        for d in r.not_carried:
            print(f"  {d.service + ' ' if d.service else ''}{d.key}: {d.why}")
        print(f"next:  lab validate {r.file}   lab up {r.file}")

    _serve(as_json, work, render, redact=True)


@import_app.command("sos")
def import_sos(
    *,
    source: Annotated[Path, typer.Argument(help="A sosreport folder or tarball (.tar.xz, ...).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="The scenario file to write (default scenarios/NAME.yaml)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Scenario name (default sos-HOSTNAME).")
    ] = None,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A scenario and fixtures from a sosreport; lists what was not carried over.

    The OS, the software the catalog knows (at its nearest versions), that software's config
    files (redacted) and the host's networks (docs/import-sos.md)."""

    def work() -> ImportSosResult:
        from harness.verbs.import_sos import import_sos as do

        return do(source, root=_root(project), out=out, name=name)

    def render(r: ImportSosResult) -> None:
        from harness.verbs.import_sos import render_lines

        for line in render_lines(r):
            print(line)

    _serve(as_json, work, render, redact=True)


@images_app.command("build")
def images_build(
    *,
    lab: Annotated[list[str] | None, typer.Option("--lab", help="Only these labs.")] = None,
    os_: Annotated[list[str] | None, typer.Option("--os", help="Only these environments.")] = None,
    environments_only: Annotated[
        bool, typer.Option("--environments-only", help="Only the base OS images.")
    ] = False,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build (or reuse) environment and lab images; tags are hashes of their inputs."""

    def work() -> list[ImageBuilt]:
        from harness.scenario.catalog import load_catalog
        from harness.verbs.images import build_all

        root = _root(project)
        return build_all(
            root,
            load_catalog(root),
            labs=lab,
            oses=os_,
            on_progress=_progress(as_json),
            environments_only=environments_only,
        )

    _serve(as_json, work, _rows)


@images_app.command("ls")
def images_ls(*, project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """List the images labharness built, and whether each is current."""

    def work() -> list[ImageListed]:
        from harness.scenario.catalog import load_catalog
        from harness.verbs.images import list_images

        return list_images(load_catalog(_root(project)))

    _serve(as_json, work, _rows)


@app.command()
def worker(
    *,
    engine_opt: EngineOpt = None,
    scheduler: Annotated[str, typer.Option("--scheduler", help="Dask scheduler ADDR.")] = "",
    slots: Annotated[
        int | None, typer.Option("--slots", help="Cells at once (default: the targets file's).")
    ] = None,
    images: Annotated[
        str | None,
        typer.Option("--images", help="build (on this engine) or copy (save/load from local)."),
    ] = None,
    targets: TargetsOpt = None,
) -> None:
    """A Dask worker that owns one Docker engine and runs matrix cells on it."""
    try:
        from harness.distributed import start_worker

        code = start_worker(
            engine_opt,
            targets,
            scheduler,
            slots=slots,
            images=images,
            on_event=lambda ev: _err(f"lab worker: {ev}"),
        )
    except Exception as exc:
        _fail(exc)
    raise typer.Exit(code)


@images_app.command("prune")
def images_prune(
    *,
    prune_all: Annotated[
        bool, typer.Option("--all", help="Remove every labharness image, current ones too.")
    ] = False,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove labharness images whose inputs changed (with --all: every one not in use)."""

    def work() -> list[ImagePruned]:
        from harness.scenario.catalog import load_catalog
        from harness.verbs.images import prune_images

        root = _root(project)
        return prune_images(load_catalog(root), remove_all=prune_all)

    _serve(as_json, work, _rows)


def _finding_rows(r: AnalyzeResult) -> list[tuple[str, list[list[str]]]]:
    groups = []
    for s in r.sources:
        unit = "frames" if s.kind == "capture" else "lines"
        where = (s.network and f" network {s.network}") or (s.node and f" node {s.node}") or ""
        title = f"{s.path} ({s.kind}{where}, {s.units} {unit}, {len(s.findings)} finding(s))"
        rows = []
        for f in s.findings:
            first = f"frame {f.first_frame}" if f.kind == "capture" else f"line {f.first_line}"
            at = f" at {f.first_time}" if f.first_time else ""
            rows.append(
                [f.severity, f.signature, str(f.count), first + at, f.conversation or "", f.sample]
            )
        groups.append((title, rows))
    return groups


@app.command()
def analyze(
    *,
    paths: Annotated[
        list[str],
        typer.Argument(
            help="pcap/pcapng captures, log files, folders, run folders "
            "(reports/<scenario>/<run-id>/) or imported diagnostic reports."
        ),
    ],
    partial: Annotated[
        bool,
        typer.Option(
            "--partial", help="A capture cut short: keep the findings before the cut (a warning)."
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds tshark may take per capture.", min=1)
    ] = 120.0,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Findings in captures (tshark: TLS alerts, resets, retransmissions, HTTP and DNS codes,
    ICMP unreachables) and logs (the labs' signatures). Exit 2 on unreadable evidence."""

    def work() -> AnalyzeResult:
        from harness.verbs.analyze import analyze as do

        try:
            root: Path | None = _root(project)
        except Exception:
            root = None
        return do(paths, root=root, partial=partial, timeout=timeout)

    def render(r: AnalyzeResult) -> None:
        from harness.console import findings_table

        header = ["severity", "signature", "count", "first", "conversation", "sample"]
        findings_table(_finding_rows(r), header)
        for s in r.sources:
            for w in s.warnings:
                _err(f"warning: {s.path}: {w}")
        if r.skipped:
            print(f"skipped {len(r.skipped)} file(s):")
            for k in r.skipped:
                print(f"  {k.path}: {k.why}")
        print(f"{r.findings} finding(s) in {len(r.sources)} source(s)")

    _serve(as_json, work, render, redact=True)


@app.command()
def triage(
    *,
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Evidence, as for `lab analyze`: captures, logs, folders, run folders."
        ),
    ],
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The known problems (known-problems/, and every escalation's recorded signatures) that
    match the evidence, best first, and why. Exit 0; 2 on unreadable evidence."""

    def work() -> TriageResult:
        from harness.verbs.triage import triage as do

        return do(paths, root=_root(project))

    def render(r: TriageResult) -> None:
        from harness.verbs.triage import render_lines

        for line in render_lines(r):
            print(line)

    _serve(as_json, work, render, redact=True)


@app.command()
def serve(
    *,
    store: StoreOpt = None,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on. 127.0.0.1 (this machine only) unless you ask for "
            "another here: 0.0.0.0 or a LAN address shows the index to whoever reaches it.",
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port (0: a free one).")
    ] = 8765,
    project: ProjectOpt = None,
) -> None:
    """A read-only web dashboard over the results index: runs, verifications, matrix heatmaps
    with history, gates, reproduction rates, escalations; each page's JSON under /api
    (/openapi.json). Ctrl-C stops it (docs/dashboard.md)."""
    try:
        from harness.verbs.serve import open_dashboard

        dash = open_dashboard(root=_root(project), store=store, host=host, port=port)
    except BaseException as exc:  # a missing index, an unreachable store, a port in use
        _fail(exc)
    print(f"lab serve: {dash.url}  (results store {dash.store.shown}; Ctrl-C stops)", flush=True)
    if not dash.loopback:
        _err(f"lab serve: listening on {host}: anyone who reaches it can read the index")
    from harness.verbs.serve import serve as run_server

    run_server(dash)
    _err("lab serve: stopped")


def main() -> None:
    app()
