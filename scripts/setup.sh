#!/usr/bin/env bash
# Set up labharness on a Debian machine: a Docker engine (installed and started when none answers),
# the project in .venv, and the base OS images (built offline when no registry answers).
# Idempotent: rerunning skips what is already there. Needs root (or sudo) for apt and dockerd.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v dockerd >/dev/null 2>&1 || need_apt+=(docker.io)
[ -x /usr/bin/docker ] || need_apt+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v tcpdump >/dev/null 2>&1 || need_apt+=(tcpdump)   # captures, on the network bridges
command -v tshark >/dev/null 2>&1 || need_apt+=(tshark)     # reading captures (tests, engineers)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)  # report.html checks (Playwright drives it)
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)       # Allure commandline
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v script >/dev/null 2>&1 || need_apt+=(util-linux)                  # terminal tests
[ -d /usr/share/redmine ] || need_apt+=(redmine redmine-sqlite)             # tracker tests: a real Redmine
[ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)                          # tracker tests: a private reverse proxy (502, recovery)
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)                          # ssh:// engine tests: a private sshd
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)                   # tcp+TLS engine tests: certificates
if [ "${#need_apt[@]}" -gt 0 ]; then
  log "installing ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

engine_answers() { /usr/bin/docker info >/dev/null 2>&1; }
if ! engine_answers; then
  log "starting dockerd (log: /var/log/labharness-dockerd.log)"
  # A wide address pool: parallel runs and tests each make their own networks.
  $SUDO setsid dockerd --default-address-pool base=10.213.0.0/16,size=24 \
    >/var/log/labharness-dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 60); do engine_answers && break; sleep 0.5; done
  engine_answers || { tail -20 /var/log/labharness-dockerd.log >&2; log "dockerd did not answer"; exit 3; }
fi
log "engine $(/usr/bin/docker version --format '{{.Server.Version}}') answers"

PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if ! "$PY" -c "import venv, ensurepip" >/dev/null 2>&1; then   # Debian splits venv out
  log "installing python3-venv"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
log "installing labharness into .venv"
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e '.[dev]' 2>&1 | grep -v -i "warning" || true
.venv/bin/python -c "import harness"
# pip byte-compiles a wheel but not an editable install; where PYTHONDONTWRITEBYTECODE is set
# (this machine sets it) every `lab` would compile the package again: about 0.05 s each.
.venv/bin/python -m compileall -q harness >/dev/null

ALLURE_PREFIX="${LABHARNESS_CACHE:-$HOME/.cache/labharness}/allure"
if [ ! -x "$ALLURE_PREFIX/node_modules/.bin/allure" ]; then
  log "installing the Allure commandline (npm allure-commandline@2) into $ALLURE_PREFIX"
  npm install --silent --prefix "$ALLURE_PREFIX" allure-commandline@2 >/dev/null
fi

log "building base images (reused when their inputs did not change)"
.venv/bin/lab images build --environments-only
log "ready: .venv/bin/lab --help"
