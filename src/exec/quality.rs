//! The data-quality checks of the tables a run builds, evaluated beside the build as the tables
//! settle (`check_as_built`, on a thread of its own): a table's checks on its gold frame as soon
//! as it has built, a SQL check once every table it reads has settled (built, failed or
//! skipped), so that the files it reads are the ones the run commits. A failed `error` check
//! fails its table and skips the tables built downstream of it (`apply`); all of them keep their
//! previous versions. A failed `warn` check is a warning of its table.

use super::schedule::TableRun;
use crate::checks::evaluate::{evaluate, evaluate_one, evaluate_sql, Context, Database};
use crate::checks::{Check, CheckKind};
use crate::plan::{Layer, Plan};
use crate::records::{CheckResult, TableOutcome};
use crate::store::{Manifest, RunWriter, Store};
use chrono::{DateTime, Utc};
use petgraph::Direction;
use polars::prelude::DataFrame;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::mpsc::Receiver;

/// Whether any of `tables` has a SQL check: a run that builds one opens DuckDB while it builds.
pub fn asks_for_sql(plan: &Plan, tables: &BTreeSet<usize>) -> bool {
    tables.iter().any(|&t| has_sql_check(plan, t))
}

/// Whether table `t` has a SQL check.
pub fn has_sql_check(plan: &Plan, t: usize) -> bool {
    plan.tables[t].checks().iter().any(is_sql)
}

fn is_sql(check: &Check) -> bool {
    matches!(check.kind, CheckKind::Sql(_))
}

/// A table of the run whose layers are all done, as the scheduler says it: its gold frame (as
/// written) when it built, `None` when it failed or was skipped.
pub struct Settled {
    pub table: usize,
    pub gold: Option<DataFrame>,
}

/// A SQL check waiting for the tables it reads to settle.
struct Waiting {
    table: usize,
    check: Check,
    /// Its position among the table's checks.
    index: usize,
    /// The tables it reads; `None` when its parse cannot tell (it then waits for them all).
    reads: Option<BTreeSet<usize>>,
}

/// Evaluates the checks of the `building` tables as they settle (`settled`, until the scheduler
/// drops its end); opens DuckDB first when one of them has a SQL check. Returns each built
/// table's results, in its checks' order, and the database (closing DuckDB takes milliseconds,
/// which the caller spends beside other work). The files a SQL check reads are those of the
/// settled tables: the run's for a table that built, the previous snapshot's otherwise. A SQL
/// check that cannot be evaluated early (a table it names has no file yet) is evaluated again at
/// the end, over every file, so that its error is the one a check after the build would give.
pub fn check_as_built(
    plan: &Plan,
    writer: &RunWriter,
    building: &BTreeSet<usize>,
    settled: Receiver<Settled>,
) -> (BTreeMap<usize, Vec<CheckResult>>, Database) {
    let database = if asks_for_sql(plan, building) { Database::open() } else { Database::later() };
    let pii = plan.pii_names();
    let mut files: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    let add_files = |files: &mut BTreeMap<String, BTreeMap<String, PathBuf>>, t: usize, built: bool| {
        let name = &plan.tables[t].name;
        for layer in Layer::ALL.map(Layer::name) {
            let file = if built { writer.file(layer, name).ok() } else { writer.committed_file(layer, name) };
            if let Some(f) = file.filter(|f| f.exists()) {
                files.entry(layer.to_string()).or_default().insert(name.clone(), f);
            }
        }
    };
    for t in (0..plan.tables.len()).filter(|t| !building.contains(t)) {
        add_files(&mut files, t, false);
    }
    let mut unsettled = building.clone();
    let mut results: BTreeMap<usize, Vec<Option<CheckResult>>> = BTreeMap::new();
    let mut waiting: Vec<Waiting> = Vec::new();
    let mut late: Vec<Waiting> = Vec::new();
    for Settled { table: t, gold } in settled {
        unsettled.remove(&t);
        add_files(&mut files, t, gold.is_some());
        if let Some(gold) = gold {
            let checks = plan.tables[t].checks();
            let cx = checks_context(plan, writer, t, &files, &pii, &database);
            let mut row = vec![None; checks.len()];
            for (index, check) in checks.iter().enumerate() {
                match check {
                    Check { kind: CheckKind::Sql(sql), .. } => {
                        let reads = database.tables_read(sql).map(|names| {
                            let named = |t: &usize| names.contains(&plan.tables[*t].name.to_lowercase());
                            (0..plan.tables.len()).filter(named).collect()
                        });
                        waiting.push(Waiting { table: t, check: check.clone(), index, reads });
                    }
                    _ => row[index] = Some(evaluate_one(&plan.tables[t].name, check, &gold, &cx)),
                }
            }
            if !checks.is_empty() {
                results.insert(t, row);
            }
            tracing::debug!(table = %plan.tables[t].name, "checks: table settled");
        }
        // The SQL checks whose tables have all settled.
        let (ready, still): (Vec<Waiting>, Vec<Waiting>) =
            waiting.into_iter().partition(|w| w.reads.as_ref().is_some_and(|r| r.is_disjoint(&unsettled)));
        waiting = still;
        for w in ready {
            let cx = checks_context(plan, writer, w.table, &files, &pii, &database);
            match evaluate_sql(&plan.tables[w.table].name, &w.check, &cx) {
                Ok(result) => {
                    tracing::debug!(table = %plan.tables[w.table].name, check = %result.check, "checks: SQL check evaluated");
                    set(&mut results, &w, result)
                }
                Err(_) => late.push(w),
            }
        }
    }
    // Every table has settled: the checks left read every file there is.
    for w in waiting.into_iter().chain(late) {
        let cx = checks_context(plan, writer, w.table, &files, &pii, &database);
        let result = evaluate_one(&plan.tables[w.table].name, &w.check, &DataFrame::empty(), &cx);
        set(&mut results, &w, result);
    }
    tracing::debug!("checks: evaluated");
    let results = results.into_iter().map(|(t, row)| (t, row.into_iter().flatten().collect())).collect();
    (results, database)
}

/// Puts the result of the waiting check `w` in its place.
fn set(results: &mut BTreeMap<usize, Vec<Option<CheckResult>>>, w: &Waiting, result: CheckResult) {
    if let Some(slot) = results.get_mut(&w.table).and_then(|r| r.get_mut(w.index)) {
        *slot = Some(result);
    }
}

/// What the checks of built table `t` are measured against, SQL checks over `files`.
fn checks_context<'a>(
    plan: &Plan,
    writer: &RunWriter,
    t: usize,
    files: &'a BTreeMap<String, BTreeMap<String, PathBuf>>,
    pii: &'a BTreeSet<String>,
    database: &'a Database,
) -> Context<'a> {
    let table = &plan.tables[t];
    let previous = writer.previous();
    let source_modified = std::fs::metadata(&table.file.path)
        .and_then(|m| m.modified())
        .ok()
        .map(DateTime::<Utc>::from)
        .or_else(|| previous.and_then(|m| m.sources.get(&table.source_id)).and_then(|s| s.modified));
    Context {
        now: Utc::now(),
        previous_rows: previous.and_then(|m| m.file(&table.name, "gold")).map(|f| f.rows),
        previous_file: writer.committed_file("gold", &table.name),
        source_modified,
        files,
        pii,
        database,
    }
}

/// Applies the results of `check_as_built` to the tables' `runs`: a failed `warn` check is a
/// warning of its table; a failed `error` check fails it and skips the tables built downstream
/// of it. Returns every result, table by table.
pub fn apply(plan: &Plan, runs: &mut [TableRun], checked: BTreeMap<usize, Vec<CheckResult>>) -> Vec<CheckResult> {
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for (t, checked) in checked {
        if let Some(run) = runs.iter_mut().find(|r| r.table == t) {
            for r in checked.iter().filter(|r| !r.passed && !r.fails_table()) {
                run.outcome.warnings.push(format!("check `{}` failed: {}", r.check, r.message));
            }
        }
        let errors: Vec<String> =
            checked.iter().filter(|r| r.fails_table()).map(|r| format!("`{}` ({})", r.check, r.message)).collect();
        if !errors.is_empty() {
            failed.push((t, format!("check failed: {}", errors.join("; "))));
        }
        results.extend(checked);
    }
    for (t, why) in failed {
        fail(plan, runs, t, why);
    }
    results
}

/// Marks table `t` failed and every built table downstream of it skipped; none keeps its files.
fn fail(plan: &Plan, runs: &mut [TableRun], t: usize, why: String) {
    let name = &plan.tables[t].name;
    let mut downstream = BTreeSet::new();
    let mut stack: Vec<_> = Layer::ALL.iter().map(|l| plan.node(t, *l)).collect();
    while let Some(n) = stack.pop() {
        for next in plan.graph.neighbors_directed(n, Direction::Outgoing) {
            let other = plan.graph[next].table;
            if other != t && downstream.insert(other) {
                stack.extend(Layer::ALL.iter().map(|l| plan.node(other, *l)));
            }
        }
    }
    for run in runs.iter_mut() {
        if run.table == t {
            run.outcome = TableOutcome::new(name, "failed", Some(why.clone()));
        } else if downstream.contains(&run.table) && run.outcome.status == "success" {
            let table = &plan.tables[run.table].name;
            run.outcome = TableOutcome::new(table, "skipped", Some(format!("it reads {name}, whose checks failed")));
        } else {
            continue;
        }
        run.files.clear();
    }
}

/// Evaluates the checks of every table of `plan` on the committed snapshot `m` (the previous
/// snapshot for drift and change); tables without a gold file there are left out.
pub fn check_snapshot(store: &Store, m: &Manifest, plan: &Plan, tables: &[String]) -> Result<Vec<CheckResult>, String> {
    let mut files: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for layer in Layer::ALL {
        files.insert(layer.name().to_string(), store.layer_files(m, layer.name()));
    }
    let previous = store.manifests().into_iter().filter(|p| p.seq < m.seq && p.kind == "run").max_by_key(|p| p.seq);
    let pii = plan.pii_names();
    let database = Database::later();
    let mut results = Vec::new();
    for table in &plan.tables {
        let checks = table.checks();
        if checks.is_empty() || (!tables.is_empty() && !tables.contains(&table.name)) {
            continue;
        }
        let Some(file) = files.get("gold").and_then(|g| g.get(&table.name)) else { continue };
        let gold = crate::reader::parquet_frame(file)?;
        let cx = Context {
            now: Utc::now(),
            previous_rows: previous.as_ref().and_then(|p| p.file(&table.name, "gold")).map(|f| f.rows),
            previous_file: previous.as_ref().and_then(|p| p.file(&table.name, "gold")).map(|f| store.path(&f.path)),
            source_modified: m.sources.get(&table.source_id).and_then(|s| s.modified),
            files: &files,
            pii: &pii,
            database: &database,
        };
        results.extend(evaluate(&table.name, &checks, &gold, &cx));
    }
    Ok(results)
}
