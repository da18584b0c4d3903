"""IPv6 on lab networks (issue 18 point 4), proved on the real engine: a network with a fixed
`subnet6:` and one with `ipv6: true` (a subnet picked per run), a node's static `ipv6:` seen
inside the node, one node reaching the other over IPv6 (ICMPv6 and HTTP to nginx on [::]:80),
`lab up --json` reporting the addresses, `lab down` leaving nothing; and REPRODUCE.sh of the
same scenario making the same networks by hand and observing the symptom over IPv6."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, nothing_left, run_json, run_lab

pytestmark = pytest.mark.engine
SCENARIO = "tests/engine/scenarios/ipv6.yaml"
SUBNET6 = ipaddress.IPv6Network("fd00:6c61:6236::/64")
WEB6, CLIENT6 = "fd00:6c61:6236::80", "fd00:6c61:6236::20"


def _sh(container: Any, command: str) -> str:
    rc, out = container.exec_run(["sh", "-c", command])
    text = out.decode(errors="replace").strip()
    assert rc == 0, f"{command}: exit {rc}: {text}"
    return str(text)


def _inet6(container: Any) -> set[ipaddress.IPv6Address]:
    """The node's IPv6 addresses as its kernel has them (/proc/net/if_inet6: 32 hex digits)."""
    lines = _sh(container, "cat /proc/net/if_inet6").splitlines()
    return {ipaddress.IPv6Address(int(line.split()[0], 16)) for line in lines}


def _network(docker_client: Any, run: str, name: str) -> dict[str, Any]:
    return dict(docker_client.networks.get(f"lab-{run}-{name}").attrs)


def test_static_and_picked_ipv6_inside_the_nodes_and_between_them(
    reports: Path, docker_client: Any, cleanup_runs: list[str]
) -> None:
    r = run_json("up", SCENARIO, reports=reports)
    cleanup_runs.append(r["run"])
    nodes = {n["name"]: n for n in r["nodes"]}
    assert nodes["web"]["addresses6"]["lan6"] == WEB6, nodes
    assert nodes["client"]["addresses6"]["lan6"] == CLIENT6, nodes
    assert nodes["client"]["addresses"]["lan6"] == "10.86.6.20", nodes  # IPv4 beside it
    picked = _network(docker_client, r["run"], "auto6")
    assert picked["EnableIPv6"] is True
    subnets = [ipaddress.ip_network(c["Subnet"]) for c in picked["IPAM"]["Config"]]
    auto6 = next(s for s in subnets if s.version == 6)
    assert auto6.prefixlen == 64 and auto6.subnet_of(ipaddress.IPv6Network("fd00::/8")), subnets
    web_auto = ipaddress.IPv6Address(nodes["web"]["addresses6"]["auto6"])
    assert web_auto in auto6, (web_auto, auto6)

    web = docker_client.containers.get(f"lab-{r['run']}-web")
    client = docker_client.containers.get(f"lab-{r['run']}-client")
    assert ipaddress.IPv6Address(WEB6) in _inet6(web)
    assert {
        ipaddress.IPv6Address(CLIENT6),
        ipaddress.IPv6Address(nodes["client"]["addresses6"]["auto6"]),
    } <= _inet6(client)
    for target in (WEB6, str(web_auto)):
        assert " 0% packet loss" in _sh(client, f"ping -6 -c 2 -W 5 {target}"), target
        code = _sh(client, f"curl -sS -o /dev/null -w '%{{http_code}}' 'http://[{target}]/'")
        assert code == "200", target
    # nothing of the lab's own traffic fell back to IPv4: web saw the client's IPv6 address
    log = _sh(web, "cat /var/log/nginx/access.log")
    assert CLIENT6 in log, log

    run_lab("down", r["run"], reports=reports, check=True)
    assert nothing_left(docker_client, r["run"])


def _left(prefix: str) -> list[str]:
    out = []
    for argv in (["docker", "ps", "-a", "--format", "{{.Names}}"], ["docker", "network", "ls"]):
        text = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        out += [line for line in text.splitlines() if prefix in line]
    return out


def test_reproduce_over_ipv6_and_its_reproduce_sh(
    tmp_path: Path, reports: Path, docker_client: Any, cleanup_runs: list[str]
) -> None:
    """The symptom (HTTP 200 over IPv6) is observed by the run, then by REPRODUCE.sh alone,
    which creates both networks itself (`--ipv6 --subnet`, a static `--ip6`)."""
    p = run_lab("reproduce", SCENARIO, "--destroy", "always", "--json", reports=reports)
    r = json.loads(p.stdout)
    cleanup_runs.append(r["run"])
    assert (r["verdict"], p.returncode) == ("REPRODUCED", 0), r.get("reason")
    script = Path(r["folder"]) / "REPRODUCE.sh"
    text = script.read_text()
    assert f"--ipv6 --subnet {SUBNET6} " in text and f"--ip6 {CLIENT6} " in text, text
    prefix = f"lab-manual-t{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PREFIX": prefix, "PROJECT": str(ROOT)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # ansible-playbook
    try:
        done = subprocess.run(
            ["sh", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        out = done.stdout + done.stderr
        assert done.returncode == 0 and "REPRODUCED (1/1)" in out, out
    finally:
        assert _left(prefix) == [], f"left on the engine: {_left(prefix)}"
    assert nothing_left(docker_client, r["run"])
