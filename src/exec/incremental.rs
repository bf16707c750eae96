//! Incremental runs: which selected tables are already up to date. Every layer of every table
//! gets a build key that hashes what its output depends on: the tool version, the table's
//! compiled spec and source options, the vars, its source file's SHA-256 and path, its own
//! previous layer's key and the keys of the other tables' layers it reads. A selected table whose
//! gold key equals the key its held version was built with is not rebuilt; the snapshot carries
//! it. `--full-refresh` builds every selected table.
//!
//! Source files are hashed once per content: a file whose path, size and modification time
//! match what the previous snapshot recorded keeps the SHA-256 recorded there (as git's index
//! does), so a rerun with nothing changed reads no source data.

use crate::config::Project;
use crate::plan::{Layer, Plan};
use crate::records::Fingerprint;
use crate::store::{Manifest, TableEntry};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What a run builds and what it holds, with why.
#[derive(Debug, Default)]
pub struct Decision {
    /// Selected tables to build, with why each is built.
    pub build: BTreeMap<usize, String>,
    /// Selected tables whose held version is up to date, with why.
    pub unchanged: BTreeMap<usize, String>,
    /// Per table: its spec hash and its build key per layer (as the version a reader gets).
    pub keys: HashMap<usize, TableKeys>,
    /// Source fingerprints by source id; missing where the file could not be read.
    pub sources: HashMap<String, Fingerprint>,
    /// Whether `keys` and `sources` are worked out (else the run works them out beside its build).
    pub keyed: bool,
}

/// The hashes a snapshot records for one table.
#[derive(Debug, Clone, Default)]
pub struct TableKeys {
    pub spec: String,
    /// Layer name -> build key.
    pub layers: BTreeMap<String, String>,
    /// `layer.table` it reads -> the build key of the version it reads.
    pub reads: BTreeMap<String, String>,
}

impl Decision {
    /// The tables this run builds.
    pub fn building(&self) -> BTreeSet<usize> {
        self.build.keys().copied().collect()
    }
}

/// Decides which of `selected` to build against the `previous` snapshot. A run that builds every
/// selected table whatever their keys (the first, or `--full-refresh`) leaves the keys and
/// source fingerprints to `keys`, which it works out beside the build (`Decision::keyed` false).
pub fn decide(
    project: &Project,
    plan: &Plan,
    previous: Option<&Manifest>,
    selected: &BTreeSet<usize>,
    full_refresh: bool,
) -> Decision {
    if previous.is_none() || full_refresh {
        let why = if full_refresh { "--full-refresh" } else { "not built before" };
        let build = selected.iter().map(|&t| (t, why.to_string())).collect();
        return Decision { build, keyed: false, ..Decision::default() };
    }
    let mut decision = keys(project, plan, previous, selected, Cores::All);
    let held = |t: usize| previous.and_then(|m| m.tables.get(&plan.tables[t].name));
    for &t in selected {
        let keys = decision.keys.get(&t).cloned().unwrap_or_default();
        let source = decision.sources.get(&plan.tables[t].source_id);
        match held(t) {
            Some(entry) if up_to_date(entry, &keys) => {
                decision.unchanged.insert(t, unchanged_reason(entry));
            }
            entry => {
                let why = rebuild_reason(plan, t, entry, &keys, source);
                decision.build.insert(t, why);
            }
        }
    }
    decision
}

/// Where `keys` hashes: on every core (before a build), or on the calling thread alone (beside one).
#[derive(Clone, Copy, PartialEq)]
pub enum Cores {
    All,
    One,
}

/// The build keys of `selected` and the fingerprints of their sources (a decision that builds
/// nothing yet: `keyed`).
pub fn keys(
    project: &Project,
    plan: &Plan,
    previous: Option<&Manifest>,
    selected: &BTreeSet<usize>,
    cores: Cores,
) -> Decision {
    use rayon::prelude::*;
    let mut decision = Decision { keyed: true, ..Decision::default() };
    // Each source read by the selected tables once: a file unchanged since the previous snapshot
    // (same path, size and time) keeps its recorded hash; any other is hashed.
    let mut files: BTreeMap<&str, &std::path::Path> = BTreeMap::new();
    for &t in selected {
        files.entry(plan.tables[t].source_id.as_str()).or_insert(&plan.tables[t].file.path);
    }
    let fingerprint = |(id, path): (&str, &std::path::Path)| {
        let recorded = previous.and_then(|m| m.sources.get(id));
        let cached = recorded.and_then(|r| {
            let meta = std::fs::metadata(path).ok()?;
            let modified = DateTime::<Utc>::from(meta.modified().ok()?);
            let same = r.path == path.display().to_string() && r.size == meta.len() && r.modified == Some(modified);
            let sha256 = r.sha256.clone().filter(|_| same)?;
            Some(Fingerprint { path: r.path.clone(), size: meta.len(), modified, sha256 })
        });
        Some((id.to_string(), cached.or_else(|| crate::registry::fingerprint(path).ok())?))
    };
    // Beside them, the hash of each selected table's spec (a serialization of each).
    let spec = |&t: &usize| (t, spec_hash(project, plan, t));
    let (sources, mut specs): (_, HashMap<usize, String>) = match cores {
        Cores::All => polars_core::runtime::THREAD_POOL.install(|| {
            rayon::join(
                || files.into_par_iter().filter_map(fingerprint).collect(),
                || selected.par_iter().map(spec).collect(),
            )
        }),
        Cores::One => (files.into_iter().filter_map(fingerprint).collect(), selected.iter().map(spec).collect()),
    };
    decision.sources = sources;
    // Layer keys in plan order: a node's inputs are keyed before it.
    let mut node_keys: HashMap<(usize, Layer), String> = HashMap::new();
    for &n in &plan.order {
        let node = plan.graph[n];
        let (t, layer) = (node.table, node.layer);
        if !selected.contains(&t) {
            let held = previous.and_then(|m| m.tables.get(&plan.tables[t].name));
            let recorded = held.and_then(|e| e.keys.get(layer.name())).cloned().unwrap_or_default();
            node_keys.insert((t, layer), recorded);
            continue;
        }
        let spec = decision
            .keys
            .entry(t)
            .or_insert_with(|| TableKeys { spec: specs.remove(&t).unwrap_or_default(), ..Default::default() });
        let mut h = Sha256::new();
        h.update(format!("jobforge {}\nspec {}\n", env!("CARGO_PKG_VERSION"), spec.spec));
        let table = &plan.tables[t];
        match decision.sources.get(&table.source_id) {
            Some(f) => h.update(format!("source {} {}\n", f.path, f.sha256)),
            None => h.update(format!("source {} unreadable\n", table.file.path.display())),
        }
        if layer != Layer::Staged {
            let before = Layer::ALL[layer as usize - 1];
            h.update(format!("after {}\n", node_keys.get(&(t, before)).map_or("", String::as_str)));
        }
        let mut reads: Vec<(String, &str)> = plan
            .cross_dependencies(n)
            .into_iter()
            .map(|d| {
                let key = node_keys.get(&(d.table, d.layer)).map_or("", String::as_str);
                (format!("{}.{}", d.layer, plan.tables[d.table].name), key)
            })
            .collect();
        reads.sort();
        for (name, key) in reads {
            h.update(format!("reads {name} {key}\n"));
            spec.reads.insert(name, key.to_string());
        }
        let key = hex(&h.finalize()[..16]);
        spec.layers.insert(layer.name().to_string(), key.clone());
        node_keys.insert((t, layer), key);
    }
    decision
}

/// Why a table whose held version is up to date is not rebuilt, in words.
pub fn unchanged_reason(entry: &TableEntry) -> String {
    let by = entry.built_by.as_deref().map_or("", |b| b.get(..8).unwrap_or(b));
    format!("unchanged since run {by}: same pipeline, source file and inputs")
}

/// True when the held version of a table was built from these keys and still has its files.
fn up_to_date(entry: &TableEntry, keys: &TableKeys) -> bool {
    !entry.files.is_empty()
        && entry.built_by.is_some()
        && !keys.layers.is_empty()
        && Layer::ALL.iter().all(|l| entry.keys.get(l.name()) == keys.layers.get(l.name()))
}

/// Why table `t` is rebuilt, in words.
fn rebuild_reason(
    plan: &Plan,
    t: usize,
    entry: Option<&TableEntry>,
    keys: &TableKeys,
    source: Option<&Fingerprint>,
) -> String {
    let Some(entry) = entry.filter(|e| e.built_by.is_some() && !e.files.is_empty()) else {
        return "not built before".into();
    };
    if entry.keys.is_empty() {
        return "no build key recorded for its held version".into();
    }
    if entry.spec_hash.as_deref() != Some(keys.spec.as_str()) {
        return "its pipeline or source options changed".into();
    }
    if entry.source_sha256.as_deref() != source.map(|f| f.sha256.as_str()) {
        return format!("its source file changed ({})", plan.tables[t].file.path.display());
    }
    let changed: BTreeSet<String> = keys
        .reads
        .iter()
        .filter(|(read, key)| entry.read_keys.get(*read) != Some(key))
        .map(|(read, _)| read.split_once('.').map_or(read.as_str(), |(_, t)| t).to_string())
        .collect();
    if changed.is_empty() {
        "the build key of a table it reads changed".into()
    } else {
        format!("a table it reads changed ({})", changed.into_iter().collect::<Vec<_>>().join(", "))
    }
}

/// SHA-256 of everything in the config that shapes table `t`'s output, the columns the model
/// marks as personal information (their values are kept out of the metadata) included.
fn spec_hash(project: &Project, plan: &Plan, t: usize) -> String {
    let table = &plan.tables[t];
    // Tests and checks do not shape the output: editing one rebuilds nothing.
    let spec = crate::config::Pipeline { tests: vec![], checks: vec![], ..table.spec.clone() };
    let mut pii: Vec<(&str, &str)> =
        plan.pii.iter().filter(|(name, _, _)| *name == table.name).map(|(_, l, c)| (l.name(), c.as_str())).collect();
    pii.sort_unstable();
    let shape = (&spec, &table.source, &table.read, &table.format, &table.header, &project.vars);
    // A table without such columns hashes as it did before they counted.
    let text = if pii.is_empty() { serde_json::to_string(&shape) } else { serde_json::to_string(&(shape, &pii)) };
    hex(&Sha256::digest(text.unwrap_or_default().as_bytes())[..16])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
