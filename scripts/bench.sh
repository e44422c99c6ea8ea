#!/usr/bin/env bash
# The benchmark command: installs what it needs (venv, pinned packages, Azurite), then runs every bench/bench_*.py
# and keeps each one's printed tables in bench/results/ (ignored by git).
#
#   bash scripts/bench.sh                    # every benchmark, full sizes
#   bash scripts/bench.sh --quick            # every benchmark, small sizes (--quick is passed to each)
#   bash scripts/bench.sh --quick steps      # only bench/bench_steps.py (names without bench_ and .py)
#
# Each benchmark's standard output goes to bench/results/<name>-<time>.txt and bench/results/<name>.txt (the
# latest); progress on standard error stays on the terminal. A benchmark that fails does not stop the others; the
# command then exits non-zero and names it.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=()
names=()
for arg in "$@"; do
  case "$arg" in
    --quick) quick=(--quick) ;;
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $arg (only --quick)" >&2; exit 2 ;;
    *) names+=("$arg") ;;
  esac
done

benches=()
if [ ${#names[@]} -eq 0 ]; then
  for file in bench/bench_*.py; do benches+=("$file"); done
else
  for name in "${names[@]}"; do
    file="bench/bench_${name}.py"
    if [ ! -f "$file" ]; then
      echo "no benchmark $file; there are: $(cd bench && echo bench_*.py)" >&2
      exit 2
    fi
    benches+=("$file")
  done
fi

bash scripts/bootstrap.sh --with-emulators

mkdir -p bench/results
stamp="$(date +%Y%m%d-%H%M%S)"
failed=()
for file in "${benches[@]}"; do
  name="$(basename "$file" .py)"
  name="${name#bench_}"
  out="bench/results/${name}-${stamp}.txt"
  echo "==> $file ${quick[*]:-} -> $out"
  start=$SECONDS
  if .venv/bin/python "$file" "${quick[@]}" | tee "$out"; then
    cp "$out" "bench/results/${name}.txt"
    echo "==> $name done in $((SECONDS - start)) s"
  else
    failed+=("$name")
    echo "==> $name FAILED after $((SECONDS - start)) s (its output so far: $out)" >&2
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
echo "==> results in bench/results/"
