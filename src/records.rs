//! The records a run keeps beside its data: a transition log per layer transition, a metadata
//! record per table and layer, each table's outcome, the results of its data-quality checks and
//! the fingerprints of the source files it read. Plain types; the store writes them into the run's folder and commits them with it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What happened to the rows of a step or a transition, counted gross: every row removed and
/// every row added, by its cause, each measured on its own (not derived from the others), so
/// that `balances` can catch a step that loses rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowCounts {
    pub rows_in: u64,
    pub rows_out: u64,
    /// Removed by `filter` and `dedupe`.
    pub rows_filtered: u64,
    /// Rows an inner join found no match for.
    #[serde(default)]
    pub rows_join_dropped: u64,
    /// Rows a join added because the other side repeats a key.
    #[serde(default)]
    pub rows_fanout_added: u64,
    /// Sent to quarantine by a rule or a cast.
    pub rows_quarantined: u64,
    /// Rows consumed by a change of grain (`unpivot`, `aggregate`, `sql`) ...
    #[serde(default)]
    pub rows_reshaped_in: u64,
    /// ... and the rows it produced.
    #[serde(default)]
    pub rows_reshaped_out: u64,
}

impl RowCounts {
    /// in + added + produced = out + filtered + dropped + quarantined + consumed.
    pub fn balances(&self) -> bool {
        self.rows_in + self.rows_fanout_added + self.rows_reshaped_out
            == self.rows_out
                + self.rows_filtered
                + self.rows_join_dropped
                + self.rows_quarantined
                + self.rows_reshaped_in
    }

    /// Adds the causes of `other` (not its rows in and out).
    pub fn add_causes(&mut self, other: &RowCounts) {
        self.rows_filtered += other.rows_filtered;
        self.rows_join_dropped += other.rows_join_dropped;
        self.rows_fanout_added += other.rows_fanout_added;
        self.rows_quarantined += other.rows_quarantined;
        self.rows_reshaped_in += other.rows_reshaped_in;
        self.rows_reshaped_out += other.rows_reshaped_out;
    }

    /// The counts as one line, for errors.
    pub fn describe(&self) -> String {
        format!(
            "in {} + join fan-out {} + reshaped out {} != out {} + filtered {} + join dropped {} + quarantined {} + \
             reshaped in {}",
            self.rows_in,
            self.rows_fanout_added,
            self.rows_reshaped_out,
            self.rows_out,
            self.rows_filtered,
            self.rows_join_dropped,
            self.rows_quarantined,
            self.rows_reshaped_in
        )
    }
}

/// One layer transition of one table in one run. Its counts balance (see `RowCounts`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransitionLog {
    pub transition_id: String,
    pub batch_id: String,
    pub table: String,
    pub source_layer: String,
    pub target_layer: String,
    pub source_files: Vec<String>,
    pub target_file: String,
    #[serde(flatten)]
    pub counts: RowCounts,
    pub steps_applied: Vec<StepRecord>,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub status: String,
    pub errors: Vec<String>,
    /// Things worth a look that did not stop the transition (e.g. new source columns).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// What one step did to the rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: String,
    #[serde(flatten)]
    pub counts: RowCounts,
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

/// The outcome of one data-quality check on a table's gold layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub table: String,
    pub check: String,
    pub kind: String,
    /// `error` (a failure fails the table) or `warn`.
    pub severity: String,
    pub passed: bool,
    /// What was measured (rows, a rate, a count, an age in seconds, a mean, offending rows).
    pub value: Option<f64>,
    /// What was measured against what was allowed, in words.
    pub message: String,
    pub evaluated_at: DateTime<Utc>,
}

impl CheckResult {
    /// A failed `error` check: its table fails.
    pub fn fails_table(&self) -> bool {
        !self.passed && self.severity == "error"
    }
}
