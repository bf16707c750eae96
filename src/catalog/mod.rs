//! Catalog records written by every run and read by `query`, `validate` and the governance
//! commands: a transition log per layer transition, a metadata record per table and layer,
//! and a record per run. All JSON, all written atomically.

use crate::atomic;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One layer transition of one table in one run.
///
/// Balance: `rows_in + rows_reshaped = rows_out + rows_filtered + rows_quarantined`, where
/// `rows_reshaped` is the net change made by steps that change the row grain (unpivot,
/// aggregate, joins that add rows, `sql`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransitionLog {
    pub transition_id: String,
    pub batch_id: String,
    pub table: String,
    pub source_layer: String,
    pub target_layer: String,
    pub source_files: Vec<String>,
    pub target_file: String,
    pub rows_in: u64,
    pub rows_out: u64,
    pub rows_filtered: u64,
    pub rows_quarantined: u64,
    pub rows_reshaped: i64,
    pub steps_applied: Vec<StepRecord>,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub status: String,
    pub errors: Vec<String>,
    /// Things worth a look that did not stop the transition (e.g. new source columns).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// What one step did to the row count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: String,
    pub rows_in: u64,
    pub rows_out: u64,
    pub rows_filtered: u64,
    pub rows_quarantined: u64,
}

/// Metadata of one table at one layer after a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableMetadata {
    pub name: String,
    pub layer: String,
    pub domain: Option<String>,
    pub path: String,
    pub row_count: u64,
    pub column_count: u64,
    pub file_size: u64,
    pub schema_version: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub batch_id: String,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub steward: Option<String>,
    pub classification: Option<String>,
    pub source: String,
    pub upstream: Vec<String>,
    pub downstream: Vec<String>,
    pub columns: Vec<ColumnMetadata>,
}

/// Metadata of one column.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColumnMetadata {
    pub name: String,
    pub data_type: String,
    pub nullable: bool,
    pub null_count: u64,
    pub description: Option<String>,
    pub examples: Vec<String>,
}

/// The outcome of one table in a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableOutcome {
    pub table: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl TableOutcome {
    pub fn new(table: &str, status: &str, error: Option<String>) -> Self {
        TableOutcome { table: table.to_string(), status: status.to_string(), error, warnings: vec![] }
    }
}

/// Size, modification time and SHA-256 of a source file as a run read it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Fingerprint {
    pub path: String,
    pub size: u64,
    pub modified: DateTime<Utc>,
    pub sha256: String,
}

/// One `jobforge run`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub batch_id: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub selected: Vec<String>,
    pub tables: Vec<TableOutcome>,
    pub status: String,
    /// The source files this run read, by source id.
    #[serde(default)]
    pub sources: std::collections::BTreeMap<String, Fingerprint>,
}

/// The catalog folder of a project's data folder.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub dir: PathBuf,
}

impl Catalog {
    pub fn new(data: &Path) -> Self {
        Catalog { dir: data.join("catalog") }
    }

    pub fn write_transition(&self, log: &TransitionLog) -> std::io::Result<()> {
        let name = format!(
            "{}_{}_{}_{}.json",
            log.started_at.format("%Y%m%dT%H%M%S%.6fZ"),
            log.table,
            log.target_layer,
            log.transition_id
        );
        atomic::write_json(&self.dir.join("lineage").join(name), log)
    }

    pub fn write_table(&self, meta: &TableMetadata) -> std::io::Result<()> {
        atomic::write_json(&self.dir.join("tables").join(format!("{}.{}.json", meta.layer, meta.name)), meta)
    }

    pub fn read_table(&self, layer: &str, name: &str) -> Option<TableMetadata> {
        let bytes = std::fs::read(self.dir.join("tables").join(format!("{layer}.{name}.json"))).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn write_run(&self, run: &RunRecord) -> std::io::Result<()> {
        let name = format!("{}_{}.json", run.started_at.format("%Y%m%dT%H%M%S%.6fZ"), run.batch_id);
        atomic::write_json(&self.dir.join("runs").join(name), run)
    }

    /// Every run record on disk, oldest first.
    pub fn runs(&self) -> Vec<RunRecord> {
        read_all(&self.dir.join("runs"))
    }

    /// Every transition log on disk, oldest first.
    pub fn transitions(&self) -> Vec<TransitionLog> {
        read_all(&self.dir.join("lineage"))
    }
}

/// Every JSON record in `dir` that parses as `T`, in file name order (names start with the time).
fn read_all<T: serde::de::DeserializeOwned>(dir: &Path) -> Vec<T> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "json")).collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths.iter().filter_map(|p| serde_json::from_slice(&std::fs::read(p).ok()?).ok()).collect()
}
