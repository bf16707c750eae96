#!/usr/bin/env bash
# Counts the instructions of a WiQ run from nothing (the real files in ../shared/data) under
# callgrind, for each build given: the measure of BENCHMARKS.md's "instructions" rows, which
# does not drift with the host's speed as wall time does. Also prints the share of SHA-256 (the
# sources' fingerprints), which valgrind runs without the CPU's SHA instructions and so counts
# several times what it costs. Each build runs in a project folder of its own.
# Usage: bench/instructions.sh BINARY... (release builds). Needs valgrind; about a minute a build.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 1 ]] || { echo "usage: bench/instructions.sh BINARY..." >&2; exit 2; }
command -v valgrind >/dev/null || { echo "bench/instructions.sh needs valgrind" >&2; exit 2; }
for b in "$@"; do [[ -x $b ]] || { echo "not an executable: $b" >&2; exit 2; }; done
export JOBFORGE_SOURCE_DIR
JOBFORGE_SOURCE_DIR=$(cd ../shared/data && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=0
for b in "$@"; do
  n=$(( n + 1 ))
  project="$work/project-$n"
  mkdir -p "$project"
  cp -r sources.yml pipelines "$project/"
  # DuckDB's worker threads spin: without fair scheduling valgrind can let them hold the others off.
  valgrind --tool=callgrind --fair-sched=yes --callgrind-out-file="$work/out-$n" \
    "$b" --project "$project" run pipelines >/dev/null 2>"$work/log-$n"
  total=$(sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' "$work/log-$n")
  sha=$(callgrind_annotate "$work/out-$n" 2>/dev/null | awk '/sha2::sha256::compress256/ && !n {gsub(",", "", $1); print $1; n = 1}')
  printf '%-40s %6.3f billion instructions, %6.3f billion of them SHA-256\n' "$b" \
    "$(echo "$total / 10^9" | bc -l)" "$(echo "${sha:-0} / 10^9" | bc -l)"
done
