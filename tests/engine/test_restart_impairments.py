"""A node restarted by a fault step gets a new network namespace, without what the topology's
impairments put in the old one (the loss and delay rules, the nfqueue delay helper sharing
it). The run puts them back (harness/run/steps.py `_reapply`): the delay is there after the
restart as before it, in every attempt, with one helper per link and nothing left after."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.engine import delayhelper
from tests.conftest import nothing_left, run_lab

SCENARIO = "tests/engine/scenarios/restart-keeps-impairments.yaml"


def test_a_restarted_node_keeps_its_delay(
    reports: Path, docker_client: Any, cleanup_runs: list[str]
) -> None:
    p = run_lab("reproduce", SCENARIO, "--destroy", "never", "--json", reports=reports)
    r = json.loads(p.stdout)
    cleanup_runs.append(r["run"])
    journal = json.loads((Path(r["folder"]) / "journal.json").read_text())
    attempts = [ph for ph in journal["phases"] if ph["phase"].startswith("attempt-")]
    seen = {(ph["phase"], s["id"]): s.get("stdout") for ph in attempts for s in ph["steps"]}
    assert (r["verdict"], p.returncode) == ("REPRODUCED", 0), (r.get("reason"), seen)
    assert r["rate"] == "2/2", seen
    for ph in attempts:
        restart = next(s for s in ph["steps"] if (s.get("fault") or {}).get("action") == "restart")
        again = restart["fault"]["reapplied"]
        assert [(a["node"], a["network"]) for a in again] == [("web", "lan")], again
    web = docker_client.containers.get(f"lab-{r['run']}-web")
    helpers = delayhelper.find(web)
    if journal_backend(journal) == "nfqueue":  # one helper, in web's namespace of now
        assert len(helpers) == 1 and helpers[0].status == "running", helpers
    else:
        assert helpers == []
    run_lab("down", r["run"], reports=reports, check=True)
    assert nothing_left(docker_client, r["run"])
    assert delayhelper.find(web) == []  # the helper went with its node


def journal_backend(journal: dict[str, Any]) -> str | None:
    for ph in journal["phases"]:
        if ph["phase"] == "impair":
            for a in ph.get("applied") or []:
                if a.get("backend"):
                    return str(a["backend"])
    return None
