//! Layers that several tables of a run build alike, built once. Tables that read one source file
//! the same way (seven CAF tables read `occupations.json`; each OaSIS file feeds a wide and a
//! long table) have the same staged layer, and the same bronze too when they name and cast its
//! columns alike. The first of them in plan order (the leader) builds and writes the layer; the
//! others (its followers) wait for it in the scheduler, then take its frame, link its file and
//! record their own transition and metadata. A follower whose leader failed builds on its own.
//! Likewise the empty quarantine file of every table with no quarantined rows is written once.

use super::layers::{self, LayerOutput, RunContext};
use crate::plan::{Layer, Plan};
use crate::records::{RowCounts, StepRecord};
use crate::store::FileEntry;
use petgraph::graph::NodeIndex;
use polars::prelude::DataFrame;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

/// Which layers of the run are built once for several tables, and their results until the last
/// follower has taken them.
#[derive(Default)]
pub struct SharedLayers {
    /// Follower node -> its leader's node (same layer).
    leader: HashMap<NodeIndex, NodeIndex>,
    /// Leader node -> its followers.
    followers: HashMap<NodeIndex, Vec<NodeIndex>>,
    /// Leader node -> what it built, and how many of its followers have yet to take it.
    results: Mutex<HashMap<NodeIndex, (Shared, usize)>>,
    /// The quarantine file of a table with no quarantined rows: the same for every table.
    empty_quarantine: Mutex<Option<FileEntry>>,
}

/// What a leader's layer hands its followers.
#[derive(Clone)]
pub struct Shared {
    /// With provenance, as written.
    pub df: DataFrame,
    pub file: FileEntry,
    /// Its pages, for the follower's next layer (see `parquet`).
    pub encoded: Option<std::sync::Arc<super::parquet::Encoded>>,
    pub quarantined: Vec<DataFrame>,
    pub counts: RowCounts,
    pub steps: Vec<StepRecord>,
}

impl SharedLayers {
    /// Groups the `building` tables whose staged (and bronze) layers come out the same; tables
    /// read in batches are never whole in memory and build their own.
    pub fn new(plan: &Plan, building: &BTreeSet<usize>) -> SharedLayers {
        let position: HashMap<NodeIndex, usize> = plan.order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let mut shared = SharedLayers::default();
        for layer in [Layer::Staged, Layer::Bronze] {
            let mut groups: HashMap<String, Vec<NodeIndex>> = HashMap::new();
            for &t in building.iter().filter(|t| !super::streamed::applies(plan, **t)) {
                groups.entry(key(plan, t, layer)).or_default().push(plan.node(t, layer));
            }
            for mut nodes in groups.into_values().filter(|g| g.len() > 1) {
                nodes.sort_by_key(|n| position[n]);
                for &n in &nodes[1..] {
                    shared.leader.insert(n, nodes[0]);
                }
                shared.followers.insert(nodes[0], nodes.split_off(1));
            }
        }
        shared
    }

    /// The leader `node` waits for, when it is a follower.
    pub fn leader_of(&self, node: NodeIndex) -> Option<NodeIndex> {
        self.leader.get(&node).copied()
    }

    /// The followers of `node`, when it leads.
    pub fn followers_of(&self, node: NodeIndex) -> &[NodeIndex] {
        self.followers.get(&node).map_or(&[], Vec::as_slice)
    }

    /// Keeps what the leader `node` built for its followers.
    pub fn keep(&self, node: NodeIndex, shared: impl FnOnce() -> Shared) {
        let count = self.followers_of(node).len();
        if count == 0 {
            return;
        }
        if let Ok(mut results) = self.results.lock() {
            results.insert(node, (shared(), count));
        }
    }

    /// What the leader of `node` built, when `node` follows a leader that succeeded; dropped
    /// once its last follower has it.
    pub fn take(&self, node: NodeIndex) -> Option<Shared> {
        let leader = self.leader.get(&node)?;
        let mut results = self.results.lock().ok()?;
        let (shared, left) = results.get_mut(leader)?;
        *left -= 1;
        if *left == 0 {
            return results.remove(leader).map(|(s, _)| s);
        }
        Some(shared.clone())
    }

    /// The empty quarantine file this run wrote first, once written.
    pub fn empty_quarantine(&self) -> Option<FileEntry> {
        self.empty_quarantine.lock().ok()?.clone()
    }

    /// Keeps `file`, an empty quarantine file, for the other tables with none to link.
    pub fn keep_empty_quarantine(&self, file: &FileEntry) {
        if let Ok(mut kept) = self.empty_quarantine.lock() {
            kept.get_or_insert_with(|| file.clone());
        }
    }
}

/// What makes two tables' layers the same: for staged, the file, its format and the read
/// options (the same read); for bronze, those and the names and casts bronze gives its columns.
fn key(plan: &Plan, t: usize, layer: Layer) -> String {
    let table = &plan.tables[t];
    let options = serde_json::to_string(&table.read).unwrap_or_default();
    let read = format!("{}\0{:?}\0{options}", table.file.path.display(), table.format);
    match layer {
        Layer::Staged => read,
        _ => {
            let casts = serde_json::to_string(&table.spec.bronze.cast).unwrap_or_default();
            format!("{read}\0{}\0{casts}", table.bronze_names.join("\0"))
        }
    }
}

/// Layer `layer` of table `t` from its leader's `shared` result: the leader's file linked as
/// this table's, with this table's own transition log and metadata.
pub fn follow(ctx: &RunContext, t: usize, layer: Layer, shared: Shared) -> Result<LayerOutput, String> {
    let table = &ctx.plan.tables[t];
    let started_at = chrono::Utc::now();
    let mut log = layers::transition(ctx, t, layer, started_at);
    let warnings = match layer {
        Layer::Staged => layers::schema_drift(ctx, t, &shared.df),
        _ => vec![],
    };
    let file = ctx.writer.link_file(layer.name(), &table.name, &shared.file);
    if let (Some(encoded), Ok(mut kept)) = (shared.encoded, ctx.encoded.lock()) {
        kept.insert(t, encoded);
    }
    log.source_files = match layer {
        Layer::Staged => vec![table.file.path.display().to_string()],
        _ => vec![ctx.stable_file(Layer::ALL[layer as usize - 1], &table.name)],
    };
    log.counts = shared.counts;
    log.steps_applied = shared.steps;
    log.warnings = warnings.clone();
    let written = file.map(|file| LayerOutput { df: shared.df, file, quarantined: shared.quarantined, warnings });
    layers::close(ctx, t, layer, log, written)
}
