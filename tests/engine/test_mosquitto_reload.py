"""The mosquitto lab's reload (labs/mosquitto/mosquitto-reload, lab.yaml `reload:`) on the real
broker of each version, in a throwaway container of the lab's image: a change SIGHUP applies
(allow_anonymous) is taken by the same broker process, exit 0, and the running configuration
follows; an option mosquitto reads only at start (max_connections, a listener) or does not know
(a typo) exits 1, so the harness restarts the node, and the broker is left as it was. The live
rerun itself is tested in tests/engine/test_live_rerun.py (the mosquitto case)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.engine.images import ensure_plan
from harness.images import plan_lab
from harness.scenario.catalog import load_catalog

pytestmark = [pytest.mark.engine]

CONF = "/etc/mosquitto/mosquitto.conf"
ANON = "env -u XDG_CONFIG_HOME HOME=/nonexistent mosquitto_pub -h 127.0.0.1 -t t -m m"


@pytest.fixture(params=[("2.0.11", "debian-11"), ("2.0.11", "debian-12"), ("2.0.21", "debian-13")])
def broker(request: Any, root: Path, docker_client: Any) -> Iterator[Any]:
    version, os_name = request.param
    tag = ensure_plan(
        docker_client, plan_lab(load_catalog(root), "mosquitto", version, os_name)
    ).tag
    c = docker_client.containers.run(
        tag, detach=True, labels={"labharness.test": "mosquitto-reload"}
    )
    try:
        deadline = time.monotonic() + 20
        while sh(c, ANON)[0] != 0:
            assert time.monotonic() < deadline, c.logs().decode(errors="replace")
            time.sleep(0.2)
        yield c
    finally:
        c.remove(force=True)


def sh(c: Any, command: str) -> tuple[int, str]:
    rc, out = c.exec_run(["sh", "-c", command])
    return int(rc), out.decode(errors="replace")


def test_reload_applies_what_sighup_applies_and_refuses_the_rest(broker: Any) -> None:
    _, pid = sh(broker, "pgrep -x mosquitto")
    # a reloadable option: anonymous clients refused from now on, by the same process
    assert sh(broker, f"sed -i '/^allow_anonymous true$/d' {CONF}")[0] == 0
    rc, out = sh(broker, "mosquitto-reload")
    assert rc == 0 and "reloaded its configuration on SIGHUP" in out, out
    rc, out = sh(broker, ANON)
    assert rc == 5 and "not authorised" in out, out
    assert sh(broker, "pgrep -x mosquitto")[1] == pid
    loaded = sh(broker, "cat /run/mosquitto/loaded.conf")[1]
    assert "listener 1883" in loaded and "allow_anonymous" not in loaded, loaded
    # options mosquitto reads only at start, or does not know: exit 1 (restart), nothing sent
    for line, named in [
        ("max_connections 10", "'max_connections' changed"),
        ("listener 1884", "'listener' changed"),
        ("allow_anonymus true", "'allow_anonymus' changed"),
    ]:
        rc, out = sh(broker, f"cp {CONF} /tmp/c && echo '{line}' >> {CONF} && mosquitto-reload")
        assert rc == 1 and named in out, (line, out)
        assert sh(broker, f"cp /tmp/c {CONF}")[0] == 0
        assert sh(broker, "cat /run/mosquitto/loaded.conf")[1] == loaded
        assert sh(broker, ANON)[0] == 5  # still the configuration it had
    # and back: anonymous clients accepted again
    assert sh(broker, f"echo 'allow_anonymous true' >> {CONF}")[0] == 0
    rc, out = sh(broker, "mosquitto-reload")
    assert rc == 0, out
    assert sh(broker, ANON)[0] == 0
    assert sh(broker, "pgrep -x mosquitto")[1] == pid
    assert broker.logs().decode(errors="replace").count("Reloading config.") == 2  # SIGHUPs
