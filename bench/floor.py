"""The floor: the same containers and networks, in parallel, straight through the Docker SDK.

Usage: floor.py up NAME SPEC.json | floor.py down NAME. SPEC lists networks and nodes with images.
No scenario, no catalog, no run folder: what is left is the engine's own cost.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker


def up(name: str, spec: dict) -> None:
    client = docker.from_env()
    label = {"bench.floor": name}
    with ThreadPoolExecutor(8) as ex:
        nets = dict(
            zip(
                spec["networks"],
                ex.map(
                    lambda n: client.networks.create(f"{name}-{n}", labels=label).name,
                    spec["networks"],
                ),
                strict=True,
            )
        )

    def node(n: dict) -> None:
        api = client.api
        first, *rest = n["networks"]
        c = api.create_container(
            image=n["image"],
            name=f"{name}-{n['name']}",
            hostname=n["name"],
            command=n["command"],
            labels=label,
            detach=True,
            host_config=api.create_host_config(init=True, network_mode=nets[first]),
            networking_config=api.create_networking_config(
                {nets[first]: api.create_endpoint_config(aliases=[n["name"]])}
            ),
        )
        for r in rest:
            api.connect_container_to_network(c["Id"], nets[r], aliases=[n["name"]])
        api.start(c["Id"])
        while client.containers.get(c["Id"]).status != "running":
            pass

    with ThreadPoolExecutor(8) as ex:
        list(ex.map(node, spec["nodes"]))


def down(name: str) -> None:
    client = docker.from_env()
    flt = {"label": f"bench.floor={name}"}
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda c: c.remove(force=True), client.containers.list(all=True, filters=flt)))
        list(ex.map(lambda n: n.remove(), client.networks.list(filters=flt)))


if __name__ == "__main__":
    if sys.argv[1] == "up":
        up(sys.argv[2], json.loads(Path(sys.argv[3]).read_text()))
    else:
        down(sys.argv[2])
