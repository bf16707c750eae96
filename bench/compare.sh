#!/usr/bin/env bash
# Compares jobforge builds on the WiQ product (the real files in ../shared/data), each measure
# run by every build in turn, RUNS times (default 15), so that a host whose speed drifts within
# minutes slows them all alike; prints the medians. The measures of `bench/run.sh wiq`: a run
# from nothing (wall, user + system CPU, peak RSS, minor page faults), a rerun with nothing
# changed, a rerun after editing one pipeline file, `validate --config-only` and `plan --dry-run`
# (wall). Each build works in a project folder of its own, so that no build reruns over what
# another wrote.
# Usage: bench/compare.sh BINARY... (release builds, e.g. copies of target/release/jobforge
# taken before and after a change). Builds nothing. ONLY=PATTERN runs just the measures whose
# name matches the extended regular expression PATTERN (e.g. ONLY='editing|nothing changed').
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-15}"
[[ $# -ge 1 ]] || { echo "usage: bench/compare.sh BINARY..." >&2; exit 2; }
for b in "$@"; do [[ -x $b ]] || { echo "not an executable: $b" >&2; exit 2; }; done
real=$(cd ../shared/data && pwd)
export JOBFORGE_SOURCE_DIR=$real
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
declare -A project
n=0
for b in "$@"; do
  n=$(( n + 1 ))
  project[$b]="$work/project-$n"
  mkdir -p "${project[$b]}"
  cp -r sources.yml pipelines "${project[$b]}/"
done
timing="$work/time.out"
declare -A results

# run KEY BINARY ARGS...: runs once (wall time by `date`, CPU time, peak RSS and minor page faults
# by /usr/bin/time, whose own wall time has a resolution of 10 ms); adds
# "wall_us cpu_ms peak_kib faults".
run() {
  local key=$1 bin=$2; shift 2
  local start end
  start=$(date +%s%N)
  /usr/bin/time -o "$timing" -f '%U %S %M %R' "$bin" --project "${project[$bin]}" "$@" >/dev/null 2>&1
  end=$(date +%s%N)
  results[$key]+="$(( (end - start) / 1000 )) $(awk '{printf "%d %d %d", ($1 + $2) * 1000, $3, $4}' "$timing"),"
}

# wanted MEASURE: true when ONLY is unset or matches MEASURE.
wanted() { [[ -z ${ONLY:-} ]] || grep -Eq "$ONLY" <<<"$1"; }

median() { sort -g | sed -n "$(( (RUNS + 1) / 2 ))p"; }

report() {
  local measure=$1 key
  shift
  for b in "$@"; do
    key="$measure|$b"
    local rows; rows=$(tr ',' '\n' <<<"${results[$key]}" | sed '/^$/d')
    local wall cpu peak faults
    wall=$(cut -d' ' -f1 <<<"$rows" | median)
    cpu=$(cut -d' ' -f2 <<<"$rows" | median)
    peak=$(cut -d' ' -f3 <<<"$rows" | median)
    faults=$(cut -d' ' -f4 <<<"$rows" | median)
    printf '%-30s %-36s wall %8.1f ms   cpu %6d ms   peak %6.1f MiB   faults %6d\n' "$measure" "$b" \
      "$(echo "$wall / 1000" | bc -l)" "$cpu" "$(echo "$peak / 1024" | bc -l)" "$faults"
  done
}

wanted "from nothing" && for _ in $(seq "$RUNS"); do
  for b in "$@"; do
    rm -rf "${project[$b]}/data"
    sync
    run "from nothing|$b" "$b" run pipelines
  done
done
for b in "$@"; do "$b" --project "${project[$b]}" run pipelines >/dev/null 2>&1; done
wanted "rerun, nothing changed" && for _ in $(seq "$RUNS"); do
  for b in "$@"; do run "rerun, nothing changed|$b" "$b" run pipelines; done
done
wanted "rerun after editing one file" && for _ in $(seq "$RUNS"); do
  for b in "$@"; do
    # A new description for one table each time: that table is rebuilt, the others are held.
    sed -i "s/^description: .*/description: edited $RANDOM$RANDOM/" "${project[$b]}/pipelines/oasis_interests.yml"
    run "rerun after editing one file|$b" "$b" run pipelines
  done
done
wanted "validate --config-only plan --dry-run" && for _ in $(seq "$RUNS"); do
  for b in "$@"; do
    run "validate --config-only|$b" "$b" validate --config-only
    run "plan --dry-run|$b" "$b" plan --dry-run
  done
done
echo "WiQ on $real, $RUNS runs of each build in turn, medians"
for measure in "from nothing" "rerun, nothing changed" "rerun after editing one file" \
  "validate --config-only" "plan --dry-run"; do
  if wanted "$measure"; then report "$measure" "$@"; fi
done
