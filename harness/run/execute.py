"""One run of a scenario: build, up, capture, impair, configure, attempts, verify, collect, down.

Every phase goes into journal.json as it happens; whatever ends the run (a verdict, a failure,
Ctrl-C, SIGTERM), the evidence is collected and the topology removed per the destroy policy.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import __version__, confidence, outcomes
from harness.engine.api import CaptureInfo, Engine, RunLabels
from harness.engine.connection import connect_engine
from harness.errors import HarnessError, InfraError, Interrupted, UsageError
from harness.journal_model import AnalyzedSource, EvidenceMatch
from harness.run import analyze as run_analyze
from harness.run import faults, labstate, live, probes, redact, trust
from harness.run import running_config as runconf
from harness.run.analyze import analyze_folder
from harness.run.collect import collect_nodes, sweep, write_step_logs
from harness.run.customer_evidence import compare, read_evidence
from harness.run.folder import RunFolder, now_iso, reports_root
from harness.run.ids import new_run_id, owner_token
from harness.run.journal import Journal
from harness.run.live import LiveLab
from harness.run.plan import plan_of
from harness.run.provision import OnEvent, _quiet, bring_up, tear_down
from harness.run.result import AttemptResult, RunResult, UpResult
from harness.run.signals import SignalInterrupt, StopFlag, interrupts_raise, shielded
from harness.run.steps import StepRunner, step_id
from harness.run.steps import describe as describe_step
from harness.run.trust import TRUSTED, Trust
from harness.scenario.catalog import Catalog
from harness.scenario.load import LoadedScenario
from harness.scenario.resolved import EnvImage, LabImage, Topology
from harness.scenario.schema import PlaybookItem, Reproduce, RunItem, VerifyRun
from harness.store.record import index_folder, prewarm

DESTROY = ("passing", "always", "never")
# pauses before the symptom's logs, files and findings are read again, when it did not hold
SETTLE_PAUSES = (0.2, 0.3, 0.5)
_CHANGED_KEYS = ("host", "task", "action", "msg")  # of a task that changed on the second pass


@dataclass
class RunOptions:
    destroy: str = "passing"
    role: str = "reproduce"  # reproduce | baseline | candidate | cell | up
    on_event: OnEvent = _quiet
    cancel: StopFlag | None = None  # set by a matrix on Ctrl-C: stop and tear down
    cell: str | None = None  # the matrix cell's label, for the journal and reports
    fix_file: str | None = None  # the overlay file the fix came from (--fix-file), if any
    engine: str | None = None  # the engine's URL (scale-out: a worker's engine); None: local
    copy_images_from: str | None = None  # build images there and docker save/load them over
    trust: Trust = TRUSTED  # an untrusted scenario runs no host code, gets default caps only
    baseline_rate: tuple[int, int] | None = None  # a candidate's baseline k/n (confidence)
    verification: str | None = None  # the verify-fix this run is one side of (its id)
    live: LiveLab | None = None  # `--on RUN`: rerun on that lab, brought in line first


@dataclass
class _Live:
    """What one bring-up of the topology holds: addresses and running captures."""

    addresses: dict[str, dict[str, str]] = field(default_factory=dict)
    addresses6: dict[str, dict[str, str]] = field(default_factory=dict)  # IPv6, where any
    capture_paths: dict[str, Path] = field(default_factory=dict)  # network -> its pcap
    captures: list[CaptureInfo] = field(default_factory=list)
    capture_results: list[dict[str, Any]] = field(default_factory=list)
    # the nodes the symptom allowed not to start that did not: node -> how (provision.NodeUp)
    not_ready: dict[str, dict[str, Any]] = field(default_factory=dict)


class Run:
    def __init__(
        self,
        loaded: LoadedScenario,
        root: Path,
        catalog: Catalog,
        opts: RunOptions,
        engine: Engine | None = None,
    ) -> None:
        """`engine`: the engine to run on (a test's fake); None connects to opts.engine's URL."""
        if opts.destroy not in DESTROY:
            raise UsageError(f"--destroy {opts.destroy!r}: expected one of {', '.join(DESTROY)}")
        self.loaded = loaded
        self.raw = loaded.raw
        self.repro = self.raw.reproduce or Reproduce()
        self.rule = attempt_rule(self.repro, opts.role, opts.baseline_rate)
        self.planned = self.rule.target()  # until the rule stops earlier (an observation)
        self.level = self.repro.confidence or confidence.DEFAULT  # of the rate's interval
        self.root = root
        self.catalog = catalog
        self.opts = opts
        impairments = self.raw.topology.impairments
        self.topology: Topology = faults.run_topology(
            loaded.topology, impairments, self.repro.steps
        )
        # refused before a folder or a container exists (exit 2, located)
        trust.enforce(loaded, self.topology, opts.trust, opts.fix_file)
        self.redactor = redact.for_scenarios([loaded])
        # progress lines reach the terminal (and a matrix's or gate's own log): redacted too
        self.emit: OnEvent = lambda e: opts.on_event(self.redactor.deep(e))
        # the customer's own files, read before anything exists: bad evidence is exit 2 here
        self.customer = read_evidence(self.raw, root, catalog, self.redactor)
        self.lab = opts.live
        if self.lab is not None:  # refused before a folder exists: what cannot change live
            labstate.refuse_early(self.lab.state, self.topology, self.raw, root, self.lab.run)
        self.engine: Engine = engine if engine is not None else connect_engine(opts.engine)
        if self.lab is not None:  # the lab's run, labels and folder; this rerun's own folder
            self.run_id = self.lab.run
            self.folder = self.lab.next_folder()
            self.labels = self.lab.labels()
        else:
            self.run_id = new_run_id()
            self.folder = RunFolder.create(reports_root(root), self.topology.scenario, self.run_id)
            self.labels = RunLabels(
                self.run_id, self.topology.scenario, owner_token(), str(self.folder.path.resolve())
            )
        self.since: datetime | None = None  # a live rerun's start: its own output and logs
        self.since_for: dict[str, datetime] = {}  # a node it reloaded: from the reload's end
        self.rerun_key: str | None = None  # what it ran, on what (labstate.rerun_key)
        self.log_skip: dict[str, dict[str, int]] = {}
        self.engine_version = self.engine.version()
        # this run's own stop, also set by a matrix's (or worker's) Ctrl-C; its failure must not
        # stop the other cells
        self.cancel = opts.cancel.child() if opts.cancel is not None else StopFlag()
        self.live = _Live()
        self.finishing = False
        self.captures_wanted = 0  # capture files the analyze phase will read
        # Ctrl-C/SIGTERM noted while finishing: collection stops early, the run still ends
        # interrupted (exit 128+n) once the lab is down
        self.late_signals: list[int] = []
        self.images: dict[str, str] = {}
        self.changed_again: list[dict[str, Any]] = []  # tasks the idempotence pass changed
        self.journal = self._new_journal()
        self._write_run_json()

    def _new_journal(self) -> Journal:
        """journal.json's head: what ran, where, on what engine, at what trust, on what topology."""
        loaded, opts = self.loaded, self.opts
        return Journal(
            self.folder.path / "journal.json",
            {
                "run": self.run_id,
                "scenario": self.topology.scenario,
                "source": str(loaded.path),
                "role": opts.role,
                "cell": opts.cell,
                "fix": loaded.fix,
                "fix_file": opts.fix_file,
                "verification": opts.verification,
                **({"live": self._live_head()} if self.lab is not None else {}),
                "params": loaded.params,
                "matrix_cell": loaded.matrix_cell,
                "case": self.raw.case.model_dump(exclude_none=True) if self.raw.case else {},
                "engine": self.engine_version,
                "harness": __version__,
                "title": self.raw.title,
                "trust": opts.trust.as_dict(),
                "topology": topology_summary(self.topology, self.raw),
            },
            redact=self.redactor.text,
        )

    def _live_head(self) -> dict[str, Any]:
        assert self.lab is not None
        return {"on": self.lab.run, "rerun": self.folder.path.name, "folder": str(self.lab.folder)}

    def _write_run_json(self) -> None:
        """run.json as the run starts: what `lab runs`, `lab down` and `lab gc` read."""
        self.folder.write(
            run=self.run_id,
            scenario=self.topology.scenario,
            source=str(self.loaded.path),
            # where `lab down`/`lab gc` find the scenario again (to mask a killed run's pcaps)
            project=str(self.root.resolve()),
            scenario_file=os.path.abspath(self.loaded.path),
            role=self.opts.role,
            fix=self.loaded.fix,
            state="running",
            owner=self.labels.owner,
            engine=self.engine_version,
            created=now_iso(),
        )

    # -- phases ---------------------------------------------------------------------------

    def phase(self, name: str, **info: Any) -> Any:
        self.check_cancel()
        self.emit({"event": "phase", "phase": name, "run": self.run_id, "cell": self.opts.cell})
        return self.journal.phase(name, **info)

    def check_cancel(self) -> None:
        if self.cancel.is_set() and not self.finishing:
            raise Interrupted("cancelled")

    def build(self) -> None:
        with self.phase("build") as rec:
            self.images = self.engine.ensure_images(
                self.topology,
                self.catalog,
                copy_from=self.opts.copy_images_from,
                on_progress=self.emit,
            )
            rec["images"] = self.images

    def preflight(self) -> None:
        """Refuse, before anything starts, what this engine cannot do (delay without netem or
        NFQUEUE)."""
        reqs = faults.requested(self.raw.topology.impairments, self.repro.steps)
        with self.phase("preflight") as rec:
            rec["impairments"] = reqs
            if not reqs:
                return
            probe_image = next(iter(self.images.values()))
            can = self.engine.check_impairments(reqs, probe_image)
            rec["capabilities"] = can.capabilities
            if any(r.get("delay") for r in reqs):  # netem first, else nfqueue (impair.py)
                caps = can.capabilities
                rec["delay_backend"] = (
                    "netem" if caps.get("netem") else "nfqueue" if caps.get("nfqueue") else None
                )
            missing = list(can.missing)
            if rec.get("delay_backend") == "nfqueue":
                missing += faults.delays_on_ipv6(reqs, self.topology)
            if missing:
                raise InfraError(
                    "this engine cannot apply what the scenario asks for:\n  "
                    + "\n  ".join(missing),
                    hint="run it on an engine whose kernel has the missing qdisc (netem is in "
                    "most distribution kernels) or NFQUEUE, or drop that impairment",
                )

    def bring_up(self, tag: str = "") -> None:
        with self.phase(f"up{tag}") as rec:
            nodes = bring_up(
                self.engine,
                self.topology,
                self.images,
                self.labels,
                self.cancel,
                on_event=self.emit,
                trust=self.opts.trust,
                may_fail=probes.may_not_start(self.repro.symptom),
            )
            self.live.addresses = {n.name: n.addresses for n in nodes}
            self.live.addresses6 = {n.name: n.addresses6 for n in nodes if n.addresses6}
            self.live.not_ready = {n.name: n.not_ready for n in nodes if n.not_ready is not None}
            rec["nodes"] = [n.as_dict() for n in nodes]
        self.folder.write(nodes=rec["nodes"])
        self.start_captures(tag)
        if self.raw.topology.impairments:
            with self.phase(f"impair{tag}") as rec:
                rec["applied"] = faults.topology_impairments(
                    self.engine, self.run_id, self.raw.topology.impairments, self.live.addresses
                )

    def start_captures(self, tag: str = "") -> None:
        collect = self.raw.collect
        if collect and collect.capture:
            self.captures_wanted += len(collect.capture)
            run_analyze.prewarm(self.captures_wanted)  # tshark loads while the run works
            with self.phase(f"capture{tag}") as rec:
                for net in collect.capture:
                    suffix = tag.replace("-", "-attempt-") if tag else ""
                    out = self.folder.path / "captures" / f"{net}{suffix}.pcap"
                    cap = self.engine.start_capture(self.run_id, net, out)
                    self.live.captures.append(cap)
                    self.live.capture_paths[net] = out
                    rec.setdefault("captures", []).append(
                        {"network": net, "path": str(out), "warning": cap.warning}
                    )

    def configure(self, tag: str = "") -> None:
        items = self.raw.configure
        if not items:
            return
        with self.phase(f"configure{tag}") as rec:
            rec["items"] = []
            for i, item in enumerate(items):
                if isinstance(item, RunItem):
                    rec["items"].append(self._configure_run(item))
                else:
                    rec["items"].append(self._configure_playbook(item, i, tag))
                self.journal.flush()

    def _configure_run(self, item: RunItem) -> dict[str, Any]:
        nodes = [item.on] if isinstance(item.on, str) else list(item.on)
        if "all" in nodes:
            nodes = [n.name for n in self.topology.nodes]
        out: dict[str, Any] = {"run": item.run, "on": nodes, "results": []}
        for node in nodes:
            why = self._down_reason(node)
            if why is not None:
                out["results"].append({"node": node, "skipped": why})
                continue
            res = self.engine.exec(self.run_id, node, item.run, item.timeout or 300.0)
            out["results"].append(
                {
                    "node": node,
                    "exit_code": res.exit_code,
                    "stdout": res.stdout[-4000:],
                    "stderr": res.stderr[-4000:],
                    "duration_s": round(res.duration_s, 3),
                }
            )
            if res.exit_code != 0:
                raise ConfigureFailed(
                    f"configure command failed on {node} (exit {res.exit_code}): {item.run}\n"
                    f"{(res.stderr or res.stdout).strip()[-1500:]}"
                )
        return out

    def _refuse_host_code(self, what: str) -> None:
        """The backstop of trust.enforce: an untrusted run never reaches ansible or pytest."""
        if self.opts.trust.restricted:
            raise UsageError(
                f"{what} would run on this machine: this scenario is untrusted "
                f"({self.opts.trust.origin}); {trust.TRUST_HINT}"
            )

    def _configure_playbook(self, item: PlaybookItem, index: int, tag: str) -> dict[str, Any]:
        from harness import ansible

        self._refuse_host_code(f"configure playbook {item.playbook!r}")
        node_labs = ansible.node_labs_of(self.topology)
        inv = ansible.inventory(
            self.topology, self.run_id, self.live.addresses, node_labs, self.live.addresses6
        )
        limit = ansible.resolve_hosts(self.topology, node_labs, item.hosts)
        if self.live.not_ready:  # the nodes that did not start are left out, with the reason
            hosts = [n.name for n in self.topology.nodes] if limit is None else limit
            skipped = {h: why for h in hosts if (why := self._down_reason(h)) is not None}
            limit = [h for h in hosts if h not in skipped]
            if not limit:
                return {"playbook": item.playbook, "skipped": skipped}
        # ansible-runner polls `cancel` and stops the playbook; the signal is raised after
        with shielded() as seen:
            result = ansible.run_playbook(
                self.root / item.playbook,
                inventory=inv,
                limit=limit,
                extra_vars=dict(item.vars),
                private_dir=self.folder.path / "artifacts" / "ansible",
                ident=f"configure-{index + 1}{tag}",
                on_event=lambda e: self.emit({"event": "ansible", **e}),
                cancel=lambda: bool(seen) or self.cancel.is_set(),
            )
        if seen:
            raise SignalInterrupt(seen[0])
        self.check_cancel()
        if not result.ok:
            raise ConfigureFailed(f"playbook {item.playbook} failed: {result.summary()}")
        return {"playbook": item.playbook, **result.as_dict()}

    def idempotence(self) -> None:
        """Molecule's idempotence step, when the scenario asks for it: the configure playbooks
        a second time with the same inputs, and every task that reports a change on that pass
        listed (`run:` items are not rerun: a command cannot say whether it changed anything)."""
        books = [(i, it) for i, it in enumerate(self.raw.configure) if isinstance(it, PlaybookItem)]
        if self.raw.idempotence == "off" or not books:
            return
        with self.phase("idempotence") as rec:
            rec["mode"] = self.raw.idempotence
            rec["items"], rec["changed"] = [], []
            for i, item in books:
                res = self._configure_playbook(item, i, "-again")
                rec["items"].append(res)
                rec["changed"] += [
                    {"playbook": item.playbook, **{k: t.get(k) for k in _CHANGED_KEYS}}
                    for t in res.get("tasks") or []
                    if t.get("changed")
                ]
                self.journal.flush()
            self.changed_again = list(rec["changed"])
        if self.changed_again:
            self.emit(
                {
                    "event": "idempotence",
                    "mode": self.raw.idempotence,
                    "changed": self.changed_again,
                }
            )

    def idempotence_checks(self) -> list[dict[str, Any]]:
        """`idempotence: fail` with tasks that changed again: one failed check naming them."""
        if self.raw.idempotence != "fail" or not self.changed_again:
            return []
        names = [f"{c['playbook']}: {c.get('task')} on {c.get('host')}" for c in self.changed_again]
        return [
            {
                "name": "idempotence: configure playbooks change nothing on a second pass",
                "passed": False,
                "output": f"{len(names)} task(s) changed on the second pass:\n" + "\n".join(names),
            }
        ]

    def attempts(self) -> list[dict[str, Any]]:
        """As many attempts as the rule asks for (`attempts`, or a confidence's stop rule)."""
        n = self.rule.target()
        out: list[dict[str, Any]] = []
        observed = 0
        while self.rule.more(len(out), observed):
            i = len(out) + 1
            if i > 1 and self.repro.fresh:
                self.refresh(i)
            rec = self.attempt(i)
            out.append(rec)
            observed += bool(rec["observed"])
            self.emit(
                {
                    "event": "attempt",
                    "attempt": i,
                    "of": n,
                    "observed": rec["observed"],
                    "error": rec.get("error"),
                }
            )
            if rec.get("error"):
                return out
        self.planned = len(out)  # the rule stopped here: that was the plan
        return out

    def refresh(self, i: int) -> None:
        """A fresh topology for attempt i: the old one's captures closed, then down and up."""
        self.stop_captures()
        with self.phase(f"down-{i - 1}") as rec:
            rec["removed"] = tear_down(self.engine, self.run_id)
        self.live = _Live(capture_results=self.live.capture_results)
        self.bring_up(f"-{i}")
        self.configure(f"-{i}")
        self.running_config(f"-{i}")

    def attempt(self, i: int) -> dict[str, Any]:
        since = datetime.now(UTC)
        runner = StepRunner(
            self.engine,
            self.run_id,
            self.live.addresses,
            self.emit,
            self.raw.topology.impairments,
        )
        with self.phase(f"attempt-{i}", attempt=i) as rec:
            results: dict[str, dict[str, Any]] = {}
            rec["steps"] = []
            error: str | None = None
            try:
                for idx, step in enumerate(self.repro.steps):
                    self.check_cancel()
                    r = self._skipped_step(step, idx, i) or runner.run(step, idx, i)
                    rec["steps"].append(r)
                    results[r["id"]] = r
                    self.journal.flush()
                    if r.get("error"):
                        error = r["error"]
                        break
            finally:
                runner.stop_background()  # fills the background steps' records in place
            obs = self.observe(since) if error is None else {}
            sym = probes.symptom(self.repro.symptom, results, obs, self.live.not_ready)
            if error is None and not sym.held and probes.observations_needed(self.repro.symptom):
                sym, waited = self._settle(since, results)
                if waited is not None:
                    rec["settled_s"] = waited
            rec["symptom"] = sym.as_dict()
            rec["observed"] = bool(sym.held and error is None)
            rec["error"] = error
            rec["result_override"] = (
                "error" if error else ("observed" if rec["observed"] else "absent")
            )
            stays = self.lab is not None  # a live lab goes on to the next rerun: left clean
            if not self.repro.fresh and (i < self.rule.target() or stays) and error is None:
                rec["undo"] = runner.undo_faults()
        return {
            "attempt": i,
            "observed": rec["observed"],
            "error": error,
            "symptom": rec["symptom"],
        }

    def _settle(
        self, since: datetime, results: dict[str, dict[str, Any]]
    ) -> tuple[probes.ProbeResult, float | None]:
        """The symptom read again while what it reads may still be arriving: a service logs a
        closed connection a moment after the client exits, and the engine's log driver writes
        asynchronously. Only when a probe reads logs, files or findings and the symptom does
        not hold yet; at most SETTLE seconds (the moment it held, or None)."""
        t0 = time.monotonic()
        sym = None
        for pause in SETTLE_PAUSES:
            self.check_cancel()
            time.sleep(pause)
            obs = self.observe(since)
            sym = probes.symptom(self.repro.symptom, results, obs, self.live.not_ready)
            if sym.held:
                return sym, round(time.monotonic() - t0, 3)
        assert sym is not None
        return sym, None

    def _down_reason(self, node: str) -> str | None:
        """Why nothing runs on `node`: it did not start, as the symptom allowed; else None."""
        failed = self.live.not_ready.get(node)
        if failed is None:
            return None
        return f"node {node} did not become ready ({failed.get('state')}): {failed.get('reason')}"

    def _skipped_step(self, step: Any, idx: int, attempt: int) -> dict[str, Any] | None:
        """A step on a node that did not start is not run: its record says why."""
        for key in ("on", "node", "target"):
            node = str(getattr(step, key, "") or "")
            why = self._down_reason(node)
            if why is not None:
                sid = step_id(step, idx)
                self.emit(
                    {"event": "step-done", "attempt": attempt, "step": sid, "result": "skipped"}
                )
                return {
                    "index": idx,
                    "id": sid,
                    "kind": type(step).__name__.removesuffix("Step").lower(),
                    "node": node,
                    "description": describe_step(step),
                    "skipped": why,
                }
        return None

    def observe(self, since: datetime) -> probes.Observations:
        obs: probes.Observations = {}
        for kind, node, path in probes.observations_needed(self.repro.symptom):
            try:
                if kind.endswith("-findings"):
                    obs[(kind, node, path)] = self._findings_since(kind, node, path, since)
                elif kind == "log" and not path:
                    said = self.engine.logs(self.run_id, node, since=since)
                    obs[(kind, node, path)] = said.decode("utf-8", errors="replace")
                else:
                    data = self.engine.read_file(self.run_id, node, path)
                    obs[(kind, node, path)] = (
                        None if data is None else data.decode("utf-8", errors="replace")
                    )
            except HarnessError:
                obs[(kind, node, path)] = None
        return obs

    def _findings_since(
        self, kind: str, where: str, path: str, since: datetime
    ) -> list[probes.Seen] | str:
        """The findings of a network's capture (its frames since `since`) or of a node's output
        or log file (its lines since then, or the whole file), as `lab analyze` reads them;
        why not, as text, when they cannot be read."""
        from harness.run import attempt_findings

        if kind == "capture-findings":
            pcap = self.live.capture_paths.get(where)
            if pcap is None:
                return f"no capture of {where} (collect.capture lists it?)"
            return attempt_findings.in_capture(pcap, since, self.folder.path)
        if path:
            data = self.engine.read_file(self.run_id, where, path)
            text = "" if data is None else data.decode("utf-8", errors="replace")
        else:
            text = self.engine.logs(self.run_id, where, since=since).decode("utf-8", "replace")
        image = next((n.image for n in self.topology.nodes if n.name == where), None)
        lab = image.lab if isinstance(image, LabImage) else None
        return attempt_findings.in_log(text, self.catalog, lab, where, path or "output")

    def verify(self) -> list[dict[str, Any]]:
        """The verify checks (commands, then suites), and the idempotence check when the
        scenario says `idempotence: fail` and a task changed on the second pass."""
        checks: list[dict[str, Any]] = self.idempotence_checks()
        items = [v for v in self.raw.verify if isinstance(v, VerifyRun)]
        suites = [v for v in self.raw.verify if not isinstance(v, VerifyRun)]
        if not items and not suites and not checks:
            return checks
        with self.phase("verify") as rec:
            for item in items:
                name = f"{item.on}$ {item.run}"
                try:
                    res = self.engine.exec(self.run_id, item.on, item.run, 60.0)
                    checks.append(
                        {
                            "name": name,
                            "passed": res.exit_code == item.expect_exit,
                            "exit_code": res.exit_code,
                            "expected": item.expect_exit,
                            "output": (res.stdout + res.stderr)[-2000:],
                            "duration_s": round(res.duration_s, 3),
                        }
                    )
                except HarnessError as exc:
                    checks.append({"name": name, "passed": False, "error": exc.message})
            if suites:  # pytest + testinfra, attached to this run (harness/testsuites.py)
                from harness import testsuites

                self._refuse_host_code(f"verify suite {testsuites.describe(suites[0])!r}")
                rec["checks"] = checks
                rec["suites"] = []
                self.journal.flush()
                checks += testsuites.run_suites(
                    suites,
                    root=self.root,
                    run_folder=self.folder.path,
                    out_dir=self.folder.path / "verify",
                    invocations=rec["suites"],
                )
            rec["checks"] = checks
        return checks

    def stop_captures(self) -> None:
        for cap in self.live.captures:
            try:
                self.live.capture_results.append(self.engine.stop_capture(cap))
            except Exception as exc:  # a capture must never cost the rest of the evidence
                self.live.capture_results.append({"warning": f"capture stop failed: {exc}"})
        self.live.captures = []

    def _gc_hint(self) -> str:
        url = self.opts.engine or os.environ.get("DOCKER_HOST")
        where = f" --engine {url}" if url else ""
        return f"what the run left is removed by `lab gc{where}` once the engine is back"

    def _late_signal(self, signum: int) -> None:
        self.late_signals.append(signum)

    def _stop_collecting(self) -> bool:
        """A signal while collecting, or the matrix's own stop: evidence is optional."""
        parent = self.opts.cancel
        return bool(self.late_signals) or (parent is not None and parent.is_set())

    def collect(self) -> dict[str, Any]:
        with shielded(self._late_signal):
            self.stop_captures()
            extra = list(self.raw.collect.logs) if self.raw.collect else []
            got = collect_nodes(
                self.engine,
                self.run_id,
                self.topology,
                extra_logs=extra,
                folder=self.folder.path,
                redactor=self.redactor,
                stop=self._stop_collecting,
                since=self.since,
                skip=self.log_skip,
                since_for=self.since_for,
            )
            out: dict[str, Any] = {"nodes": got.files, "captures": self.live.capture_results}
            steps = write_step_logs(self.folder.path, self.journal.data["phases"], self.redactor)
            if steps:
                out["step_logs"] = steps
            if got.cut:
                out["cut"] = [c.as_dict() for c in got.cut]
            if got.stopped:
                out["stopped"] = "interrupted: the rest of the evidence was not collected"
                out["result_override"] = "interrupted"
            return out

    def analyze(self) -> None:
        """The `analyze` phase: the run's own captures and logs read for findings. Evidence,
        never the run's failure: whatever goes wrong is recorded on the phase."""
        with shielded(self._late_signal), self.phase("analyze") as rec:
            try:
                found = analyze_folder(
                    self.folder.path, self.catalog, self.redactor, stop=self._stop_collecting
                )
            except Exception as exc:  # a reader's bug must not cost the verdict or the reports
                rec.update(result_override="error", error=f"analysis failed: {exc!r}")
                return
            rec["sources"] = [s.model_dump(mode="json", exclude_none=True) for s in found]

    # -- the whole run ------------------------------------------------------------------------

    def prepare(self) -> None:
        """The phases `reproduce` and `up` share: build, preflight, up, configure (a live
        rerun: build, then the lab brought in line, captures, configure if its inputs changed)."""
        if self.raw.evidence:
            with self.phase("evidence") as rec:  # read in __init__: recorded as the first phase
                rec["sources"] = [
                    s.model_dump(mode="json", exclude_none=True) for s in self.customer
                ]
        self.build()
        if self.lab is not None:
            if self.sync():
                self.configure()
            self.idempotence()
            self.running_config()
            return
        self.preflight()
        self.bring_up()
        self.configure()
        self.idempotence()
        self.running_config()

    def sync(self) -> bool:
        """The `sync` phase of a live rerun (harness/run/live.py); whether configure runs
        again (its inputs changed, or a node it configured was restarted or recreated)."""
        assert self.lab is not None
        lab, run = self.lab, self.run_id
        new = labstate.lab_state(self.topology, self.images, self.raw, self.root)
        self.rerun_key = labstate.rerun_key(new, self.raw, dict(self.loaded.params))
        self.since = datetime.now(UTC)
        extra = list(self.raw.collect.logs) if self.raw.collect else []
        with self.phase("sync", on=lab.run) as rec:
            plan = labstate.plan_sync(
                lab.state,
                new,
                self.topology,
                lambda n: live.live_env(self.engine, run, n),
                live.not_running(self.engine, run),
            )
            rec["plan"] = plan.as_dict()
            labstate.refuse(plan, lab.run)
            self.log_skip = live.log_sizes(self.engine, run, self.topology, extra)
            touched = [*plan.replace, *plan.copy]
            if touched:  # until it is done, those nodes are in no known state
                lab.state.model_copy(update={"dirty": touched}).write(lab.folder)
            sync = live.Sync(
                self.engine,
                self.topology,
                self.images,
                self.labels,
                self.catalog,
                self.cancel,
                self.emit,
                self.opts.trust,
                probes.may_not_start(self.repro.symptom),
            )
            actions, fresh, restarted = sync.apply(plan)
            self._after_reloads(sync.reloaded, run, extra)
            for name in plan.replace:
                self.log_skip.pop(name, None)  # a new container: its files are all this run's
            rec["actions"] = actions
            self.live.addresses = self._live_addresses(fresh)
            self.live.addresses6 = self._live_addresses6(fresh)
            self.live.not_ready = {u.name: u.not_ready for u in fresh if u.not_ready is not None}
            rec["impairments"] = live.apply_impairments(
                self.engine, run, self.raw.topology.impairments, restarted, self.live.addresses
            )
            new.write(lab.folder)
            self.folder.write(nodes=[u.as_dict() for u in fresh])
        self.start_captures()
        again = plan.configure or (
            "node(s) restarted: " + ", ".join(sorted(restarted))
            if restarted and labstate.has_configure(new)
            else None
        )
        if again:
            self.emit({"event": "sync", "configure": again})
        return bool(again)

    def _live_addresses(self, fresh: list[Any]) -> dict[str, dict[str, str]]:
        """Every node's addresses: the lab's record, the engine's for recreated ones."""
        known = (
            {
                n.get("name"): n.get("addresses") or {}
                for n in RunFolder(self.lab.folder).read().get("nodes") or []
            }
            if self.lab is not None
            else {}
        )
        out: dict[str, dict[str, str]] = {}
        changed = {u.name: u.addresses for u in fresh}
        for n in self.topology.nodes:
            got = changed.get(n.name) or known.get(n.name)
            if not got:
                try:
                    got = self.engine.addresses(self.run_id, n.name)
                except HarnessError:
                    got = {}
            out[n.name] = dict(got)
        return out

    def _after_reloads(self, reloaded: dict[str, datetime], run: str, extra: list[str]) -> None:
        """A reloaded node's evidence starts when its reload ended: its output and log files
        until then were written by the old configuration (a fresh run has none of it)."""
        if not reloaded:
            return
        self.since_for = dict(reloaded)
        after = live.log_sizes(self.engine, run, self.topology, extra)
        for name in reloaded:
            self.log_skip[name] = after.get(name, {})

    def _live_addresses6(self, fresh: list[Any]) -> dict[str, dict[str, str]]:
        """Every node's IPv6 addresses: the lab's record, the engine's for recreated ones."""
        known = {
            n.get("name"): n.get("addresses6") or {}
            for n in (RunFolder(self.lab.folder).read().get("nodes") or [] if self.lab else [])
        }
        changed = {u.name: u.addresses6 for u in fresh}
        out = {
            n.name: dict(changed.get(n.name) or known.get(n.name) or {})
            for n in self.topology.nodes
        }
        return {k: v for k, v in out.items() if v}

    def running_config(self, tag: str = "") -> None:
        """The configuration each node runs with, as its lab dumps it (after configure, and
        `config-end` before collect), into artifacts/<node>/running-config/."""
        plan = runconf.wanted(self.topology, self.catalog)
        if not plan:
            return
        when = "at-end" if tag == "-end" else f"after-configure{tag}"
        with self.phase(f"config{tag}") as rec:
            rec["dumps"] = runconf.dump(
                self.engine,
                self.run_id,
                plan,
                folder=self.folder.path,
                when=when,
                redactor=self.redactor,
                down_reason=self._down_reason,
            )

    def execute(self) -> RunResult:
        self.emit({"event": "run", "run": self.run_id, "folder": str(self.folder.path)})
        prewarm()  # the results store's libraries load while the engine works
        t0 = time.monotonic()
        attempts: list[dict[str, Any]] = []
        checks: list[dict[str, Any]] = []
        failure: BaseException | None = None
        with interrupts_raise():
            try:
                self.prepare()
                attempts = self.attempts()
                if not any(a.get("error") for a in attempts):
                    checks = self.verify()
            except BaseException as exc:
                failure = exc
                self.cancel.set()
            with shielded(self._late_signal):
                return self.finish(attempts, checks, failure, time.monotonic() - t0)

    def finish(
        self,
        attempts: list[dict[str, Any]],
        checks: list[dict[str, Any]],
        failure: BaseException | None,
        seconds: float,
    ) -> RunResult:
        self.finishing = True
        if self.live.addresses and not isinstance(failure, Interrupted | KeyboardInterrupt):
            with suppress(HarnessError):  # evidence, never the run's failure
                self.running_config("-end")
        with self.phase("collect") as rec:
            rec.update(self.collect())
        if self.late_signals and not isinstance(failure, Interrupted | KeyboardInterrupt):
            failure = SignalInterrupt(self.late_signals[0])  # Ctrl-C during collect: honoured
        interrupted = isinstance(failure, Interrupted | KeyboardInterrupt)
        match = self._analyze(interrupted)
        if failure is not None:
            msg = failure.message if isinstance(failure, HarnessError) else repr(failure)
            repro = outcomes.run_failed(attempts, self.planned, msg, level=self.level)
        else:
            repro = outcomes.reproduction(attempts, self.planned, level=self.level)
        checks_ok = outcomes.checks_green(checks)
        keep = self._keep(interrupted, repro.verdict, checks_ok)
        self.journal.set_plan(plan_of(self))  # REPRODUCE.md is written from it (reports)
        removed, down_error = ({}, None) if keep else self._down(failed=failure is not None)
        state = self._end_state(interrupted, keep, down_error)
        result = RunResult(
            run=self.run_id,
            scenario=self.topology.scenario,
            role=self.opts.role,
            fix=self.loaded.fix,
            folder=str(self.folder.path),
            engine=self.engine_version,
            **repro.as_dict(),
            attempt_results=[AttemptResult.model_validate(a) for a in attempts],
            checks=checks,
            checks_green=checks_ok,
            kept=keep,
            seconds=round(seconds, 2),
            teardown_error=down_error,
            evidence=match,
        )
        self.journal.set(
            result=repro.verdict,
            reproduction=repro.as_dict(),
            checks=checks,
            kept=keep,
            ended=now_iso(),
            **({"teardown_error": down_error} if down_error else {}),
        )
        self.folder.write(
            state=state, verdict=repro.verdict, rate=repro.rate, kept=keep, removed=removed
        )
        self._write_reports(result)
        self._list_rerun(result)
        index_folder(reports_root(self.root), self.folder.path)  # the results store (lab serve)
        if self.late_signals and not interrupted:  # came while the reports were written
            self.folder.write(state="interrupted")
            raise SignalInterrupt(self.late_signals[0])
        _raise_unreported(failure, interrupted, self.run_id if self.lab is not None else None)
        if isinstance(failure, HarnessError):
            result.error = failure.message
            result.hint = failure.hint
        # what is printed obeys the same rule as what is written
        dumped = json.dumps(result.model_dump(mode="json"))
        return RunResult.model_validate(json.loads(self.redactor.text(dumped)))

    def _analyze(self, interrupted: bool) -> EvidenceMatch | None:
        """The `analyze` phase (not after an interrupt), then the customer's signatures against
        what it found in the lab (None without `evidence:`)."""
        if not interrupted and not self._stop_collecting():
            self.analyze()
        if not self.raw.evidence:
            return None
        phase = next((p for p in self.journal.data["phases"] if p["phase"] == "analyze"), None)
        lab = [AnalyzedSource.model_validate(s) for s in (phase or {}).get("sources") or []]
        match = compare(self.customer, lab)
        self.journal.set(evidence_match=match.model_dump(mode="json"))
        return match

    def _keep(self, interrupted: bool, verdict: str, checks_ok: bool) -> bool:
        """Whether the lab stays up: always with --destroy never; with passing, when the run
        did not pass and was not interrupted; never with --destroy always."""
        if self.lab is not None:
            return True  # a live rerun never removes the lab it was given
        destroy = self.opts.destroy
        wanted = destroy == "never" or (
            destroy == "passing"
            and not interrupted
            and not outcomes.run_passed(self.opts.role, verdict, checks_ok)
        )
        return wanted and self._has_nodes()

    def _has_nodes(self) -> bool:
        """Is there a lab to keep? A run that failed before any node was created keeps nothing
        (and must not tell the engineer to `lab shell` into it)."""
        try:
            return bool(self.engine.find(self.run_id, sparse=True).containers)
        except Exception:  # the engine is gone: nothing can be kept either
            return False

    def _down(self, *, failed: bool) -> tuple[dict[str, int], str | None]:
        """The `down` phase: what was removed, or why not (an engine gone keeps the evidence)."""
        removed: dict[str, int] = {}
        down_error: str | None = None
        with self.phase("down") as rec:
            try:
                removed = tear_down(self.engine, self.run_id, interrupted=failed)
                rec["removed"] = removed
            except InfraError as exc:  # the engine is gone: the evidence must not be
                down_error = f"{exc.message}; {self._gc_hint()}"
                rec.update(result_override="error", error=down_error)
        return removed, down_error

    def _write_reports(self, result: RunResult) -> None:
        """The reports from journal.json, then the folder swept for the scenario's secrets."""
        from harness.reports import write_reports

        reports = write_reports(self.folder.path)
        if reports.get("errors"):
            result.report_errors = list(reports["errors"])
        sweep(self.folder.path, self.redactor)

    # -- `lab up`: this run with the replay phases left out and the lab kept -------------------

    def execute_up(self, keep_on_failure: bool = False) -> UpResult:
        """The phases of `execute` up to the replay (build, preflight, up, capture, impair,
        configure), then the lab stays up: no attempts, verify, reports or down. Whatever ends
        it early (a failure, Ctrl-C, SIGTERM) collects the evidence, removes the lab unless
        keep_on_failure, and is raised with its message redacted."""
        self.journal.set(verb="up")
        self.emit({"event": "run", "run": self.run_id, "folder": str(self.folder.path)})
        prewarm()
        with interrupts_raise():
            try:
                self.prepare()
                return self._stay_up()
            except BaseException as exc:
                self.cancel.set()
                with shielded(self._late_signal):
                    failure = self._up_failed(exc, keep_on_failure)
                raise failure from None

    def _end_state(self, interrupted: bool, keep: bool, down_error: str | None) -> str:
        """run.json's state at the end; a lab kept records what it was built from."""
        if self.lab is not None:
            return "interrupted" if interrupted else "done"  # this rerun; the lab stays up
        if keep and self.images:
            self._record_lab()
        if down_error and not interrupted:
            return "failed"  # not removed, not kept on purpose: `lab gc` may collect it
        return "interrupted" if interrupted else ("kept" if keep else "done")

    def _list_rerun(self, result: RunResult) -> None:
        """A live rerun, listed in its lab's run.json, its result kept beside its journal (what
        verify-fix --on reads back as a recorded baseline); nothing for any other run."""
        if self.lab is None:
            return
        clean = self.redactor.text(json.dumps(result.model_dump(mode="json")))
        (self.folder.path / live.RESULT_FILE).write_text(clean)
        self.lab.record(
            self.folder,
            verdict=result.verdict,
            rate=result.rate,
            role=self.opts.role,
            fix=self.loaded.fix,
            verification=self.opts.verification,
            key=self.rerun_key,
            ended=now_iso(),
        )

    def _record_lab(self) -> None:
        """lab-state.json: what the lab left up was built from (`lab reproduce --on` reads it)."""
        with suppress(OSError):
            labstate.lab_state(self.topology, self.images, self.raw, self.root).write(
                self.folder.path
            )

    def _stay_up(self) -> UpResult:
        """The lab is up: captures end with this process (they die with it anyway), so they
        cover bring-up and configure; what was written is swept through the redactor."""
        self._record_lab()
        if self.live.captures:
            self.stop_captures()
            self.journal.set(captures=self.live.capture_results)
        nodes = self.folder.read().get("nodes", [])
        self.folder.write(state="up")
        self.journal.set(result="up", kept=True, ended=now_iso())
        sweep(self.folder.path, self.redactor)
        index_folder(reports_root(self.root), self.folder.path)
        result = {
            "run": self.run_id,
            "scenario": self.topology.scenario,
            "fix": self.loaded.fix,
            "folder": str(self.folder.path),
            "engine": self.engine_version,
            "nodes": nodes,
        }
        return UpResult.model_validate(self.redactor.deep(result))

    def _up_failed(self, exc: BaseException, keep: bool) -> BaseException:
        """Evidence first (redacted, as in `finish`), then down unless keep; returns what to
        raise: the failure with its message and hint redacted, or the signal that ended it."""
        self.finishing = True
        if not keep:
            self.emit({"event": "teardown", "run": self.run_id})
        with self.phase("collect") as rec:
            rec.update(self.collect())
        removed: dict[str, int] = {}
        if not keep:
            with self.phase("down") as rec:
                try:
                    removed = tear_down(self.engine, self.run_id)
                    rec["removed"] = removed
                except InfraError as down:  # the engine is gone: the evidence must not be
                    rec.update(result_override="error", error=f"{down.message}; {self._gc_hint()}")
        if self.late_signals and not isinstance(exc, Interrupted | KeyboardInterrupt):
            exc = SignalInterrupt(self.late_signals[0])  # Ctrl-C during collect: honoured
        if isinstance(exc, KeyboardInterrupt):
            exc = SignalInterrupt(2)
        interrupted = isinstance(exc, Interrupted)
        msg = exc.message if isinstance(exc, HarnessError | Interrupted) else repr(exc)
        # a failed lab kept on purpose is "up" for `lab ls`/`lab gc`; the journal says it failed
        state = "interrupted" if interrupted else ("up" if keep else "failed")
        self.folder.write(state=state, error=self.redactor.text(msg), removed=removed)
        self.journal.set(
            result="interrupted" if interrupted else "failed",
            error=msg,
            kept=keep and not interrupted,
            ended=now_iso(),
        )
        sweep(self.folder.path, self.redactor)
        if isinstance(exc, HarnessError | Interrupted):
            exc.message = self.redactor.text(exc.message)
            exc.hint = self.redactor.text(exc.hint) if exc.hint else exc.hint
            exc.args = (exc.message,)
        return exc


def topology_summary(topology: Topology, raw: Any) -> dict[str, Any]:
    """The topology as reports draw it: networks, nodes (what they run, where) and impairments."""
    nodes = []
    for n in topology.nodes:
        img = n.image
        what = (
            {"lab": img.lab, "version": img.version, "os": img.os}
            if isinstance(img, LabImage)
            else {"os": img.os}
            if isinstance(img, EnvImage)
            else {"image": img.ref}
        )
        nodes.append(
            {
                "name": n.name,
                **what,
                "networks": [
                    {"network": a.network}
                    | ({"ipv4": a.ipv4} if a.ipv4 else {})
                    | ({"ipv6": a.ipv6} if a.ipv6 else {})
                    for a in n.networks
                ],
                "depends_on": list(n.depends_on),
            }
            | ({"clock_s": n.settings.clock} if n.settings.clock is not None else {})
        )
    return {
        "networks": [
            {"name": net.name, "subnet": net.subnet, "internal": net.internal}
            | ({"mtu": net.mtu} if net.mtu else {})
            | ({"ipv6": True, "subnet6": net.subnet6} if net.ipv6 else {})
            for net in topology.networks
        ],
        "nodes": nodes,
        "impairments": [i.model_dump(exclude_none=True) for i in raw.topology.impairments],
    }


class ConfigureFailed(InfraError):
    """The customer's configuration did not apply: the run cannot go on (verdict ERROR)."""


def _raise_unreported(
    failure: BaseException | None, interrupted: bool, live_lab: str | None = None
) -> None:
    """What a finished run raises instead of returning its result: a cancelled matrix cell's
    Interrupted (the matrix reports it), a signal, bad input, and anything not ours.
    `live_lab`: a live rerun's lab, which a signal leaves up (the message says so)."""
    if isinstance(failure, Interrupted) and not isinstance(failure, SignalInterrupt):
        raise failure  # a cancelled matrix cell: the matrix reports it
    if interrupted:
        sig = SignalInterrupt(getattr(failure, "signum", 2))
        if live_lab is not None:
            sig.message = f"{sig.message.split(';')[0]}; lab {live_lab} stays up"
            sig.hint = f"`lab down {live_lab}` removes it"
            sig.args = (sig.message,)
        raise sig
    if isinstance(failure, UsageError):
        raise failure
    if failure is not None and not isinstance(failure, HarnessError):
        raise failure


def run_scenario(
    loaded: LoadedScenario,
    *,
    root: Path,
    catalog: Catalog,
    opts: RunOptions,
    engine: Engine | None = None,
) -> RunResult:
    return Run(loaded, root, catalog, opts, engine).execute()


def attempt_rule(
    repro: Reproduce, role: str, baseline: tuple[int, int] | None
) -> confidence.AttemptRule:
    """The scenario's attempts and confidence as a stop rule for this run's role."""
    return confidence.AttemptRule(
        least=repro.attempts,
        level=repro.confidence,
        budget=repro.max_attempts or confidence.DEFAULT_BUDGET,
        candidate=outcomes.hopes_absent(role),
        baseline=baseline,
    )
