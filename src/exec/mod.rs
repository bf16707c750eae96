//! Execution of a plan over Polars: the selected tables that are not up to date (see
//! `incremental`) run layer by layer on a pool of workers sized to the cores (see `schedule`);
//! every layer writes parquet with provenance into the run's folder, logs its transition and
//! records table metadata, and hands its frame in memory to the layers that read it; the run
//! then commits as one snapshot (see `store`). The data-quality checks of the built tables run
//! beside the build, each table's as it settles (see `quality`). A failing table (an error, a
//! panic or a failed `error` check) does not stop the others; its dependents are skipped and it
//! keeps its previous version.

mod dictionary_pages;
pub mod incremental;
pub mod layers;
pub mod metadata;
mod parquet;
pub mod quality;
pub mod rules;
mod schedule;
mod shared;
pub mod stamp;
pub mod steps;
mod streamed;
mod text_ids;
mod trimmed;

use crate::checks::evaluate::Database;
use crate::config::Project;
use crate::plan::{Layer, Plan};
use crate::records::TableOutcome;
use crate::store::{FileEntry, Manifest, RunResult, SourceFile, Store, TableEntry, Wait};
use chrono::Utc;
use incremental::Cores;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Mutex;

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `--select` entries; empty runs every table.
    pub selectors: Vec<String>,
    /// Show a progress bar.
    pub progress: bool,
    /// Wait for another writer instead of failing.
    pub wait: Wait,
    /// Runs to keep in the data folder.
    pub keep: usize,
    /// Build every selected table, up to date or not.
    pub full_refresh: bool,
}

/// What a run did, table by table, and the snapshot it committed (or, when every table was up
/// to date, the current one).
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub outcomes: Vec<TableOutcome>,
    /// Per selected table: why it was built or held.
    pub reasons: Vec<(String, String)>,
    pub manifest: Manifest,
    /// False when nothing needed building and no snapshot was written.
    pub committed: bool,
}

impl RunSummary {
    pub fn succeeded(&self) -> bool {
        !self.committed || self.manifest.status == "success"
    }

    /// The summary for programs (an orchestrator): the snapshot, and per table its outcome, why
    /// it was built or held, its gold rows in the snapshot and the results of its checks.
    pub fn to_json(&self, store: &Store) -> serde_json::Value {
        let m = &self.manifest;
        let checks = store.checks(m);
        let reason = |table: &str| self.reasons.iter().find(|(t, _)| t == table).map(|(_, why)| why.clone());
        let tables: Vec<serde_json::Value> = self
            .outcomes
            .iter()
            .map(|o| {
                serde_json::json!({
                    "table": o.table,
                    "status": o.status,
                    "error": o.error,
                    "warnings": o.warnings,
                    "reason": reason(&o.table),
                    "rows": m.file(&o.table, "gold").map(|f| f.rows),
                    "built_by": m.tables.get(&o.table).and_then(|t| t.built_by.clone()),
                    "checks": checks.iter().filter(|c| c.table == o.table).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::json!({
            "run_id": m.run_id,
            "seq": m.seq,
            "committed": self.committed,
            "succeeded": self.succeeded(),
            "tables": tables,
        })
    }

    /// The closing summary lines: what was built, failed, skipped or up to date, and why.
    pub fn render(&self) -> String {
        let count = |s: &str| self.outcomes.iter().filter(|t| t.status == s).count();
        let mut out = if self.committed {
            format!(
                "run {} (#{}): {} succeeded, {} failed, {} skipped, {} unchanged\n",
                self.manifest.run_id,
                self.manifest.seq,
                count("success"),
                count("failed"),
                count("skipped"),
                count("unchanged")
            )
        } else {
            format!(
                "nothing to do: {} table(s) up to date in run {} (#{}); --full-refresh rebuilds them\n",
                count("unchanged"),
                self.manifest.run_id,
                self.manifest.seq
            )
        };
        let reason = |table: &str| self.reasons.iter().find(|(t, _)| t == table).map(|(_, why)| why.as_str());
        for t in &self.outcomes {
            out.push_str(&format!("  {:<8} {}", t.status, t.table));
            match (&t.error, reason(&t.table)) {
                (Some(e), _) => out.push_str(&format!(": {e}")),
                (None, Some(why)) => out.push_str(&format!(" ({why})")),
                (None, None) => {}
            }
            out.push('\n');
            for w in &t.warnings {
                out.push_str(&format!("  warning  {}: {w}\n", t.table));
            }
        }
        out
    }
}

/// A run of `pipelines` in the project at `dir` (data folder `store`) that has nothing to build,
/// found without loading the config: the current snapshot is a successful run's whose inputs
/// (see `stamp`) are today's. `None` when that cannot be said; then `run` decides table by table
/// (and finds the same when nothing did change).
pub fn nothing_to_do(
    store: &Store,
    dir: &Path,
    pipelines: &Path,
    vars: &BTreeMap<String, String>,
    options: &RunOptions,
) -> Option<RunSummary> {
    if options.full_refresh {
        return None;
    }
    let current = store.latest().filter(|m| m.status == "success")?;
    if !stamp::matches(current.inputs.as_ref()?, dir, pipelines, vars, &options.selectors) {
        return None;
    }
    // Then as a run that finds nothing to build: under the lock, against the snapshot it holds.
    let writer = store.begin_run(options.wait).ok()?;
    let held = writer.previous().filter(|m| m.run_id == current.run_id && m.seq == current.seq)?;
    let mut outcomes = Vec::new();
    let mut reasons = Vec::new();
    for name in &held.selected {
        let entry = held.tables.get(name).filter(|e| e.built_by.is_some() && !e.files.is_empty())?;
        outcomes.push(TableOutcome::new(name, "unchanged", None));
        reasons.push((name.clone(), incremental::unchanged_reason(entry)));
    }
    reasons.sort();
    tracing::debug!("run: nothing to do (inputs as stamped by run {})", held.run_id);
    Some(RunSummary { outcomes, reasons, manifest: held.clone(), committed: false })
}

/// Runs the selected tables of `plan` that are not up to date and commits them as one snapshot
/// of the data folder. When every selected table is up to date, no snapshot is written and the
/// summary holds the current one.
pub fn run(project: &Project, plan: &Plan, options: &RunOptions) -> Result<RunSummary, String> {
    // The parses of pipeline files edited since the last run are kept for the next, beside it.
    std::thread::scope(|s| {
        if project.parsed.as_ref().is_some_and(|p| p.has_fresh()) {
            s.spawn(|| project.keep_parsed());
        }
        build_and_commit(project, plan, options)
    })
}

fn build_and_commit(project: &Project, plan: &Plan, options: &RunOptions) -> Result<RunSummary, String> {
    let selected: BTreeSet<usize> = plan.select(&options.selectors)?;
    let store = Store::at(&project.data_dir());
    let writer = store.begin_run(options.wait)?;
    tracing::debug!("run: began");
    let mut decision = incremental::decide(project, plan, writer.previous(), &selected, options.full_refresh);
    tracing::debug!("run: decided ({} to build)", decision.build.len());
    plan.read_ahead.keep_only(|id| decision.build.keys().any(|&t| plan.tables[t].source_id == id));
    let name = |t: usize| plan.tables[t].name.clone();
    let mut reasons: Vec<(String, String)> =
        decision.build.iter().chain(&decision.unchanged).map(|(&t, why)| (name(t), why.clone())).collect();
    reasons.sort();
    if decision.build.is_empty() {
        // Nothing written: dropping the writer releases the lock.
        if let Some(current) = writer.previous().cloned() {
            return Ok(RunSummary {
                outcomes: decision.unchanged.keys().map(|&t| TableOutcome::new(&name(t), "unchanged", None)).collect(),
                reasons,
                manifest: current,
                committed: false,
            });
        }
    }
    writer.make_folder()?;
    let building = decision.building();
    let bar = options.progress.then(|| {
        let bar = indicatif::ProgressBar::new((building.len() * Layer::ALL.len()) as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} layers  {msg}") {
            bar.set_style(style);
        }
        bar
    });
    let ctx = layers::RunContext {
        project,
        plan,
        writer: &writer,
        selected: &building,
        ingested_at: writer.started_at(),
        progress: bar.as_ref(),
        frames: Mutex::new(HashMap::new()),
        shared: shared::SharedLayers::new(plan, &building),
        encoded: Mutex::new(HashMap::new()),
    };
    // Carrying the tables this run does not build and writing the config snapshot wait for
    // nothing the build makes: done beside it.
    let config = project.config_snapshot();
    let built: BTreeSet<&str> = building.iter().map(|&t| plan.tables[t].name.as_str()).collect();
    let not_built: Vec<&str> = writer
        .previous()
        .into_iter()
        .flat_map(|m| m.tables.keys().map(String::as_str))
        .filter(|n| !built.contains(n))
        .collect();
    // So are the checks of the tables built (as each table settles), and the build keys that
    // the decision did not need.
    let checked = building.iter().any(|&t| !plan.tables[t].checks().is_empty());
    let keyed = decision.keyed;
    let (writer_ref, building_ref) = (&writer, &building);
    let (settle, settled) = std::sync::mpsc::channel();
    let (mut results, ahead, checks, keys) = std::thread::scope(|s| {
        let ahead = s.spawn(|| writer.carry_ahead(&not_built, &config));
        let checks = checked.then(|| s.spawn(move || quality::check_as_built(plan, writer_ref, building_ref, settled)));
        let keys =
            (!keyed).then(|| s.spawn(|| incremental::keys(project, plan, writer.previous(), &selected, Cores::One)));
        let results = schedule::run_nodes(&ctx, &building, checked.then_some(settle));
        (results, ahead.join(), checks.map(|c| c.join()), keys.map(|k| k.join()))
    });
    ahead.unwrap_or_else(|_| Err("carrying the tables not rebuilt failed".into()))?;
    if let Some(keys) = keys {
        let keys = keys.map_err(|_| "working out the build keys failed".to_string())?;
        (decision.keys, decision.sources) = (keys.keys, keys.sources);
    }
    tracing::debug!("run: built");
    let (checked, database) = checks.transpose().map_err(|_| "evaluating the checks failed".to_string())?.unzip();
    let checks = quality::apply(plan, &mut results, checked.unwrap_or_default());
    tracing::debug!("run: checked");
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let sources: BTreeMap<String, SourceFile> = plan
        .tables
        .iter()
        .map(|t| {
            let path = t.file.path.display().to_string();
            let seen = decision.sources.get(&t.source_id).map(|f| (f.modified, f.sha256.clone()));
            // A source this run did not fingerprint keeps what the last run saw of the same file.
            let before = writer.previous().and_then(|m| m.sources.get(&t.source_id)).filter(|s| s.path == path);
            let seen = seen.or_else(|| before.and_then(|s| Some((s.modified?, s.sha256.clone()?))));
            let file = SourceFile {
                path,
                size: t.file.size,
                header: t.header.clone(),
                modified: seen.as_ref().map(|f| f.0),
                sha256: seen.map(|f| f.1),
            };
            (t.source_id.clone(), file)
        })
        .collect();
    let mut tables = BTreeMap::new();
    let mut outcomes = Vec::new();
    let mut finished: BTreeMap<usize, (TableOutcome, BTreeMap<String, FileEntry>)> =
        results.into_iter().map(|r| (r.table, (r.outcome, r.files))).collect();
    for &t in decision.unchanged.keys() {
        finished.insert(t, (TableOutcome::new(&name(t), "unchanged", None), BTreeMap::new()));
    }
    for (t, (outcome, files)) in finished {
        let table = &plan.tables[t];
        let built = outcome.status == "success";
        let keys = decision.keys.get(&t);
        let reads = Layer::ALL
            .iter()
            .flat_map(|l| plan.cross_dependencies(plan.node(t, *l)))
            .map(|d| format!("{}.{}", d.layer, plan.tables[d.table].name))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        tables.insert(
            table.name.clone(),
            TableEntry {
                status: outcome.status.clone(),
                error: outcome.error.clone(),
                warnings: outcome.warnings.clone(),
                built_by: built.then(|| writer.run_id().to_string()),
                built_at: built.then(Utc::now),
                source: table.source_id.clone(),
                source_sha256: decision.sources.get(&table.source_id).map(|f| f.sha256.clone()),
                spec_hash: keys.map(|k| k.spec.clone()),
                keys: keys.map(|k| k.layers.clone()).unwrap_or_default(),
                read_keys: keys.map(|k| k.reads.clone()).unwrap_or_default(),
                reads,
                files,
            },
        );
        outcomes.push(outcome);
    }
    let failed = outcomes.iter().any(|o| o.status == "failed" || o.status == "skipped");
    let result = RunResult {
        status: if failed { "failed" } else { "success" }.into(),
        selected: selected.iter().map(|&t| plan.tables[t].name.clone()).collect(),
        vars: project.vars.clone(),
        inputs: stamp::of(project, plan, &options.selectors),
        sources,
        tables,
        checks,
        config,
        keep: options.keep,
    };
    // DuckDB closes while the run commits.
    let manifest = std::thread::scope(|s| {
        s.spawn(move || database.map(Database::close));
        writer.commit(result)
    })?;
    Ok(RunSummary { outcomes, reasons, manifest, committed: true })
}
