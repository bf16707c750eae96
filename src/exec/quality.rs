//! The data-quality checks of the tables a run built, evaluated on each table's gold file once
//! every table is built (a SQL check may read any of them). A failed `error` check fails its
//! table and skips the tables built downstream of it; all of them keep their previous versions.
//! A failed `warn` check is a warning of its table.

use super::schedule::TableRun;
use crate::checks::evaluate::{evaluate, Context, Database};
use crate::plan::{Layer, Plan};
use crate::records::{CheckResult, Fingerprint, TableOutcome};
use crate::store::{Manifest, RunWriter, Store};
use chrono::Utc;
use petgraph::Direction;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

/// Whether any of `tables` has a SQL check: a run that builds one opens DuckDB while it builds.
pub fn asks_for_sql(plan: &Plan, tables: &BTreeSet<usize>) -> bool {
    tables.iter().any(|&t| plan.tables[t].checks().iter().any(|c| matches!(c.kind, crate::checks::CheckKind::Sql(_))))
}

/// Evaluates the checks of the tables in `runs` that built, SQL checks on `database`; fails and
/// skips as their results say. Returns every result.
pub fn check_built(
    plan: &Plan,
    writer: &RunWriter,
    sources: &HashMap<String, Fingerprint>,
    runs: &mut [TableRun],
    database: &Database,
) -> Vec<CheckResult> {
    let built: BTreeSet<usize> = runs.iter().filter(|r| r.outcome.status == "success").map(|r| r.table).collect();
    if !built.iter().any(|&t| !plan.tables[t].checks().is_empty()) {
        return vec![];
    }
    let mut files: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for (t, table) in plan.tables.iter().enumerate() {
        for layer in Layer::ALL {
            let layer = layer.name();
            let file = if built.contains(&t) {
                writer.file(layer, &table.name).ok()
            } else {
                writer.committed_file(layer, &table.name)
            };
            if let Some(f) = file.filter(|f| f.exists()) {
                files.entry(layer.to_string()).or_default().insert(table.name.clone(), f);
            }
        }
    }
    let previous = writer.previous();
    let pii = plan.pii_names();
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for &t in &built {
        let table = &plan.tables[t];
        let checks = table.checks();
        if checks.is_empty() {
            continue;
        }
        let source_modified = sources
            .get(&table.source_id)
            .map(|f| f.modified)
            .or_else(|| previous.and_then(|m| m.sources.get(&table.source_id)).and_then(|s| s.modified));
        let cx = Context {
            now: Utc::now(),
            previous_rows: previous.and_then(|m| m.file(&table.name, "gold")).map(|f| f.rows),
            previous_file: writer.committed_file("gold", &table.name),
            source_modified,
            files: &files,
            pii: &pii,
            database,
        };
        let checked = match files.get("gold").and_then(|g| g.get(&table.name)).map(|f| crate::reader::parquet_frame(f))
        {
            Some(Ok(gold)) => evaluate(&table.name, &checks, &gold, &cx),
            Some(Err(e)) => {
                failed.push((t, format!("checks: {e}")));
                continue;
            }
            None => continue,
        };
        let run = runs.iter_mut().find(|r| r.table == t);
        if let Some(run) = run {
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
