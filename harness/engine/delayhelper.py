"""The delay helper of the "nfqueue" backend: a container in a node's network namespace.

It runs harness/engine/nfqdelay.py on an NFQUEUE that impair.py points at it, in an image built
from the node's environment image plus Debian's libnetfilter-queue1 (so the node's own image is
untouched, and it works on a remote engine: nothing runs on the harness's host). The container
shares the node's network stack (`network_mode=container:<node>`), has NET_ADMIN, and carries
the node's run and scenario labels, so `lab down` and `lab gc` remove it with the run; its own
label LABEL_HELPER=delay, LABEL_HELPER_OF=<node container id> and LABEL_HELPER_NET=<network>
find it again for clear().

API
---
ensure_image(client, node_image) -> str
    The helper image's tag (labharness/nfqdelay:<hash>), built once per base image and script.
start(container, network, queue, delay_ms, jitter_ms) -> dict
    Start the helper and wait until it has bound the queue; InfraError with its output else.
stop(container, network=None) -> list[dict]
    Stop (SIGTERM: what it holds is released) and remove the node's helpers (one network's, or
    all), each as {"name", "network", "stats"} with the counters it printed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

from harness.engine.client import engine_errors
from harness.errors import InfraError

LABEL_HELPER = "labharness.helper"
LABEL_HELPER_OF = "labharness.helper.of"
LABEL_HELPER_NET = "labharness.helper.network"
REPO = "labharness/nfqdelay"
SCRIPT = Path(__file__).with_name("nfqdelay.py")
SCRIPT_IN_IMAGE = "/usr/local/lib/labharness/nfqdelay.py"
READY_TIMEOUT = 15.0
_COPIED_LABELS = ("labharness.run", "labharness.scenario")

DOCKERFILE = f"""\
ARG BASE_IMAGE
FROM ${{BASE_IMAGE}}
RUN set -eu; apt-get update; \\
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
        libnetfilter-queue1 python3; \\
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
COPY nfqdelay.py {SCRIPT_IN_IMAGE}
"""

_build_lock = threading.Lock()


def _base_image(client: Any, node_image: str) -> Any:
    """The environment image the node's image was built on (same OS label), else the node's."""
    with engine_errors("inspect the node's image"):
        img = client.images.get(node_image)
        os_name = (img.labels or {}).get("labharness.os")
        if os_name and (img.labels or {}).get("labharness.kind") != "env":
            envs = client.images.list(
                filters={"label": ["labharness.kind=env", f"labharness.os={os_name}"]}
            )
            if envs:
                return envs[0]
    return img


def _context() -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (
            ("Dockerfile", DOCKERFILE.encode()),
            ("nfqdelay.py", SCRIPT.read_bytes()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def image_tag(base_id: str) -> str:
    h = hashlib.sha256()
    for part in (base_id.encode(), DOCKERFILE.encode(), SCRIPT.read_bytes()):
        h.update(hashlib.sha256(part).digest())
    return f"{REPO}:{h.hexdigest()[:12]}"


def ensure_image(client: Any, node_image: str) -> str:
    """The helper image for a node built from node_image: reused, else built (a few seconds)."""
    from harness.engine.images import _docker_build, _image_missing, tag_lock

    base = _base_image(client, node_image)
    tag = image_tag(str(base.id))
    with _build_lock, tag_lock(tag):
        if _image_missing(client, tag):
            _docker_build(
                client,
                tag=tag,
                fileobj=_context(),
                dockerfile="Dockerfile",
                buildargs={"BASE_IMAGE": str(base.id)},
                labels={"labharness.image": "nfqdelay", "labharness.kind": "helper"},
                on_progress=None,
                what="the nfqueue delay helper",
                hint="the helper needs Debian's libnetfilter-queue1 from the archive the"
                " environment images use (docs/impairments.md)",
            )
    return tag


def _name(container: Any, network: str) -> str:
    return f"{container.name}-delay-{re.sub(r'[^A-Za-z0-9_.-]', '-', network)}"


def _logs(c: Any) -> str:
    with contextlib.suppress(Exception):
        return bytes(c.logs(stdout=True, stderr=True)).decode(errors="replace")
    return ""


def _remove(c: Any) -> None:
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound):
        c.remove(force=True)


def start(
    container: Any, network: str, queue: int, delay_ms: float, jitter_ms: float
) -> dict[str, Any]:
    """The helper for (node, network) running and bound to `queue`."""
    client = container.client
    image = ensure_image(client, str(container.image.id))
    labels = {k: v for k, v in (container.labels or {}).items() if k in _COPIED_LABELS}
    labels |= {LABEL_HELPER: "delay", LABEL_HELPER_OF: container.id, LABEL_HELPER_NET: network}
    argv = ["python3", SCRIPT_IN_IMAGE, "--queue", str(queue), "--delay", f"{delay_ms:g}"]
    if jitter_ms:
        argv += ["--jitter", f"{jitter_ms:g}"]
    with engine_errors(f"start the delay helper of {container.name}"):
        helper = client.containers.create(
            image,
            argv,
            name=_name(container, network),
            network_mode=f"container:{container.id}",
            cap_add=["NET_ADMIN"],
            labels=labels,
            init=True,
            stop_signal="SIGTERM",
        )
    try:
        helper.start()
        _wait_ready(helper)
    except BaseException:
        _remove(helper)
        raise
    return {"name": helper.name, "image": image, "queue": queue, "command": argv}


def _wait_ready(helper: Any) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        out = _logs(helper)
        if "ready queue=" in out:
            return
        helper.reload()
        if helper.status in ("exited", "dead"):
            break
        time.sleep(0.05)
    raise InfraError(
        f"the delay helper {helper.name} did not bind its queue: {_logs(helper).strip()[-400:]}",
        hint="the nfqueue backend needs nfnetlink_queue in the engine's kernel and NET_ADMIN"
        " (docs/impairments.md)",
    )


def _stats(text: str) -> dict[str, int]:
    found = re.findall(r"^stats (.*)$", text, re.MULTILINE)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", found[-1])} if found else {}


def find(container: Any, network: str | None = None) -> list[Any]:
    flt = [f"{LABEL_HELPER_OF}={container.id}"]
    if network is not None:
        flt.append(f"{LABEL_HELPER_NET}={network}")
    with engine_errors(f"list the delay helpers of {container.name}"):
        return list(
            container.client.containers.list(all=True, filters={"label": flt}, ignore_removed=True)
        )


def stop(container: Any, network: str | None = None) -> list[dict[str, Any]]:
    """Stop and remove the node's helpers (one network's, or all); their counters."""
    import docker.errors

    out = []
    for h in find(container, network):
        with contextlib.suppress(docker.errors.APIError):
            h.stop(timeout=3)
        stats = _stats(_logs(h))
        _remove(h)
        out.append(
            {"name": h.name, "network": (h.labels or {}).get(LABEL_HELPER_NET), "stats": stats}
        )
    return out
