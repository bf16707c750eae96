#!/usr/bin/env bash
# Benchmarks (release builds, same machine, same run), reported in BENCHMARKS.md:
#  1. synthetic: a generated 5,000,000-row source through JobForge (bench/pipelines) and through
#     the hand-written Polars program examples/bench_baseline.rs doing the same transforms;
#  2. wiq: the full WiQ product (every table) on the real files in ../shared/data: from
#     nothing, a rerun with nothing changed, a rerun after editing one pipeline file, and
#     `validate --config-only` and `plan --dry-run`;
#  3. match: the `match` step on the real files: every NOC unit group's title and definition
#     (516) against every occupational group and subgroup (142), top 3, token_set and tfidf;
#     the run of that one table against the same table without the step;
#  4. load (under scripts/with-postgres): `jobforge load --execute` of the WiQ gold and of the
#     synthetic gold into an empty PostgreSQL schema, against `psql \copy` of the same rows from
#     CSV files into the same tables (created beforehand, with their primary keys).
# Each command runs RUNS times (default 5) timed alone, and RUNS times under /usr/bin/time for
# its peak RSS; the medians are printed. Usage: bench/run.sh [synthetic|wiq|all|match|load]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/jobforge-target}"
RUNS="${RUNS:-5}"
what="${1:-all}"
# The examples only for the synthetic and load rows: with the dev-dependencies their build unifies Polars'
# features differently, so a cold build of them compiles Polars a second time (30 minutes here).
examples=()
if [[ $what == synthetic || $what == load || $what == all ]]; then examples=(--example bench_generate --example bench_baseline); fi
cargo build --release --no-default-features --features bench --bin jobforge "${examples[@]}"
bin="$CARGO_TARGET_DIR/release"
timing=$(mktemp)

# measure NAME CMD...: runs `$PREP` (untimed, when set) then CMD, $RUNS times, timing CMD alone;
# then as many runs again under /usr/bin/time for the peak RSS. Prints both medians.
measure() {
  local name=$1; shift
  local walls=() rss=()
  for _ in $(seq "$RUNS"); do
    if [[ -n ${PREP:-} ]]; then eval "$PREP"; fi
    local start end
    start=$(date +%s%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s%N)
    walls+=("$(( (end - start) / 1000 ))")
    if [[ -n ${PREP:-} ]]; then eval "$PREP"; fi
    /usr/bin/time -o "$timing" -f '%M' "$@" >/dev/null 2>&1
    rss+=("$(tail -1 "$timing")")
  done
  local wall mem
  wall=$(printf '%s\n' "${walls[@]}" | sort -g | sed -n "$(( (RUNS + 1) / 2 ))p")
  mem=$(printf '%s\n' "${rss[@]}" | sort -g | sed -n "$(( (RUNS + 1) / 2 ))p")
  printf '%-44s wall %10.1f ms   peak %8.1f MiB   (median of %s)\n' "$name" "$(echo "$wall / 1000" | bc -l)" \
    "$(echo "$mem / 1024" | bc -l)" "$RUNS"
}

if [[ $what == synthetic || $what == all ]]; then
  src=bench/out/source/synthetic.csv
  [[ -f $src ]] || "$bin/examples/bench_generate" "$src" 5000000
  echo "synthetic source: $(wc -l < "$src") lines, $(du -h "$src" | cut -f1)"
  measure "jobforge (synthetic)" "$bin/jobforge" --project bench run pipelines --full-refresh
  measure "hand-written polars" "$bin/examples/bench_baseline" "$src" bench/out/baseline
fi
if [[ $what == wiq || $what == all ]]; then
  real=$(cd ../shared/data && pwd)
  work=$(mktemp -d)
  cp -r sources.yml pipelines "$work/"
  export JOBFORGE_SOURCE_DIR=$real
  jf=("$bin/jobforge" --project "$work")
  PREP="rm -rf '$work/data'" measure "WiQ from nothing (real files)" "${jf[@]}" run pipelines
  "${jf[@]}" run pipelines | head -1
  measure "WiQ rerun, nothing changed" "${jf[@]}" run pipelines
  # Each time a new description for one table: that table is rebuilt, the other 38 are held.
  PREP="sed -i \"s/^description: .*/description: edited \$RANDOM\$RANDOM/\" '$work/pipelines/oasis_interests.yml'" \
    measure "WiQ rerun after editing one pipeline file" "${jf[@]}" run pipelines
  measure "WiQ validate --config-only" "${jf[@]}" validate --config-only
  measure "WiQ plan --dry-run" "${jf[@]}" plan --dry-run
  unset JOBFORGE_SOURCE_DIR
  rm -rf "$work"
fi
if [[ $what == match || $what == all ]]; then
  real=$(cd ../shared/data && pwd)
  work=$(mktemp -d)
  cp -r sources.yml wiq_schema.yml "$work/"
  mkdir "$work/pipelines"
  cp pipelines/og_classifications.yml pipelines/og_classifications_fr.yml "$work/pipelines/"
  export JOBFORGE_SOURCE_DIR=$real
  jf=("$bin/jobforge" --project "$work")
  for scorer in none token_set tfidf; do
    step=""
    if [[ $scorer != none ]]; then
      step="  - match: { columns: [class_title, class_definition], ref: silver.og_classifications, key: [class_code], against: [class_name], scorer: $scorer, top_k: 3 }"
    fi
    printf 'table: noc_match_%s\nsource: noc_structure\nbronze: { rename: { code_noc_2021_v1_0: noc_code }, cast: { level: int32 } }\nsilver:\n  - filter: "level = 5"\n%s\n' \
      "$scorer" "$step" > "$work/pipelines/noc_match_$scorer.yml"
  done
  "${jf[@]}" run pipelines >/dev/null
  for scorer in none token_set tfidf; do
    measure "match 516 x 142, title+definition: $scorer" "${jf[@]}" run pipelines --select "noc_match_$scorer" --full-refresh
  done
  unset JOBFORGE_SOURCE_DIR
  rm -rf "$work"
fi
if [[ $what == load ]]; then
  url="${JOBFORGE_TEST_POSTGRES:?run it as: scripts/with-postgres bench/run.sh load}"
  export PGOPTIONS="-c client_min_messages=warning"
  sql=(psql "$url" -qAtX -v ON_ERROR_STOP=1)
  real=$(cd ../shared/data && pwd)
  work=$(mktemp -d)
  cp -r sources.yml pipelines wiq_schema.yml "$work/"
  JOBFORGE_SOURCE_DIR=$real "$bin/jobforge" --project "$work" run pipelines >/dev/null
  # The synthetic rows themselves as gold (no aggregate): about 4.85 million rows.
  rows5m=$(mktemp -d)
  mkdir -p "$rows5m/pipelines"
  cp bench/sources.yml "$rows5m/"
  sed '/^gold:/,$d' bench/pipelines/synthetic.yml > "$rows5m/pipelines/synthetic.yml"
  [[ -f bench/out/source/synthetic.csv ]] || "$bin/examples/bench_generate" bench/out/source/synthetic.csv 5000000
  JOBFORGE_SOURCE_DIR=$(cd bench/out/source && pwd) "$bin/jobforge" --project "$rows5m" run pipelines >/dev/null
  for project in "$work" "$rows5m"; do
    name=$([[ $project == "$rows5m" ]] && echo "synthetic rows" || echo "WiQ gold")
    PREP="${sql[*]} -c 'DROP SCHEMA IF EXISTS jf CASCADE'" \
      measure "jobforge load ($name)" "$bin/jobforge" --project "$project" load --target "$url#jf" --execute
    "${sql[@]}" -c "DROP SCHEMA IF EXISTS jf CASCADE"
    "$bin/jobforge" --project "$project" load --target "$url#jf" --execute >/dev/null
    # The same rows as CSV files, and the same tables (keys included, no foreign keys) to copy into.
    csv=$(mktemp -d)
    chmod 755 "$csv"
    "${sql[@]}" -c "DROP SCHEMA IF EXISTS base CASCADE; CREATE SCHEMA base"
    script="$csv/copy.sql"
    echo "BEGIN;" > "$script"
    rows=0
    for t in $("${sql[@]}" -c "SELECT tablename FROM pg_tables WHERE schemaname = 'jf' AND tablename <> '_jobforge_loads'"); do
      "${sql[@]}" -c "\\copy jf.\"$t\" TO '$csv/$t.csv' CSV"
      "${sql[@]}" -c "CREATE TABLE base.\"$t\" (LIKE jf.\"$t\" INCLUDING DEFAULTS INCLUDING INDEXES)"
      echo "\\copy base.\"$t\" FROM '$csv/$t.csv' CSV" >> "$script"
      rows=$(( rows + $(wc -l < "$csv/$t.csv") ))
    done
    echo "COMMIT;" >> "$script"
    echo "$name: $rows rows, $(du -sh --exclude=copy.sql "$csv" | cut -f1) of CSV"
    tables=$("${sql[@]}" -c "SELECT string_agg('base.' || quote_ident(tablename), ', ') FROM pg_tables WHERE schemaname = 'base'")
    PREP="${sql[*]} -c 'TRUNCATE $tables'" measure "psql \\copy ($name)" "${sql[@]}" -f "$script"
    rm -rf "$csv"
  done
  "${sql[@]}" -c "DROP SCHEMA IF EXISTS jf CASCADE; DROP SCHEMA IF EXISTS base CASCADE"
  rm -rf "$work" "$rows5m"
fi
