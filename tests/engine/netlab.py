"""A topology up for one test module, through harness.verbs.up, removed with runs.down."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

SCEN = ROOT / "tests" / "engine" / "scenarios"


@dataclass
class Lab:
    run: str
    client: Any
    containers: dict[str, Any]
    addresses: dict[str, dict[str, str]]  # node -> network -> IPv4
    networks: dict[str, str]  # scenario network -> docker network name

    def sh(self, node: str, cmd: str) -> tuple[int, str]:
        rc, out = self.containers[node].exec_run(["sh", "-c", cmd])
        return int(rc), out.decode(errors="replace")

    def ping_loss(self, node: str, address: str, count: int = 40) -> float:
        """Percentage of echo requests without a reply (ping -i 0.05)."""
        _, out = self.sh(node, f"ping -n -q -c {count} -i 0.05 -W 1 {address}")
        m = re.search(r"(\d+(?:\.\d+)?)% packet loss", out)
        assert m, out
        return float(m.group(1))

    def reaches(self, node: str, address: str) -> bool:
        return self.sh(node, f"ping -n -q -c 1 -W 1 {address}")[0] == 0


@contextmanager
def lab(scenario: str, reports: Path) -> Iterator[Lab]:
    from harness.engine.client import connect
    from harness.verbs.runs import down
    from harness.verbs.up import up

    old = os.environ.get("LABHARNESS_REPORTS")
    os.environ["LABHARNESS_REPORTS"] = str(reports)
    run: str | None = None
    try:
        result = up(SCEN / f"{scenario}.yaml", root=ROOT)
        run = result.run
        client = connect()
        containers = {n.name: client.containers.get(n.container) for n in result.nodes}
        addresses = {n.name: dict(n.addresses) for n in result.nodes}
        nets = {a for n in result.nodes for a in n.addresses}
        yield Lab(run, client, containers, addresses, {n: f"lab-{run}-{n}" for n in nets})
    finally:
        if run is not None:
            down([run])
        if old is None:
            os.environ.pop("LABHARNESS_REPORTS", None)
        else:
            os.environ["LABHARNESS_REPORTS"] = old
