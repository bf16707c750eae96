//! Execution of a plan over Polars: each selected table runs its layers in order on its own
//! thread, waiting for the other tables' layers it reads; every layer writes parquet with
//! provenance into the run's folder, logs its transition and records table metadata; the run
//! then commits as one snapshot (see `store`). A failing table (an error or a panic) does not
//! stop the others; its dependents are skipped and it keeps its previous version.

pub mod layers;
pub mod metadata;
pub mod rules;
pub mod steps;

use crate::config::Project;
use crate::plan::{Layer, Plan};
use crate::records::{Fingerprint, TableOutcome};
use crate::store::{FileEntry, Manifest, RunResult, SourceFile, Store, TableEntry, Wait};
use chrono::Utc;
use petgraph::graph::NodeIndex;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Condvar, Mutex};

/// The state of one node during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeState {
    Pending,
    Done,
    Failed,
}

/// Shared progress of a run: node states, guarded and signalled.
struct Board {
    states: Mutex<HashMap<NodeIndex, NodeState>>,
    changed: Condvar,
}

impl Board {
    fn set(&self, node: NodeIndex, state: NodeState) {
        if let Ok(mut s) = self.states.lock() {
            s.insert(node, state);
        }
        self.changed.notify_all();
    }

    /// Waits until none of `nodes` is pending; true when all are done.
    fn wait_all(&self, nodes: &[NodeIndex]) -> bool {
        let Ok(mut states) = self.states.lock() else {
            return false;
        };
        loop {
            let pending = nodes.iter().any(|n| states.get(n) == Some(&NodeState::Pending));
            if !pending {
                return nodes.iter().all(|n| states.get(n).is_none_or(|s| *s == NodeState::Done));
            }
            states = match self.changed.wait(states) {
                Ok(s) => s,
                Err(_) => return false,
            };
        }
    }
}

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
}

/// What a run did, table by table, and the snapshot it committed.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub outcomes: Vec<TableOutcome>,
    pub manifest: Manifest,
}

impl RunSummary {
    pub fn succeeded(&self) -> bool {
        self.manifest.status == "success"
    }

    /// The closing summary lines: what succeeded, failed and was skipped.
    pub fn render(&self) -> String {
        let count = |s: &str| self.outcomes.iter().filter(|t| t.status == s).count();
        let mut out = format!(
            "run {} (#{}): {} succeeded, {} failed, {} skipped\n",
            self.manifest.run_id,
            self.manifest.seq,
            count("success"),
            count("failed"),
            count("skipped")
        );
        for t in &self.outcomes {
            out.push_str(&format!("  {:<8} {}", t.status, t.table));
            if let Some(e) = &t.error {
                out.push_str(&format!(": {e}"));
            }
            out.push('\n');
            for w in &t.warnings {
                out.push_str(&format!("  warning  {}: {w}\n", t.table));
            }
        }
        out
    }
}

/// What one table's thread hands back.
struct TableRun {
    outcome: TableOutcome,
    fingerprint: Option<Fingerprint>,
    files: BTreeMap<String, FileEntry>,
}

/// Runs the selected tables of `plan` and commits them as one snapshot of the data folder.
pub fn run(project: &Project, plan: &Plan, options: &RunOptions) -> Result<RunSummary, String> {
    let selected: BTreeSet<usize> = plan.select(&options.selectors)?;
    let store = Store::at(&project.data_dir());
    let writer = store.begin_run(options.wait)?;
    let board = Board { states: Mutex::new(HashMap::new()), changed: Condvar::new() };
    for &t in &selected {
        for layer in Layer::ALL {
            board.set(plan.node(t, layer), NodeState::Pending);
        }
    }
    let bar = options.progress.then(|| {
        let bar = indicatif::ProgressBar::new((selected.len() * Layer::ALL.len()) as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} layers  {msg}") {
            bar.set_style(style);
        }
        bar
    });
    let ctx = layers::RunContext {
        project,
        plan,
        writer: &writer,
        selected: &selected,
        ingested_at: writer.started_at(),
        progress: bar.as_ref(),
        records: Mutex::new(layers::Records::default()),
    };
    let results: Vec<TableRun> = std::thread::scope(|scope| {
        let handles: Vec<_> = selected
            .iter()
            .map(|&t| {
                let ctx = &ctx;
                let board = &board;
                scope.spawn(move || run_table(ctx, board, t))
            })
            .collect();
        handles
            .into_iter()
            .zip(&selected)
            .map(|(h, &t)| {
                h.join().unwrap_or_else(|_| TableRun {
                    outcome: TableOutcome::new(
                        &plan.tables[t].name,
                        "failed",
                        Some("internal error: the table's thread panicked".into()),
                    ),
                    fingerprint: None,
                    files: BTreeMap::new(),
                })
            })
            .collect()
    });
    let records = ctx.records.into_inner().unwrap_or_default();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut sources: BTreeMap<String, SourceFile> = plan
        .tables
        .iter()
        .map(|t| {
            let file = SourceFile {
                path: t.file.path.display().to_string(),
                size: t.file.size,
                header: t.header.clone(),
                modified: None,
                sha256: None,
            };
            (t.source_id.clone(), file)
        })
        .collect();
    let mut tables = BTreeMap::new();
    let mut outcomes = Vec::new();
    for (r, &t) in results.into_iter().zip(&selected) {
        let table = &plan.tables[t];
        if let Some(f) = &r.fingerprint {
            if let Some(s) = sources.get_mut(&table.source_id) {
                s.modified = Some(f.modified);
                s.sha256 = Some(f.sha256.clone());
            }
        }
        let built = r.outcome.status == "success";
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
                status: r.outcome.status.clone(),
                error: r.outcome.error.clone(),
                warnings: r.outcome.warnings.clone(),
                built_by: built.then(|| writer.run_id().to_string()),
                built_at: built.then(Utc::now),
                source: table.source_id.clone(),
                source_sha256: r.fingerprint.map(|f| f.sha256),
                reads,
                files: r.files,
            },
        );
        outcomes.push(r.outcome);
    }
    let status = if outcomes.iter().all(|o| o.status == "success") { "success" } else { "failed" };
    let result = RunResult {
        status: status.into(),
        selected: selected.iter().map(|&t| plan.tables[t].name.clone()).collect(),
        vars: project.vars.clone(),
        sources,
        tables,
        metadata: records.metadata,
        transitions: records.transitions,
        config: project.config_snapshot(),
        keep: options.keep,
    };
    let manifest = writer.commit(result)?;
    Ok(RunSummary { outcomes, manifest })
}

/// Runs one table's layers in order, waiting for the nodes of other tables each layer reads.
fn run_table(ctx: &layers::RunContext, board: &Board, t: usize) -> TableRun {
    let plan = ctx.plan;
    let name = plan.tables[t].name.clone();
    let mut frame = None;
    let mut quarantine = Vec::new();
    let mut outcome = TableOutcome::new(&name, "success", None);
    let mut fingerprint = None;
    let mut warnings = Vec::new();
    let mut files = BTreeMap::new();
    for (i, layer) in Layer::ALL.into_iter().enumerate() {
        let node = plan.node(t, layer);
        let deps: Vec<NodeIndex> =
            plan.cross_dependencies(node).into_iter().map(|d| plan.node(d.table, d.layer)).collect();
        if !board.wait_all(&deps) {
            let failed: Vec<String> = plan
                .cross_dependencies(node)
                .iter()
                .map(|d| format!("{}.{}", d.layer, plan.tables[d.table].name))
                .collect();
            outcome = TableOutcome::new(
                &name,
                "skipped",
                Some(format!("{layer} needs {} which did not build", failed.join(", "))),
            );
            mark_rest(board, plan, t, i, NodeState::Failed);
            break;
        }
        tracing::info!(table = %name, layer = %layer, "building");
        let input = frame.take();
        let built =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| layers::build_layer(ctx, t, layer, input)))
                .unwrap_or_else(|panic| Err(format!("internal error (a panic): {}", panic_message(&*panic))));
        match built {
            Ok(out) => {
                if layer == Layer::Staged {
                    fingerprint = crate::registry::fingerprint(&plan.tables[t].file.path).ok();
                }
                for w in &out.warnings {
                    tracing::warn!(table = %name, layer = %layer, "{w}");
                }
                warnings.extend(out.warnings);
                quarantine.extend(out.quarantined);
                files.insert(layer.name().to_string(), out.file);
                frame = Some(out.df);
                board.set(node, NodeState::Done);
                if let Some(bar) = ctx.progress {
                    bar.inc(1);
                    bar.set_message(format!("{name} {layer}"));
                }
            }
            Err(e) => {
                tracing::error!(table = %name, layer = %layer, error = %e, "failed");
                outcome = TableOutcome::new(&name, "failed", Some(format!("{layer}: {e}")));
                mark_rest(board, plan, t, i, NodeState::Failed);
                break;
            }
        }
    }
    if outcome.status == "success" {
        match layers::write_quarantine(ctx, &name, quarantine) {
            Ok(file) => {
                files.insert("quarantine".into(), file);
            }
            Err(e) => outcome = TableOutcome::new(&name, "failed", Some(format!("quarantine: {e}"))),
        }
    }
    outcome.warnings = warnings;
    TableRun { outcome, fingerprint, files }
}

/// The text a panic was raised with.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "no message".into())
}

fn mark_rest(board: &Board, plan: &Plan, t: usize, from: usize, state: NodeState) {
    for layer in &Layer::ALL[from..] {
        board.set(plan.node(t, *layer), state);
    }
}
