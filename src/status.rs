//! `jobforge status` and `jobforge runs`: per table, the run that produced the published version
//! and whether it is stale against the tables it reads (their held versions have other build
//! keys than the ones it read) or its source file; the kept runs.

use crate::registry::SourceStatus;
use crate::store::{Manifest, Store};
use serde::Serialize;

/// One table of the current snapshot.
#[derive(Debug, Serialize)]
pub struct TableStatus {
    pub table: String,
    /// What the last run did to it (`success`, `failed`, `skipped`, `kept`).
    pub last_run: String,
    pub built_by: Option<String>,
    pub built_at: Option<String>,
    /// Why it may no longer match its inputs; empty when it is fresh.
    pub stale: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The status of every table of `m`; `sources` (the registry's view of the source files now)
/// adds staleness against changed sources.
pub fn tables(m: &Manifest, sources: Option<&[SourceStatus]>) -> Vec<TableStatus> {
    m.tables
        .iter()
        .map(|(name, t)| {
            let mut stale = Vec::new();
            for read in &t.reads {
                let (layer, other) = read.split_once('.').unwrap_or(("gold", read.as_str()));
                let Some(theirs) = m.tables.get(other) else { continue };
                let changed = match t.read_keys.get(read) {
                    // Exact: the version held now was built from other inputs than the one read.
                    Some(read_key) => theirs.keys.get(layer).is_some_and(|now| now != read_key),
                    // Snapshots before build keys: rebuilt by another, later run.
                    None => {
                        let later = matches!((theirs.built_at, t.built_at), (Some(a), Some(b)) if a > b);
                        theirs.built_by != t.built_by && later
                    }
                };
                if changed {
                    stale.push(format!("reads {read}, rebuilt after it"));
                }
            }
            if let Some(now) = sources.and_then(|s| s.iter().find(|s| s.id == t.source)) {
                match (&now.file, &t.source_sha256) {
                    (Some(f), Some(built_from)) if &f.sha256 != built_from => {
                        stale.push(format!("source `{}` changed since it was built ({})", t.source, f.path))
                    }
                    (None, _) => stale.push(format!("source `{}` is missing", t.source)),
                    _ => {}
                }
            }
            if t.built_by.is_none() {
                stale.push("never built".into());
            }
            TableStatus {
                table: name.clone(),
                last_run: t.status.clone(),
                built_by: t.built_by.clone(),
                built_at: t.built_at.map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
                stale,
                error: t.error.clone(),
            }
        })
        .collect()
}

/// A readable table of statuses.
pub fn render_tables(m: &Manifest, rows: &[TableStatus]) -> String {
    let mut out = format!(
        "current run #{} {} ({}, committed {})\n",
        m.seq,
        m.run_id,
        m.status,
        m.committed_at.format("%Y-%m-%dT%H:%M:%SZ")
    );
    for r in rows {
        let built = match (&r.built_by, &r.built_at) {
            (Some(id), Some(at)) => format!("built by {} at {at}", &id[..8.min(id.len())]),
            _ => "not built".into(),
        };
        let state = if r.stale.is_empty() { "fresh".to_string() } else { format!("stale: {}", r.stale.join("; ")) };
        out.push_str(&format!("  {:<32} {:<8} {built}  {state}\n", r.table, r.last_run));
        if let Some(e) = &r.error {
            out.push_str(&format!("      last error: {e}\n"));
        }
    }
    out
}

/// The kept runs, newest first.
pub fn render_runs(store: &Store) -> String {
    let runs = store.manifests();
    if runs.is_empty() {
        return "no committed run\n".into();
    }
    let mut out = String::from(" seq  run id                                committed             kind     status\n");
    for m in runs.iter().rev() {
        out.push_str(&m.summary());
        out.push('\n');
    }
    out
}
