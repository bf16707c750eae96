//! Records carried from one snapshot into the next as they were written. A records file is a
//! JSON array; each record is kept as its text, and only the fields that place it are decoded:
//! the table it belongs to, its batch, and what orders the file. A table's records that carry
//! over as they are stay one file, linked; these are for the rest: the records of a table
//! taken from the files of the tables the previous run built, transition logs filtered, or
//! merged with this run's, where decoding and encoding every record again would cost more
//! than the rest of a commit.

use super::RecordKind as Kind;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::path::Path;

/// One record as written, with what places it.
#[derive(Clone)]
pub(super) struct Record {
    pub table: String,
    pub batch_id: Option<String>,
    /// For table metadata, the layer.
    pub layer: Option<String>,
    order: (Option<DateTime<Utc>>, String, String),
    text: String,
}

/// The fields any records file places a record by.
#[derive(Default)]
struct Place {
    name: Option<String>,
    table: Option<String>,
    layer: Option<String>,
    check: Option<String>,
    batch_id: Option<String>,
    started_at: Option<DateTime<Utc>>,
}

impl Place {
    /// True once every field that places a record of `kind` is read: the rest of the record
    /// (for table metadata, its columns: nearly all of it) need not be.
    fn complete(&self, kind: Kind) -> bool {
        match kind {
            Kind::Tables => self.name.is_some() && self.layer.is_some() && self.batch_id.is_some(),
            Kind::Transitions => self.table.is_some() && self.batch_id.is_some() && self.started_at.is_some(),
            // A check result has no batch: read to its end.
            Kind::Checks => false,
        }
    }

    /// Reads the place of one record (a JSON object) from its text, up to the last field it
    /// needs.
    fn read(kind: Kind, text: &str) -> serde_json::Result<Place> {
        use serde::de::DeserializeSeed;
        let mut place = Place::default();
        let mut de = serde_json::Deserializer::from_str(text);
        let read = PlaceSeed { kind, place: &mut place }.deserialize(&mut de).and_then(|()| de.end());
        match read {
            Ok(()) => Ok(place),
            // Stopped early: the object is not closed where the reader left it.
            Err(_) if place.complete(kind) => Ok(place),
            Err(e) => Err(e),
        }
    }
}

/// Reads a record's fields into `place`, stopping once it is complete.
struct PlaceSeed<'a> {
    kind: Kind,
    place: &'a mut Place,
}

impl<'de> serde::de::DeserializeSeed<'de> for PlaceSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for PlaceSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a record (a JSON object)")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let p = self.place;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "name" => p.name = map.next_value()?,
                "table" => p.table = map.next_value()?,
                "layer" => p.layer = map.next_value()?,
                "check" => p.check = map.next_value()?,
                "batch_id" => p.batch_id = map.next_value()?,
                "started_at" => p.started_at = map.next_value()?,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
            if p.complete(self.kind) {
                break;
            }
        }
        Ok(())
    }
}

impl Record {
    fn placed(kind: Kind, text: String) -> serde_json::Result<Record> {
        let p = Place::read(kind, &text)?;
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

/// This run's `records` of one kind, encoded.
pub(super) fn encode<T: Serialize + Sync>(kind: Kind, records: &[T]) -> Result<Vec<Record>, String> {
    // On every core: the commit waits for it, and a run from nothing has a megabyte of them.
    use rayon::prelude::*;
    polars_core::runtime::THREAD_POOL.install(|| records.par_iter().map(|r| Record::new(kind, r)).collect())
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
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            // A string: on to its closing quote, stepping over escapes.
            b'"' => loop {
                i += 1 + memchr::memchr2(b'"', b'\\', bytes.get(i + 1..)?)?;
                if bytes[i] == b'"' {
                    break;
                }
                i += 1;
            },
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.checked_sub(1)?,
            b',' if depth == 0 => cuts.push(i + 1),
            _ => {}
        }
        i += 1;
    }
    if depth != 0 {
        return None;
    }
    cuts.push(bytes.len() + 1);
    let pieces: Vec<&str> = cuts.windows(2).map(|w| inner[w[0]..w[1] - 1].trim()).collect();
    let empty = pieces.len() == 1 && pieces[0].is_empty();
    Some(pieces.into_iter().filter(move |_| !empty))
}

/// Writes `records` as one JSON array, in the file's order (records that tie keep the order
/// given), as a new file: one already at `path` (a hard link of a previous snapshot's, maybe)
/// is unlinked first, never written through.
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
    let _ = std::fs::remove_file(path);
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
    fn a_record_is_placed_by_its_fields_in_any_order_and_read_no_further_than_needed() {
        // Table metadata as written: name, layer, then the batch, then the bulk.
        let text = r#"{"name":"t","layer":"gold","batch_id":"b1","columns":[{"examples":["x,}]"]}]}"#;
        let r = Record::placed(Kind::Tables, text.into()).unwrap();
        assert_eq!((r.table.as_str(), r.layer.as_deref(), r.batch_id.as_deref()), ("t", Some("gold"), Some("b1")));
        assert_eq!(r.text, text, "carried as written");
        // Fields in another order, and a record without a batch (read to its end).
        let r = Record::placed(Kind::Tables, r#"{"columns":[1],"batch_id":"b2","layer":"silver","name":"u"}"#.into())
            .unwrap();
        assert_eq!((r.table.as_str(), r.layer.as_deref(), r.batch_id.as_deref()), ("u", Some("silver"), Some("b2")));
        let r = Record::placed(Kind::Tables, r#"{"name":"v","layer":"staged"}"#.into()).unwrap();
        assert_eq!((r.table.as_str(), r.batch_id), ("v", None));
        // Broken before its place is complete: an error, not a record.
        assert!(Record::placed(Kind::Tables, r#"{"name":"w","layer":"#.into()).is_err());
        assert!(Record::placed(Kind::Checks, r#"{"table":"c","check":"k","passed":tru}"#.into()).is_err());
        assert!(Record::placed(Kind::Transitions, "[1]".into()).is_err());
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
