#!/usr/bin/env bash
# A private Docker engine for the DockerCompute tests, and the small base image they run.
#
#   bash scripts/docker-engine.sh          # install if missing, start the engine, build the image once
#   bash scripts/docker-engine.sh stop     # stop the engine started here
#
# The engine listens on a unix socket of its own (not /var/run/docker.sock) so it never meets another engine on
# the machine; the tests find it through MLPIPE_TEST_DOCKER_HOST or the default socket path below. It runs with
# the vfs storage driver and no bridge or iptables rules because CI machines and containers often lack overlayfs
# and netfilter: test containers use network_mode "none" or "host".
#
# The base image (Debian bookworm with python3, built with debootstrap) is kept as a tarball in a cache folder,
# so only the first run pays for debootstrap (about a minute); later runs import the tarball in seconds.
set -euo pipefail

STATE_DIR="${MLPIPE_DOCKER_DIR:-${TMPDIR:-/tmp}/mlpipe-docker}"
CACHE_DIR="${MLPIPE_DOCKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/airflow-mlpipe}"
IMAGE="${MLPIPE_TEST_IMAGE:-mlpipe-test-python:bookworm}"
# The Debian mirror this machine's apt already uses (first "URIs:" or "deb" line), unless one is given.
apt_mirror() {
  { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}';
    grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}'; } | grep -v security | head -n 1 || true
}
MIRROR="${MLPIPE_DEBIAN_MIRROR:-$(apt_mirror)}"
SOCK="$STATE_DIR/docker.sock"
HOST="unix://$SOCK"
PIDFILE="$STATE_DIR/dockerd.pid"
TARBALL="$CACHE_DIR/debian-bookworm-python3.tar"

log() { echo "==> $*" >&2; }

engine_up() { docker -H "$HOST" info >/dev/null 2>&1; }

stop_engine() {
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    log "stopping dockerd (pid $pid)"
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -f "$PIDFILE"
}

install_packages() {
  if command -v dockerd >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1; then
    return
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "dockerd or debootstrap is missing and this is not root: install docker.io and debootstrap" >&2
    exit 1
  fi
  log "installing docker.io and debootstrap (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker.io debootstrap >/dev/null
}

start_engine() {
  if engine_up; then
    log "engine already running at $HOST"
    return
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "starting dockerd needs root; run this script as root (or point MLPIPE_TEST_DOCKER_HOST at an engine)" >&2
    exit 1
  fi
  mkdir -p "$STATE_DIR/data" "$STATE_DIR/exec"
  stop_engine
  log "starting dockerd at $HOST (log: $STATE_DIR/dockerd.log)"
  # setsid: the engine outlives this script and the CI step that ran it.
  setsid dockerd \
    --data-root "$STATE_DIR/data" --exec-root "$STATE_DIR/exec" --pidfile "$PIDFILE" -H "$HOST" \
    --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none \
    >"$STATE_DIR/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 150); do
    engine_up && return
    sleep 0.2
  done
  echo "dockerd did not start within 30 s; its log:" >&2
  tail -n 30 "$STATE_DIR/dockerd.log" >&2
  exit 1
}

build_image() {
  if docker -H "$HOST" image inspect "$IMAGE" >/dev/null 2>&1; then
    log "image $IMAGE present"
    return
  fi
  if [ ! -s "$TARBALL" ]; then
    log "building a Debian bookworm root with python3 (debootstrap, about a minute, cached in $CACHE_DIR)"
    mkdir -p "$CACHE_DIR"
    local root="$STATE_DIR/rootfs.$$"
    rm -rf "$root"
    debootstrap --variant=minbase --include=python3 bookworm "$root" "$MIRROR" >"$STATE_DIR/debootstrap.log" 2>&1 \
      || { tail -n 30 "$STATE_DIR/debootstrap.log" >&2; exit 1; }
    # Apt lists and caches are not needed to run python: keep the tarball small.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*
    tar -C "$root" -cf "$TARBALL.tmp" .
    mv "$TARBALL.tmp" "$TARBALL"
    rm -rf "$root"
  fi
  log "importing $TARBALL as $IMAGE"
  docker -H "$HOST" import "$TARBALL" "$IMAGE" >/dev/null
}

case "${1:-start}" in
  start)
    install_packages
    start_engine
    build_image
    echo "export MLPIPE_TEST_DOCKER_HOST=$HOST"
    ;;
  stop)
    stop_engine
    ;;
  *)
    echo "usage: $0 [start|stop]" >&2
    exit 2
    ;;
esac
