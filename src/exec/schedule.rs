//! The run's scheduler: (table, layer) nodes run as tasks on Polars' own thread pool (one thread
//! per core, shared with the parallel work inside each node) as soon as their inputs are built,
//! earliest in plan order first. A layer's frame goes to the table's next layer in memory, and to
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
    /// Nodes whose inputs are built, by their position in the plan order.
    ready: BinaryHeap<Reverse<(usize, NodeIndex)>>,
    /// Nodes still waiting, with how many inputs they wait for.
    waiting: HashMap<NodeIndex, usize>,
    /// Per built node: how many of the other tables' layers still have to read its frame.
    readers: HashMap<NodeIndex, usize>,
    /// Nodes neither finished nor dropped.
    left: usize,
    /// Set once the files written so far have started going to disk.
    writeback_started: bool,
    tables: HashMap<usize, TableState>,
    /// Where each table is reported once its layers are all done.
    settled: Option<Sender<Settled>>,
}

/// Builds every layer of the `building` tables, reporting each table to `settled` once its
/// layers are all done; returns each table's outcome and files.
pub fn run_nodes(ctx: &RunContext, building: &BTreeSet<usize>, settled: Option<Sender<Settled>>) -> Vec<TableRun> {
    let plan = ctx.plan;
    let position: HashMap<NodeIndex, usize> = plan.order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let in_run = |n: NodeIndex| building.contains(&plan.graph[n].table);
    let mut queue = Queue {
        ready: BinaryHeap::new(),
        waiting: HashMap::new(),
        readers: HashMap::new(),
        left: 0,
        writeback_started: false,
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
    let first: Vec<NodeIndex> = std::iter::from_fn(|| queue.ready.pop().map(|Reverse((_, n))| n)).collect();
    let queue = Mutex::new(queue);
    // Polars' own pool: nodes and the parallel work inside them share the cores.
    let (queued, position) = (&queue, &position);
    polars_core::runtime::THREAD_POOL.scope(|scope| {
        for node in first {
            scope.spawn(move |scope| build_node(scope, ctx, queued, position, node));
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

/// Builds one node, then spawns the nodes it made ready.
fn build_node<'s>(
    scope: &rayon::Scope<'s>,
    ctx: &'s RunContext<'s>,
    queue: &'s Mutex<Queue>,
    position: &'s HashMap<NodeIndex, usize>,
    node: NodeIndex,
) {
    let plan = ctx.plan;
    let (t, layer) = (plan.graph[node].table, plan.graph[node].layer);
    let name = &plan.tables[t].name;
    let (input, prebuilt, quarantine) = {
        let Ok(mut q) = queue.lock() else { return };
        let state = q.tables.entry(t).or_default();
        let quarantine = if layer == Layer::Gold { std::mem::take(&mut state.quarantine) } else { vec![] };
        (state.frame.take(), state.built.take(), quarantine)
    };
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
    let ready: Vec<NodeIndex> = std::iter::from_fn(|| q.ready.pop().map(|Reverse((_, n))| n)).collect();
    // Every node left is running or about to: what is written so far starts going to disk
    // while they finish, so that the commit's barrier finds little left to write.
    if q.waiting.is_empty() && !q.writeback_started {
        q.writeback_started = true;
        ctx.writer.start_writeback();
    }
    drop(q);
    for next in ready {
        scope.spawn(move |scope| build_node(scope, ctx, queue, position, next));
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
