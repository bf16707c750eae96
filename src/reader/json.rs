//! JSON sources: one document (`format: json`) or one document per line (`ndjson`) as a frame.
//! The records are the document itself when it is a list, else the list at `read.records`
//! (`rows`, `data.items`); `read.envelope` copies fields of the document onto every record;
//! nested objects are flattened into dotted names (`provenance.source_url`, which bronze makes
//! `provenance_source_url`); lists of plain values become list columns (an `explode` step makes
//! rows of them). Types are kept: text, integers, numbers, booleans; a column whose values
//! disagree holds them as JSON text. Malformed JSON is located by line and column.

use super::json_value::Json;
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
fn records_of<'a>(
    path: &Path,
    text: &'a [u8],
    opts: &ReadOptions,
    lines: bool,
) -> Result<(Vec<Json<'a>>, Envelope<'a>), ReadError> {
    if lines {
        if opts.records.is_some() || !opts.envelope.is_empty() {
            return Err(err(path, "`records` and `envelope` apply to `format: json` (one document), not `ndjson`"));
        }
        Ok((json_lines(path, text)?, vec![]))
    } else {
        let doc = Json::parse(text).map_err(|e| located(path, &e, 0))?;
        document_records(path, doc, opts)
    }
}

/// The frame of records as a JSON read makes it (for `jobforge test` inputs of JSON sources).
pub fn records_frame(records: &[Value]) -> Result<DataFrame, ReadError> {
    let records: Vec<Json> = records.iter().map(Json::of_value).collect();
    frame(Path::new("test input"), &records, &[])
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

fn json_lines<'a>(path: &Path, text: &'a [u8]) -> Result<Vec<Json<'a>>, ReadError> {
    let mut records = Vec::new();
    for (i, line) in text.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value = Json::parse(line).map_err(|e| located(path, &e, i))?;
        if !matches!(value, Json::Object(_)) {
            let mut e = err(path, format!("line {} is {}, not a JSON object", i + 1, value.kind_name()));
            e.at = Some((i + 1, 1));
            return Err(e);
        }
        records.push(value);
    }
    Ok(records)
}

/// Fields of the document copied onto every record, by name.
type Envelope<'a> = Vec<(String, Json<'a>)>;

/// The records of a document and the envelope fields to copy onto each.
fn document_records<'a>(
    path: &Path,
    doc: Json<'a>,
    opts: &ReadOptions,
) -> Result<(Vec<Json<'a>>, Envelope<'a>), ReadError> {
    let Json::Object(top) = doc else {
        if !opts.envelope.is_empty() {
            return Err(err(path, "`envelope` needs a document that is an object; this one is a list"));
        }
        return match (doc, &opts.records) {
            (Json::List(items), None) => Ok((objects(path, "the document", items)?, vec![])),
            (_, Some(records)) => Err(err(path, format!("`records: {records}` needs a document that is an object; this one is a list of records, so leave `records` out"))),
            (other, None) => Err(err(path, format!("the document is {}, not a list of records or an object holding one", other.kind_name()))),
        };
    };
    let mut envelope = Vec::new();
    for name in &opts.envelope {
        match top.iter().find(|(k, _)| k == name) {
            Some((_, v)) => envelope.push((name.clone(), v.clone())),
            None => return Err(missing_field(path, name, "the document", &top)),
        }
    }
    let Some(records_path) = &opts.records else {
        let lists: Vec<String> = top
            .iter()
            .filter_map(|(k, v)| match v {
                Json::List(a) => Some(format!("`{k}` ({} items)", a.len())),
                _ => None,
            })
            .collect();
        let hint = if lists.is_empty() { String::new() } else { format!(": {}", lists.join(", ")) };
        return Err(err(
            path,
            format!("the document is an object; set `read.records` to the field holding the list of records{hint}"),
        ));
    };
    // Down the dotted path, taking each field out of its (owned) parent.
    let mut here = Json::Object(top);
    let segments: Vec<&str> = records_path.split('.').collect();
    for (i, segment) in segments.iter().enumerate() {
        let at = if i == 0 { "the document".to_string() } else { format!("`{}`", segments[..i].join(".")) };
        let Json::Object(mut parent) = here else {
            return Err(err(path, format!("`records: {records_path}`: {at} is {}, not an object", here.kind_name())));
        };
        here = match parent.iter().position(|(k, _)| k == segment) {
            Some(i) => parent.swap_remove(i).1,
            None => return Err(missing_field(path, segment, &at, &parent)),
        };
    }
    match here {
        Json::List(items) => Ok((objects(path, &format!("`{records_path}`"), items)?, envelope)),
        other => Err(err(path, format!("`records: {records_path}` is {}, not a list of records", other.kind_name()))),
    }
}

/// The records, when each is an object.
fn objects<'a>(path: &Path, what: &str, items: Vec<Json<'a>>) -> Result<Vec<Json<'a>>, ReadError> {
    match items.iter().enumerate().find(|(_, v)| !matches!(v, Json::Object(_))) {
        Some((i, bad)) => Err(err(path, format!("{what}: item {} is {}, not an object", i + 1, bad.kind_name()))),
        None => Ok(items),
    }
}

fn missing_field(path: &Path, name: &str, at: &str, object: &[(Cow<str>, Json)]) -> ReadError {
    let keys: Vec<String> = object.iter().map(|(k, _)| format!("`{k}`")).collect();
    let hint = crate::diag::did_you_mean(name, object.iter().map(|(k, _)| k.as_ref()))
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    err(path, format!("no field `{name}` in {at}{hint}; it has {}", keys.join(", ")))
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

fn kind(v: &Json) -> Kind {
    match v {
        Json::Null => Kind::Null,
        Json::Bool(_) => Kind::Bool,
        Json::Number(n) if n.is_i64() => Kind::Int,
        Json::Number(_) => Kind::Float,
        Json::Text(_) => Kind::Text,
        Json::List(items) if items.iter().all(|x| !matches!(x, Json::List(_) | Json::Object(_))) => Kind::List,
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
    let values: Vec<(&String, Json)> = fields.into_iter().map(|(k, v)| (k, Json::of_value(v))).collect();
    let mut flat = Vec::new();
    for (k, v) in &values {
        flatten(k.to_string(), v, &mut flat);
    }
    flat.into_iter().map(|(name, _)| name).collect()
}

/// Adds `value` under `name` to a flat record, objects spread into dotted names.
fn flatten<'r, 'a>(name: String, value: &'r Json<'a>, out: &mut Vec<(String, &'r Json<'a>)>) {
    match value {
        Json::Object(o) if !o.is_empty() => {
            for (k, v) in o {
                flatten(format!("{name}.{k}"), v, out);
            }
        }
        v => out.push((name, v)),
    }
}

/// The cells of a frame's columns, by flattened name in order of first appearance.
struct Columns<'r, 'a> {
    cells: IndexMap<String, Vec<Option<&'r Json<'a>>>>,
    height: usize,
    /// The column placed last: records that list their fields in the same order find each
    /// next one without hashing its name.
    last: Option<usize>,
}

impl<'r, 'a> Columns<'r, 'a> {
    /// Places `value`, the field `name` of record `row`, objects spread into dotted names (a name
    /// given twice keeps the later value).
    fn place(&mut self, name: &mut String, value: &'r Json<'a>, row: usize) {
        match value {
            Json::Object(fields) if !fields.is_empty() => {
                let len = name.len();
                for (k, v) in fields {
                    name.push('.');
                    name.push_str(k);
                    self.place(name, v, row);
                    name.truncate(len);
                }
            }
            v => {
                let next = self.last.map_or(0, |i| i + 1);
                let i = match self.cells.get_index(next) {
                    Some((n, _)) if n == name => next,
                    _ => match self.cells.get_index_of(name.as_str()) {
                        Some(i) => i,
                        None => self.cells.insert_full(name.clone(), vec![None; self.height]).0,
                    },
                };
                if let Some(cell) = self.cells.get_index_mut(i).and_then(|(_, c)| c.get_mut(row)) {
                    *cell = Some(v);
                }
                self.last = Some(i);
            }
        }
    }
}

/// The frame of flattened records, envelope columns last.
fn frame(path: &Path, records: &[Json], envelope: &[(String, Json)]) -> Result<DataFrame, ReadError> {
    let height = records.len();
    let mut columns = Columns { cells: IndexMap::new(), height, last: None };
    let mut name = String::new();
    for (row, record) in records.iter().enumerate() {
        columns.last = None;
        if let Json::Object(fields) = record {
            for (k, v) in fields {
                name.clear();
                name.push_str(k);
                columns.place(&mut name, v, row);
            }
        }
    }
    let mut columns = columns.cells;
    for (name, value) in envelope_fields(path, envelope, |name| columns.contains_key(name))? {
        columns.insert(name, vec![Some(value); height]);
    }
    let series = columns.into_iter().map(|(name, cells)| column(&name, &cells)).collect::<Vec<_>>();
    DataFrame::new(height, series).map_err(|e| err(path, e.to_string()))
}

/// The envelope's fields, flattened, as columns of every record; an error where one is also a
/// field of the records (`taken`).
fn envelope_fields<'r, 'a>(
    path: &Path,
    envelope: &'r [(String, Json<'a>)],
    taken: impl Fn(&str) -> bool,
) -> Result<Vec<(String, &'r Json<'a>)>, ReadError> {
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
fn column(name: &str, cells: &[Option<&Json>]) -> Column {
    let k = cells.iter().flatten().fold(Kind::Null, |k, v| merge(k, kind(v)));
    let name: PlSmallStr = name.into();
    match k {
        Kind::Bool => Column::new(name, cells.iter().map(|c| c.and_then(Json::as_bool)).collect::<Vec<_>>()),
        Kind::Int => Column::new(name, cells.iter().map(|c| c.and_then(Json::as_i64)).collect::<Vec<_>>()),
        Kind::Float => Column::new(name, cells.iter().map(|c| c.and_then(Json::as_f64)).collect::<Vec<_>>()),
        Kind::List => {
            let mut builder = ListStringChunkedBuilder::new(name, cells.len(), cells.len() * 2);
            for cell in cells {
                match cell {
                    Some(Json::List(items)) => {
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

/// A value as text: texts as they are (borrowed), null as null, anything else as JSON.
fn scalar_text<'r>(v: &'r Json) -> Option<Cow<'r, str>> {
    match v {
        Json::Null => None,
        Json::Text(s) => Some(Cow::Borrowed(s.as_ref())),
        other => Some(Cow::Owned(other.to_value().to_string())),
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
