"""`lab up`: build the images, bring the topology up, leave it running, say how to get in."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from harness.engine.api import Engine, RunLabels
from harness.engine.connection import connect_engine
from harness.errors import HarnessError
from harness.run import faults
from harness.run.evidence import save_node_evidence
from harness.run.execute import topology_summary
from harness.run.folder import RunFolder, now_iso, reports_root
from harness.run.ids import new_run_id, owner_token
from harness.run.journal import Journal
from harness.run.provision import OnEvent, _quiet, bring_up, tear_down
from harness.run.signals import SignalInterrupt, interrupts_raise, shielded
from harness.run.trust import Trust, enforce_capabilities
from harness.scenario.catalog import load_catalog
from harness.scenario.load import load_scenario


def up(
    scenario: Path,
    *,
    root: Path,
    params: dict[str, str] | None = None,
    keep: bool = False,
    on_event: OnEvent = _quiet,
    untrusted: bool = False,
    trust: bool = False,
    engine: Engine | None = None,
) -> dict[str, Any]:
    """Bring the scenario's topology up. On any failure or signal everything made is removed
    (unless keep), after the nodes' logs are saved to the run folder. `lab up` runs no
    playbooks or suites; an untrusted scenario (unless `trust`) gets the default capabilities
    only (harness/run/trust.py)."""
    catalog = load_catalog(root)
    loaded = load_scenario(scenario, root=root, catalog=catalog, params=params)
    steps = loaded.raw.reproduce.steps if loaded.raw.reproduce else []
    impairments = loaded.raw.topology.impairments
    # the nodes that impairments and partition steps will touch need NET_ADMIN, by hand too
    topo = faults.with_net_admin(
        loaded.topology, faults.nodes_needing_net_admin(impairments, steps)
    )
    level = Trust.of(untrusted=untrusted, trust=trust)
    enforce_capabilities(loaded, topo, level)  # exit 2, located, before anything is made
    eng = engine or connect_engine()
    run_id = new_run_id()
    folder = RunFolder.create(reports_root(root), topo.scenario, run_id)
    labels = RunLabels(run_id, topo.scenario, owner_token(), str(folder.path.resolve()))
    version = eng.version()
    folder.write(
        run=run_id,
        scenario=topo.scenario,
        source=str(scenario),
        state="provisioning",
        owner=labels.owner,
        engine=version,
        created=now_iso(),
    )
    journal = Journal(
        folder.path / "journal.json",
        {
            "run": run_id,
            "scenario": topo.scenario,
            "verb": "up",
            "engine": version,
            "trust": level.as_dict(),
            # what each node runs (lab, version, os): the pytest plugin's `lab` reads it
            "topology": topology_summary(topo, loaded.raw),
        },
    )
    on_event({"event": "run", "run": run_id, "folder": str(folder.path)})
    cancel = threading.Event()
    with interrupts_raise():
        try:
            with journal.phase("build") as rec:
                images = eng.ensure_images(topo, catalog, on_progress=on_event)
                rec["images"] = images
            with journal.phase("up") as rec:
                nodes = bring_up(eng, topo, images, labels, cancel, on_event, trust=level)
                rec["nodes"] = [n.as_dict() for n in nodes]
            if impairments:
                with journal.phase("impair") as rec:
                    addresses = {n.name: n.addresses for n in nodes}
                    rec["applied"] = faults.topology_impairments(
                        eng, run_id, impairments, addresses
                    )
        except BaseException as exc:
            cancel.set()
            with shielded():
                on_event({"event": "teardown", "run": run_id})
                save_node_evidence(eng, run_id, folder.path)
                removed = {} if keep else tear_down(eng, run_id)
                state = (
                    "interrupted"
                    if isinstance(exc, SignalInterrupt | KeyboardInterrupt)
                    else "failed"
                )
                if keep and state == "failed":
                    state = "up"  # kept for inspection: `lab down` removes it
                folder.write(state=state, error=str(exc), removed=removed)
                journal.set(result=state, ended=now_iso())
            if isinstance(exc, KeyboardInterrupt):
                raise SignalInterrupt(2) from None
            if isinstance(exc, HarnessError):
                exc.run_id = run_id  # type: ignore[attr-defined]
            raise
    result = {
        "run": run_id,
        "scenario": topo.scenario,
        "folder": str(folder.path),
        "engine": version,
        "nodes": [n.as_dict() for n in nodes],
    }
    folder.write(state="up", nodes=result["nodes"])
    journal.set(result="up", ended=now_iso())
    return result
