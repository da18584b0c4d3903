"""Network impairments inside a node's network namespace: loss, rate, delay/jitter, partitions.

Everything runs with `container.exec_run` inside the node (tc and iptables from the environment
image), so the node needs the NET_ADMIN capability (the resolver adds it to impaired nodes).
Plain data in, plain data out; every failure is an InfraError with the command's stderr and a
hint (missing NET_ADMIN, missing qdisc).

API
---
apply(container, network, address, *, loss=None, rate=None, delay=None, jitter=None,
      duplicate=None, direction="both") -> dict
    Set the conditions of the node's link on `network` (the scenario's network name; used to
    tag rules) whose interface is the one holding `address` (the node's IPv4 on that network).
    Replaces whatever this module set before on that network. Values as in the scenario:
    loss '5%', rate '2mbit', delay '100ms', jitter '10ms'.
    - loss: iptables `-m statistic --mode random --probability P -j DROP`. direction "both"
      (default) drops P of the packets arriving on the interface AND P of those leaving it, like
      a lossy cable: a round trip (ping) is then lost with 1-(1-P)^2. "in" / "out" for one way.
      Forwarded packets count too (the jumps sit in INPUT, OUTPUT and FORWARD).
    - rate: tc tbf, root qdisc (handle 4c48:) on the interface: limits what the node SENDS on
      that network (egress). Limit both ends of a link to cap both directions.
    - delay/jitter, by the backend delay_backend() picks from capabilities():
      "netem": tc netem at the root (handle 4c48:), with tbf as its child for a rate; egress.
      "nfqueue" (kernels without netem): iptables `-t mangle` PREROUTING -i <dev> -j NFQUEUE
      (chain LABHARNESS-DELAY, comment lh:delay:<network>) and a helper container in the node's
      network namespace that releases each packet after delay +- jitter (delayhelper.py,
      nfqdelay.py). It delays what ARRIVES on the interface, not what leaves: a packet the
      node's own TCP sends and a queue holds still counts against the socket (TCP small
      queues), which caps a delayed sender at a few kB/s; on ingress the sender is the peer and
      a round trip gains the same delay as with netem. A rate stays on tbf (egress).
      Neither backend: InfraError. LABHARNESS_DELAY_BACKEND=netem|nfqueue forces one.
    - duplicate: iptables `-t mangle` INPUT -i <dev> -m statistic -j TEE --gateway <address>
      (chain LABHARNESS-DUP, comment lh:dup:<network>): that share of what ARRIVES on the
      interface is copied to the node's own address (the copy comes in again through lo, and
      the application gets both), on every kernel with the TEE target. In INPUT, after an
      nfqueue delay in PREROUTING: a copy follows its delayed original.
    Returns {"node", "network", "interface", "applied": {...}, "commands": [...]}, plus
    "backend" and "helper" when a delay was set.

clear(container, network=None, address=None) -> dict
    network given (with address, or the interface found again from the rule tags): remove this
    module's loss rules and qdisc for that network. network None: remove everything this module
    put in the node (loss, qdiscs on every interface, partitions) and its chains.
    Returns {"node", "network", "removed": {"rules": n, "qdiscs": n}}.

partition(container, target, addresses) -> dict
    Cut the node off from `target` (a node or network name, used to tag the rules):
    `addresses` is a list of IPv4 addresses (a node: all of its addresses) and/or CIDR subnets
    (a network). Drops, in the node, every packet to and from them, whatever the interface,
    established connections included. For a symmetric node-node partition call it in both
    nodes: partition_nodes() does that.

heal(container, target=None) -> dict
    Remove the partition rules for `target` (all partitions when None). Idempotent.

partition_nodes(a, a_name, b, b_name, *, a_addresses, b_addresses) -> dict
heal_nodes(a, a_name, b, b_name) -> dict
    Both sides at once (rules in a tagged b_name, rules in b tagged a_name).

show(container) -> dict
    What this module has in place: {"rules": [iptables -S lines], "qdiscs": [{dev, kind}]}.

capabilities(client, image) -> dict[str, bool]
    Probed once per engine (engine id + kernel version), cached in-process and in
    <cache>/capabilities.json: {"netem", "tbf", "statistic", "iptables", "nfqueue", "tee"} (an entry
    without one of them, as older caches have, is probed again). The probe is a throwaway
    container (label labharness.probe=capabilities, NET_ADMIN) from `image`.

delay_backend(caps) -> "netem" | "nfqueue" | None
    netem where the kernel has it, else nfqueue where NFQUEUE works, else None.

unsupported(requests, caps, kernel=None) -> list[str]
    One sentence per requested impairment this engine cannot do. requests: the scenario's
    impairments as dicts ({node, network, loss, rate, delay, jitter, partition}); fault steps
    ({fault: partition, node, target}) are accepted too.

engine_kernel(client) -> str
    The engine's kernel version, for the sentences above.

subnets(client, network) -> list[str]
    The CIDR subnets of a Docker network (by its Docker name), for partition() from a network.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import threading
import time
from typing import Any

from harness.engine.client import engine_errors, engine_info
from harness.errors import InfraError, UsageError

CHAIN_IN = "LABHARNESS-IN"
CHAIN_OUT = "LABHARNESS-OUT"
CHAIN_DELAY = "LABHARNESS-DELAY"  # in the mangle table, jumped to from PREROUTING
# duplication: in the mangle table, jumped to from INPUT, so after a delay in PREROUTING (the
# nfqueue backend's verdict ends that hook's chains): the copy follows its delayed original
CHAIN_DUP = "LABHARNESS-DUP"
TAG = "lh"  # rule comments: lh:loss:<network>, lh:part:<target>
HANDLE = "4c48:"  # our root qdisc ("LH"); a child tbf under netem gets 4c49:
CHILD_HANDLE = "4c49:"
LABEL_PROBE = "labharness.probe"
_EXEC_TRIES = 3  # `ip addr` asked again when the engine lost its output (interfaces())

_NO_CAP_HINT = (
    "the node needs the NET_ADMIN capability for tc and iptables: the harness adds it to nodes"
    " named by impairments and partition faults; add `cap_add: [NET_ADMIN]` to the node otherwise"
)

# -- parsing the scenario's values ----------------------------------------------------------------

_RATE_RX = re.compile(r"^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$")
# tc's own units (SI): *bit are bits per second, *bps BYTES per second
_RATE_BITS = {
    "bit": 1,
    "kbit": 1e3,
    "mbit": 1e6,
    "gbit": 1e9,
    "bps": 8,
    "kbps": 8e3,
    "mbps": 8e6,
    "gbps": 8e9,
}
_DELAY_RX = re.compile(r"^(\d+(?:\.\d+)?)(us|ms|s)$")


def loss_probability(loss: str) -> float:
    """'5%' -> 0.05."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)%", loss.strip())
    if not m or float(m.group(1)) > 100:
        raise UsageError(f"expected a packet loss percentage like '5%', got {loss!r}")
    return float(m.group(1)) / 100


def rate_bits(rate: str) -> float:
    """'2mbit' -> 2e6 bits per second (tc's units: 'kbps' is kilobytes per second)."""
    m = _RATE_RX.fullmatch(rate.strip())
    if not m:
        raise UsageError(f"expected a rate like '2mbit', '512kbit' or '1gbit', got {rate!r}")
    return float(m.group(1)) * _RATE_BITS[m.group(2)]


def _delay(value: str) -> str:
    if not _DELAY_RX.fullmatch(value.strip()):
        raise UsageError(f"expected a delay like '100ms', '1s' or '500us', got {value!r}")
    return value.strip()


def tbf_args(rate: str) -> list[str]:
    """tbf with a burst of 1/10 s of traffic (at least a few full frames) and 200 ms of queue."""
    bits = rate_bits(rate)
    burst = max(int(bits / 8 / 10), 5000)
    return ["tbf", "rate", f"{int(bits)}bit", "burst", str(burst), "latency", "200ms"]


# -- running commands in the node -----------------------------------------------------------------


def _node(container: Any) -> str:
    labels = getattr(container, "labels", None) or {}
    return str(labels.get("labharness.node") or getattr(container, "name", "?"))


def _run(container: Any, argv: list[str], ok_codes: tuple[int, ...] = (0,)) -> tuple[int, str]:
    """Run argv in the node; a code outside ok_codes is an InfraError with stderr and a hint."""
    with engine_errors(f"run `{argv[0]}` in node {_node(container)}"):
        rc, (out, err) = container.exec_run(argv, demux=True)
    code = int(rc if rc is not None else -1)
    text = (out or b"").decode(errors="replace")
    if code in ok_codes:
        return code, text
    errtext = (err or b"").decode(errors="replace").strip() or text.strip()
    low = errtext.lower()
    if "permission denied" in low or "operation not permitted" in low:
        hint = _NO_CAP_HINT
    elif "qdisc kind is unknown" in low:
        hint = "this engine's kernel lacks that qdisc: see `capabilities()` and docs/impairments.md"
    elif code in (126, 127) or "executable file not found" in low:
        hint = "the node's image lacks tc/iptables: build labs on the environment images"
    else:
        hint = "run it by hand with `lab shell` to see more"
    raise InfraError(
        f"`{shlex.join(argv)}` failed in node {_node(container)} (exit {code}): {errtext}",
        hint=hint,
    )


def interfaces(container: Any) -> dict[str, str]:
    """IPv4 address -> interface name, from `ip -o -4 addr` inside the node.

    Every namespace has 127.0.0.1: an exit 0 without a single address is the engine losing a
    short exec's output (moby/moby#27289, seen with two runs at once), so it is asked again."""
    found: dict[str, str] = {}
    for attempt in range(_EXEC_TRIES):
        _, out = _run(container, ["ip", "-o", "-4", "addr", "show"])
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[2] == "inet":
                found[parts[3].split("/")[0]] = parts[1].split("@")[0]
        if found:
            break
        time.sleep(0.1 * (attempt + 1))
    return found


def interface_for(container: Any, address: str) -> str:
    ifaces = interfaces(container)
    if address not in ifaces:
        raise InfraError(
            f"node {_node(container)} has no interface with address {address}"
            f" (it has {', '.join(f'{a} on {i}' for a, i in sorted(ifaces.items())) or 'none'})",
            hint="is the node attached to that network, and running?",
        )
    return ifaces[address]


def _ipt(container: Any, *args: str, ok_codes: tuple[int, ...] = (0,)) -> int:
    return _run(container, ["iptables", "-w", "5", *args], ok_codes)[0]


def _ensure_chains(container: Any) -> None:
    """Our two chains, jumped to first from INPUT/FORWARD (in) and OUTPUT/FORWARD (out)."""
    for chain, parents in ((CHAIN_IN, ("INPUT", "FORWARD")), (CHAIN_OUT, ("OUTPUT", "FORWARD"))):
        if _ipt(container, "-n", "-L", chain, ok_codes=(0, 1)) != 0:
            _ipt(container, "-N", chain, ok_codes=(0, 1))
        for parent in parents:
            if _ipt(container, "-C", parent, "-j", chain, ok_codes=(0, 1)) != 0:
                _ipt(container, "-I", parent, "1", "-j", chain)


def _rules(container: Any) -> list[tuple[str, list[str], str]]:
    """Our rules as (chain, argv after the chain, comment)."""
    found: list[tuple[str, list[str], str]] = []
    for chain in (CHAIN_IN, CHAIN_OUT):
        code, out = _run(container, ["iptables", "-w", "5", "-S", chain], ok_codes=(0, 1))
        if code != 0:
            continue
        for line in out.splitlines():
            words = shlex.split(line)
            if len(words) < 3 or words[0] != "-A":
                continue
            comment = words[words.index("--comment") + 1] if "--comment" in words else ""
            found.append((chain, words[2:], comment))
    return found


def _delete_rules(container: Any, match: Any) -> int:
    n = 0
    for chain, spec, comment in _rules(container):
        if match(comment):
            _ipt(container, "-D", chain, *spec, ok_codes=(0, 1))
            n += 1
    return n


def _comment(kind: str, name: str) -> list[str]:
    return ["-m", "comment", "--comment", f"{TAG}:{kind}:{name}"]


def _qdisc(container: Any, dev: str) -> dict[str, Any] | None:
    """The root qdisc on dev, when it is ours (handle 4c48:)."""
    _, out = _run(container, ["tc", "-j", "qdisc", "show", "dev", dev])
    try:
        qdiscs = json.loads(out or "[]")
    except ValueError:
        return None
    for q in qdiscs:
        if q.get("root") and q.get("handle") == HANDLE:
            return dict(q)
    return None


def _del_qdisc(container: Any, dev: str) -> int:
    if _qdisc(container, dev) is None:
        return 0
    _run(container, ["tc", "qdisc", "del", "dev", dev, "root", "handle", HANDLE], ok_codes=(0, 2))
    return 1


def _devices(container: Any) -> list[str]:
    _, out = _run(container, ["ip", "-o", "link", "show"])
    devs = []
    for line in out.splitlines():
        parts = line.split(":")
        if len(parts) >= 2:
            devs.append(parts[1].strip().split("@")[0])
    return devs


# -- the API ----------------------------------------------------------------------------------


def apply(
    container: Any,
    network: str,
    address: str,
    *,
    loss: str | None = None,
    rate: str | None = None,
    delay: str | None = None,
    jitter: str | None = None,
    duplicate: str | None = None,
    direction: str = "both",
    backend: str | None = None,
) -> dict[str, Any]:
    """Set loss/rate/delay/jitter on the node's link to `network` (see the module doc)."""
    if direction not in ("both", "in", "out"):
        raise UsageError(f"direction must be both, in or out, got {direction!r}")
    if jitter and not delay:
        raise UsageError(f"jitter {jitter} on {_node(container)}/{network} needs a delay")
    node = _node(container)
    dev = interface_for(container, address)
    commands: list[list[str]] = []
    applied: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    if delay is not None:
        backend = backend or _backend_for(container)
        extra["backend"] = backend

    clear(container, network, address)  # apply sets; it never stacks

    if loss is not None:
        p = loss_probability(loss)
        if p > 0:
            commands += _apply_loss(container, network, dev, p, direction)
        applied["loss"] = {"value": loss, "probability": p, "direction": direction}
    if delay is not None and backend == "nfqueue":
        argv, extra["helper"] = _apply_nfqueue(container, network, dev, delay, jitter)
        commands.append(argv)
        delay = jitter = None  # done: only a rate is left for tc
    commands += _apply_qdiscs(container, dev, rate=rate, delay=delay, jitter=jitter)
    if duplicate is not None:
        p = loss_probability(duplicate)
        if p > 0:
            commands.append(_apply_duplicate(container, network, dev, p, address))
        applied["duplicate"] = {"value": duplicate, "probability": p, "direction": "in"}
    if "backend" in extra:
        applied["delay"] = {
            "value": extra["helper"]["delay"] if "helper" in extra else delay,
            "jitter": extra["helper"]["jitter"] if "helper" in extra else jitter,
            "backend": extra["backend"],
            "direction": "in" if extra["backend"] == "nfqueue" else "out",
        }
    if rate is not None:
        applied["rate"] = {"value": rate, "bits_per_second": rate_bits(rate), "direction": "out"}

    return {
        "node": node,
        "network": network,
        "interface": dev,
        "applied": applied,
        "commands": [shlex.join(c) for c in commands],
        **extra,
    }


def _backend_for(container: Any) -> str:
    """The delay backend for this node's engine (LABHARNESS_DELAY_BACKEND forces one)."""
    forced = os.environ.get("LABHARNESS_DELAY_BACKEND", "").strip()
    if forced:
        if forced not in DELAY_BACKENDS:
            raise UsageError(
                f"LABHARNESS_DELAY_BACKEND must be one of {', '.join(DELAY_BACKENDS)},"
                f" got {forced!r}"
            )
        return forced
    caps = capabilities(container.client, str(container.image.id))
    chosen = delay_backend(caps)
    if chosen is None:
        raise InfraError(
            f"delay on {_node(container)} needs the netem qdisc or NFQUEUE (nfnetlink_queue),"
            " and this engine's kernel has neither",
            hint="see docs/impairments.md",
        )
    return chosen


def _ifindex(container: Any, dev: str) -> int:
    _, out = _run(container, ["cat", f"/sys/class/net/{dev}/ifindex"])
    return int(out.strip())


def _apply_nfqueue(
    container: Any, network: str, dev: str, delay: str, jitter: str | None
) -> tuple[list[str], dict[str, Any]]:
    """Packets arriving on dev go to queue <ifindex>, which the helper releases late."""
    from harness.engine import delayhelper

    delay_ms = delay_seconds(_delay(delay)) * 1000
    jitter_ms = delay_seconds(_delay(jitter)) * 1000 if jitter else 0.0
    queue = _ifindex(container, dev)
    mangle = ["-t", "mangle"]
    if _ipt(container, *mangle, "-n", "-L", CHAIN_DELAY, ok_codes=(0, 1)) != 0:
        _ipt(container, *mangle, "-N", CHAIN_DELAY, ok_codes=(0, 1))
    if _ipt(container, *mangle, "-C", "PREROUTING", "-j", CHAIN_DELAY, ok_codes=(0, 1)) != 0:
        _ipt(container, *mangle, "-I", "PREROUTING", "1", "-j", CHAIN_DELAY)
    # the helper first: the rule's --queue-bypass lets packets through while nothing listens
    helper = delayhelper.start(container, network, queue, delay_ms, jitter_ms)
    argv = [*mangle, "-A", CHAIN_DELAY, "-i", dev, *_comment("delay", network)]
    argv += ["-j", "NFQUEUE", "--queue-num", str(queue), "--queue-bypass"]
    try:
        _ipt(container, *argv)
    except BaseException:
        delayhelper.stop(container, network)
        raise
    helper |= {"delay": delay, "jitter": jitter, "limit": DELAY_LIMIT}
    return ["iptables", *argv], helper


def delay_seconds(value: str) -> float:
    """'100ms' -> 0.1."""
    m = _DELAY_RX.fullmatch(value.strip())
    if not m:
        raise UsageError(f"expected a delay like '100ms', '1s' or '500us', got {value!r}")
    return float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[m.group(2)]


def _apply_loss(
    container: Any, network: str, dev: str, p: float, direction: str
) -> list[list[str]]:
    """Random DROP rules with probability p on dev, per direction; the commands it ran."""
    commands: list[list[str]] = []
    _ensure_chains(container)
    stat = ["-m", "statistic", "--mode", "random", "--probability", f"{p:.6f}"]
    for d in ("in", "out"):
        if direction not in ("both", d):
            continue
        chain, side = (CHAIN_IN, "-i") if d == "in" else (CHAIN_OUT, "-o")
        argv = ["-A", chain, side, dev, *stat, *_comment("loss", network), "-j", "DROP"]
        _ipt(container, *argv)
        commands.append(["iptables", *argv])
    return commands


def _apply_qdiscs(
    container: Any, dev: str, *, rate: str | None, delay: str | None, jitter: str | None
) -> list[list[str]]:
    """Egress qdiscs on dev: netem for delay (tbf under it for a rate), or tbf alone."""
    commands: list[list[str]] = []
    if delay is not None:
        netem = ["netem", "delay", _delay(delay)]
        if jitter:
            netem.append(_delay(jitter))
        argv = ["tc", "qdisc", "add", "dev", dev, "root", "handle", HANDLE, *netem]
        _run(container, argv)
        commands.append(argv)
        if rate is not None:
            argv = ["tc", "qdisc", "add", "dev", dev, "parent", f"{HANDLE}1"]
            argv += ["handle", CHILD_HANDLE, *tbf_args(rate)]
            _run(container, argv)
            commands.append(argv)
    elif rate is not None:
        argv = ["tc", "qdisc", "add", "dev", dev, "root", "handle", HANDLE, *tbf_args(rate)]
        _run(container, argv)
        commands.append(argv)
    return commands


def _apply_duplicate(container: Any, network: str, dev: str, p: float, address: str) -> list[str]:
    """A share p of what arrives on dev copied (iptables TEE to the node's own address: the
    copy comes in again through lo and is delivered too), as netem's duplicate does."""
    mangle = ["-t", "mangle"]
    if _ipt(container, *mangle, "-n", "-L", CHAIN_DUP, ok_codes=(0, 1)) != 0:
        _ipt(container, *mangle, "-N", CHAIN_DUP, ok_codes=(0, 1))
    if _ipt(container, *mangle, "-C", "INPUT", "-j", CHAIN_DUP, ok_codes=(0, 1)) != 0:
        _ipt(container, *mangle, "-I", "INPUT", "1", "-j", CHAIN_DUP)
    stat = ["-m", "statistic", "--mode", "random", "--probability", f"{p:.6f}"]
    argv = [*mangle, "-A", CHAIN_DUP, "-i", dev, *stat, *_comment("dup", network)]
    argv += ["-j", "TEE", "--gateway", address]
    _ipt(container, *argv)
    return ["iptables", *argv]


def _dup_rules(container: Any) -> list[tuple[list[str], str]]:
    return _delay_rules(container, CHAIN_DUP)


def _clear_duplicate(container: Any, network: str | None) -> int:
    """Remove our TEE rules (one network's, or all with the chain)."""
    mangle = ["-t", "mangle"]
    n = 0
    for spec, comment in _dup_rules(container):
        if network is None or comment == f"{TAG}:dup:{network}":
            _ipt(container, *mangle, "-D", CHAIN_DUP, *spec, ok_codes=(0, 1))
            n += 1
    if network is None:
        while _ipt(container, *mangle, "-D", "INPUT", "-j", CHAIN_DUP, ok_codes=(0, 1, 2)) == 0:
            pass
        _ipt(container, *mangle, "-X", CHAIN_DUP, ok_codes=(0, 1))
    return n


def _delay_rules(container: Any, chain: str = CHAIN_DELAY) -> list[tuple[list[str], str]]:
    """Our rules in a mangle chain (NFQUEUE, TEE) as (argv after the chain, comment)."""
    code, out = _run(
        container, ["iptables", "-w", "5", "-t", "mangle", "-S", chain], ok_codes=(0, 1)
    )
    found = []
    for line in out.splitlines() if code == 0 else []:
        words = shlex.split(line)
        if len(words) >= 3 and words[0] == "-A":
            comment = words[words.index("--comment") + 1] if "--comment" in words else ""
            found.append((words[2:], comment))
    return found


def _clear_delay(container: Any, network: str | None) -> tuple[int, list[dict[str, Any]]]:
    """Remove our NFQUEUE rules (one network's, or all with the chain) and the helpers."""
    from harness.engine import delayhelper

    mangle = ["-t", "mangle"]
    n = 0
    for spec, comment in _delay_rules(container):
        if network is None or comment == f"{TAG}:delay:{network}":
            _ipt(container, *mangle, "-D", CHAIN_DELAY, *spec, ok_codes=(0, 1))
            n += 1
    if network is None:
        while (
            _ipt(container, *mangle, "-D", "PREROUTING", "-j", CHAIN_DELAY, ok_codes=(0, 1, 2)) == 0
        ):
            pass
        _ipt(container, *mangle, "-X", CHAIN_DELAY, ok_codes=(0, 1))
    helpers = delayhelper.stop(container, network) if hasattr(container, "client") else []
    return n, helpers


def clear(container: Any, network: str | None = None, address: str | None = None) -> dict[str, Any]:
    """Remove what apply() set on one network (or everything of ours when network is None)."""
    node = _node(container)
    delay_rules, helpers = _clear_delay(container, network)
    delay_rules += _clear_duplicate(container, network)
    extra = {"helpers": helpers} if helpers else {}
    if network is None:
        rules = delay_rules + _delete_rules(container, lambda c: c.startswith(f"{TAG}:"))
        for chain, parents in (
            (CHAIN_IN, ("INPUT", "FORWARD")),
            (CHAIN_OUT, ("OUTPUT", "FORWARD")),
        ):
            for parent in parents:
                while _ipt(container, "-D", parent, "-j", chain, ok_codes=(0, 1, 2)) == 0:
                    pass
            _ipt(container, "-F", chain, ok_codes=(0, 1))
            _ipt(container, "-X", chain, ok_codes=(0, 1))
        qdiscs = sum(_del_qdisc(container, dev) for dev in _devices(container))
        removed = {"rules": rules, "qdiscs": qdiscs}
        return {"node": node, "network": None, "removed": removed, **extra}

    tag = f"{TAG}:loss:{network}"
    devs: set[str] = set()
    if address is not None:
        devs.add(interface_for(container, address))
    for _, spec, comment in _rules(container):
        if comment == tag:
            for flag in ("-i", "-o"):
                if flag in spec:
                    devs.add(spec[spec.index(flag) + 1])
    rules = delay_rules + _delete_rules(container, lambda c: c == tag)
    qdiscs = sum(_del_qdisc(container, dev) for dev in sorted(devs))
    removed = {"rules": rules, "qdiscs": qdiscs}
    return {"node": node, "network": network, "removed": removed, **extra}


def partition(container: Any, target: str, addresses: list[str]) -> dict[str, Any]:
    """Drop every packet between the node and `addresses` (IPs and/or CIDR subnets)."""
    if not addresses:
        raise UsageError(f"partition of {_node(container)} from {target}: no addresses")
    heal(container, target)
    _ensure_chains(container)
    commands = []
    for addr in addresses:
        for chain, side in ((CHAIN_IN, "-s"), (CHAIN_OUT, "-d")):
            argv = ["-A", chain, side, addr, *_comment("part", target), "-j", "DROP"]
            _ipt(container, *argv)
            commands.append(shlex.join(["iptables", *argv]))
    return {
        "node": _node(container),
        "target": target,
        "addresses": list(addresses),
        "commands": commands,
    }


def heal(container: Any, target: str | None = None) -> dict[str, Any]:
    """Remove the partition rules for target (every partition when None)."""
    prefix = f"{TAG}:part:"
    n = _delete_rules(
        container, lambda c: c == f"{prefix}{target}" if target else c.startswith(prefix)
    )
    return {"node": _node(container), "target": target, "removed": {"rules": n}}


def partition_nodes(
    a: Any, a_name: str, b: Any, b_name: str, *, a_addresses: list[str], b_addresses: list[str]
) -> dict[str, Any]:
    """A symmetric node-node partition: rules in both nodes."""
    return {"a": partition(a, b_name, b_addresses), "b": partition(b, a_name, a_addresses)}


def heal_nodes(a: Any, a_name: str, b: Any, b_name: str) -> dict[str, Any]:
    return {"a": heal(a, b_name), "b": heal(b, a_name)}


def subnets(client: Any, network: str) -> list[str]:
    """The subnets of a Docker network (its engine-side name), for a partition from it."""
    with engine_errors(f"inspect network {network}"):
        net = client.networks.get(network)
    configs = (net.attrs.get("IPAM", {}) or {}).get("Config", []) or []
    return [str(c["Subnet"]) for c in configs if c.get("Subnet") and ":" not in c["Subnet"]]


def show(container: Any) -> dict[str, Any]:
    """This module's rules and qdiscs in the node, for the journal and evidence."""
    rules = [f"{chain} {shlex.join(spec)}" for chain, spec, _ in _rules(container)]
    rules += [f"mangle {CHAIN_DELAY} {shlex.join(spec)}" for spec, _ in _delay_rules(container)]
    rules += [f"mangle {CHAIN_DUP} {shlex.join(spec)}" for spec, _ in _dup_rules(container)]
    qdiscs = []
    for dev in _devices(container):
        q = _qdisc(container, dev)
        if q is not None:
            qdiscs.append({"dev": dev, "kind": q.get("kind"), "options": q.get("options", {})})
    return {"node": _node(container), "rules": rules, "qdiscs": qdiscs}


# -- what this engine can do -------------------------------------------------------------------

CAPABILITIES = ("netem", "tbf", "statistic", "iptables", "nfqueue", "tee")
DELAY_BACKENDS = ("netem", "nfqueue")
DELAY_LIMIT = 1000  # packets the nfqueue helper holds at once (nfqdelay.DEFAULT_LIMIT)
_PROBE_SCRIPT = r"""
try() { name=$1; shift; if "$@" >/dev/null 2>&1; then echo "$name=1"; else echo "$name=0"; fi; }
try netem tc qdisc add dev lo root handle 1: netem delay 1ms
tc qdisc del dev lo root >/dev/null 2>&1
try tbf tc qdisc add dev lo root handle 1: tbf rate 1mbit burst 5000 latency 50ms
tc qdisc del dev lo root >/dev/null 2>&1
try iptables iptables -w 5 -A OUTPUT -o lo -d 127.0.0.2 -j DROP
try statistic iptables -w 5 -A OUTPUT -o lo -m statistic --mode random --probability 0.5 -j DROP
nfq="-t mangle -A PREROUTING -i lo -d 127.0.0.2 -j NFQUEUE --queue-num 0 --queue-bypass"
try nfqueue sh -c "iptables -w 5 $nfq && test -e /proc/net/netfilter/nfnetlink_queue"
try tee iptables -w 5 -t mangle -A INPUT -i lo -d 127.0.0.2 -j TEE --gateway 127.0.0.2
"""

_caps_lock = threading.Lock()
_caps_memo: dict[str, dict[str, bool]] = {}


def _engine_key(client: Any) -> tuple[str, str]:
    info = engine_info(client)
    return str(info.get("ID", "unknown")), str(info.get("KernelVersion", "unknown"))


def engine_kernel(client: Any) -> str:
    return _engine_key(client)[1]


def _cache_file() -> Any:
    from harness.engine.images import cache_dir

    return cache_dir() / "capabilities.json"


def _probe(client: Any, image: str) -> dict[str, bool]:
    import docker.errors

    with engine_errors("probe the engine's network capabilities"):
        c = client.containers.create(
            image,
            ["sh", "-c", _PROBE_SCRIPT],
            cap_add=["NET_ADMIN"],
            network_mode="none",
            labels={LABEL_PROBE: "capabilities"},
        )
        try:
            c.start()
            status = c.wait(timeout=60)
            out = bytes(c.logs(stdout=True, stderr=False)).decode(errors="replace")
        finally:
            with contextlib.suppress(docker.errors.NotFound):
                c.remove(force=True)
    found = dict(re.findall(r"^(\w+)=([01])$", out, re.MULTILINE))
    if set(found) != set(CAPABILITIES):
        raise InfraError(
            f"the capability probe in {image} did not finish (exit"
            f" {status.get('StatusCode')}): {out.strip()[-300:]}",
            hint="the probe needs sh, tc and iptables in the image (the environment images)",
        )
    return {k: found[k] == "1" for k in CAPABILITIES}


def capabilities(client: Any, image: str, refresh: bool = False) -> dict[str, bool]:
    """Which impairments this engine's kernel supports: probed once, then cached."""
    engine_id, kernel = _engine_key(client)
    key = f"{engine_id}|{kernel}"
    with _caps_lock:
        if not refresh and key in _caps_memo:
            return dict(_caps_memo[key])
        path = _cache_file()
        stored: dict[str, Any] = {}
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError):
            stored = {}
        entry = stored.get(key)
        if refresh or not isinstance(entry, dict) or set(entry) != set(CAPABILITIES):
            entry = _probe(client, image)
            stored[key] = entry
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(stored, indent=1, sort_keys=True))
            tmp.replace(path)
        caps = {k: bool(entry[k]) for k in CAPABILITIES}
        _caps_memo[key] = caps
        return dict(caps)


def delay_backend(caps: dict[str, bool]) -> str | None:
    """netem where the kernel has it, else nfqueue where NFQUEUE works, else None."""
    if caps.get("netem"):
        return "netem"
    if caps.get("nfqueue") and caps.get("iptables"):
        return "nfqueue"
    return None


def _where(req: dict[str, Any]) -> str:
    node = req.get("node", "?")
    return f"{node}/{req['network']}" if req.get("network") else str(node)


def unsupported(
    requests: list[dict[str, Any]], caps: dict[str, bool], kernel: str | None = None
) -> list[str]:
    """Sentences naming each requested impairment this engine cannot apply."""
    kern = f"this engine's kernel ({kernel})" if kernel else "this engine's kernel"
    out: list[str] = []
    for req in requests:
        where = _where(req)
        for key in ("delay", "jitter"):
            if req.get(key) and delay_backend(caps) is None:
                out.append(
                    f"{key} {req[key]} on {where} needs the netem qdisc or NFQUEUE"
                    f" (nfnetlink_queue), and {kern} has neither"
                )
        if req.get("duplicate") and not caps.get("tee", False):
            out.append(
                f"duplicate {req['duplicate']} on {where} needs the iptables TEE target, which"
                f" {kern} lacks"
            )
        if req.get("rate") and not caps.get("tbf", False):
            out.append(f"rate {req['rate']} on {where} needs the tbf qdisc, which {kern} lacks")
        if req.get("loss") and not caps.get("statistic", False):
            out.append(
                f"loss {req['loss']} on {where} needs the iptables statistic match, which"
                f" {kern} lacks"
            )
        target = req.get("partition") or (
            req.get("target") if req.get("fault") in ("partition", "heal") else None
        )
        if target and not caps.get("iptables", False):
            out.append(
                f"partition of {req.get('node', '?')} from {target} needs iptables, which"
                f" {kern} does not support"
            )
    return out
