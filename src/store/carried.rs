//! Records carried from one snapshot into the next as they were written. A records file is a
//! JSON array; each record is kept as its text, and only the fields that place it are decoded:
//! the table it belongs to, its batch, and what orders the file. A rerun that rebuilds one
//! table carries the records of all the others, and decoding and encoding every one of them
//! again cost more than the rest of its commit.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Which records file, and so which fields place a record.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    /// Table metadata: one per (table, layer), ordered by table then layer.
    Tables,
    /// Transition logs, ordered by start then table.
    Transitions,
    /// Check results, ordered by table then check.
    Checks,
}

/// One record as written, with what places it.
pub(super) struct Record {
    pub table: String,
    pub batch_id: Option<String>,
    /// For table metadata, the layer.
    pub layer: Option<String>,
    order: (Option<DateTime<Utc>>, String, String),
    text: String,
}

/// The fields any records file places a record by.
#[derive(Deserialize)]
struct Place {
    name: Option<String>,
    table: Option<String>,
    layer: Option<String>,
    check: Option<String>,
    batch_id: Option<String>,
    started_at: Option<DateTime<Utc>>,
}

impl Record {
    fn placed(kind: Kind, text: String) -> serde_json::Result<Record> {
        let p: Place = serde_json::from_str(&text)?;
        let (table, order) = match kind {
            Kind::Tables => {
                let name = p.name.unwrap_or_default();
                (name.clone(), (None, name, p.layer.clone().unwrap_or_default()))
            }
            Kind::Transitions => {
                let table = p.table.unwrap_or_default();
                (table.clone(), (p.started_at, table, String::new()))
            }
            Kind::Checks => {
                let table = p.table.unwrap_or_default();
                (table.clone(), (None, table, p.check.unwrap_or_default()))
            }
        };
        Ok(Record { table, batch_id: p.batch_id, layer: p.layer, order, text })
    }

    /// A record of this run, encoded.
    pub fn new(kind: Kind, record: &impl Serialize) -> Result<Record, String> {
        let text = serde_json::to_string(record).map_err(|e| e.to_string())?;
        Record::placed(kind, text).map_err(|e| e.to_string())
    }

    /// Decodes the whole record.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_str(&self.text).ok()
    }
}

/// This run's records `new`, encoded, then the records `carried` (records that tie keep that
/// order when written).
pub(super) fn with_new<T: Serialize>(kind: Kind, new: &[T], carried: Vec<Record>) -> Result<Vec<Record>, String> {
    let mut records = new.iter().map(|r| Record::new(kind, r)).collect::<Result<Vec<_>, _>>()?;
    records.extend(carried);
    Ok(records)
}

/// The records of the file at `path` (none when it is missing or unreadable, as a reader of the
/// typed records sees it).
pub(super) fn read(kind: Kind, path: &Path) -> Vec<Record> {
    let Ok(text) = std::fs::read_to_string(path) else { return vec![] };
    let Some(elements) = elements(&text) else { return vec![] };
    elements.map(|e| Record::placed(kind, e.to_string())).collect::<serde_json::Result<_>>().unwrap_or_default()
}

/// The texts of the elements of the JSON array `text`, or `None` when it is not an array. Each
/// element is only delimited here (strings, escapes and nesting followed); decoding its place
/// checks it.
fn elements(text: &str) -> Option<impl Iterator<Item = &str>> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
    let bytes = inner.as_bytes();
    let mut cuts = vec![0];
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.checked_sub(1)?,
            b',' if depth == 0 => cuts.push(i + 1),
            _ => {}
        }
    }
    if in_string || depth != 0 {
        return None;
    }
    cuts.push(bytes.len() + 1);
    let pieces: Vec<&str> = cuts.windows(2).map(|w| inner[w[0]..w[1] - 1].trim()).collect();
    let empty = pieces.len() == 1 && pieces[0].is_empty();
    Some(pieces.into_iter().filter(move |_| !empty))
}

/// Writes `records` as one JSON array, in the file's order (records that tie keep the order
/// given).
pub(super) fn write(path: &Path, mut records: Vec<Record>) -> Result<(), String> {
    records.sort_by(|a, b| a.order.cmp(&b.order));
    let mut out = Vec::with_capacity(records.iter().map(|r| r.text.len() + 1).sum::<usize>() + 2);
    out.push(b'[');
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(r.text.as_bytes());
    }
    out.push(b']');
    std::fs::write(path, out).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{CheckResult, TransitionLog};

    fn transition(table: &str, batch: &str, second: u32) -> TransitionLog {
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 1, 1, 0, 0, second).single().unwrap_or_default();
        // Fractions of a second written with different numbers of digits (text would misorder them).
        let started_at = at + chrono::Duration::milliseconds(if second == 2 { 100 } else { 0 });
        TransitionLog {
            transition_id: "t".into(),
            batch_id: batch.into(),
            table: table.into(),
            source_layer: "staged".into(),
            target_layer: "bronze".into(),
            source_files: vec![],
            target_file: "f".into(),
            counts: Default::default(),
            steps_applied: vec![],
            started_at,
            ended_at: started_at,
            status: "success".into(),
            errors: vec![],
            warnings: vec![],
        }
    }

    #[test]
    fn carried_and_new_records_are_written_as_the_typed_records_would_be() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("transitions.json");
        let logs = vec![transition("b", "run1", 3), transition("a", "run1", 1), transition("c", "run2", 2)];
        let records = logs.iter().map(|l| Record::new(Kind::Transitions, l)).collect::<Result<Vec<_>, _>>().unwrap();
        write(&path, records).unwrap();
        let read_back = read(Kind::Transitions, &path);
        assert_eq!(read_back.iter().map(|r| r.table.as_str()).collect::<Vec<_>>(), ["a", "c", "b"]);
        assert_eq!(read_back[1].batch_id.as_deref(), Some("run2"));
        let mut sorted = logs.clone();
        sorted.sort_by(|a, b| (a.started_at, &a.table).cmp(&(b.started_at, &b.table)));
        let typed: Vec<TransitionLog> = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(serde_json::to_string(&typed).unwrap(), serde_json::to_string(&sorted).unwrap());
    }

    #[test]
    fn array_elements_are_cut_outside_strings_and_nesting() {
        let text = r#"[{"a":"x,]}\"{","b":[1,{"c":2}]}, {"d":"\\"} ,3]"#;
        let found: Vec<&str> = elements(text).unwrap().collect();
        assert_eq!(found, [r#"{"a":"x,]}\"{","b":[1,{"c":2}]}"#, r#"{"d":"\\"}"#, "3"]);
        assert_eq!(elements("[]").unwrap().count(), 0);
        assert_eq!(elements(" [ ] ").unwrap().count(), 0);
        assert!(elements(r#"[{"a":"x}]"#).is_none());
        assert!(elements("{}").is_none());
    }

    #[test]
    fn a_missing_or_broken_file_has_no_records() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(Kind::Checks, &dir.path().join("none.json")).is_empty());
        std::fs::write(dir.path().join("bad.json"), "[{").unwrap();
        assert!(read(Kind::Checks, &dir.path().join("bad.json")).is_empty());
        let check = CheckResult {
            table: "t".into(),
            check: "c".into(),
            kind: "not_null".into(),
            severity: "error".into(),
            passed: true,
            value: None,
            message: String::new(),
            evaluated_at: Utc::now(),
        };
        assert_eq!(Record::new(Kind::Checks, &check).unwrap().table, "t");
    }
}
