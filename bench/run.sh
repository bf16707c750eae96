#!/usr/bin/env bash
# Benchmarks (release builds, same machine, same run), reported in BENCHMARKS.md:
#  1. synthetic: a generated 5,000,000-row source through JobForge (bench/pipelines) and through
#     the hand-written Polars program examples/bench_baseline.rs doing the same transforms;
#  2. wiq: the full WiQ product (every table) on the real files in ../shared/data/noc.
# Each command runs RUNS times (default 5); the median wall time and the median peak RSS are
# printed. Usage: bench/run.sh [synthetic|wiq|all]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/jobforge-target}"
RUNS="${RUNS:-5}"
what="${1:-all}"
cargo build --release --no-default-features --features bench --bin jobforge --example bench_generate --example bench_baseline
bin="$CARGO_TARGET_DIR/release"
timing=$(mktemp)

# measure NAME CMD...: runs CMD $RUNS times, prints median wall seconds and peak RSS in MiB.
measure() {
  local name=$1; shift
  local walls=() rss=()
  for _ in $(seq "$RUNS"); do
    local out
    /usr/bin/time -o "$timing" -f '%e %M' "$@" >/dev/null 2>&1
    out=$(tail -1 "$timing")
    walls+=("$(echo "$out" | cut -d' ' -f1)")
    rss+=("$(echo "$out" | cut -d' ' -f2)")
  done
  local wall mem
  wall=$(printf '%s\n' "${walls[@]}" | sort -g | sed -n "$(( (RUNS + 1) / 2 ))p")
  mem=$(printf '%s\n' "${rss[@]}" | sort -g | sed -n "$(( (RUNS + 1) / 2 ))p")
  printf '%-28s wall %8.3f s   peak %8.1f MiB   (median of %s)\n' "$name" "$wall" "$(echo "$mem / 1024" | bc -l)" "$RUNS"
}

if [[ $what == synthetic || $what == all ]]; then
  src=bench/out/source/synthetic.csv
  [[ -f $src ]] || "$bin/examples/bench_generate" "$src" 5000000
  echo "synthetic source: $(wc -l < "$src") lines, $(du -h "$src" | cut -f1)"
  measure "jobforge (synthetic)" "$bin/jobforge" --project bench run pipelines
  measure "hand-written polars" "$bin/examples/bench_baseline" "$src" bench/out/baseline
fi
if [[ $what == wiq || $what == all ]]; then
  real=$(cd ../shared/data/noc && pwd)
  work=$(mktemp -d)
  cp -r sources.yml pipelines "$work/"
  export JOBFORGE_SOURCE_DIR=$real
  "$bin/jobforge" --project "$work" run pipelines | head -1
  measure "jobforge (WiQ, real files)" "$bin/jobforge" --project "$work" run pipelines
  unset JOBFORGE_SOURCE_DIR
  rm -rf "$work"
fi
