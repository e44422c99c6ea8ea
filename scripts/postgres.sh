#!/usr/bin/env bash
# Make sure PostgreSQL's server programs are installed (Debian's package), and print the folder that holds them.
# The scheduler tests run their own private cluster from there (tests/postgres.py); nothing is started here.
set -euo pipefail

has_all() { [ -x "$1/initdb" ] && [ -x "$1/pg_ctl" ] && [ -x "$1/createdb" ]; }

find_bin() {
  local found
  found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -n "$found" ] && has_all "$found"; then
    echo "$found"
    return 0
  fi
  if command -v initdb >/dev/null 2>&1 && has_all "$(dirname "$(command -v initdb)")"; then
    dirname "$(command -v initdb)"
    return 0
  fi
  return 1
}

if ! find_bin >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "PostgreSQL is not installed and this is not root: install Debian's postgresql package" >&2
    exit 1
  fi
  echo "==> installing postgresql (apt)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  # Debian starts a cluster of its own; the tests use private ones, so it may stay stopped.
  service postgresql stop >/dev/null 2>&1 || true
fi
find_bin
