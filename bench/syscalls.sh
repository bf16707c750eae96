#!/usr/bin/env bash
# Measures what a WiQ run from nothing (the real files in ../shared/data) costs the kernel in
# making its files, for each build given: the system time spent in the calls that create and
# name files (openat, mkdir, linkat, rename, unlink, as `strace -f -c` reports it), their count,
# and the files and inodes the run leaves. The builds run in turn, RUNS times (default 5), in ONE
# project folder, so that each sees the same file system state (on ext4 without a journal,
# making a file steps over every inode deleted in the last seconds, such as the previous run's;
# folders of their own would each sit in a block group of its own and differ by that alone).
# Usage: bench/syscalls.sh BINARY... (release builds). Needs strace. Prints medians.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-5}"
[[ $# -ge 1 ]] || { echo "usage: bench/syscalls.sh BINARY..." >&2; exit 2; }
command -v strace >/dev/null || { echo "bench/syscalls.sh needs strace" >&2; exit 2; }
for b in "$@"; do [[ -x $b ]] || { echo "not an executable: $b" >&2; exit 2; }; done
export JOBFORGE_SOURCE_DIR
JOBFORGE_SOURCE_DIR=$(cd ../shared/data && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
project="$work/project"
mkdir -p "$project"
cp -r sources.yml pipelines "$project/"
declare -A results
for _ in $(seq "$RUNS"); do
  for b in "$@"; do
    rm -rf "$project/data"
    sync
    strace -f -c -e trace=openat,mkdir,linkat,rename,unlink -o "$work/calls" "$b" --project "$project" run pipelines \
      >/dev/null 2>&1
    files=$(find "$project/data" -type f | wc -l)
    inodes=$(find "$project/data" -printf '%i\n' | sort -u | wc -l)
    results[$b]+="$(awk '$NF == "total" {printf "%d %d", $2 * 1000000, $4}' "$work/calls") $files $inodes,"
  done
done
median() { sort -g | sed -n "$(( (RUNS + 1) / 2 ))p"; }
echo "WiQ from nothing on $JOBFORGE_SOURCE_DIR, $RUNS runs of each build in turn, medians"
for b in "$@"; do
  rows=$(tr ',' '\n' <<<"${results[$b]}" | sed '/^$/d')
  printf '%-36s system time in file calls %6.1f ms   calls %5d   files %4d   inodes %4d\n' "$b" \
    "$(echo "$(cut -d' ' -f1 <<<"$rows" | median) / 1000" | bc -l)" "$(cut -d' ' -f2 <<<"$rows" | median)" \
    "$(cut -d' ' -f3 <<<"$rows" | median)" "$(cut -d' ' -f4 <<<"$rows" | median)"
done
