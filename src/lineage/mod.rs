//! Lineage: a graph of sources, each table's layers and the cross-table edges of the plan,
//! enriched with the transition logs of actual runs (batch ids, times, files, row counts); plain
//! questions answered from it (`jobforge lineage "Where does dim_noc come from?"`), drawings
//! (Mermaid, DOT, JSON) and OpenLineage events.

pub mod columns;
pub mod openlineage;
pub mod question;

use crate::plan::render::layer_file;
use crate::plan::{Layer, Node, Plan};
use crate::records::TransitionLog;
use crate::store::{Manifest, Store};
use petgraph::Direction;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// The plan with what the snapshot's runs recorded.
pub struct Lineage<'a> {
    pub plan: &'a Plan,
    pub store: &'a Store,
    pub snapshot: Option<&'a Manifest>,
    /// The latest transition log of each (table, layer).
    latest: HashMap<(String, String), TransitionLog>,
}

/// What one layer of a table looked like in its last run.
#[derive(Debug, Clone, Serialize)]
pub struct LayerFact {
    pub layer: Layer,
    pub file: String,
    pub inputs: Vec<String>,
    pub steps: Vec<String>,
    pub rows_in: Option<u64>,
    pub rows_out: Option<u64>,
    pub batch_id: Option<String>,
    pub ended_at: Option<String>,
}

/// Where a table's data comes from: its source and the publisher's terms.
#[derive(Debug, Clone, Serialize)]
pub struct SourceFact {
    pub id: String,
    pub file: String,
    pub publisher: Option<String>,
    pub licence: Option<String>,
}

impl<'a> Lineage<'a> {
    /// The plan of `snapshot` (or of today's config, when nothing has run) with its records.
    pub fn new(plan: &'a Plan, store: &'a Store, snapshot: Option<&'a Manifest>) -> Self {
        let mut latest = HashMap::new();
        if let Some(m) = snapshot {
            for log in store.transitions(m) {
                let built_by = m.tables.get(&log.table).and_then(|t| t.built_by.as_deref());
                if log.status == "success" && built_by == Some(log.batch_id.as_str()) {
                    latest.insert((log.table.clone(), log.target_layer.clone()), log);
                }
            }
        }
        Lineage { plan, store, snapshot, latest }
    }

    /// The table a loosely written name means ("DIM NOC", "Dim-Noc" -> `dim_noc`), or the
    /// closest names.
    pub fn resolve(&self, name: &str) -> Result<usize, Vec<String>> {
        let wanted = normalise(name);
        if let Some(t) = self.plan.tables.iter().position(|t| normalise(&t.name) == wanted) {
            return Ok(t);
        }
        let mut scored: Vec<(f64, &str)> = self
            .plan
            .tables
            .iter()
            .map(|t| (strsim::normalized_damerau_levenshtein(&wanted, &t.name), t.name.as_str()))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        Err(scored.into_iter().take(3).map(|(_, n)| n.to_string()).collect())
    }

    pub fn source(&self, t: usize) -> SourceFact {
        let table = &self.plan.tables[t];
        SourceFact {
            id: table.source_id.clone(),
            file: table.file.path.display().to_string(),
            publisher: table.source.publisher.clone(),
            licence: table.source.licence.clone(),
        }
    }

    /// Each layer of a table with its inputs, steps and last-run facts.
    pub fn layers(&self, t: usize) -> Vec<LayerFact> {
        let table = &self.plan.tables[t];
        let data = self.store.data();
        Layer::ALL
            .iter()
            .map(|&layer| {
                let node = self.plan.node(t, layer);
                let mut inputs: Vec<String> = match layer {
                    Layer::Staged => vec![format!("source {}", table.source_id)],
                    _ => vec![format!("{}.{}", Layer::ALL[layer as usize - 1], table.name)],
                };
                inputs.extend(
                    self.plan
                        .cross_dependencies(node)
                        .iter()
                        .map(|d| format!("{}.{}", d.layer, self.plan.tables[d.table].name)),
                );
                let steps = crate::plan::render::planned_nodes(self.plan, data, &[t].into_iter().collect())
                    .into_iter()
                    .find(|n| n.layer == layer)
                    .map(|n| n.steps)
                    .unwrap_or_default();
                let log = self.latest.get(&(table.name.clone(), layer.name().to_string()));
                LayerFact {
                    layer,
                    file: layer_file(data, layer, &table.name).display().to_string(),
                    inputs,
                    steps,
                    rows_in: log.map(|l| l.counts.rows_in),
                    rows_out: log.map(|l| l.counts.rows_out),
                    batch_id: log.map(|l| l.batch_id.clone()),
                    ended_at: log.map(|l| l.ended_at.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
                }
            })
            .collect()
    }

    /// Other tables' layers this table reads, directly.
    pub fn feeds_of(&self, t: usize) -> Vec<Node> {
        let mut out: Vec<Node> =
            Layer::ALL.iter().flat_map(|l| self.plan.cross_dependencies(self.plan.node(t, *l))).collect();
        out.dedup();
        out
    }

    /// Tables whose layers read this table's layers, directly.
    pub fn fed_by(&self, t: usize) -> Vec<Node> {
        let mut out = Vec::new();
        for l in Layer::ALL {
            let n = self.plan.node(t, l);
            for m in self.plan.graph.neighbors_directed(n, Direction::Outgoing) {
                let node = self.plan.graph[m];
                if node.table != t && !out.contains(&node) {
                    out.push(node);
                }
            }
        }
        out
    }

    /// All tables upstream (or downstream) of `t`, not counting `t`.
    pub fn closure(&self, t: usize, direction: Direction) -> BTreeSet<usize> {
        let mut s = self.plan.reach(t, direction);
        s.remove(&t);
        s
    }

    /// A path of nodes from any layer of `from` to any layer of `to`, if data flows that way.
    pub fn path(&self, from: usize, to: usize) -> Option<Vec<Node>> {
        let start = self.plan.node(from, Layer::Staged);
        let mut previous = HashMap::new();
        let mut queue = VecDeque::from([start]);
        let mut seen = BTreeSet::from([start]);
        while let Some(n) = queue.pop_front() {
            if self.plan.graph[n].table == to {
                let mut path = vec![self.plan.graph[n]];
                let mut at = n;
                while let Some(p) = previous.get(&at) {
                    path.push(self.plan.graph[*p]);
                    at = *p;
                }
                path.reverse();
                return Some(path);
            }
            for m in self.plan.graph.neighbors_directed(n, Direction::Outgoing) {
                if seen.insert(m) {
                    previous.insert(m, n);
                    queue.push_back(m);
                }
            }
        }
        None
    }

    /// Nodes and edges of the graph (restricted to `t`'s upstream and downstream when given).
    pub fn graph(&self, only: Option<usize>) -> (Vec<String>, Vec<(String, String)>) {
        let keep: BTreeSet<usize> = match only {
            Some(t) => {
                let mut s = self.closure(t, Direction::Incoming);
                s.extend(self.closure(t, Direction::Outgoing));
                s.insert(t);
                s
            }
            None => (0..self.plan.tables.len()).collect(),
        };
        let name = |n: Node| format!("{}.{}", n.layer, self.plan.tables[n.table].name);
        let mut nodes = BTreeSet::new();
        let mut edges = BTreeSet::new();
        for &t in &keep {
            let table = &self.plan.tables[t];
            let source = format!("source.{}", table.source_id);
            nodes.insert(source.clone());
            edges.insert((source, name(Node { table: t, layer: Layer::Staged })));
        }
        for e in self.plan.graph.edge_indices() {
            if let Some((a, b)) = self.plan.graph.edge_endpoints(e) {
                let (a, b) = (self.plan.graph[a], self.plan.graph[b]);
                if keep.contains(&a.table) && keep.contains(&b.table) {
                    nodes.insert(name(a));
                    nodes.insert(name(b));
                    edges.insert((name(a), name(b)));
                }
            }
        }
        (nodes.into_iter().collect(), edges.into_iter().collect())
    }
}

/// The plan the snapshot's run compiled, from the config it recorded and the source files it
/// recorded: no source file is read, so this works where the raw files are absent.
pub fn recorded_plan(store: &Store, m: &Manifest) -> Result<Plan, crate::diag::Diagnostics> {
    let (dir, texts) = store
        .recorded_config(m)
        .map_err(|e| crate::diag::Diagnostics(vec![crate::diag::Diagnostic::new(store.path(&m.folder), (1, 1), e)]))?;
    let project = crate::config::Project::load_recorded(&dir, &texts, m.vars.clone())?;
    let recorded = m
        .sources
        .iter()
        .map(|(id, s)| {
            let r = crate::plan::RecordedSource { path: s.path.clone().into(), size: s.size, header: s.header.clone() };
            (id.clone(), r)
        })
        .collect();
    crate::plan::compile_recorded(&project, &recorded)
}

/// A table name as people write it, reduced for matching: lower case, runs of spaces, dashes
/// and dots become `_`, a leading "the" and a trailing "table" are dropped.
pub fn normalise(name: &str) -> String {
    let mut s = name.trim().trim_matches(|c| c == '`' || c == '"' || c == '\'').to_lowercase();
    for prefix in ["the "] {
        if let Some(rest) = s.strip_prefix(prefix) {
            s = rest.to_string();
        }
    }
    if let Some(rest) = s.strip_suffix(" table") {
        s = rest.to_string();
    }
    let mut out = String::new();
    for c in s.chars() {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

/// The graph in a drawing format.
pub fn draw(nodes: &[String], edges: &[(String, String)], format: &str) -> String {
    let id = |n: &str| n.replace(['.', '-'], "_");
    match format {
        "dot" => {
            let mut out = String::from("digraph lineage {\n  rankdir=LR;\n");
            for n in nodes {
                let shape = if n.starts_with("source.") { "cylinder" } else { "box" };
                out.push_str(&format!("  \"{n}\" [shape={shape}];\n"));
            }
            for (a, b) in edges {
                out.push_str(&format!("  \"{a}\" -> \"{b}\";\n"));
            }
            out.push_str("}\n");
            out
        }
        "json" => {
            let edges: Vec<BTreeMap<&str, &str>> =
                edges.iter().map(|(a, b)| BTreeMap::from([("from", a.as_str()), ("to", b.as_str())])).collect();
            serde_json::to_string_pretty(&serde_json::json!({ "nodes": nodes, "edges": edges })).unwrap_or_default()
                + "\n"
        }
        _ => {
            let mut out = String::from("flowchart LR\n");
            for n in nodes {
                if n.starts_with("source.") {
                    out.push_str(&format!("  {}[(\"{n}\")]\n", id(n)));
                } else {
                    out.push_str(&format!("  {}[\"{n}\"]\n", id(n)));
                }
            }
            for (a, b) in edges {
                out.push_str(&format!("  {} --> {}\n", id(a), id(b)));
            }
            out
        }
    }
}
