#!/usr/bin/env bash
# Make sure Debian's redis-server is installed (the Celery test's broker) and print its path. Nothing is started:
# the test runs a private server on a free 127.0.0.1 port.
set -euo pipefail
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "redis-server is not installed and this is not root: install Debian's redis-server package" >&2
    exit 1
  fi
  echo "==> installing redis-server (apt)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  service redis-server stop >/dev/null 2>&1 || true
fi
command -v redis-server
