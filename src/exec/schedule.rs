//! The run's scheduler: (table, layer) nodes run as tasks on Polars' own thread pool (one thread
//! per core, shared with the parallel work inside each node) as soon as their inputs are built,
//! in the order `priorities` gives. A layer's frame goes to the table's next layer in memory, and to
//! the other tables' layers that read it through `RunContext::frames`, which drops it once its
//! last reader has run. A failed node takes its table's later layers and everything downstream
//! with it: those tables are skipped, naming what they needed. Each table, once its layers are
//! all done, is reported to the checks beside the build (see `quality::check_as_built`).

use super::layers::{self, RunContext};
use super::quality::Settled;
use super::{shared, streamed};
use crate::plan::Layer;
use crate::records::TableOutcome;
use crate::store::FileEntry;
use petgraph::graph::NodeIndex;
use petgraph::Direction;
use polars::prelude::DataFrame;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::sync::mpsc::Sender;
use std::sync::Mutex;

/// What a run did to one table.
pub struct TableRun {
    pub table: usize,
    pub outcome: TableOutcome,
    pub files: BTreeMap<String, FileEntry>,
}

/// One table's progress through its layers.
#[derive(Default)]
struct TableState {
    /// The last built layer's frame, for the next layer.
    frame: Option<DataFrame>,
    /// The next layer, already built by this one (bronze, built batch by batch with staged).
    built: Option<layers::Built>,
    quarantine: Vec<DataFrame>,
    warnings: Vec<String>,
    files: BTreeMap<String, FileEntry>,
    /// Set when the table failed or was skipped.
    outcome: Option<TableOutcome>,
    /// The gold frame, from its layer's build until the table is reported settled.
    gold: Option<DataFrame>,
}

/// The shared queue, under one lock.
struct Queue {
    /// Nodes whose inputs are built, by their rank in `priorities`.
    ready: BinaryHeap<Reverse<(usize, NodeIndex)>>,
    /// Nodes still waiting, with how many inputs they wait for.
    waiting: HashMap<NodeIndex, usize>,
    /// Per built node: how many of the other tables' layers still have to read its frame.
    readers: HashMap<NodeIndex, usize>,
    /// Nodes neither finished nor dropped.
    left: usize,
    tables: HashMap<usize, TableState>,
    /// Where each table is reported once its layers are all done.
    settled: Option<Sender<Settled>>,
}

/// Builds every layer of the `building` tables, reporting each table to `settled` once its
/// layers are all done; returns each table's outcome and files.
pub fn run_nodes(ctx: &RunContext, building: &BTreeSet<usize>, settled: Option<Sender<Settled>>) -> Vec<TableRun> {
    let plan = ctx.plan;
    let position = priorities(plan, building);
    let in_run = |n: NodeIndex| building.contains(&plan.graph[n].table);
    let mut queue = Queue {
        ready: BinaryHeap::new(),
        waiting: HashMap::new(),
        readers: HashMap::new(),
        left: 0,
        tables: building.iter().map(|&t| (t, TableState::default())).collect(),
        settled,
    };
    for &n in plan.order.iter().filter(|n| in_run(**n)) {
        let mut inputs = plan.graph.neighbors_directed(n, Direction::Incoming).filter(|m| in_run(*m)).count();
        // A layer built alike by another table waits for that table's (see `shared`).
        inputs += usize::from(ctx.shared.leader_of(n).is_some());
        let readers = plan.cross_readers(n).filter(|m| in_run(*m)).count();
        queue.left += 1;
        if readers > 0 {
            queue.readers.insert(n, readers);
        }
        if inputs == 0 {
            queue.ready.push(Reverse((position[&n], n)));
        } else {
            queue.waiting.insert(n, inputs);
        }
    }
    let first = queue.ready.len();
    let queue = Mutex::new(queue);
    // Polars' own pool: nodes and the parallel work inside them share the cores.
    let (queued, position) = (&queue, &position);
    polars_core::runtime::THREAD_POOL.scope(|scope| {
        for _ in 0..first {
            scope.spawn(move |scope| build_next(scope, ctx, queued, position));
        }
    });
    let queue = queue.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut tables = queue.tables;
    building
        .iter()
        .map(|&t| {
            let state = tables.remove(&t).unwrap_or_default();
            let name = &plan.tables[t].name;
            let mut outcome = state.outcome.unwrap_or_else(|| TableOutcome::new(name, "success", None));
            outcome.warnings = state.warnings;
            let files = if outcome.status == "success" { state.files } else { BTreeMap::new() };
            TableRun { table: t, outcome, files }
        })
        .collect()
}

/// The order ready nodes are built in, first to last: the layers of the tables with a SQL check
/// and of every table they read, so that DuckDB's query runs beside the rest of the build, not
/// after it; then the rest, in plan order. (Largest sources first was tried: a source's size
/// says little of its table's work, the `match` tables' sources are small, and the build then
/// ended on them.)
fn priorities(plan: &crate::plan::Plan, building: &BTreeSet<usize>) -> HashMap<NodeIndex, usize> {
    let feeds_check: BTreeSet<usize> = building
        .iter()
        .filter(|&&t| super::quality::has_sql_check(plan, t))
        .flat_map(|&t| plan.reach(t, Direction::Incoming))
        .collect();
    let mut order: Vec<(usize, NodeIndex)> = plan.order.iter().copied().enumerate().collect();
    order.sort_by_key(|&(i, n)| (!feeds_check.contains(&plan.graph[n].table), i));
    order.into_iter().enumerate().map(|(rank, (_, n))| (n, rank)).collect()
}

/// Builds the first node of the ready queue, then spawns a task for each node it made ready.
/// A task takes the first node when it starts, not one given when it was spawned: the pool runs
/// tasks in no set order, the queue's order holds.
fn build_next<'s>(
    scope: &rayon::Scope<'s>,
    ctx: &'s RunContext<'s>,
    queue: &'s Mutex<Queue>,
    position: &'s HashMap<NodeIndex, usize>,
) {
    let plan = ctx.plan;
    let (node, t, layer, input, prebuilt, quarantine) = {
        let Ok(mut q) = queue.lock() else { return };
        // One task is spawned for each node queued: there is one for this task.
        let Some(Reverse((_, node))) = q.ready.pop() else { return };
        let (t, layer) = (plan.graph[node].table, plan.graph[node].layer);
        let state = q.tables.entry(t).or_default();
        let quarantine = if layer == Layer::Gold { std::mem::take(&mut state.quarantine) } else { vec![] };
        (node, t, layer, state.frame.take(), state.built.take(), quarantine)
    };
    let name = &plan.tables[t].name;
    tracing::info!(table = %name, layer = %layer, "building");
    let mut next_built = None;
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut out = match prebuilt {
            Some(built) => layers::finish_layer(ctx, t, layer, chrono::Utc::now(), Ok(built))?,
            None if ctx.shared.leader_of(node).is_some() => match ctx.shared.take(node) {
                Some(shared) => shared::follow(ctx, t, layer, shared)?,
                // The leader failed: this table builds the layer itself.
                None => layers::build_layer(ctx, t, layer, input)?,
            },
            None if layer == Layer::Staged && streamed::applies(plan, t) => {
                let (out, bronze) = streamed::staged_and_bronze(ctx, t)?;
                next_built = Some(bronze);
                out
            }
            None => layers::build_layer(ctx, t, layer, input)?,
        };
        let mut quarantine = quarantine;
        quarantine.append(&mut out.quarantined);
        let quarantine_file = match layer {
            Layer::Gold => {
                Some(layers::write_quarantine(ctx, name, quarantine).map_err(|e| format!("quarantine: {e}"))?)
            }
            _ => {
                out.quarantined = quarantine;
                None
            }
        };
        Ok((out, quarantine_file))
    }))
    .unwrap_or_else(|panic| Err(format!("internal error (a panic): {}", panic_message(&*panic))));
    let Ok(mut q) = queue.lock() else { return };
    let queued = q.ready.len();
    match built {
        Ok((out, quarantine_file)) => {
            for w in &out.warnings {
                tracing::warn!(table = %name, layer = %layer, "{w}");
            }
            // A layer built in batches was never whole in memory: its readers read its file.
            if q.readers.contains_key(&node) && next_built.is_none() {
                if let Ok(mut frames) = ctx.frames.lock() {
                    frames.insert((layer, t), out.df.clone());
                }
            }
            let state = q.tables.entry(t).or_default();
            state.warnings.extend(out.warnings);
            state.quarantine.extend(out.quarantined);
            state.files.insert(layer.name().to_string(), out.file);
            if let Some(file) = quarantine_file {
                state.files.insert("quarantine".into(), file);
            }
            if layer != Layer::Gold {
                state.frame = Some(out.df);
            } else {
                state.gold = Some(out.df);
            }
            state.built = next_built;
            for next in plan.graph.neighbors_directed(node, Direction::Outgoing) {
                release(&mut q, position, next);
            }
            if let Some(bar) = ctx.progress {
                bar.inc(1);
                bar.set_message(format!("{name} {layer}"));
            }
        }
        Err(e) => {
            tracing::error!(table = %name, layer = %layer, error = %e, "failed");
            let state = q.tables.entry(t).or_default();
            state.outcome = Some(TableOutcome::new(name, "failed", Some(format!("{layer}: {e}"))));
            drop_downstream(ctx, &mut q, position, node);
        }
    }
    finished(ctx, &mut q, position, node);
    let ready = q.ready.len().saturating_sub(queued);
    drop(q);
    for _ in 0..ready {
        scope.spawn(move |scope| build_next(scope, ctx, queue, position));
    }
}

/// Drops every node downstream of the failed `node`; a table reached through another table's
/// node is skipped, naming that node.
fn drop_downstream(ctx: &RunContext, q: &mut Queue, position: &HashMap<NodeIndex, usize>, node: NodeIndex) {
    let plan = ctx.plan;
    let mut stack = vec![node];
    while let Some(from) = stack.pop() {
        for next in plan.graph.neighbors_directed(from, Direction::Outgoing) {
            if q.waiting.remove(&next).is_none() {
                continue;
            }
            let (a, b) = (plan.graph[from], plan.graph[next]);
            let state = q.tables.entry(b.table).or_default();
            state.frame = None;
            if state.outcome.is_none() {
                let why = format!("{} needs {}.{} which did not build", b.layer, a.layer, plan.tables[a.table].name);
                state.outcome = Some(TableOutcome::new(&plan.tables[b.table].name, "skipped", Some(why)));
            }
            if let Some(bar) = ctx.progress {
                bar.inc(1);
            }
            finished(ctx, q, position, next);
            stack.push(next);
        }
    }
}

/// Counts `node` out, makes ready the layers that waited for it as their leader (built or not),
/// and releases the frames of other tables it was the last to read. A table's gold layer is its
/// last: its table is then reported settled, with the gold frame when it built.
fn finished(ctx: &RunContext, q: &mut Queue, position: &HashMap<NodeIndex, usize>, node: NodeIndex) {
    q.left -= 1;
    let (table, layer) = (ctx.plan.graph[node].table, ctx.plan.graph[node].layer);
    if layer == Layer::Gold {
        let gold = q.tables.get_mut(&table).and_then(|state| state.gold.take());
        if let Some(settled) = &q.settled {
            // The checks' end is gone only when their thread ended early; nothing to tell then.
            let _ = settled.send(Settled { table, gold });
        }
    }
    for &follower in ctx.shared.followers_of(node) {
        release(q, position, follower);
    }
    for input in ctx.plan.graph.neighbors_directed(node, Direction::Incoming) {
        if ctx.plan.graph[input].table == ctx.plan.graph[node].table {
            continue;
        }
        if let Some(count) = q.readers.get_mut(&input) {
            *count -= 1;
            if *count == 0 {
                q.readers.remove(&input);
                let key = (ctx.plan.graph[input].layer, ctx.plan.graph[input].table);
                if let Ok(mut frames) = ctx.frames.lock() {
                    frames.remove(&key);
                }
            }
        }
    }
}

/// Counts one of `node`'s inputs as done; queues it when it was the last.
fn release(q: &mut Queue, position: &HashMap<NodeIndex, usize>, node: NodeIndex) {
    if let Some(count) = q.waiting.get_mut(&node) {
        *count -= 1;
        if *count == 0 {
            q.waiting.remove(&node);
            q.ready.push(Reverse((position[&node], node)));
        }
    }
}

/// The text a panic was raised with.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "no message".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Project, Read};

    /// Four tables: `checked` has a SQL check and joins `looked_up`; `big` and `small` have
    /// neither, `big`'s source the largest file of all.
    #[test]
    fn what_a_sql_check_waits_for_comes_first_then_plan_order() {
        let dir = tempfile::tempdir().unwrap();
        let write = |rel: &str, text: &str| {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        let sources = ["big", "small", "checked", "looked_up"].map(|t| format!("  {t}: {{ path: {t}.csv }}\n"));
        write("sources.yml", &format!("version: 1\ndefaults: {{ root: data/source }}\nsources:\n{}", sources.concat()));
        write("data/source/big.csv", &format!("k,v\n{}", "a,1\n".repeat(1000)));
        write("data/source/small.csv", "k,v\na,1\n");
        write("data/source/checked.csv", "k,v\na,1\nb,2\n");
        write("data/source/looked_up.csv", "k,w\na,x\n");
        for t in ["big", "small", "looked_up"] {
            write(&format!("pipelines/{t}.yml"), &format!("table: {t}\nsource: {t}\n"));
        }
        write(
            "pipelines/checked.yml",
            "table: checked\nsource: checked\ngold:\n  - join: { ref: silver.looked_up, on_columns: { k: k }, select: [w] }\n\
             checks:\n  - name: no_missing_value\n    sql: SELECT * FROM checked WHERE v IS NULL\n",
        );
        let project = Project::load_reading(
            dir.path(),
            std::path::Path::new("pipelines"),
            BTreeMap::new(),
            Read::WithoutTests,
            None,
        )
        .unwrap_or_else(|d| panic!("{d}"));
        let plan = crate::plan::compile(&project).unwrap_or_else(|d| panic!("{d}"));
        let building: BTreeSet<usize> = (0..plan.tables.len()).collect();
        let rank = priorities(&plan, &building);
        let mut nodes = plan.order.clone();
        nodes.sort_by_key(|n| rank[n]);
        let tables: Vec<&str> = nodes.iter().map(|n| plan.tables[plan.graph[*n].table].name.as_str()).collect();
        assert_eq!(tables.len(), 16, "{tables:?}");
        assert!(tables[..8].iter().all(|t| ["checked", "looked_up"].contains(t)), "{tables:?}");
        let rest: Vec<usize> = nodes[8..].iter().map(|n| plan.order.iter().position(|m| m == n).unwrap()).collect();
        assert!(rest.windows(2).all(|w| w[0] < w[1]), "the rest in plan order: {rest:?}");
        assert!(tables[8..].iter().all(|t| ["big", "small"].contains(t)), "{tables:?}");
        // Each node its own rank.
        assert_eq!(rank.values().collect::<BTreeSet<_>>().len(), nodes.len());
    }
}
