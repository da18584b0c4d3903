"""The manual steps of a run as one model, the shell commands of each part (images, networks and
nodes with their readiness waits, impairments, configure, the customer's steps, the symptom's
probes, the clean up), shared by the two renderers: REPRODUCE.md (harness/reports/manual.py, for
a person) and REPRODUCE.sh (the same commands as one script, `sh REPRODUCE.sh`).

Built from the journal's plan alone. The commands call a few shell helpers (HELPERS below,
printed at the top of both files) so each line stays short and readable: command texts go in
quoted heredocs, never in nested quoting. Names come from `$PREFIX`, paths from `$PROJECT`
(the project folder) and `$HERE` (the folder of the files). A value the journal redacted
(`***REDACTED***`) is written as the journal has it and replaced by `$HIDDEN` when set."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.journal_model import ImagePlan, Plan, PlanNode, PlanStep, TopologyNetwork
from harness.scenario.resolved import FAKETIME_LIBRARY

MASK = "***REDACTED***"  # harness.run.redact.MASK: what the journal holds instead of a secret
INVENTORY = "REPRODUCE-inventory.yml"
NODE_FAULTS = ("stop", "kill", "pause", "unpause", "restart")
UNDO = {"stop": "start", "kill": "start", "pause": "unpause"}

HELPERS = r"""say() { printf '%s\n' "$*"; }
die() { printf 'REPRODUCE: %s\n' "$*" >&2; exit 3; }
now() { date +%s.%N; }
unmask() {  # the text with each ***REDACTED*** replaced by $HIDDEN
  rest=$1 done=
  while :; do
    case $rest in *"$MASK"*) ;; *) break ;; esac
    done=$done${rest%%"$MASK"*}$HIDDEN
    rest=${rest#*"$MASK"}
  done
  printf '%s' "$done$rest"
}
in_node() { n=$1; shift; docker exec "$PREFIX-$n" "$@"; }
image() {  # tag, then the command that makes it when the engine does not have it
  tag=$1; shift
  if docker image inspect "$tag" >/dev/null 2>&1; then say "image $tag: there"; return 0; fi
  say "image $tag: building"
  "$@"
}
in_project() { (cd "$PROJECT" && "$@"); }
put_file() {  # node, a file (or folder) on this machine, its path in the node: sent as a tar
  # stream holding it alone, so the engine creates the parent folders (docker cp does not)
  [ -e "$2" ] || die "$2 is not there: set PROJECT to the project folder"
  rm -rf "$WORK/put"
  mkdir -p "$WORK/put$(dirname "$3")"
  cp -R "$2" "$WORK/put$3"
  tar -C "$WORK/put" -cf - "${3#/}" | docker cp - "$PREFIX-$1:/"
}
ready() {  # node, none | port | log | file | command, its argument: does it hold now?
  case $2 in
    none) true ;;
    port) in_node "$1" cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
      awk -v p=":$(printf '%04X' "$3")" '$4 == "0A" && substr($2, length($2) - 4) == p {f = 1}
        END {exit !f}' ;;
    log) docker logs "$PREFIX-$1" 2>&1 | grep -Eq -- "$3" ;;
    file) in_node "$1" test -e "$3" ;;
    command) in_node "$1" sh -c "$3" >/dev/null 2>&1 ;;
  esac
}
start() {  # node, how it is ready (none | port N | log REGEX | command CMD), the timeout in s
  docker start "$PREFIX-$1" >/dev/null
  t0=$(date +%s)
  while :; do
    state=$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$PREFIX-$1")
    case $state in
      exited*|dead*) docker logs --tail 20 "$PREFIX-$1" >&2 || true
        die "node $1 exited (code ${state#* }) before it was ready ($2 $3)" ;;
      running*) if ready "$1" "$2" "$3"; then say "node $1: ready"; return 0; fi ;;
    esac
    if [ $(($(date +%s) - t0)) -ge "$4" ]; then
      docker logs --tail 20 "$PREFIX-$1" >&2 || true
      die "node $1 not ready after $4 s (waiting for $2 $3)"
    fi
    sleep 0.2
  done
}
ip_of() {  # node, network: its IPv4 address there
  docker network inspect -f '{{range .Containers}}{{.Name}} {{.IPv4Address}}{{"\n"}}{{end}}' \
    "$PREFIX-$2" | awk -v n="$PREFIX-$1" '$1 == n {sub("/.*", "", $2); print $2}'
}
dev_of() {  # node, network: the node's interface on that network
  a=$(ip_of "$1" "$2")
  in_node "$1" ip -o -4 addr show | awk -v a="$a" '{split($4, x, "/")} x[1] == a {
    sub("@.*", "", $2); print $2}'
}
is_node() { case " $NODES " in *" $1 "*) true ;; *) false ;; esac; }
addresses_of() {  # a node (its addresses) or a network (its subnets)
  if is_node "$1"; then
    docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$PREFIX-$1"
  else
    docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' "$PREFIX-$1"
  fi
}
rule() {  # node, add | del, then an iptables rule (chain and match); del removes every copy
  n=$1 how=$2; shift 2
  if [ "$how" = add ]; then in_node "$n" iptables -w 5 -I "$@"; return; fi
  while in_node "$n" iptables -w 5 -D "$@" 2>/dev/null; do :; done
}
cut_off() {  # add | del, node, target: the rules in the node dropping all to and from the target
  for a in $(addresses_of "$3"); do
    rule "$2" "$1" INPUT -s "$a" -m comment --comment "lh:part:$3" -j DROP
    rule "$2" "$1" OUTPUT -d "$a" -m comment --comment "lh:part:$3" -j DROP
  done
}
partition() {  # node, target node or network: no packet passes between them (iptables DROP)
  cut_off add "$1" "$2"
  if is_node "$2"; then cut_off add "$2" "$1"; fi
}
heal() {  # node, target: the partition's rules removed
  cut_off del "$1" "$2"
  if is_node "$2"; then cut_off del "$2" "$1"; fi
}
loss() {  # node, network, probability: that share of the packets in and out dropped
  dev=$(dev_of "$1" "$2")
  rule "$1" add INPUT -i "$dev" -m statistic --mode random --probability "$3" \
    -m comment --comment "lh:loss:$2" -j DROP
  rule "$1" add OUTPUT -o "$dev" -m statistic --mode random --probability "$3" \
    -m comment --comment "lh:loss:$2" -j DROP
}
shape() {  # node, network, then a tc qdisc (tbf or netem): what the node sends there
  n=$1 dev=$(dev_of "$1" "$2"); shift 2
  in_node "$n" tc qdisc add dev "$dev" root handle 4c48: "$@"
}
clear_link() {  # node, network: its loss rules and qdisc removed
  dev=$(dev_of "$1" "$2")
  in_node "$1" iptables -w 5 -S | grep -F -- "lh:loss:$2" | sed 's/^-A /-D /' |
    while read -r spec; do eval "in_node \"\$1\" iptables -w 5 $spec"; done
  in_node "$1" tc qdisc del dev "$dev" root handle 4c48: 2>/dev/null || true
}
run_on() {  # node: the command on stdin run there; its output shown; exit 3 when it fails
  cmd=$(unmask "$(cat)")
  in_node "$1" sh -c "$cmd" </dev/null || die "a configure command on $1 failed (exit $?)"
}
step() {  # id, node, timeout s, exit code it must give ('' any): the command on stdin
  cmd=$(unmask "$(cat)") t=$(now) rc=0
  in_node "$2" timeout -k 2 "$3" sh -c "$cmd" >"$OUT/$1.out" 2>"$OUT/$1.err" </dev/null || rc=$?
  echo "$rc" >"$OUT/$1.rc"
  awk -v a="$t" -v b="$(now)" 'BEGIN {print b - a}' >"$OUT/$1.secs"
  say "  step $1 on $2: exit $rc"
  if [ -n "$4" ] && [ "$rc" != "$4" ]; then die "step $1 on $2 exited $rc, expected $4"; fi
}
http_step() {  # id, node, timeout s: the curl command on stdin prints the status last
  step "$1" "$2" "$3" ''
  s=$(tail -n 1 "$OUT/$1.out")
  case $s in '' | *[!0-9]*) s=0 ;; esac
  echo "$s" >"$OUT/$1.status"
  sed '$d' "$OUT/$1.out" >"$OUT/$1.body" && mv "$OUT/$1.body" "$OUT/$1.out"
  say "  step $1: HTTP $s"
}
background() {  # id, node: the command on stdin, started; stopped by stop_background
  cmd=$(unmask "$(cat)")
  in_node "$2" sh -c "$cmd" >"$OUT/$1.out" 2>"$OUT/$1.err" </dev/null &
  echo $! >"$OUT/$1.pid"
  say "  step $1 on $2: started in the background"
}
stop_background() {  # id
  p=$(cat "$OUT/$1.pid") rc=0
  kill "$p" 2>/dev/null || true
  wait "$p" || rc=$?
  echo "$rc" >"$OUT/$1.rc"
}
wait_step() {  # id, node, port | log | file, its argument, timeout s: exit 0 held, 1 timed out
  t0=$(date +%s) rc=1
  while :; do
    if ready "$2" "$3" "$4"; then rc=0; break; fi
    if [ $(($(date +%s) - t0)) -ge "$5" ]; then break; fi
    sleep 0.2
  done
  echo "$rc" >"$OUT/$1.rc"
  say "  step $1: wait for $3 $4 on $2: $([ "$rc" = 0 ] && echo held || echo timed out)"
}
code_in() {  # file, codes...: the number in the file is one of them
  f=$1; shift
  got=$(cat "$f" 2>/dev/null) || return 1
  for c in "$@"; do if [ "$got" = "$c" ]; then return 0; fi; done
  return 1
}
exit_is() { s=$1; shift; code_in "$OUT/$s.rc" "$@"; }
status_is() { s=$1; shift; code_in "$OUT/$s.status" "$@"; }
output_matches() {  # step, stdout | stderr | output (both), an extended regex
  case $2 in
    stdout) cat "$OUT/$1.out" ;;
    stderr) cat "$OUT/$1.err" ;;
    output) cat "$OUT/$1.out" "$OUT/$1.err" ;;
  esac 2>/dev/null | grep -Eq -- "$3"
}
took_less() { awk -v d="$(cat "$OUT/$1.secs")" -v l="$2" 'BEGIN {exit !(d < l)}'; }
took_more() { awk -v d="$(cat "$OUT/$1.secs")" -v l="$2" 'BEGIN {exit !(d > l)}'; }
log_matches() {  # node, log file ('': its output since the attempt began), an extended regex
  if [ -z "$2" ]; then docker logs --since "$T0" "$PREFIX-$1" 2>&1; else in_node "$1" cat "$2"; fi |
    grep -Eq -- "$3"
}
file_matches() {  # node, file, an extended regex ('': the file exists)
  if [ -z "$3" ]; then in_node "$1" test -e "$2"; return; fi
  in_node "$1" cat "$2" 2>/dev/null | grep -Eq -- "$3"
}
held() { say "  probe $1: held"; }
not_held() { say "  probe $1: not held"; SEEN=no; }
down() {  # every container and network of this prefix, gone
  for n in $NODES; do docker rm -f "$PREFIX-$n" >/dev/null 2>&1 || true; done
  for n in $NETWORKS; do docker network rm "$PREFIX-$n" >/dev/null 2>&1 || true; done
}"""


# A delay: netem where the kernel has it; else what the harness does without netem (the
# "nfqueue" backend, docs/impairments.md): packets arriving on the node's interface are
# queued by an NFQUEUE rule, and a helper container in the node's network namespace (the
# node's own image, with Debian's libnetfilter-queue1 copied in) releases each one late. The
# program it runs is harness/engine/nfqdelay.py, which REPRODUCE.sh carries ($WORK/nfqdelay.py).
# dup_link copies what arrives (iptables TEE to the node's own address), as the harness does.
# Only in the steps of a run with a delay or a duplicate, so every other REPRODUCE stays as it
# was.
DELAY_HELPERS = r"""delay_link() {  # node, network, delay, jitter ('' none), the same two in ms
  dev=$(dev_of "$1" "$2")
  if in_node "$1" tc qdisc add dev "$dev" root handle 4c48: netem delay "$3" ${4:+"$4"} \
    2>/dev/null; then return 0; fi
  say "  no netem in this kernel: $3 on $1/$2 by NFQUEUE and a helper (packets in are held)"
  nfq_delay "$1" "$2" "$dev" "$5" "$6"
}
rate_link() {  # node, network, then tbf's arguments: under a netem delay, else at the root
  n=$1 dev=$(dev_of "$1" "$2"); shift 2
  if in_node "$n" tc qdisc show dev "$dev" | grep -q netem; then
    in_node "$n" tc qdisc add dev "$dev" parent 4c48:1 handle 4c49: "$@"
  else
    in_node "$n" tc qdisc add dev "$dev" root handle 4c48: "$@"
  fi
}
nfq_delay() {  # node, network, interface, delay ms, jitter ms: the helper, then the rule
  h="$PREFIX-$1-delay-$2" q=$(in_node "$1" cat "/sys/class/net/$3/ifindex")
  img=$(docker inspect -f '{{.Config.Image}}' "$PREFIX-$1")
  docker create --name "$h" --network "container:$PREFIX-$1" --cap-add NET_ADMIN --init \
    --user 0 --entrypoint python3 "$img" /nfqdelay.py --queue "$q" --delay "$4" \
    --jitter "$5" >/dev/null
  docker run --rm --user 0 --entrypoint sh "$img" -c 'set -e; apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libnetfilter-queue1 >&2
    tar -C / -chf - $(dpkg -L libnetfilter-queue1 | grep "\.so\.[0-9]*$" | sed "s,^/,,")' \
    2>/dev/null | docker cp - "$h:/" || die "no libnetfilter-queue1 for the delay helper of $1"
  docker cp "$WORK/nfqdelay.py" "$h:/nfqdelay.py"
  docker start "$h" >/dev/null
  t0=$(date +%s)
  until docker logs "$h" 2>&1 | grep -q 'ready queue='; do
    if [ $(($(date +%s) - t0)) -ge 15 ]; then
      docker logs "$h" >&2 || true
      die "the delay helper of $1 did not bind queue $q (it needs nfnetlink_queue)"
    fi
    sleep 0.1
  done
  in_node "$1" iptables -w 5 -t mangle -N LABHARNESS-DELAY 2>/dev/null || true
  in_node "$1" iptables -w 5 -t mangle -C PREROUTING -j LABHARNESS-DELAY 2>/dev/null ||
    in_node "$1" iptables -w 5 -t mangle -I PREROUTING 1 -j LABHARNESS-DELAY
  in_node "$1" iptables -w 5 -t mangle -A LABHARNESS-DELAY -i "$3" \
    -m comment --comment "lh:delay:$2" -j NFQUEUE --queue-num "$q" --queue-bypass
}
clear_delay() {  # node, network: its NFQUEUE rule and helper removed
  in_node "$1" iptables -w 5 -t mangle -S LABHARNESS-DELAY 2>/dev/null |
    grep -F -- "lh:delay:$2" | sed 's/^-A /-D /' |
    while read -r spec; do eval "in_node \"\$1\" iptables -w 5 -t mangle $spec"; done
  docker rm -f "$PREFIX-$1-delay-$2" >/dev/null 2>&1 || true
}
dup_link() {  # node, network, probability: that share of what arrives there copied (TEE)
  in_node "$1" iptables -w 5 -t mangle -I INPUT 1 -i "$(dev_of "$1" "$2")" -m statistic \
    --mode random --probability "$3" -m comment --comment "lh:dup:$2" \
    -j TEE --gateway "$(ip_of "$1" "$2")"
}
clear_link() {  # node, network: its loss, duplicate and delay rules, qdisc and helper removed
  dev=$(dev_of "$1" "$2")
  in_node "$1" iptables -w 5 -S | grep -F -- "lh:loss:$2" | sed 's/^-A /-D /' |
    while read -r spec; do eval "in_node \"\$1\" iptables -w 5 $spec"; done
  in_node "$1" iptables -w 5 -t mangle -S INPUT | grep -F -- "lh:dup:$2" | sed 's/^-A /-D /' |
    while read -r spec; do eval "in_node \"\$1\" iptables -w 5 -t mangle $spec"; done
  in_node "$1" tc qdisc del dev "$dev" root handle 4c48: 2>/dev/null || true
  clear_delay "$1" "$2"
}
down() {  # every container (delay helpers first) and network of this prefix, gone
  for n in $NODES; do for w in $NETWORKS; do
    docker rm -f "$PREFIX-$n-delay-$w" >/dev/null 2>&1 || true
  done; done
  for n in $NODES; do docker rm -f "$PREFIX-$n" >/dev/null 2>&1 || true; done
  for n in $NETWORKS; do docker network rm "$PREFIX-$n" >/dev/null 2>&1 || true; done
}"""
NFQDELAY = Path(__file__).resolve().parents[1] / "engine" / "nfqdelay.py"  # a file, not an import
NFQDELAY_END = "LH_NFQDELAY_PY"


def helpers(delays: bool) -> str:
    """The shell helpers; with the delay ones (which redefine clear_link and down) when the
    run has a delay."""
    return f"{HELPERS}\n{DELAY_HELPERS}" if delays else HELPERS


def nfqdelay_lines() -> list[str]:
    """The helper's program, written to $WORK by REPRODUCE.sh (a quoted heredoc)."""
    text = NFQDELAY.read_text()
    if NFQDELAY_END in text:  # cannot be: the heredoc would end early
        raise ValueError(f"{NFQDELAY} holds {NFQDELAY_END}")
    return [f"cat >\"$WORK/nfqdelay.py\" <<'{NFQDELAY_END}'", text.rstrip("\n"), NFQDELAY_END]


def has_delay(plan: Plan, wanted: list[dict[str, Any]], key: str = "delay") -> bool:
    """A delay (or another `key`) in the scenario's impairments or an `impair` fault step."""
    return any(imp.get(key) for imp in wanted) or any(
        st.kind == "fault" and st.fault == "impair" and st.args.get(key) for st in plan.steps
    )


@dataclass
class Part:
    """One part of the manual steps: its title and words for a person, its shell lines."""

    key: str
    title: str
    text: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def q(text: str) -> str:
    """A word for the shell, readable: single quotes, or double quotes around a text holding a
    single quote (and nothing double quotes would expand), never the '"'"' dance when avoidable."""
    if "'" in text and not any(c in text for c in '"$`\\!'):
        return f'"{text}"'
    return shlex.quote(text)


def _value(text: str) -> str:
    """A word for the shell: quoted as is, or through unmask when the journal redacted it."""
    return f'"$(unmask {q(text)})"' if MASK in text else q(text)


def _heredoc(head: str, body: str) -> list[str]:
    """`head <<'EOF'` then the body as it is (nothing in it is expanded), then EOF."""
    end = "EOF"
    lines = body.rstrip("\n").split("\n")
    while end in lines:
        end += "_"
    return [f"{head} <<'{end}'", *lines, end]


def _secs(x: float | None, default: float) -> str:
    return f"{x if x is not None else default:g}"


def _whole(x: float) -> int:
    return max(1, int(-(-x // 1)))


def ere(pattern: str) -> str:
    """A probe's Python regex for grep -E: the few classes grep lacks, spelt out."""
    return pattern.replace(r"\d", "[0-9]").replace(r"\D", "[^0-9]")


# -- the parts ------------------------------------------------------------------------------


def images(plans: list[ImagePlan], tags: dict[str, str], plan: Plan) -> Part:
    part = Part(
        "images",
        "Images",
        [
            "Each image is used as the run had it when the engine has it, else built "
            "from the project's labs (base OS images with the harness: `lab images build`)."
        ],
    )
    seen: set[str] = set()
    for ip in plans:
        if ip.tag in seen:
            continue
        seen.add(ip.tag)
        if ip.kind == "built":
            part.lines.append(
                f"image {q(ip.tag)} die {q(f'{ip.tag} is not on this engine (no recipe)')}"
            )
            continue
        if ip.kind == "env":
            part.lines.append(
                f"image {q(ip.tag)} in_project lab images build --os {q(ip.name or '')}"
                " --environments-only"
            )
            continue
        env = ip.env
        if env is not None and env.tag not in seen:
            seen.add(env.tag)
            part.lines.append(f"# base OS: {env.name} ({env.suite})")
            part.lines.append(
                f"image {q(env.tag)} in_project lab images build --os {q(env.name)}"
                " --environments-only"
            )
        ctx = ip.context or "."
        dockerfile = f"{ctx.rstrip('/')}/{ip.dockerfile or 'Dockerfile'}"
        args = " ".join(f"--build-arg {q(f'{k}={v}')}" for k, v in ip.build_args)
        part.lines.append(
            f"image {q(ip.tag)} docker build -q -t {q(ip.tag)} {args} \\\n"
            f'  -f "$PROJECT/{dockerfile}" "$PROJECT/{ctx}"'
        )
    known = set(seen)
    for tag in dict.fromkeys(tags.get(n.name, "") for n in plan.nodes):
        if tag and tag not in known:
            part.lines.append(f"image {q(tag)} die {q(f'{tag} is not on this engine')}")
    return part


def _subnet6(net: TopologyNetwork, index: int) -> str:
    """The IPv6 subnet the script gives: the scenario's, else a unique local /64 made of the
    script's pid and the network's place (fresh for each execution, as $PREFIX is)."""
    if net.subnet6:
        return q(net.subnet6)
    return f'"fd00:$(($$ / 65536)):$(printf %x $(($$ % 65536))):{index:x}::/64"'


def _network(net: TopologyNetwork, index: int = 0) -> str:
    extra = f" --subnet {q(net.subnet)}" if net.subnet else ""
    extra += f" --ipv6 --subnet {_subnet6(net, index)}" if net.ipv6 or net.subnet6 else ""
    extra += " --internal" if net.internal else ""
    extra += f" --opt com.docker.network.driver.mtu={net.mtu}" if net.mtu else ""
    return f'docker network create{extra} "$PREFIX-{net.name}" >/dev/null'


def _node(node: PlanNode, image: str) -> list[str]:
    if not node.networks:
        return [f"# {node.name}: on no network, not created"]
    first, *rest = node.networks
    words = [
        "docker create --init",
        f'--name "$PREFIX-{node.name}" --hostname {q(node.name)}',
        f'--network "$PREFIX-{first.network}" --network-alias {q(node.name)}',
    ]
    if first.ipv4:
        words.append(f"--ip {q(first.ipv4)}")
    if first.ipv6:
        words.append(f"--ip6 {q(first.ipv6)}")
    words += [f"--cap-add {q(c)}" for c in node.cap_add]
    words += [f"-e {_value(f'{k}={v}')}" for k, v in node.env]
    flags = iter(node.options)  # the node settings, flag and value in pairs
    words += [f"{flag} {_value(value)}" for flag, value in zip(flags, flags, strict=False)]
    args = [*node.entry_args, *(node.command or [])]
    words.append(q(image) + "".join(f" {_value(a)}" for a in args))
    lines = [" \\\n  ".join(words) + " >/dev/null"]
    for att in rest:
        ip = f" --ip {q(att.ipv4)}" if att.ipv4 else ""
        ip += f" --ip6 {q(att.ipv6)}" if att.ipv6 else ""
        lines.append(
            f'docker network connect{ip} --alias {q(node.name)} "$PREFIX-{att.network}"'
            f' "$PREFIX-{node.name}"'
        )
    for f in node.files:
        src = f.source if f.source.startswith("/") else f"$PROJECT/{f.source}"
        lines.append(f'put_file {q(node.name)} "{src}" {q(f.target)}')
    if f"LD_PRELOAD={FAKETIME_LIBRARY}" in node.options:  # `clock:`
        lines.append(_PUT_CLOCK.format(image=q(image), node=node.name))
    return lines


# `clock:` (LD_PRELOAD): libfaketime from the Debian archive of the node's own OS, copied into
# the created node as the run did; the node's image stays as it is. Only where a node has one,
# so the helpers (and every other REPRODUCE) stay as they were.
_PUT_CLOCK = """\
# {node}'s clock: libfaketime, installed in a throwaway container of its image, copied in
docker run --rm --user 0 --entrypoint sh {image} -c 'set -e; apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libfaketime >&2
  d=usr/local/lib/labharness-faketime; mkdir -p "/$d"
  cp "$(dpkg -L libfaketime | grep "/libfaketime\\.so\\.1$")" "/$d/"; tar -C / -cf - "$d"' \\
  2>/dev/null | docker cp - "$PREFIX-{node}:/\""""


def start_order(nodes: list[PlanNode]) -> list[PlanNode]:
    done: list[PlanNode] = []
    pending = list(nodes)
    while pending:
        names = [n.name for n in done]
        ready = [n for n in pending if all(d in names for d in n.depends_on)]
        if not ready:  # a cycle (validation refuses it) or a dependency not in the journal
            ready = pending[:1]
        for n in ready:
            done.append(n)
            pending.remove(n)
    return done


def _start(node: PlanNode, may_fail: bool = False) -> str:
    """`start` as the run did; a node a readiness probe names may not start (the symptom):
    its `start` runs in a subshell, whose `die` ends only that subshell (no trap there)."""
    h = node.health
    limit = _whole(h.timeout if h else 60.0)
    if h is None or h.kind == "none" or not (h.port or h.log or h.command):
        line = f"start {q(node.name)} none '' {limit}"
    else:
        arg = str(h.port) if h.kind == "port" else (h.log if h.kind == "log" else h.command)
        arg = ere(arg or "") if h.kind == "log" else arg or ""
        line = f"start {q(node.name)} {h.kind} {q(arg)} {limit}"
    if not may_fail:
        return line
    said = q(f"node {node.name}: did not become ready (what the symptom looks for)")
    return f'( {line} ) || {{ say {said}; DOWN="${{DOWN:-}} {node.name}"; }}'


def may_not_start(probes: list[dict[str, Any]]) -> set[str]:
    """The nodes the readiness probes name (harness.run.probes.may_not_start, on plain data)."""
    out: set[str] = set()
    for p in probes:
        if "state" in p:
            out.add(str(p.get("node")))
        out |= may_not_start(list(p.get("any") or p.get("all") or []))
    return out


def topology(plan: Plan, tags: dict[str, str]) -> Part:
    part = Part(
        "topology",
        "Networks and nodes",
        [
            "Networks, then each node created with its files (sent with their parent folders), "
            "then started in dependency order, each waited for as the run waited (its lab's "
            "readiness check, with the same timeout)."
        ],
    )
    part.lines += [_network(n, i) for i, n in enumerate(plan.networks)]
    for node in plan.nodes:
        part.lines += _node(node, tags.get(node.name, "IMAGE"))
    may_fail = may_not_start(plan.probes)
    order = start_order(plan.nodes)
    down = _maybe_down(order, may_fail)
    if any(set(n.depends_on) & down for n in order):
        part.lines.append(FIRST_DOWN)
    for n in order:
        line = _start(n, n.name in may_fail)
        after = [d for d in n.depends_on if d in down]
        part.lines.append(_unless_down(n.name, after, line) if after else line)
    return part


# a node whose dependency did not start is not started either, as the run skips it
FIRST_DOWN = (
    "first_down() {  # the first of the nodes named that did not start\n"
    '  for d in "$@"; do case " ${DOWN:-} " in *" $d "*) echo "$d"; return 0 ;; esac; done\n'
    "  return 1\n"
    "}"
)


def _maybe_down(order: list[PlanNode], may_fail: set[str]) -> set[str]:
    """The nodes that may not start: those a readiness probe names, and their dependents."""
    down = set(may_fail)
    for n in order:  # dependency order: a dependent comes after what it needs
        if set(n.depends_on) & down:
            down.add(n.name)
    return down


def _unless_down(name: str, after: list[str], line: str) -> str:
    said = f"node {name}: not started: it depends on $d, which did not become ready"
    return (
        f"if d=$(first_down {' '.join(q(a) for a in after)}); then\n"
        f'  say "{said}"; DOWN="${{DOWN:-}} {name}"\n'
        f"else\n  {line}\nfi"
    )


def _only_network(plan: Plan, node: str, network: str | None) -> str:
    if network:
        return network
    nets = next((n.networks for n in plan.nodes if n.name == node), [])
    return nets[0].network if len(nets) == 1 else "NETWORK"


def tbf(rate: str) -> str:
    """harness.engine.impair.tbf_args, for the command line (SI units: *bps are bytes)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)", rate.strip())
    if not m:
        return f"tbf rate {rate} burst 5000 latency 200ms"
    scale = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}
    unit = m.group(2)
    bits = float(m.group(1)) * (scale[unit] if unit in scale else 8 * scale[unit[:-3] + "bit"])
    return f"tbf rate {int(bits)}bit burst {max(int(bits / 8 / 10), 5000)} latency 200ms"


def _ms(value: str) -> float:
    """'100ms' -> 100 (the scenario's validation allows us, ms and s)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(us|ms|s)\s*", value)
    if not m:
        return 0.0
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]


def link_lines(node: str, network: str, spec: dict[str, Any]) -> list[str]:
    """loss (iptables statistic), rate (tc tbf), delay/jitter (tc netem, else NFQUEUE and a
    helper, as the harness does without netem) on one link."""
    lines: list[str] = []
    where = f"{q(node)} {q(network)}"
    loss = spec.get("loss")
    if loss:
        p = float(str(loss).strip().rstrip("%")) / 100
        lines.append(f"loss {where} {p:.6f}")
    delay, rate = spec.get("delay"), spec.get("rate")
    dup = spec.get("duplicate")
    if dup:
        p = float(str(dup).strip().rstrip("%")) / 100
        lines.append(f"dup_link {where} {p:.6f}")
    if delay:
        jitter = str(spec.get("jitter") or "")
        ms = f"{_ms(str(delay)):g} {_ms(jitter) if jitter else 0:g}"
        lines.append(f"delay_link {where} {q(str(delay))} {q(jitter)} {ms}")
        if rate:
            lines.append(f"rate_link {where} {tbf(str(rate))}")
    elif rate:
        lines.append(f"shape {where} {tbf(str(rate))}")
    return lines


def impairments(plan: Plan, wanted: list[dict[str, Any]], backends: list[str]) -> Part:
    """`backends`: the delay backends the run used (its impair phase), said beside the text."""
    part = Part(
        "impair",
        "Impairments",
        [
            "The same mechanism as the run: iptables rules and tc qdiscs inside the nodes "
            "(they have NET_ADMIN); the helpers find the interface of each network."
        ],
    )
    if has_delay(plan, wanted):
        used = f" The run delayed with {' and '.join(backends)}." if backends else ""
        part.text.append(
            "A delay is tc netem where the kernel has it; else, as the harness does without "
            "netem, an NFQUEUE rule in the node and a helper container in its network "
            f"namespace that holds each arriving packet (`nfq_delay`, docs/impairments.md).{used}"
        )
    for imp in wanted:
        node = str(imp.get("node", "NODE"))
        if imp.get("partition"):
            part.lines.append(f"partition {q(node)} {q(str(imp['partition']))}")
        if imp.get("loss") or imp.get("rate") or imp.get("delay") or imp.get("duplicate"):
            part.lines += link_lines(node, _only_network(plan, node, imp.get("network")), imp)
    return part


def configure(plan: Plan) -> Part:
    items = plan.configure
    part = Part("configure", "Configure (as the customer has it)", lines=env_exports(plan))
    for i, item in enumerate(items, 1):
        if item.playbook is not None:
            limit = f" -l {q(','.join(item.limit))}" if item.limit else ""
            extra = ""
            if item.vars:
                body = json.dumps(item.vars, sort_keys=True)
                part.lines += _heredoc(f'cat >"$WORK/vars-{i}.json"', body)
                extra = f' -e "@$WORK/vars-{i}.json"'
            part.lines.append(
                f'ansible-playbook -i "$HERE/{INVENTORY}"{limit}{extra} "$PROJECT/{item.playbook}"'
            )
        else:
            for node in item.on:
                part.lines += _heredoc(f"run_on {q(node)}", item.run or "")
    if any(i.playbook is not None for i in items):
        part.text = [
            f"The playbooks run with the inventory `{INVENTORY}` beside this file (its hosts "
            "are `$PREFIX-<node>`, read from the environment), with an `ansible-playbook` "
            "that has the community.docker collection (the harness's virtualenv has both)."
        ]
    return part


def _undo_fault(plan: Plan, step: PlanStep) -> list[str]:
    on = step.on or "NODE"
    fault = step.fault or ""
    if fault in UNDO:
        return [f'docker {UNDO[fault]} "$PREFIX-{on}" >/dev/null || true']
    if fault == "partition":
        return [f"heal {q(on)} {q(str(step.args.get('target', '')))}"]
    if fault == "impair":
        return [f"clear_link {q(on)} {q(_only_network(plan, on, step.args.get('network')))}"]
    return []


def _fault(plan: Plan, step: PlanStep) -> list[str]:
    on = step.on or "NODE"
    fault = step.fault or ""
    args = step.args
    if fault in NODE_FAULTS:
        return [f'docker {fault} "$PREFIX-{on}" >/dev/null']
    if fault in ("partition", "heal"):
        return [f"{fault} {q(on)} {q(str(args.get('target', '')))}"]
    net = _only_network(plan, on, args.get("network"))
    if fault == "impair":
        return [f"clear_link {q(on)} {q(net)}", *link_lines(on, net, args)]
    if fault == "clear":
        return [f"clear_link {q(on)} {q(net)}"]
    return [f"# {step.description}: not a fault this version knows"]


def _wait(step: PlanStep, sid: str) -> list[str]:
    w = step.wait
    if not w:
        return [f"# {step.description}: repeat until it holds"]
    kind = "port" if w.get("port") else "log" if w.get("log") else "file"
    arg = str(w.get(kind, ""))
    arg = ere(arg) if kind == "log" else arg
    limit = _whole(float(w.get("timeout", 60)))
    return [f"wait_step {q(sid)} {q(step.on or 'NODE')} {kind} {q(arg)} {limit}"]


def _step(plan: Plan, step: PlanStep, index: int) -> list[str]:
    sid = step.id or f"step-{index + 1}"
    on = q(step.on or "NODE")
    if step.kind == "run":
        if step.background:
            return _heredoc(f"background {q(sid)} {on}", step.command or "")
        expect = "" if step.expect_exit is None else str(step.expect_exit)
        head = f"step {q(sid)} {on} {_secs(step.timeout, 30)} {q(expect)}"
        return _heredoc(head, step.command or "")
    if step.kind == "http":
        return _heredoc(f"http_step {q(sid)} {on} {_secs(step.timeout, 15)}", step.command or "")
    if step.kind == "wait":
        return _wait(step, sid)
    if step.kind == "sleep":
        return [f"sleep {step.seconds or 0:g}"]
    if step.kind == "fault":
        return [f"say {q('  ' + (step.description or 'fault'))}", *_fault(plan, step)]
    return [f"# {step.description or step.kind}: not a step this version knows"]


def steps(plan: Plan) -> Part:
    part = Part(
        "steps",
        f"What the customer did ({plan.attempts} time(s))",
        [
            "Each step's output and exit code go to files under `$OUT` (one folder per "
            "attempt), where the probes read them; nothing of it is printed."
        ],
    )
    for i, s in enumerate(plan.steps):
        part.lines += _step(plan, s, i)
    part.lines += [
        f"stop_background {q(s.id or f'step-{i + 1}')}"
        for i, s in enumerate(plan.steps)
        if s.kind == "run" and s.background
    ]
    return part


def undo(plan: Plan) -> Part:
    part = Part("undo", "Between attempts: the faults undone")
    for s in reversed(plan.steps):
        if s.kind == "fault":
            part.lines += _undo_fault(plan, s)
    return part


def _tolerance(func: str, sid: str, expected: Any) -> str:
    if isinstance(expected, list):
        return f"{func} {q(sid)} {' '.join(str(e) for e in expected)}"
    if isinstance(expected, dict) and "not" in expected:
        return f"! {func} {q(sid)} {expected['not']}"
    return f"{func} {q(sid)} {expected}"


def probe_test(p: dict[str, Any]) -> str:
    """A probe as a shell test: exit 0 when it holds (what harness.run.probes matches)."""
    if "step" in p:
        sid = str(p["step"])
        tests: list[str] = []
        if p.get("exit_code") is not None:
            tests.append(_tolerance("exit_is", sid, p["exit_code"]))
        if p.get("status") is not None:
            tests.append(_tolerance("status_is", sid, p["status"]))
        for name in ("stdout", "stderr", "output"):
            if p.get(name) is not None:
                tests.append(f"output_matches {q(sid)} {name} {q(ere(str(p[name])))}")
        if p.get("duration_lt") is not None:
            tests.append(f"took_less {q(sid)} {p['duration_lt']:g}")
        if p.get("duration_gt") is not None:
            tests.append(f"took_more {q(sid)} {p['duration_gt']:g}")
        return " && ".join(tests) or f'test -e "$OUT/{sid}.rc"'
    if "state" in p:  # readiness (harness/run/probes.py): not running, its output matching
        c = f'"$PREFIX-{p["node"]}"'  # node names are DNS-safe
        test = f"! docker inspect -f '{{{{.State.Running}}}}' {c} 2>/dev/null | grep -qx true"
        rx = (
            f" && docker logs {c} 2>&1 | grep -Eq -- {q(ere(str(p['log'])))}"
            if p.get("log")
            else ""
        )
        return "{ " + test + rx + "; }"
    if "finding" in p:
        return _finding_test(p)
    if "log" in p:
        return f"log_matches {q(str(p['on']))} {q(p.get('path') or '')} {q(ere(str(p['log'])))}"
    if "file" in p:
        rx = ere(str(p["matches"])) if p.get("matches") else ""
        return f"file_matches {q(str(p['on']))} {q(str(p['file']))} {q(rx)}"
    kids = [probe_test(k) for k in p.get("any", p.get("all", []))]
    return "{ " + (" || " if "any" in p else " && ").join(kids) + "; }"


def _finding_test(p: dict[str, Any]) -> str:
    """A `finding:` probe by hand: a log finding greps the node's log for its signatures'
    regexes (the plan carries them); a capture finding needs the capture these steps do not
    take, so it says how to read one and does not claim the symptom."""
    if p.get("on") and p.get("patterns"):
        rx = "|".join(f"({ere(str(x))})" for x in p["patterns"])
        return f"log_matches {q(str(p['on']))} {q(p.get('path') or '')} {q(rx)}"
    what = f"{p.get('finding')} on the {p.get('network')} capture"
    why = f"  ({what}: capture it with tcpdump and read it with lab analyze)"
    return "{ say " + q(why) + "; false; }"


def symptom(plan: Plan) -> Part:
    part = Part(
        "symptom",
        "The symptom to look for",
        [
            "Each probe as a command: it prints `held` or `not held`; the symptom is observed "
            "when every probe holds (regexes as `grep -E`, line by line)."
        ],
    )
    if not plan.probes:
        part.lines = [
            "say '  this journal holds no probes: compare the outputs by hand'",
            "SEEN=no",
        ]
        return part
    for i, p in enumerate(plan.probes):
        desc = plan.symptom[i] if i < len(plan.symptom) else f"probe {i + 1}"
        part.lines.append(f"if {probe_test(p)}\nthen held {q(desc)}; else not_held {q(desc)}; fi")
    return part


def cleanup(plan: Plan) -> Part:
    return Part(
        "cleanup",
        "Clean up",
        ["REPRODUCE.sh does this on exit, whatever happened (success, failure or Ctrl-C)."],
        ["down"],
    )


_IP6_OF = """\
ip6_of() {  # node, network: its IPv6 address there
  docker network inspect -f '{{range .Containers}}{{.Name}} {{.IPv6Address}}{{"\\n"}}{{end}}' \\
    "$PREFIX-$2" | awk -v n="$PREFIX-$1" '$1 == n {sub("/.*", "", $2); print $2}'
}"""


def env_exports(plan: Plan) -> list[str]:
    """The addresses the inventory reads (LAB_ADDR_<node>_<network>, and LAB_ADDR6_... on an
    IPv6 network), once the nodes run."""
    if not any(i.playbook is not None for i in plan.configure):
        return []
    lines = [
        f'export {addr_var(n.name, a.network)}="$(ip_of {q(n.name)} {q(a.network)})"'
        for n in plan.nodes
        for a in n.networks
    ]
    v6 = {net.name for net in plan.networks if net.ipv6 or net.subnet6}
    six = [
        f'export {addr_var(n.name, a.network, 6)}="$(ip6_of {q(n.name)} {q(a.network)})"'
        for n in plan.nodes
        for a in n.networks
        if a.network in v6
    ]
    return [*lines, _IP6_OF, *six] if six else lines


def addr_var(node: str, network: str, family: int = 4) -> str:
    return ("LAB_ADDR6_" if family == 6 else "LAB_ADDR_") + re.sub(r"\W", "_", f"{node}_{network}")


def manual_inventory(inv: dict[str, Any]) -> dict[str, Any]:
    """The run's inventory with the names and addresses a manual execution has: read from
    the environment REPRODUCE.sh exports (PREFIX, LAB_ADDR_<node>_<network>, LAB_ADDR6_...)."""
    out: dict[str, Any] = json.loads(json.dumps(inv))
    for node, hv in (out.get("all", {}).get("hosts") or {}).items():
        if not isinstance(hv, dict):
            continue
        hv["ansible_host"] = "{{ lookup('env', 'PREFIX') }}-" + node
        hv["lab_run"] = "{{ lookup('env', 'PREFIX') }}"
        nets = hv.get("lab_addresses") or {}
        hv["lab_addresses"] = {
            net: "{{ lookup('env', '" + addr_var(node, net) + "') }}" for net in nets
        }
        if hv.get("lab_addresses6"):
            hv["lab_addresses6"] = {
                net: "{{ lookup('env', '" + addr_var(node, net, 6) + "') }}"
                for net in hv["lab_addresses6"]
            }
    return out


@dataclass
class Manual:
    """Everything both renderers need."""

    plan: Plan
    settings: list[str]
    parts: dict[str, Part]
    delays: bool = False  # a delay somewhere: the delay helpers and the helper's program
    duplicates: bool = False  # a duplicate somewhere: the helpers with dup_link


def build(
    plan: Plan,
    tags: dict[str, str],
    wanted: list[dict[str, Any]],
    run: str,
    backends: list[str] | None = None,
) -> Manual:
    project = plan.project or "$HERE/project"
    settings = [
        f"PROJECT=${{PROJECT:-{q(project) if plan.project else project}}}"
        "   # the fixtures, labs and playbooks",
        "PREFIX=${PREFIX:-lab-manual-$$}   # names on the engine: fresh for each execution",
        f"ATTEMPTS=${{ATTEMPTS:-{plan.attempts}}}",
        f"MASK={q(MASK)}",
        "HIDDEN=${HIDDEN:-$MASK}   # the value the journal redacted, when a step needs it",
        f"NODES={q(' '.join(n.name for n in plan.nodes))}",
        f"NETWORKS={q(' '.join(n.name for n in plan.networks))}",
        "export PREFIX",
    ]
    parts = [
        images(plan.images, tags, plan),
        topology(plan, tags),
        impairments(plan, wanted, backends or []),
        configure(plan),
        steps(plan),
        undo(plan),
        symptom(plan),
        cleanup(plan),
    ]
    return Manual(
        plan,
        settings,
        {p.key: p for p in parts},
        has_delay(plan, wanted),
        has_delay(plan, wanted, "duplicate"),
    )
