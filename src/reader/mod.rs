//! Reading raw source files (CSV in UTF-8, Latin-1 or Windows-1252; Excel; Parquet; JSON and
//! NDJSON) into data frames with their header names as published, and reading headers alone
//! for compile-time checks. CSV and Excel cells are always read as text so codes keep their
//! leading zeros; bronze casts explicitly. The same data reads the same from either format:
//! empty cells (and the source's `null_values`) are null, Excel dates are ISO text
//! (`2024-03-15`, `2025-01-02T13:45:00`), durations ISO 8601 (`PT36H5M0S`), booleans
//! `true`/`false`.

mod csv_records;
pub mod json;
mod json_names;
mod json_value;
mod read_ahead;

pub use read_ahead::ReadAhead;

use crate::config::sources::{Encoding, Format, RaggedRows, ReadOptions, SheetRef};
use polars::prelude::*;
use std::io::Read;
use std::path::Path;

/// A source file that could not be read, with the file, where (if known) and what went wrong.
#[derive(Debug, thiserror::Error)]
#[error("{path}{}: {message}", at.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
pub struct ReadError {
    pub path: String,
    /// Line and column in the file, where known.
    pub at: Option<(usize, usize)>,
    pub message: String,
}

fn err(path: &Path, message: impl Into<String>) -> ReadError {
    ReadError { path: path.display().to_string(), at: None, message: message.into() }
}

/// The format of a file: the declared one, else guessed from its extension.
pub fn format_of(path: &Path, declared: Option<Format>) -> Format {
    declared.unwrap_or_else(|| {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("xlsx" | "xlsm" | "xls") => Format::Xlsx,
            Some("parquet") => Format::Parquet,
            Some("json") => Format::Json,
            Some("ndjson" | "jsonl") => Format::Ndjson,
            _ => Format::Csv,
        }
    })
}

/// Reads the whole file into a frame whose column names are the published headers (BOM
/// removed, blanks named `column_N`, repeats suffixed `_2`, `_3`).
pub fn read_table(path: &Path, format: Format, opts: &ReadOptions) -> Result<DataFrame, ReadError> {
    let mut df = match format {
        Format::Csv => read_csv(path, opts)?,
        Format::Xlsx => {
            with_nulls(read_excel(path, opts, None)?, &opts.nulls()).map_err(|e| err(path, e.to_string()))?
        }
        Format::Parquet => {
            let file = std::fs::File::open(path).map_err(|e| err(path, e.to_string()))?;
            ParquetReader::new(file).finish().map_err(|e| err(path, e.to_string()))?
        }
        Format::Json => json::read_json(path, opts, false)?,
        Format::Ndjson => json::read_json(path, opts, true)?,
    };
    for name in &opts.text_columns {
        if let Some(c) = df.column(name).ok().filter(|c| c.dtype() != &DataType::String) {
            let cast = c.cast(&DataType::String).map_err(|e| err(path, e.to_string()))?;
            df.with_column(cast).map_err(|e| err(path, e.to_string()))?;
        }
    }
    Ok(df)
}

/// About how many bytes finding the header of a `format` file of `size` bytes reads: a JSON
/// file whole (its header is the fields of all its records), a CSV file its first chunk, a
/// parquet file its footer (counted as nothing).
pub fn header_bytes(size: u64, format: Format) -> u64 {
    match format {
        Format::Json | Format::Ndjson | Format::Xlsx => size,
        Format::Csv => size.min(HEADER_CHUNK as u64),
        Format::Parquet => 0,
    }
}

/// The header names alone, reading as little of the file as the format allows (for CSV, its
/// first chunk, checked as a whole read would check it, without Polars).
pub fn read_header(path: &Path, format: Format, opts: &ReadOptions) -> Result<Vec<String>, ReadError> {
    match format {
        Format::Csv => {
            let (text, _) = csv_text(path, opts, true)?;
            let delimiter = opts.delimiter.unwrap_or(',');
            Ok(header_names(&text, opts.skip_rows.unwrap_or(0), delimiter, opts.header.unwrap_or(true)))
        }
        Format::Xlsx => {
            let df = read_excel(path, opts, Some(1))?;
            Ok(df.get_column_names().iter().map(|s| s.to_string()).collect())
        }
        Format::Json => json::read_json_names(path, opts, false),
        Format::Ndjson => json::read_json_names(path, opts, true),
        Format::Parquet => {
            // The footer's schema: nothing of the data is read.
            let file = std::fs::File::open(path).map_err(|e| err(path, e.to_string()))?;
            let schema = ParquetReader::new(file).schema().map_err(|e| err(path, e.to_string()))?;
            Ok(schema.iter_names().map(|n| n.to_string()).collect())
        }
    }
}

fn read_csv(path: &Path, opts: &ReadOptions) -> Result<DataFrame, ReadError> {
    let (text, truncate) = csv_text(path, opts, false)?;
    let delimiter = opts.delimiter.unwrap_or(',');
    // The structural check runs only when the read fails: it says where and what to fix.
    parse_csv(path, &text, opts, truncate).map_err(|e| match csv_problem(&text, delimiter, skip(opts), true) {
        Some(problem) if !truncate => ReadError { at: Some(problem.at), ..err(path, problem.message) },
        _ => e,
    })
}

/// Source files at least this big are read in batches of about this many bytes where the
/// table's layers allow it (see `exec::streamed`), so the raw file is never whole in memory.
pub const BATCH_BYTES: u64 = 64 << 20;

/// Whether `read_csv_batches` reads this source: a CSV file with its header on the first line.
pub fn batchable(format: Format, opts: &ReadOptions) -> bool {
    format == Format::Csv && opts.skip_rows.unwrap_or(0) == 0 && opts.header.unwrap_or(true)
}

/// Reads a CSV file (see `batchable`) about `batch_bytes` at a time, each batch whole records
/// under the file's header, into frames exactly as `read_table` reads the whole file (names,
/// nulls, encodings, errors located by the line in the file), handing each to `each` in order.
pub fn read_csv_batches(
    path: &Path,
    opts: &ReadOptions,
    batch_bytes: usize,
    mut each: impl FnMut(DataFrame) -> Result<(), String>,
) -> Result<(), String> {
    let mut file = std::fs::File::open(path).map_err(|e| err(path, format!("cannot open: {e}")).to_string())?;
    let delimiter = opts.delimiter.unwrap_or(',');
    if !delimiter.is_ascii() {
        return Err(err(path, format!("delimiter `{delimiter}` must be a single ASCII character")).to_string());
    }
    let truncate = opts.ragged_rows == Some(RaggedRows::Truncate);
    let encoding = opts.encoding.unwrap_or(Encoding::Utf8);
    let (mut pending, mut header, mut eof, mut first) = (Vec::new(), None::<Vec<u8>>, false, true);
    // Lines of the file before `pending`, less the header's: what a batch's line numbers shift by.
    let mut shift = 0;
    let batch_bytes = batch_bytes.max(1);
    let mut want = batch_bytes;
    loop {
        while !eof && pending.len() < want {
            let n = (&mut file)
                .take((want - pending.len()) as u64)
                .read_to_end(&mut pending)
                .map_err(|e| err(path, format!("cannot read: {e}")).to_string())?;
            eof = n == 0;
        }
        if header.is_none() {
            match records_end(&pending, 1) {
                Some(end) => header = Some(pending.drain(..end).collect()),
                None if eof => header = Some(std::mem::take(&mut pending)),
                None => {
                    // A header longer than a batch: read on until it ends.
                    want = pending.len() + batch_bytes;
                    continue;
                }
            }
        }
        let cut = if eof { pending.len() } else { last_record_end(&pending) };
        if cut == 0 && !eof {
            // One record longer than a batch: read on until it ends.
            want = pending.len() + batch_bytes;
            continue;
        }
        let rest = pending.split_off(cut);
        let lines = memchr::memchr_iter(b'\n', &pending).count();
        let mut bytes = header.clone().unwrap_or_default();
        bytes.extend_from_slice(&pending);
        pending = rest;
        let located = |mut e: ReadError| {
            e.at = e.at.map(|(line, column)| (if line > 1 { line + shift } else { line }, column));
            e.to_string()
        };
        let text = decode(path, bytes, encoding, false).map_err(located)?;
        if text.trim().is_empty() {
            return Err(err(path, "the file is empty: no header row").to_string());
        }
        if !truncate {
            if let Some(problem) = csv_problem(&text, delimiter, 0, true) {
                // The message names the line too: the line in the file, not in the batch.
                let (line, in_file) = (problem.at.0, problem.at.0 + shift);
                let message = problem.message.replacen(&format!("line {line} "), &format!("line {in_file} "), 1);
                return Err(located(ReadError { at: Some(problem.at), ..err(path, message) }));
            }
        }
        // A batch of a large file is parsed by Polars' reader, on every core.
        let df = parse_csv_parallel(path, &text, opts, truncate)
            .and_then(|df| with_nulls(df, &opts.nulls()).map_err(|e| err(path, e.to_string())))
            .map_err(located)?;
        if first || df.height() > 0 {
            each(df)?;
        }
        first = false;
        shift += lines;
        if eof && pending.is_empty() {
            return Ok(());
        }
        want = batch_bytes;
    }
}

/// The byte offset just past the last line end outside quotes in `bytes` (0 when none).
fn last_record_end(bytes: &[u8]) -> usize {
    let (mut in_quotes, mut end) = (false, 0);
    for at in memchr::memchr2_iter(b'"', b'\n', bytes) {
        match bytes[at] {
            b'"' => in_quotes = !in_quotes,
            _ if !in_quotes => end = at + 1,
            _ => {}
        }
    }
    end
}

/// Lines before a CSV file's first record.
fn skip(opts: &ReadOptions) -> usize {
    opts.skip_rows.unwrap_or(0)
}

/// Parses CSV text into a frame named by its header row, the source's null values null.
fn parse_csv(path: &Path, text: &str, opts: &ReadOptions, truncate: bool) -> Result<DataFrame, ReadError> {
    let has_header = opts.header.unwrap_or(true);
    let delimiter = opts.delimiter.unwrap_or(',');
    let nulls = opts.nulls();
    let layout = csv_records::Layout {
        delimiter: delimiter as u8,
        skip: skip(opts),
        truncate,
        nulls: &nulls,
        header: has_header,
    };
    let df = csv_records::text_frame(text, &layout).map_err(|e| err(path, format!("not readable as CSV: {e}")))?;
    if has_header && df.height() == 0 {
        // A header and no rows: an empty table with the header's columns.
        let names = header_names(text, skip(opts), delimiter, true);
        let columns = names.into_iter().map(|n| Column::new(n.into(), Vec::<String>::new())).collect();
        return DataFrame::new_infer_height(columns).map_err(|e| err(path, e.to_string()));
    }
    with_header_row(df, has_header).map_err(|e| err(path, e.to_string()))
}

/// `parse_csv` by Polars' reader (see `csv_records::polars_text_frame`), without the null
/// values; it reads as `parse_csv` does (see `csv_records`' tests).
fn parse_csv_parallel(path: &Path, text: &str, opts: &ReadOptions, truncate: bool) -> Result<DataFrame, ReadError> {
    let has_header = opts.header.unwrap_or(true);
    let layout = csv_records::Layout {
        delimiter: opts.delimiter.unwrap_or(',') as u8,
        skip: skip(opts),
        truncate,
        nulls: &[],
        header: has_header,
    };
    let df = csv_records::polars_text_frame(text, &layout)
        .map_err(|e| err(path, format!("not readable as CSV: {}", e.to_string().lines().next().unwrap_or_default())))?;
    with_header_row(df, has_header).map_err(|e| err(path, e.to_string()))
}

/// The column names of a CSV text: its first non-blank record after `skip` lines (blank and
/// repeated names made unique as `with_header_row` makes them), or `column_N` without a header.
fn header_names(text: &str, skip: usize, delimiter: char, has_header: bool) -> Vec<String> {
    let mut rest = &text[if skip == 0 { 0 } else { records_end(text.as_bytes(), skip).unwrap_or(text.len()) }..];
    while !rest.is_empty() {
        let end = records_end(rest.as_bytes(), 1).unwrap_or(rest.len());
        let record = rest[..end].trim_end_matches(['\n', '\r']);
        rest = &rest[end..];
        if record.trim().is_empty() {
            continue;
        }
        let fields = first_record(record, delimiter);
        let names = fields
            .into_iter()
            .enumerate()
            .map(|(i, n)| if !has_header || n.trim().is_empty() { format!("column_{}", i + 1) } else { n })
            .collect();
        return unique_names(names);
    }
    vec![]
}

/// Bytes of a CSV file that a header read checks.
const HEADER_CHUNK: usize = 256 * 1024;

/// The decoded text of a CSV file (with `first_chunk`, of its first `HEADER_CHUNK` bytes, cut at
/// the last whole line, and checked for ragged rows and unclosed quotes unless ragged rows are
/// truncated); and whether they are.
fn csv_text(path: &Path, opts: &ReadOptions, first_chunk: bool) -> Result<(String, bool), ReadError> {
    let skip = opts.skip_rows.unwrap_or(0);
    let file = std::fs::File::open(path).map_err(|e| err(path, format!("cannot open: {e}")))?;
    let size = file.metadata().map_or(0, |m| m.len() as usize);
    // The header check reads the first 256 KiB: enough for the header row of any sane file, and
    // for most files all of it, so that their problems are found before a run starts.
    let limit = if first_chunk { HEADER_CHUNK } else { usize::MAX };
    let mut bytes = Vec::with_capacity(size.min(limit));
    let mut file = file.take(limit as u64);
    // A UTF-8 byte order mark is left unread rather than cut from the front of the text read
    // (which moves all of it).
    let mut bom = 0;
    if opts.encoding.unwrap_or(Encoding::Utf8) == Encoding::Utf8 {
        let mut head = Vec::with_capacity(3);
        (&mut file).take(3).read_to_end(&mut head).map_err(|e| err(path, format!("cannot read: {e}")))?;
        bom = if head == b"\xEF\xBB\xBF" { 3 } else { 0 };
        bytes.extend_from_slice(&head[bom..]);
    }
    file.read_to_end(&mut bytes).map_err(|e| err(path, format!("cannot read: {e}")))?;
    let whole = bom + bytes.len() < limit;
    let text = decode(path, bytes, opts.encoding.unwrap_or(Encoding::Utf8), !whole)?;
    let delimiter = opts.delimiter.unwrap_or(',');
    if !delimiter.is_ascii() {
        return Err(err(path, format!("delimiter `{delimiter}` must be a single ASCII character")));
    }
    if text.trim().is_empty() {
        return Err(err(path, "the file is empty: no header row"));
    }
    let truncate = opts.ragged_rows == Some(RaggedRows::Truncate);
    // A whole read checks only when it fails (`read_csv`).
    if !truncate && first_chunk {
        if let Some(problem) = csv_problem(&text, delimiter, skip, whole) {
            let mut e = err(path, problem.message);
            e.at = Some(problem.at);
            return Err(e);
        }
    }
    Ok((text, truncate))
}

/// The byte offset just past the first `n` lines of `text`, a line ending only outside quotes;
/// none when it has fewer.
fn records_end(text: &[u8], n: usize) -> Option<usize> {
    let mut in_quotes = false;
    let mut lines = 0;
    for (i, b) in text.iter().enumerate() {
        match b {
            b'"' => in_quotes = !in_quotes,
            b'\n' if !in_quotes => {
                lines += 1;
                if lines == n {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// The fields of one CSV line (quotes removed, `""` read as `"`).
fn first_record(line: &str, delimiter: char) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if in_quotes && chars.peek() == Some(&'"') => {
                chars.next();
                current.push('"');
            }
            '"' => in_quotes = !in_quotes,
            c if c == delimiter && !in_quotes => fields.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    fields.push(current);
    fields
}

/// A structural CSV problem found by a quote-aware scan: where and what, with the fix.
struct CsvProblem {
    at: (usize, usize),
    message: String,
}

/// Finds the first record with more fields than the first one (the header), after `skip`
/// lines, or, when `text` is the whole file, an unclosed quote (where it opens).
fn csv_problem(text: &str, delimiter: char, skip: usize, whole: bool) -> Option<CsvProblem> {
    let delimiter = delimiter as u8;
    let bytes = text.as_bytes();
    let ragged = |line: usize, fields: usize, n: usize| CsvProblem {
        at: (line, 1),
        message: format!(
            "line {line} has {fields} fields, the header has {n}; fix the row (a delimiter inside a value \
             needs quotes), or set `read: {{ ragged_rows: truncate }}` for this source to drop the extra fields"
        ),
    };
    // The first line counted (after `skip`, not blank) sets how many fields a line may have;
    // returns that number when line `line` has more.
    let over = |expected: &mut Option<usize>, line: usize, fields: usize, blank: bool| {
        if line <= skip || blank {
            return None;
        }
        match *expected {
            None => {
                *expected = Some(fields);
                None
            }
            Some(n) => (fields > n).then_some(n),
        }
    };
    // Jumps from one delimiter, quote or line end to the next; columns are counted only for an
    // error (in characters, from 1).
    let (mut line, mut line_start, mut fields, mut field_start) = (1, 0, 1, 0);
    let mut expected: Option<usize> = None;
    let mut i = 0;
    // Where the next quote at or after `i` is (the text's end when there is none).
    let mut next_quote = memchr::memchr(b'"', bytes).unwrap_or(bytes.len());
    loop {
        // At a line's start, a line without a quote is taken whole: its fields are its
        // delimiters and one, counted many bytes at a time rather than stopping at each.
        while i == line_start {
            if next_quote < i {
                next_quote = memchr::memchr(b'"', &bytes[i..]).map_or(bytes.len(), |n| i + n);
            }
            let Some(end) = memchr::memchr(b'\n', &bytes[i..]).map(|n| i + n) else { break };
            if next_quote < end {
                break;
            }
            let row = &bytes[i..end];
            let fields = 1 + count_of(delimiter, row);
            if let Some(n) = over(&mut expected, line, fields, row.is_empty()) {
                return Some(ragged(line, fields, n));
            }
            line += 1;
            (i, line_start, field_start) = (end + 1, end + 1, end + 1);
        }
        let Some(found) = memchr::memchr3(delimiter, b'"', b'\n', &bytes[i..]) else { break };
        let at = i + found;
        i = at + 1;
        match bytes[at] {
            b'"' if at == field_start => {
                let (opened_line, opened_from) = (line, line_start);
                loop {
                    let Some(next) = memchr::memchr2(b'"', b'\n', &bytes[i..]) else {
                        if !whole {
                            return None;
                        }
                        return Some(CsvProblem {
                            at: (opened_line, text[opened_from..=at].chars().count()),
                            message: "a quoted value opened here is never closed; close it with `\"` (a quote \
                                      inside a value is written `\"\"`)"
                                .into(),
                        });
                    };
                    let q = i + next;
                    i = q + 1;
                    if bytes[q] == b'\n' {
                        line += 1;
                        line_start = i;
                    } else if bytes.get(i) == Some(&b'"') {
                        i += 1;
                    } else {
                        break;
                    }
                }
            }
            // A quote inside a value that did not open with one is text.
            b'"' => {}
            b'\n' => {
                if let Some(n) = over(&mut expected, line, fields, fields == 1 && at == line_start) {
                    return Some(ragged(line, fields, n));
                }
                line += 1;
                line_start = i;
                fields = 1;
                field_start = i;
            }
            _ => {
                fields += 1;
                field_start = i;
            }
        }
    }
    match expected {
        Some(n) if fields > n && line_start < bytes.len() => Some(ragged(line, fields, n)),
        _ => None,
    }
}

/// How many of `bytes` are `byte`: counted in blocks whose count fits a byte, which the
/// compiler turns into comparisons of many bytes at once.
fn count_of(byte: u8, bytes: &[u8]) -> usize {
    bytes.chunks(255).map(|block| block.iter().fold(0u8, |n, &b| n + u8::from(b == byte)) as usize).sum()
}

/// Text cells equal to one of `nulls` become null. Column by column, and only the columns that
/// have such a cell are rebuilt (an expression per column cost more than the read of a wide file).
fn with_nulls(df: DataFrame, nulls: &[String]) -> PolarsResult<DataFrame> {
    if nulls.is_empty() {
        return Ok(df);
    }
    let is_null = |v: &str| nulls.iter().any(|n| n == v);
    let height = df.height();
    let columns = df
        .into_columns()
        .into_iter()
        .map(|c| {
            let Ok(text) = c.str() else { return Ok(c) };
            if !text.iter().flatten().any(is_null) {
                return Ok(c);
            }
            let cleaned: StringChunked = text.iter().map(|v| v.filter(|v| !is_null(v))).collect();
            Ok(cleaned.with_name(c.name().clone()).into_column())
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    DataFrame::new(height, columns)
}

/// An Excel date or time as ISO text: `2024-03-15` for a whole day, else
/// `2025-01-02T13:45:00` (with milliseconds when it has them); a duration as `PT36H5M0S`.
fn excel_datetime(d: &calamine::ExcelDateTime) -> String {
    if d.is_duration() {
        let ms = (d.as_f64() * 86_400_000.0).round() as i64;
        let (sign, ms) = if ms < 0 { ("-", -ms) } else { ("", ms) };
        let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        let frac = if milli > 0 { format!(".{milli:03}") } else { String::new() };
        return format!("{sign}PT{h}H{m}M{s}{frac}S");
    }
    // The day from calamine (it knows the workbook's epoch); the time rounded to the
    // millisecond here, as Excel stores it.
    let (y, mo, day, ..) = d.to_ymd_hms_milli();
    let Some(mut date) = chrono::NaiveDate::from_ymd_opt(y.into(), mo.into(), day.into()) else {
        return d.as_f64().to_string();
    };
    let v = d.as_f64();
    let mut ms = ((v - v.floor()) * 86_400_000.0).round() as i64;
    if ms >= 86_400_000 {
        date = date.succ_opt().unwrap_or(date);
        ms = 0;
    }
    let (h, mi, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let date = date.format("%Y-%m-%d");
    match (ms, milli) {
        (0, _) => date.to_string(),
        (_, 0) => format!("{date}T{h:02}:{mi:02}:{s:02}"),
        _ => format!("{date}T{h:02}:{mi:02}:{s:02}.{milli:03}"),
    }
}

/// Turns the first row into column names (or names columns `column_N` when there is none).
fn with_header_row(df: DataFrame, has_header: bool) -> PolarsResult<DataFrame> {
    let width = df.width();
    let mut names: Vec<String> = (1..=width).map(|i| format!("column_{i}")).collect();
    let mut df = df;
    if has_header && df.height() > 0 {
        for (i, col) in df.columns().iter().enumerate() {
            if let Some(s) = col.get(0).ok().as_ref().and_then(AnyValue::get_str) {
                let s = s.trim_start_matches('\u{feff}');
                if !s.trim().is_empty() {
                    names[i] = s.to_string();
                }
            }
        }
        df = df.slice(1, df.height() - 1);
    }
    df.set_column_names(&unique_names(names))?;
    Ok(df)
}

/// Suffixes repeated names with `_2`, `_3`, ... so every column name is unique.
fn unique_names(names: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashMap::<String, usize>::new();
    names
        .into_iter()
        .map(|n| {
            let count = seen.entry(n.clone()).or_insert(0);
            *count += 1;
            if *count == 1 {
                n
            } else {
                format!("{n}_{count}")
            }
        })
        .collect()
}

/// Decodes file bytes to UTF-8 text without a byte-order mark. With `truncated`, a partial
/// last line (and a partial UTF-8 sequence) is dropped.
fn decode(path: &Path, mut bytes: Vec<u8>, encoding: Encoding, truncated: bool) -> Result<String, ReadError> {
    if truncated {
        if let Some(end) = bytes.iter().rposition(|b| *b == b'\n') {
            bytes.truncate(end + 1);
        }
    }
    match encoding {
        Encoding::Utf8 => {
            if bytes.starts_with(b"\xEF\xBB\xBF") {
                bytes.drain(..3);
            }
            // Checked many bytes at a time; only text that is not UTF-8 is checked again, to
            // say where.
            if simdutf8::basic::from_utf8(&bytes).is_ok() {
                // SAFETY: `bytes` was just found to be UTF-8.
                return Ok(unsafe { String::from_utf8_unchecked(bytes) });
            }
            String::from_utf8(bytes).map_err(|e| {
                let at = e.utf8_error().valid_up_to();
                let bytes = e.as_bytes();
                let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
                let column = at - bytes[..at].iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1) + 1;
                let mut e = err(path, format!("byte 0x{:02X} is not valid UTF-8; if the file is Latin-1 or Windows-1252, set `read: {{ encoding: latin-1 }}` (or windows-1252) for this source", bytes[at]));
                e.at = Some((line, column));
                e
            })
        }
        Encoding::Latin1 => Ok(bytes.iter().map(|&b| b as char).collect()),
        Encoding::Windows1252 => Ok(bytes.iter().map(|&b| windows_1252(b)).collect()),
    }
}

/// Windows-1252 differs from Latin-1 only in 0x80..=0x9F.
fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}', '\u{90}', '‘',
        '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9F => HIGH[usize::from(b - 0x80)],
        _ => b as char,
    }
}

fn read_excel(path: &Path, opts: &ReadOptions, max_rows: Option<usize>) -> Result<DataFrame, ReadError> {
    use calamine::{open_workbook_auto, Data, Reader};
    let mut book = open_workbook_auto(path).map_err(|e| err(path, format!("not readable as Excel: {e}")))?;
    let names = book.sheet_names().to_vec();
    let sheet = match &opts.sheet {
        None => names.first().cloned(),
        Some(SheetRef::Index(i)) => names.get(*i).cloned(),
        Some(SheetRef::Name(n)) => names.iter().find(|s| *s == n).cloned(),
    }
    .ok_or_else(|| err(path, format!("sheet {:?} not found; the workbook has {:?}", opts.sheet, names)))?;
    let range = book.worksheet_range(&sheet).map_err(|e| err(path, format!("sheet `{sheet}`: {e}")))?;
    let skip = opts.skip_rows.unwrap_or(0);
    let has_header = opts.header.unwrap_or(true);
    let take = max_rows.map_or(usize::MAX, |n| n + usize::from(has_header));
    let width = range.width();
    let mut columns: Vec<Vec<Option<String>>> = vec![Vec::new(); width];
    for row in range.rows().skip(skip).take(take) {
        for (i, cell) in row.iter().enumerate() {
            let text = match cell {
                Data::Empty => None,
                Data::String(s) => Some(s.clone()),
                Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => Some(format!("{}", *f as i64)),
                Data::Float(f) => Some(f.to_string()),
                Data::Int(i) => Some(i.to_string()),
                Data::Bool(b) => Some(b.to_string()),
                Data::DateTime(d) => Some(excel_datetime(d)),
                Data::DateTimeIso(s) | Data::DurationIso(s) => Some(s.clone()),
                other => Some(other.to_string()),
            };
            columns[i].push(text);
        }
    }
    let cols: Vec<Column> = columns
        .into_iter()
        .enumerate()
        .map(|(i, values)| Column::new(format!("column_{}", i + 1).into(), values))
        .collect();
    let df = DataFrame::new_infer_height(cols).map_err(|e| err(path, e.to_string()))?;
    with_header_row(df, has_header).map_err(|e| err(path, e.to_string()))
}

/// A written parquet file as a frame; the error names the file.
pub fn parquet_frame(path: &Path) -> Result<DataFrame, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    ParquetReader::new(f).finish().map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// A written parquet file as a lazy scan (for its schema, or a few of its columns).
pub fn parquet_scan(path: &Path) -> Result<LazyFrame, String> {
    PlRefPath::try_from_path(path)
        .and_then(|p| LazyFrame::scan_parquet(p, ScanArgsParquet::default()))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_blank_and_repeated_headers() {
        let names = unique_names(vec!["a".into(), "a".into(), "column_3".into()]);
        assert_eq!(names, ["a", "a_2", "column_3"]);
    }

    #[test]
    fn finds_ragged_rows_and_unclosed_quotes() {
        let p = csv_problem("a,b\n1,2\n3,4,5\n", ',', 0, true).unwrap();
        assert_eq!(p.at, (3, 1));
        assert!(p.message.contains("line 3 has 3 fields, the header has 2") && p.message.contains("ragged_rows"));
        let p = csv_problem("a,b,c\n1,\"x\n\ny\",2\n3,\"open\n4,5\n", ',', 0, true).unwrap();
        assert_eq!(p.at, (5, 3));
        assert!(p.message.contains("never closed"));
        assert!(csv_problem("a,b\n\"x,\"\"y\"\"\",2\n3,4", ',', 0, true).is_none());
        assert!(csv_problem("junk line, with, commas\na,b\n1,2\n", ',', 1, true).is_none());
        assert!(csv_problem("a;b\n1;2;3", ';', 0, true).is_some());
        // Columns count characters; a quote inside an unquoted value is text.
        assert_eq!(csv_problem("a,b\né,\"x\n", ',', 0, true).map(|p| p.at), Some((2, 3)));
        assert!(csv_problem("a,b\nx\"y,2\n", ',', 0, true).is_none());
        // A chunk cut inside a quoted value is not judged.
        assert!(csv_problem("a,b\n1,\"x\n", ',', 0, false).is_none());
    }

    /// `csv_problem` as a byte at a time (the rules it follows, stated once more, plainly): a
    /// quote opens a quoted value only at a value's start, `""` in one is a quote, a line end in
    /// one is part of it.
    fn csv_problem_bytewise(text: &str, delimiter: u8, skip: usize, whole: bool) -> Option<((usize, usize), String)> {
        let bytes = text.as_bytes();
        let (mut line, mut line_start, mut fields, mut field_start) = (1, 0, 1, 0);
        let (mut quoted, mut opened) = (false, (0, 0, 0));
        let mut expected: Option<usize> = None;
        let ragged = |line: usize, fields: usize, n: usize| {
            Some(((line, 1), format!("line {line} has {fields} fields, the header has {n}")))
        };
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if quoted {
                if b == b'"' && bytes.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else if b == b'"' {
                    quoted = false;
                } else if b == b'\n' {
                    line += 1;
                    line_start = i + 1;
                }
            } else if b == b'"' && i == field_start {
                quoted = true;
                opened = (line, line_start, i);
            } else if b == b'\n' {
                if line > skip && !(fields == 1 && i == line_start) {
                    match expected {
                        None => expected = Some(fields),
                        Some(n) if fields > n => return ragged(line, fields, n),
                        Some(_) => {}
                    }
                }
                (line, line_start, fields, field_start) = (line + 1, i + 1, 1, i + 1);
            } else if b == delimiter {
                (fields, field_start) = (fields + 1, i + 1);
            }
            i += 1;
        }
        if quoted {
            let (line, from, at) = opened;
            return whole.then(|| ((line, text[from..=at].chars().count()), "never closed".to_string()));
        }
        match expected {
            Some(n) if fields > n && line_start < bytes.len() => ragged(line, fields, n),
            _ => None,
        }
    }

    #[test]
    fn csv_problems_are_found_as_a_byte_at_a_time_finds_them() {
        // Texts of a few letters, delimiters, quotes, line ends and a non-ASCII letter, some with
        // every line alike in its fields (where only a long scan finds nothing wrong).
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for case in 0..4000 {
            let delimiter = if case % 3 == 0 { ';' } else { ',' };
            let alphabet: Vec<char> = vec!['a', 'b', 'é', delimiter, '"', '\n', '\r', ' '];
            let len = next(60) as usize;
            let text: String = if case % 2 == 0 {
                (0..len).map(|_| alphabet[next(alphabet.len() as u64) as usize]).collect()
            } else {
                let width = 1 + next(4) as usize;
                let rows = 1 + next(6) as usize;
                let mut t = String::new();
                for r in 0..rows {
                    let cells: Vec<String> = (0..width + usize::from(next(9) == 0 && r > 0))
                        .map(|_| match next(5) {
                            0 => "\"q\"\"x\ny\"".to_string(),
                            1 => "x\"y".to_string(),
                            2 => String::new(),
                            _ => "ab".to_string(),
                        })
                        .collect();
                    t.push_str(&cells.join(&delimiter.to_string()));
                    t.push('\n');
                }
                t
            };
            for (skip, whole) in [(0, true), (1, true), (0, false)] {
                let found = csv_problem(&text, delimiter, skip, whole);
                let expected = csv_problem_bytewise(&text, delimiter as u8, skip, whole);
                match (&found, &expected) {
                    (None, None) => {}
                    (Some(f), Some((at, says))) if f.at == *at && f.message.contains(says.as_str()) => {}
                    _ => panic!(
                        "{text:?} (skip {skip}, whole {whole}): {:?} against {expected:?}",
                        found.map(|f| (f.at, f.message))
                    ),
                }
            }
        }
    }

    #[test]
    fn header_reads_stop_after_the_records_asked_for() {
        let text = "a,b\n\"x\ny\",2\n3,4\n".as_bytes();
        assert_eq!(records_end(text, 1), Some(4));
        assert_eq!(&text[..records_end(text, 2).unwrap()], b"a,b\n\"x\ny\",2\n");
        assert_eq!(records_end(text, 3), Some(text.len()));
        assert_eq!(records_end(text, 4), None);
    }

    #[test]
    fn header_names_follow_the_whole_read() {
        let text = "title line\n\n\"a\nb\",,a,a\r\n1,2,3,4\n";
        assert_eq!(header_names(text, 1, ',', true), ["a\nb", "column_2", "a", "a_2"]);
        assert_eq!(header_names("x;y\n", 0, ';', false), ["column_1", "column_2"]);
        assert!(header_names("\n\n", 0, ',', true).is_empty());
    }

    #[test]
    fn a_parquet_header_is_the_read_names_from_the_footer_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let mut df = df!("Code NOC" => ["00010", "00011"], "n" => [1i64, 2], "\u{feff}x" => [0.5, 1.5]).unwrap();
        ParquetWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut df).unwrap();
        let opts = ReadOptions::default();
        let read: Vec<String> = read_table(&path, Format::Parquet, &opts)
            .unwrap()
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(read_header(&path, Format::Parquet, &opts).unwrap(), read);
        // Not a parquet file: the file is named.
        std::fs::write(&path, "a,b\n1,2\n").unwrap();
        let e = read_header(&path, Format::Parquet, &opts).unwrap_err();
        assert!(e.to_string().starts_with(&path.display().to_string()), "{e}");
    }

    #[test]
    fn excel_dates_are_iso_text() {
        use calamine::{ExcelDateTime, ExcelDateTimeType::*};
        assert_eq!(excel_datetime(&ExcelDateTime::new(45366.0, DateTime, false)), "2024-03-15");
        assert_eq!(excel_datetime(&ExcelDateTime::new(45659.572916666664, DateTime, false)), "2025-01-02T13:45:00");
        assert_eq!(excel_datetime(&ExcelDateTime::new(1.5034722222222223, TimeDelta, false)), "PT36H5M0S");
    }

    #[test]
    fn a_byte_order_mark_is_not_read_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bom.csv");
        let bom = "\u{feff}";
        // Long, yet within the 256 KiB of a file a header check reads (its mark among them).
        let long = format!("a,b\n{}", "x,y\n".repeat((HEADER_CHUNK - 16) / 4));
        let latin1 = ReadOptions { encoding: Some(Encoding::Latin1), ..ReadOptions::default() };
        for text in ["a,b\n1,2\n", "a", "", long.as_str()] {
            for (first_chunk, opts) in
                [(true, ReadOptions::default()), (false, ReadOptions::default()), (false, latin1.clone())]
            {
                std::fs::write(&path, format!("{bom}{text}")).unwrap();
                let read = csv_text(&path, &opts, first_chunk).map(|(t, _)| t);
                std::fs::write(&path, text).unwrap();
                let without = csv_text(&path, &opts, first_chunk).map(|(t, _)| t);
                match opts.encoding {
                    // Latin-1 has no byte order mark: its three bytes are three characters.
                    Some(Encoding::Latin1) => {
                        let marked = read.ok().and_then(|t| t.strip_prefix("\u{ef}\u{bb}\u{bf}").map(str::to_string));
                        assert!(marked.as_deref() == Some(text), "{} {:?}", text.len(), marked.map(|m| m.len()));
                    }
                    _ => assert!(
                        read.as_ref().map_err(|e| e.to_string()) == without.as_ref().map_err(|e| e.to_string()),
                        "{} {first_chunk}",
                        text.len()
                    ),
                }
            }
        }
        // Part of a mark is not one: not UTF-8, named at its first byte.
        std::fs::write(&path, b"\xEF\xBBa,b\n").unwrap();
        let e = csv_text(&path, &ReadOptions::default(), true).unwrap_err();
        assert_eq!(e.at, Some((1, 1)), "{e}");
    }

    #[test]
    fn decodes_windows_1252_and_rejects_bad_utf8() {
        let p = Path::new("x.csv");
        assert_eq!(decode(p, vec![0x80, b'e', 0xE9], Encoding::Windows1252, false).unwrap(), "€eé");
        let e = decode(p, b"a,b\nc,\xE9\n".to_vec(), Encoding::Utf8, false).unwrap_err();
        assert_eq!(e.at, Some((2, 3)));
        assert!(e.to_string().starts_with("x.csv:2:3: byte 0xE9 is not valid UTF-8"), "{e}");
        assert_eq!(decode(p, b"\xEF\xBB\xBFa".to_vec(), Encoding::Utf8, false).unwrap(), "a");
    }
}
