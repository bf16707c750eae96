//! The run manifest: the one file whose atomic appearance commits a run. It names every file of
//! the snapshot (table -> layer -> file, rows, schema hash), each table's status and the run
//! that built it, the source files read with their fingerprints, the vars and the tool version.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the manifest format written.
pub const FORMAT: u32 = PER_TABLE_RECORDS;
/// The first format whose snapshots keep their records one file per table (format 1: one file
/// per kind of record).
pub const PER_TABLE_RECORDS: u32 = 2;

/// One committed run (or rollback) of the data folder.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// Position in the history, counting from 1; the highest is the current run.
    pub seq: u64,
    /// The run's id, also its `_batch_id`.
    pub run_id: String,
    /// `run`, or `rollback` (a republished older snapshot).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<String>,
    /// The folder holding the snapshot's files, relative to the data folder.
    pub folder: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub committed_at: DateTime<Utc>,
    /// `success` when every selected table built, else `failed`.
    pub status: String,
    pub selected: Vec<String>,
    pub tool_version: String,
    pub vars: BTreeMap<String, String>,
    /// What the run's tables were decided from, for a rerun's check that nothing changed (see
    /// `exec::stamp`); none when the run could not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<RunInputs>,
    /// Every source the run's plan resolved, by source id; fingerprinted when the run read it.
    pub sources: BTreeMap<String, SourceFile>,
    pub tables: BTreeMap<String, TableEntry>,
}

/// The inputs a run decided what to build from: its config, vars, selection, environment and
/// build (hashed together), and the source files and folders its plan looked at.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunInputs {
    /// SHA-256 of the config files as read, the vars, the selection, the values of `env`
    /// (by name, values never recorded) and the build.
    pub key: String,
    /// The environment variables the config's templates read.
    pub env: Vec<String>,
    /// Each source file and folder the plan looked at, as seen.
    pub files: Vec<SeenFile>,
    /// Files the plan looked for and did not find.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

/// A file or folder as a run saw it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SeenFile {
    pub path: String,
    pub size: u64,
    pub modified: DateTime<Utc>,
}

/// A source file as the run's plan resolved it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SourceFile {
    pub path: String,
    pub size: u64,
    /// The published header, as the plan read it.
    pub header: Vec<String>,
    /// Set when this run read the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// One table of a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableEntry {
    /// What happened to it in this run: `success`, `failed`, `skipped` (a table it reads did
    /// not build), `unchanged` (selected, already up to date) or `kept` (not selected). All but
    /// `success` hold their previous version.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The run that built the files this snapshot holds (none when it never built).
    pub built_by: Option<String>,
    pub built_at: Option<DateTime<Utc>>,
    /// The source id, and the SHA-256 of the file the held version was built from.
    pub source: String,
    pub source_sha256: Option<String>,
    /// Hash of the config that shaped the held version (see `exec::incremental`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<String>,
    /// Build key of each layer of the held version: equal keys, equal output.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<String, String>,
    /// `layer.table` it reads -> the build key of the version the held version read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub read_keys: BTreeMap<String, String>,
    /// Other tables' layers this table reads (`layer.table`).
    pub reads: Vec<String>,
    /// Layer name (and `quarantine`) -> file.
    pub files: BTreeMap<String, FileEntry>,
}

/// One file of the snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative to the data folder.
    pub path: String,
    pub rows: u64,
    /// SHA-256 of the column names and types.
    pub schema_hash: String,
}

impl Manifest {
    /// The file of `table` at `layer` (`staged` .. `gold`, or `quarantine`), if the snapshot has it.
    pub fn file(&self, table: &str, layer: &str) -> Option<&FileEntry> {
        self.tables.get(table)?.files.get(layer)
    }

    /// Tables that hold a file at `layer`, with it, by name.
    pub fn layer<'a>(&'a self, layer: &'a str) -> impl Iterator<Item = (&'a String, &'a FileEntry)> {
        self.tables.iter().filter_map(move |(name, t)| t.files.get(layer).map(|f| (name, f)))
    }

    /// A one-line description for listings.
    pub fn summary(&self) -> String {
        let count = |s: &str| self.tables.values().filter(|t| t.status == s).count();
        format!(
            "{:>4}  {}  {}  {:<8} {:<7} {} built, {} failed, {} skipped, {} unchanged, {} kept{}",
            self.seq,
            self.run_id,
            self.committed_at.format("%Y-%m-%dT%H:%M:%SZ"),
            self.kind,
            self.status,
            count("success"),
            count("failed"),
            count("skipped"),
            count("unchanged"),
            count("kept"),
            self.rollback_of.as_ref().map(|r| format!(" (rollback to {r})")).unwrap_or_default()
        )
    }
}

/// The part of a manifest that recovery and retention read.
#[derive(Debug, Clone, Deserialize)]
pub struct ManifestHead {
    pub seq: u64,
    pub folder: String,
}

impl ManifestHead {
    /// The head of a manifest from the start of its text, `None` when the start does not hold
    /// it. A manifest is written with its head before the list of its tables (most of it), so
    /// the first kilobytes suffice: recovery reads the head of every kept manifest.
    pub fn from_start(start: &[u8]) -> Option<ManifestHead> {
        use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};
        #[derive(Default)]
        struct Found(Option<u64>, Option<String>);
        impl<'de> Visitor<'de> for &mut Found {
            type Value = ();
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a manifest (a JSON object)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "seq" => self.0 = Some(map.next_value()?),
                        "folder" => self.1 = Some(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                    if self.0.is_some() && self.1.is_some() {
                        break;
                    }
                }
                Ok(())
            }
        }
        let mut found = Found::default();
        // Stopped early, or at the end of the start: the object is not closed there.
        let _ = serde_json::Deserializer::from_slice(start).deserialize_map(&mut found);
        Some(ManifestHead { seq: found.0?, folder: found.1? })
    }
}

#[cfg(test)]
mod tests {
    use super::ManifestHead;

    #[test]
    fn a_head_is_read_from_the_start_of_a_manifest_or_not_at_all() {
        let head = |text: &str| ManifestHead::from_start(text.as_bytes()).map(|h| (h.seq, h.folder));
        let written =
            "{\n  \"format\": 2,\n  \"seq\": 7,\n  \"run_id\": \"r\",\n  \"folder\": \"runs/r\",\n  \"tables\": {";
        assert_eq!(head(written), Some((7, "runs/r".into())), "cut after the head");
        assert_eq!(head(r#"{"folder":"runs/x","tables":{"t":{}},"seq":3}"#), Some((3, "runs/x".into())));
        // The head not within the start, or not a manifest: none (the whole file is read then).
        assert_eq!(head(r#"{"format":2,"tables":{"t":{"status":"succ"#), None);
        assert_eq!(head(r#"{"seq":"seven","folder":"runs/r"}"#), None);
        assert_eq!(head("[1, 2]"), None);
        assert_eq!(head(""), None);
    }
}
