//! Execution of a plan over Polars: each selected table runs its layers in order on its own
//! thread, waiting for the other tables' layers it reads; every layer writes parquet with
//! provenance atomically, logs its transition and records table metadata. A failing table
//! does not stop the others; its dependents are skipped.

pub mod layers;
pub mod metadata;
pub mod rules;
pub mod steps;

use crate::catalog::{Catalog, Fingerprint, RunRecord, TableOutcome};
use crate::config::Project;
use crate::plan::{Layer, Plan};
use chrono::Utc;
use petgraph::graph::NodeIndex;
use std::collections::{BTreeSet, HashMap};
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

/// What a run did, table by table.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub record: RunRecord,
}

impl RunSummary {
    pub fn succeeded(&self) -> bool {
        self.record.status == "success"
    }

    /// The closing summary lines: what succeeded, failed and was skipped.
    pub fn render(&self) -> String {
        let count = |s: &str| self.record.tables.iter().filter(|t| t.status == s).count();
        let mut out = format!(
            "run {}: {} succeeded, {} failed, {} skipped\n",
            self.record.batch_id,
            count("success"),
            count("failed"),
            count("skipped")
        );
        for t in &self.record.tables {
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

/// Runs the selected tables of `plan` (all when `selectors` is empty).
pub fn run(project: &Project, plan: &Plan, selectors: &[String], progress: bool) -> Result<RunSummary, String> {
    let selected: BTreeSet<usize> = plan.select(selectors)?;
    let batch_id = uuid::Uuid::new_v4().to_string();
    let started_at = Utc::now();
    let data = project.data_dir();
    let catalog = Catalog::new(&data);
    let board = Board { states: Mutex::new(HashMap::new()), changed: Condvar::new() };
    for &t in &selected {
        for layer in Layer::ALL {
            board.set(plan.node(t, layer), NodeState::Pending);
        }
    }
    let bar = progress.then(|| {
        let bar = indicatif::ProgressBar::new((selected.len() * Layer::ALL.len()) as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} layers  {msg}") {
            bar.set_style(style);
        }
        bar
    });
    let ctx = layers::RunContext {
        project,
        plan,
        data: &data,
        catalog: &catalog,
        batch_id: &batch_id,
        ingested_at: started_at,
        progress: bar.as_ref(),
    };
    let results: Vec<(TableOutcome, Option<Fingerprint>)> = std::thread::scope(|scope| {
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
                h.join().unwrap_or_else(|_| {
                    let outcome = TableOutcome::new(
                        &plan.tables[t].name,
                        "failed",
                        Some("internal error: the table's thread panicked".into()),
                    );
                    (outcome, None)
                })
            })
            .collect()
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut sources = std::collections::BTreeMap::new();
    let mut outcomes = Vec::new();
    for ((outcome, fingerprint), &t) in results.into_iter().zip(&selected) {
        if let Some(f) = fingerprint {
            sources.insert(plan.tables[t].source_id.clone(), f);
        }
        outcomes.push(outcome);
    }
    let status = if outcomes.iter().all(|o| o.status == "success") { "success" } else { "failed" };
    let record = RunRecord {
        batch_id,
        started_at,
        ended_at: Utc::now(),
        selected: selected.iter().map(|&t| plan.tables[t].name.clone()).collect(),
        tables: outcomes,
        status: status.into(),
        sources,
    };
    catalog.write_run(&record).map_err(|e| format!("cannot write the run record: {e}"))?;
    Ok(RunSummary { record })
}

/// Runs one table's layers in order, waiting for the nodes of other tables each layer reads.
/// Returns the outcome and the fingerprint of the source file it read.
fn run_table(ctx: &layers::RunContext, board: &Board, t: usize) -> (TableOutcome, Option<Fingerprint>) {
    let plan = ctx.plan;
    let name = plan.tables[t].name.clone();
    let mut frame = None;
    let mut quarantine = Vec::new();
    let mut outcome = TableOutcome::new(&name, "success", None);
    let mut source = None;
    let mut warnings = Vec::new();
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
        match layers::build_layer(ctx, t, layer, frame.take()) {
            Ok(out) => {
                if layer == Layer::Staged {
                    source = crate::registry::fingerprint(&plan.tables[t].file.path).ok();
                }
                for w in &out.warnings {
                    tracing::warn!(table = %name, layer = %layer, "{w}");
                }
                warnings.extend(out.warnings);
                quarantine.extend(out.quarantined);
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
    if let Err(e) = layers::write_quarantine(ctx, &name, quarantine) {
        outcome = TableOutcome::new(&name, "failed", Some(format!("quarantine: {e}")));
    }
    outcome.warnings = warnings;
    (outcome, source)
}

fn mark_rest(board: &Board, plan: &Plan, t: usize, from: usize, state: NodeState) {
    for layer in &Layer::ALL[from..] {
        board.set(plan.node(t, *layer), state);
    }
}
