#!/usr/bin/env bash
# Chromium for the suite's browser tests (the Airflow UI's forms), from Debian's packages; fails loudly when it
# cannot be installed. Prints the browser's path.
set -euo pipefail
for name in chromium chromium-browser; do
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; exit 0; fi
done
if [ "$(id -u)" != "0" ]; then
  echo "chromium is not installed and this is not root: install Debian's chromium package" >&2
  exit 1
fi
echo "==> installing chromium (apt)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium
