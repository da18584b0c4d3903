"""The matrix floor: the bench matrix's cells through the Docker SDK alone, JOBS at a time.

Usage: matrix_floor.py JOBS SPEC.json. SPEC lists the cells, each with its nodes (name, image,
command, init) and the URL its client fetches. Each cell makes the engine calls a harness cell
makes: one network, two containers started together, a readiness wait read from the host (no
exec, as the harness does), `nginx -T` (the running configuration the harness records after
bring-up), two `curl` execs (the two attempts), `nginx -t` (the verify check) and `nginx -T`
again (the running configuration at the end), then force removal and the network's removal.
No scenario, no catalog, no run folder, no reports: its -j2/-j1 ratio is what the engine and
kernel allow this workload, whatever the client.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker

LABEL = "bench.matrix-floor"


def listening(pid: int, port: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/net/tcp").read_text() + Path(f"/proc/{pid}/net/tcp6").read_text()
    except OSError:
        return False
    want = f":{port:04X}"
    return any(
        f[1].endswith(want) and f[3] == "0A" for f in (ln.split() for ln in text.splitlines()[1:])
    )


def dump(web: Any, name: str) -> None:
    """The running configuration, as the nginx lab's running_config command dumps it."""
    rc, _ = web.exec_run(["sh", "-c", "nginx -T 2>&1"])
    if rc != 0:
        raise SystemExit(f"floor cell {name}: nginx -T exited {rc}")


def cell(client: Any, spec: dict[str, Any]) -> None:
    api = client.api
    name = f"floor-{uuid.uuid4().hex[:8]}"
    net = client.networks.create(name, driver="bridge", labels={LABEL: name})
    try:
        ids = {}
        for n in spec["nodes"]:
            ids[n["name"]] = api.create_container(
                image=n["image"],
                name=f"{name}-{n['name']}",
                hostname=n["name"],
                command=n["command"],
                labels={LABEL: name},
                detach=True,
                host_config=api.create_host_config(init=n["init"], network_mode=net.name),
                networking_config=api.create_networking_config(
                    {net.name: api.create_endpoint_config(aliases=[n["name"]])}
                ),
            )["Id"]
        with ThreadPoolExecutor(len(ids)) as ex:
            list(ex.map(api.start, ids.values()))
        web, client_node = (client.containers.get(ids[k]) for k in ("web", "client"))
        gap = 0.02
        while not listening(int(web.attrs["State"]["Pid"]), 80):
            time.sleep(gap)
            gap = min(gap * 2, 0.2)
        dump(web, name)
        for _ in range(2):
            rc, _ = client_node.exec_run(
                ["curl", "-sS", "-m", "10", "-w", "\\n%{http_code}", spec["url"]]
            )
            if rc != 0:
                raise SystemExit(f"floor cell {name}: curl exited {rc}")
        rc, _ = web.exec_run(["nginx", "-t"])
        if rc != 0:
            raise SystemExit(f"floor cell {name}: nginx -t exited {rc}")
        dump(web, name)
    finally:
        objs = client.containers.list(all=True, filters={"label": f"{LABEL}={name}"}, sparse=True)
        if objs:
            with ThreadPoolExecutor(len(objs)) as ex:
                list(ex.map(lambda c: c.remove(force=True, v=True), objs))
        net.remove()


def main() -> None:
    jobs, cells = int(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
    client = docker.from_env()
    with ThreadPoolExecutor(jobs) as ex:
        list(ex.map(lambda s: cell(client, s), cells))


if __name__ == "__main__":
    main()
