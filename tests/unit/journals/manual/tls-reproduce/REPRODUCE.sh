#!/bin/sh
# REPRODUCE.sh: `tls-protocol-mismatch` rebuilt on a Docker engine, the customer's steps replayed
# and the symptom looked for, from run 261126-010019-b409 (see REPRODUCE.md beside it).
#   sh REPRODUCE.sh      from any folder; prints `symptom observed` or `symptom absent`
#                     per attempt, then the verdict: exit 0 REPRODUCED,
#                     1 NOT_REPRODUCED, 3 when a step could not run
# Settings from the environment: PREFIX (names on the engine, fresh by default),
# PROJECT (the project folder), ATTEMPTS, HIDDEN (what the journal redacted).
# Everything it creates is removed on exit (success, failure, Ctrl-C).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PROJECT=${PROJECT:-/srv/labharness}   # the fixtures, labs and playbooks
PREFIX=${PREFIX:-lab-manual-$$}   # names on the engine: fresh for each execution
ATTEMPTS=${ATTEMPTS:-3}
MASK='***REDACTED***'
HIDDEN=${HIDDEN:-$MASK}   # the value the journal redacted, when a step needs it
NODES='proxy client'
NETWORKS=dmz
export PREFIX
WORK=$(mktemp -d "${TMPDIR:-/tmp}/reproduce.XXXXXX")
say() { printf '%s\n' "$*"; }
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
}
finish() {
  rc=$?
  trap - EXIT
  down
  rm -rf "$WORK"
  if [ -z "${VERDICT:-}" ]; then say "stopped (exit $rc); $PREFIX-* removed"; fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# unpacked from a bundle (bundle/run/ beside bundle/project/): its own project
if [ ! -d "$PROJECT" ] && [ -d "$HERE/../project/labs" ]; then
  PROJECT=$(cd "$HERE/../project" && pwd)
fi
[ -d "$PROJECT" ] || die "PROJECT=$PROJECT is not a folder: set PROJECT to the project folder (the one with labs/ and fixtures/)"
command -v docker >/dev/null || die "docker is not on PATH"

make_images() {
# base OS: debian-12 (bookworm)
image labharness/env-debian-12:bf47af6cc839 in_project lab images build --os debian-12 --environments-only
image labharness/lab-nginx:1.22-debian-12-ad525652e23b docker build -q -t labharness/lab-nginx:1.22-debian-12-ad525652e23b --build-arg BASE_IMAGE=labharness/env-debian-12:bf47af6cc839 --build-arg LAB_VERSION=1.22 \
  -f "$PROJECT/labs/nginx/Dockerfile" "$PROJECT/labs/nginx"
image labharness/lab-curl:7.88-debian-12-20fc69efe2eb docker build -q -t labharness/lab-curl:7.88-debian-12-20fc69efe2eb --build-arg BASE_IMAGE=labharness/env-debian-12:bf47af6cc839 --build-arg LAB_VERSION=7.88 \
  -f "$PROJECT/labs/curl/Dockerfile" "$PROJECT/labs/curl"
}

up() {
docker network create "$PREFIX-dmz" >/dev/null
docker create --init \
  --name "$PREFIX-proxy" --hostname proxy \
  --network "$PREFIX-dmz" --network-alias proxy \
  labharness/lab-nginx:1.22-debian-12-ad525652e23b nginx -g 'daemon off;' >/dev/null
put_file proxy "$PROJECT/fixtures/tls-protocol-mismatch/site.conf" /etc/nginx/sites-available/default
put_file proxy "$PROJECT/fixtures/tls-protocol-mismatch/server.crt" /etc/nginx/ssl/server.crt
put_file proxy "$PROJECT/fixtures/tls-protocol-mismatch/server.key" /etc/nginx/ssl/server.key
docker create --init \
  --name "$PREFIX-client" --hostname client \
  --network "$PREFIX-dmz" --network-alias client \
  labharness/lab-curl:7.88-debian-12-20fc69efe2eb sleep infinity >/dev/null
start proxy port 443 30
start client none '' 60
run_on proxy <<'EOF'
nginx -t
EOF
}

customer_steps() {
wait_step step-1 proxy port 443 20
step request client 10 '' <<'EOF'
curl -sS -o /dev/null -w '%{http_code} %{ssl_verify_result}\n' --tlsv1.3 --tls-max 1.3 -k https://proxy/
EOF
}

undo_faults() {
:
}

symptom() {
if exit_is request 35 && output_matches request stderr 'alert protocol version|unsupported protocol|wrong version number'
then held 'step request: exit_code=35, stderr=alert protocol version|unsupported protocol|wrong version number'; else not_held 'step request: exit_code=35, stderr=alert protocol version|unsupported protocol|wrong version number'; fi
}

say "prefix $PREFIX, project $PROJECT"
make_images
up
K=0 N=1
while [ "$N" -le "$ATTEMPTS" ]; do
  if [ "$N" -gt 1 ]; then
    undo_faults
  fi
  OUT=$WORK/attempt-$N
  mkdir -p "$OUT"
  T0=$(now)
  say "attempt $N:"
  customer_steps
  SEEN=yes
  symptom
  if [ "$SEEN" = yes ]; then
    K=$((K + 1))
    say "attempt $N: symptom observed"
  else
    say "attempt $N: symptom absent"
  fi
  N=$((N + 1))
done
if [ "$K" -gt 0 ]; then VERDICT=REPRODUCED; else VERDICT=NOT_REPRODUCED; fi
say "$VERDICT ($K/$ATTEMPTS): symptom observed in $K of $ATTEMPTS attempt(s)"
if [ "$K" -gt 0 ]; then exit 0; fi
exit 1
