//! JSON sources: one document (`format: json`) or one document per line (`ndjson`) as a frame.
//! The records are the document itself when it is a list, else the list at `read.records`
//! (`rows`, `data.items`); `read.envelope` copies fields of the document onto every record;
//! nested objects are flattened into dotted names (`provenance.source_url`, which bronze makes
//! `provenance_source_url`); lists of plain values become list columns (an `explode` step makes
//! rows of them). Types are kept: text, integers, numbers, booleans; a column whose values
//! disagree holds them as JSON text. Malformed JSON is located by line and column.

use super::{err, ReadError};
use crate::config::sources::ReadOptions;
use indexmap::IndexMap;
use polars::prelude::*;
use serde_json::Value;
use std::borrow::Cow;
use std::path::Path;

/// Reads a JSON document (`lines` false) or JSON lines into a frame.
pub fn read_json(path: &Path, opts: &ReadOptions, lines: bool) -> Result<DataFrame, ReadError> {
    let bytes = read_bytes(path)?;
    let (records, envelope) = records_of(path, text_of(&bytes), opts, lines)?;
    frame(path, &records, &envelope)
}

/// The names of the columns `read_json` makes, in its order, without making the columns: in
/// one pass over the text (`json_names`), or, where that pass finds something to explain, by
/// reading the file as `read_json` does, which gives its error (or, for a document the pass
/// does not take, such as a key given twice, its frame).
pub fn read_json_names(path: &Path, opts: &ReadOptions, lines: bool) -> Result<Vec<String>, ReadError> {
    let bytes = read_bytes(path)?;
    if let Some(names) = super::json_names::scan(text_of(&bytes), opts, lines) {
        return Ok(names);
    }
    let (records, envelope) = records_of(path, text_of(&bytes), opts, lines)?;
    let df = frame(path, &records, &envelope)?;
    Ok(df.get_column_names().iter().map(|s| s.to_string()).collect())
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, ReadError> {
    std::fs::read(path).map_err(|e| err(path, format!("cannot read: {e}")))
}

/// The file's text without its byte order mark.
fn text_of(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes)
}

/// The records of a JSON file's `text`, and the envelope fields to copy onto each.
fn records_of(path: &Path, text: &[u8], opts: &ReadOptions, lines: bool) -> Result<(Vec<Value>, Envelope), ReadError> {
    if lines {
        if opts.records.is_some() || !opts.envelope.is_empty() {
            return Err(err(path, "`records` and `envelope` apply to `format: json` (one document), not `ndjson`"));
        }
        Ok((json_lines(path, text)?, vec![]))
    } else {
        let doc: Value = serde_json::from_slice(text).map_err(|e| located(path, &e, 0))?;
        document_records(path, doc, opts)
    }
}

/// The frame of records as a JSON read makes it (for `jobforge test` inputs of JSON sources).
pub fn records_frame(records: &[Value]) -> Result<DataFrame, ReadError> {
    frame(Path::new("test input"), records, &[])
}

/// A serde_json error at its line and column (lines counted from `first_line`).
fn located(path: &Path, e: &serde_json::Error, first_line: usize) -> ReadError {
    let message = e.to_string();
    // serde_json ends its message with " at line L column C"; the location is given apart.
    let message = match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message,
    };
    let mut out = err(path, format!("malformed JSON: {message}"));
    if e.line() > 0 {
        out.at = Some((e.line() + first_line, e.column()));
    }
    out
}

fn json_lines(path: &Path, text: &[u8]) -> Result<Vec<Value>, ReadError> {
    let mut records = Vec::new();
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value: Value = serde_json::from_slice(line).map_err(|e| located(path, &e, i))?;
        if !value.is_object() {
            let mut e = err(path, format!("line {} is {}, not a JSON object", i + 1, kind_name(&value)));
            e.at = Some((i + 1, 1));
            return Err(e);
        }
        records.push(value);
    }
    Ok(records)
}

/// Fields of the document copied onto every record, by name.
type Envelope = Vec<(String, Value)>;

/// The records of a document and the envelope fields to copy onto each.
fn document_records(path: &Path, doc: Value, opts: &ReadOptions) -> Result<(Vec<Value>, Envelope), ReadError> {
    let Value::Object(top) = doc else {
        if !opts.envelope.is_empty() {
            return Err(err(path, "`envelope` needs a document that is an object; this one is a list"));
        }
        return match (doc, &opts.records) {
            (Value::Array(items), None) => Ok((objects(path, "the document", items)?, vec![])),
            (_, Some(records)) => Err(err(path, format!("`records: {records}` needs a document that is an object; this one is a list of records, so leave `records` out"))),
            (other, None) => Err(err(path, format!("the document is {}, not a list of records or an object holding one", kind_name(&other)))),
        };
    };
    let mut envelope = Vec::new();
    for name in &opts.envelope {
        match top.get(name) {
            Some(v) => envelope.push((name.clone(), v.clone())),
            None => return Err(missing_field(path, name, "the document", &top)),
        }
    }
    let Some(records_path) = &opts.records else {
        let lists: Vec<String> =
            top.iter().filter_map(|(k, v)| v.as_array().map(|a| format!("`{k}` ({} items)", a.len()))).collect();
        let hint = if lists.is_empty() { String::new() } else { format!(": {}", lists.join(", ")) };
        return Err(err(
            path,
            format!("the document is an object; set `read.records` to the field holding the list of records{hint}"),
        ));
    };
    // Down the dotted path, taking each field out of its (owned) parent.
    let mut here = Value::Object(top);
    let segments: Vec<&str> = records_path.split('.').collect();
    for (i, segment) in segments.iter().enumerate() {
        let at = if i == 0 { "the document".to_string() } else { format!("`{}`", segments[..i].join(".")) };
        let Value::Object(mut parent) = here else {
            return Err(err(path, format!("`records: {records_path}`: {at} is {}, not an object", kind_name(&here))));
        };
        here = match parent.remove(*segment) {
            Some(v) => v,
            None => return Err(missing_field(path, segment, &at, &parent)),
        };
    }
    match here {
        Value::Array(items) => Ok((objects(path, &format!("`{records_path}`"), items)?, envelope)),
        other => Err(err(path, format!("`records: {records_path}` is {}, not a list of records", kind_name(&other)))),
    }
}

/// The records, when each is an object.
fn objects(path: &Path, what: &str, items: Vec<Value>) -> Result<Vec<Value>, ReadError> {
    match items.iter().enumerate().find(|(_, v)| !v.is_object()) {
        Some((i, bad)) => Err(err(path, format!("{what}: item {} is {}, not an object", i + 1, kind_name(bad)))),
        None => Ok(items),
    }
}

fn missing_field(path: &Path, name: &str, at: &str, object: &serde_json::Map<String, Value>) -> ReadError {
    let keys: Vec<String> = object.keys().map(|k| format!("`{k}`")).collect();
    let hint = crate::diag::did_you_mean(name, object.keys().map(String::as_str))
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    err(path, format!("no field `{name}` in {at}{hint}; it has {}", keys.join(", ")))
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// What a column's values are, merged over its rows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Null,
    Bool,
    Int,
    Float,
    Text,
    List,
    Json,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(n) if n.is_i64() => Kind::Int,
        Value::Number(_) => Kind::Float,
        Value::String(_) => Kind::Text,
        Value::Array(items) if items.iter().all(|x| !x.is_array() && !x.is_object()) => Kind::List,
        _ => Kind::Json,
    }
}

fn merge(a: Kind, b: Kind) -> Kind {
    match (a, b) {
        (Kind::Null, k) | (k, Kind::Null) => k,
        (a, b) if a == b => a,
        (Kind::Int, Kind::Float) | (Kind::Float, Kind::Int) => Kind::Float,
        _ => Kind::Json,
    }
}

/// The columns a record's fields make, nested objects as dotted names (for the column check of
/// `jobforge test` inputs).
pub fn field_names<'a>(fields: impl IntoIterator<Item = (&'a String, &'a Value)>) -> Vec<String> {
    let mut flat = Vec::new();
    for (k, v) in fields {
        flatten(k.clone(), v, &mut flat);
    }
    flat.into_iter().map(|(name, _)| name).collect()
}

/// Adds `value` under `name` to a flat record, objects spread into dotted names.
fn flatten<'a>(name: String, value: &'a Value, out: &mut Vec<(String, &'a Value)>) {
    match value {
        Value::Object(o) if !o.is_empty() => {
            for (k, v) in o {
                flatten(format!("{name}.{k}"), v, out);
            }
        }
        v => out.push((name, v)),
    }
}

/// The frame of flattened records, envelope columns last.
fn frame(path: &Path, records: &[Value], envelope: &[(String, Value)]) -> Result<DataFrame, ReadError> {
    let height = records.len();
    let mut columns: IndexMap<String, Vec<Option<&Value>>> = IndexMap::new();
    let mut flat = Vec::new();
    for (row, record) in records.iter().enumerate() {
        flat.clear();
        if let Value::Object(o) = record {
            for (k, v) in o {
                flatten(k.clone(), v, &mut flat);
            }
        }
        for (name, value) in flat.drain(..) {
            let cells = columns.entry(name).or_insert_with(|| vec![None; height]);
            cells[row] = Some(value);
        }
    }
    for (name, value) in envelope_fields(path, envelope, |name| columns.contains_key(name))? {
        columns.insert(name, vec![Some(value); height]);
    }
    let series = columns.into_iter().map(|(name, cells)| column(&name, &cells)).collect::<Vec<_>>();
    DataFrame::new(height, series).map_err(|e| err(path, e.to_string()))
}

/// The envelope's fields, flattened, as columns of every record; an error where one is also a
/// field of the records (`taken`).
fn envelope_fields<'a>(
    path: &Path,
    envelope: &'a [(String, Value)],
    taken: impl Fn(&str) -> bool,
) -> Result<Vec<(String, &'a Value)>, ReadError> {
    let mut flat = Vec::new();
    for (name, value) in envelope {
        flatten(name.clone(), value, &mut flat);
    }
    // A field of the records, or one the envelope already gave.
    let clash = flat.iter().enumerate().find(|(i, (name, _))| taken(name) || flat[..*i].iter().any(|(n, _)| n == name));
    if let Some((_, (name, _))) = clash {
        return Err(err(
            path,
            format!("envelope field `{name}` is also a field of the records; leave it out of `envelope`, or rename the records' field in bronze"),
        ));
    }
    Ok(flat)
}

/// One column from its cells (a missing field is null).
fn column(name: &str, cells: &[Option<&Value>]) -> Column {
    let k = cells.iter().flatten().fold(Kind::Null, |k, v| merge(k, kind(v)));
    let name: PlSmallStr = name.into();
    match k {
        Kind::Bool => Column::new(name, cells.iter().map(|c| c.and_then(Value::as_bool)).collect::<Vec<_>>()),
        Kind::Int => Column::new(name, cells.iter().map(|c| c.and_then(Value::as_i64)).collect::<Vec<_>>()),
        Kind::Float => Column::new(name, cells.iter().map(|c| c.and_then(Value::as_f64)).collect::<Vec<_>>()),
        Kind::List => {
            let mut builder = ListStringChunkedBuilder::new(name, cells.len(), cells.len() * 2);
            for cell in cells {
                match cell {
                    Some(Value::Array(items)) => {
                        let texts: Vec<Option<Cow<str>>> = items.iter().map(scalar_text).collect();
                        builder.append_trusted_len_iter(texts.iter().map(Option::as_deref));
                    }
                    _ => builder.append_null(),
                }
            }
            builder.finish().into_series().into()
        }
        Kind::Null | Kind::Text | Kind::Json => {
            StringChunked::from_iter_options(name, cells.iter().map(|c| c.and_then(scalar_text))).into_column()
        }
    }
}

/// A value as text: strings as they are (borrowed), null as null, anything else as JSON.
fn scalar_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(Cow::Borrowed(s)),
        other => Some(Cow::Owned(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, opts: ReadOptions) -> Result<DataFrame, ReadError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        std::fs::write(&path, text).unwrap();
        read_json(&path, &opts, false)
    }

    #[test]
    fn records_under_a_path_with_envelope_flattened() {
        let opts = ReadOptions {
            records: Some("data.rows".into()),
            envelope: vec!["scraped_at".into()],
            ..Default::default()
        };
        let doc = r#"{"scraped_at": "2026-01-20", "data": {"rows": [
            {"code": "AI", "n": 1, "p": {"url": "u1", "at": null}, "tags": ["a", "b"]},
            {"code": "AO", "n": 2.5, "p": {"url": "u2"}, "tags": [], "extra": true}]}}"#;
        let df = read(doc, opts).unwrap();
        let names: Vec<&str> = df.get_column_names().iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["code", "n", "p.url", "p.at", "tags", "extra", "scraped_at"]);
        assert_eq!(df.column("n").unwrap().dtype(), &DataType::Float64);
        assert_eq!(df.column("tags").unwrap().dtype(), &DataType::List(Box::new(DataType::String)));
        assert_eq!(df.column("extra").unwrap().bool().unwrap().get(0), None);
        assert_eq!(df.column("scraped_at").unwrap().str().unwrap().get(1), Some("2026-01-20"));
    }

    #[test]
    fn the_header_read_names_the_columns_a_read_makes_and_refuses_what_it_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        let both = |text: &str, opts: &ReadOptions| {
            std::fs::write(&path, text).unwrap();
            let names = read_json_names(&path, opts, false).map_err(|e| e.to_string());
            let frame = read_json(&path, opts, false).map_err(|e| e.to_string());
            (names, frame.map(|df| df.get_column_names().iter().map(|s| s.to_string()).collect::<Vec<_>>()))
        };
        let envelope = |fields: &[&str]| ReadOptions {
            records: Some("data.rows".into()),
            envelope: fields.iter().map(|f| f.to_string()).collect(),
            ..Default::default()
        };
        let doc = r#"{"at": "2026-01-20", "meta": {"v": 2, "by": "x"}, "data": {"rows": [
            {"code": "AI", "p": {"url": "u1"}, "q": {}},
            {"n": 2, "code": "AO", "p": {"url": "u2", "at": null, "deep": {"k": 1}}, "tags": ["a"]}]}}"#;
        let (names, frame) = both(doc, &envelope(&["at", "meta"]));
        assert_eq!(names, frame);
        let names = names.unwrap();
        assert_eq!(names, ["code", "p.url", "q", "n", "p.at", "p.deep.k", "tags", "at", "meta.v", "meta.by"]);
        // An envelope field that is also a field of the records, or given twice.
        for clash in [&["code"][..], &["meta", "meta"][..]] {
            let doc = doc.replace(r#""at": "2026"#, r#""code": "X", "at": "2026"#);
            let (names, frame) = both(&doc, &envelope(clash));
            assert!(names.as_ref().is_err_and(|e| e.contains("is also a field of the records")), "{names:?}");
            assert_eq!(names, frame.map(|_| vec![]));
        }
        let (names, frame) = both("[\n {\"a\": 1},\n {\"a\" 2}\n]", &ReadOptions::default());
        assert!(names.as_ref().is_err_and(|e| e.contains("malformed JSON")), "{names:?}");
        assert_eq!(names, frame.map(|_| vec![]));
    }

    #[test]
    fn the_one_pass_names_are_the_read_names_and_anything_unusual_takes_the_full_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        let opts = |records: Option<&str>, envelope: &[&str]| ReadOptions {
            records: records.map(String::from),
            envelope: envelope.iter().map(|f| f.to_string()).collect(),
            ..Default::default()
        };
        let read_names = |text: &str, opts: &ReadOptions, lines: bool| {
            std::fs::write(&path, text).unwrap();
            let df = read_json(&path, opts, lines).ok()?;
            Some(df.get_column_names().iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        let rows = r#"[{"a": 1, "o": {}, "l": [{"x": 1}], "n": {"m": {"k": null}, "s": "t"}},
                       {"b": true, "a": 2.5, "n": {"s": "u", "z": [1, 2]}}]"#;
        let doc =
            format!(r#"{{"skip": [1, {{"q": 2}}], "env": {{"v": 1, "e": {{}}}}, "d": {{"r": {rows}}}, "at": "x"}}"#);
        let ordinary = [
            (rows.to_string(), opts(None, &[]), false),
            (doc.clone(), opts(Some("d.r"), &["at", "env"]), false),
            ("{\"a\": 1}\n\n{\"b\": {\"c\": 2}, \"a\": 3}\r\n".to_string(), opts(None, &[]), true),
        ];
        for (text, opts, lines) in &ordinary {
            let expected = read_names(text, opts, *lines).unwrap();
            assert_eq!(super::super::json_names::scan(text.as_bytes(), opts, *lines), Some(expected.clone()), "{text}");
            assert_eq!(read_json_names(&path, opts, *lines).unwrap(), expected);
        }
        let unusual = [
            (r#"[{"a": 1, "a": {"x": 2}}]"#.to_string(), opts(None, &[])),
            (r#"[{"a": 1}, 3]"#.to_string(), opts(None, &[])),
            (r#"{"rows": []}"#.to_string(), opts(None, &[])),
            (doc.clone(), opts(Some("d.q"), &[])),
            (doc.clone(), opts(Some("d.r"), &["a"])),
            (doc.clone(), opts(Some("d.r"), &["at", "at"])),
            (doc.replace(r#""at": "x""#, r#""a": "x""#), opts(Some("d.r"), &["a"])),
            (r#"[{"a": 1}] x"#.to_string(), opts(None, &[])),
        ];
        for (text, opts) in &unusual {
            assert_eq!(super::super::json_names::scan(text.as_bytes(), opts, false), None, "{text}");
            std::fs::write(&path, text).unwrap();
            let full = read_json(&path, opts, false).map(|df| df.get_column_names().len());
            let names = read_json_names(&path, opts, false).map(|n| n.len());
            assert_eq!(names.map_err(|e| e.to_string()), full.map_err(|e| e.to_string()), "{text}");
        }
    }

    #[test]
    fn malformed_json_and_wrong_paths_are_explained() {
        let e = read("[\n {\"a\": 1},\n {\"a\" 2}\n]", ReadOptions::default()).unwrap_err();
        assert_eq!(e.at, Some((3, 7)), "{e}");
        assert!(e.message.starts_with("malformed JSON: expected `:`"), "{e}");
        let e = read(r#"{"rows": [], "url": "x"}"#, ReadOptions::default()).unwrap_err();
        assert!(e.message.contains("set `read.records`") && e.message.contains("`rows` (0 items)"), "{e}");
        let opts = ReadOptions { records: Some("row".into()), ..Default::default() };
        let e = read(r#"{"rows": []}"#, opts).unwrap_err();
        assert!(e.message.contains("no field `row` in the document (did you mean `rows`?)"), "{e}");
        let e = read(r#"[{"a": 1}, 3]"#, ReadOptions::default()).unwrap_err();
        assert!(e.message.contains("item 2 is a number"), "{e}");
    }

    #[test]
    fn mixed_values_are_kept_as_json_text() {
        let df = read(r#"[{"a": 1, "t": [[1]]}, {"a": "x", "t": null}]"#, ReadOptions::default()).unwrap();
        let a = df.column("a").unwrap().str().unwrap();
        assert_eq!((a.get(0), a.get(1)), (Some("1"), Some("x")));
        assert_eq!(df.column("t").unwrap().str().unwrap().get(0), Some("[[1]]"));
    }
}
