"""mosquitto lab health: the packages at the lab's version, the broker running as the mosquitto
user (it drops root), every listener of the configuration it loaded listening, the broker
answering MQTT, and anonymous clients accepted or refused exactly as that configuration says
(mosquitto 2.x: refused on a listener unless allow_anonymous true). Runs on every node of the
topology running the mosquitto lab (docs/pytest-plugin.md); it needs no client to be allowed
in (it runs on the mosquitto-anonymous-refused case, whose broker refuses anonymous clients)."""

from __future__ import annotations

import re
from typing import Any

from harness.pytest_plugin import Node, same_version

LOADED = "/run/mosquitto/loaded.conf"  # what mosquitto started with or last reloaded
# a client that ignores the node's own client options (~/.config/mosquitto_pub): anonymous
ANONYMOUS_PUB = "env -u XDG_CONFIG_HOME HOME=/nonexistent mosquitto_pub -h 127.0.0.1 -q 0"


def _loaded(host: Any) -> str:
    conf: str = host.file(LOADED).content_string
    return conf


def _listener_ports(conf: str) -> list[int]:
    """The ports of the `listener` lines (unix sockets, port 0, left out); none: 2.x listens
    on localhost:1883 only."""
    ports = [int(p) for p in re.findall(r"^listener (\d+)\b", conf, re.M) if int(p) > 0]
    return ports or [1883]


def test_packages_at_lab_version(host: Any, node: Node) -> None:
    for name in ("mosquitto", "mosquitto-clients"):
        pkg = host.package(name)
        assert pkg.is_installed, name
        assert node.version and same_version(pkg.version, node.version), (
            f"{name} {pkg.version}, lab version {node.version}"
        )


def test_broker_runs_as_mosquitto(host: Any) -> None:
    procs = host.check_output("ps -eo user:20=,args= 2>/dev/null || true")
    rows = [ln.split(None, 1) for ln in procs.splitlines() if ln.strip()]
    users = [
        r[0]
        for r in rows
        if len(r) == 2 and r[1].startswith(("mosquitto ", "/usr/sbin/mosquitto "))
    ]
    assert users == ["mosquitto"], procs  # one broker, not root (tini and mosquitto-start are)


def test_listening_on_its_listeners(host: Any) -> None:
    conf = _loaded(host)
    anywhere = bool(re.search(r"^listener \d+", conf, re.M))
    for port in _listener_ports(conf):
        where = f"tcp://0.0.0.0:{port}" if anywhere else f"tcp://127.0.0.1:{port}"
        assert host.socket(where).is_listening, f"nothing listens on {where}"


def test_broker_answers_mqtt(host: Any) -> None:
    """A CONNACK comes back, accepted or refused: the broker speaks MQTT on its listener."""
    port = _listener_ports(_loaded(host))[0]
    r = host.run(f"{ANONYMOUS_PUB} -p {port} -t labharness/health -m ok")
    assert r.rc == 0 or "Connection Refused:" in r.stderr, (r.rc, r.stdout + r.stderr)


def test_anonymous_clients_as_configured(host: Any) -> None:
    conf = _loaded(host)
    listeners = bool(re.search(r"^listener ", conf, re.M))
    allowed = bool(re.search(r"^allow_anonymous true$", conf, re.M)) or not listeners
    port = _listener_ports(conf)[0]
    r = host.run(f"{ANONYMOUS_PUB} -p {port} -t labharness/anonymous -m ok")
    if allowed:
        assert r.rc == 0, f"allow_anonymous true, yet: {r.stderr}"
    else:
        assert r.rc == 5 and "not authorised" in r.stderr, (
            f"no allow_anonymous true on a listener: mosquitto 2.x must refuse; rc {r.rc}"
            f" {r.stderr}"
        )
