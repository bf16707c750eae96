//! Evaluating checks on a table's gold frame, against the previous committed run (row counts,
//! means), the source file's age and, for SQL checks, DuckDB over the run's files. A check that
//! cannot be evaluated (a query that fails, a column of the wrong type) fails, saying why.

use super::{parse_age, Check, CheckKind};
use crate::records::CheckResult;
use chrono::{DateTime, Utc};
use polars::prelude::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What checks are measured against besides the table itself.
pub struct Context<'a> {
    pub now: DateTime<Utc>,
    /// The previous committed run's gold rows of the table, and its gold file.
    pub previous_rows: Option<u64>,
    pub previous_file: Option<PathBuf>,
    /// When the table's source file was last modified.
    pub source_modified: Option<DateTime<Utc>>,
    /// The run's files, layer -> table -> path, for SQL checks.
    pub files: &'a BTreeMap<String, BTreeMap<String, PathBuf>>,
    /// Names of columns holding personal information: their values are never shown.
    pub pii: &'a std::collections::BTreeSet<String>,
    /// Where SQL checks run.
    pub database: &'a Database,
}

/// The DuckDB database that the SQL checks of a run or of `jobforge check` share (each check
/// makes the views it reads). Opening one is most of a short query's time (30 ms: DuckDB's
/// catalog of functions, its parser's grammar): a run opens it on another thread while its
/// tables build (`open`), and nothing opens it where no SQL check asks (`later`).
pub struct Database {
    #[cfg(feature = "query")]
    conn: std::cell::OnceCell<Result<duckdb::Connection, String>>,
}

impl Database {
    /// A database opened now.
    pub fn open() -> Database {
        Database {
            #[cfg(feature = "query")]
            conn: std::cell::OnceCell::from(crate::query::open()),
        }
    }

    /// A database opened when a SQL check first asks for it.
    pub fn later() -> Database {
        Database {
            #[cfg(feature = "query")]
            conn: std::cell::OnceCell::new(),
        }
    }

    /// Closes DuckDB (a few milliseconds: its catalog is freed piece by piece).
    pub fn close(self) {
        #[cfg(feature = "query")]
        drop(self.conn);
    }

    /// The tables the read-only statement `sql` names (lower case, whatever schema qualifies
    /// them); `None` when its parse cannot tell, or it is not one statement that reads.
    pub fn tables_read(&self, sql: &str) -> Option<std::collections::BTreeSet<String>> {
        #[cfg(feature = "query")]
        return crate::query::tables_read(self.connection().ok()?, sql);
        #[cfg(not(feature = "query"))]
        {
            let _ = sql;
            None
        }
    }

    #[cfg(feature = "query")]
    fn connection(&self) -> Result<&duckdb::Connection, String> {
        self.conn.get_or_init(crate::query::open).as_ref().map_err(Clone::clone)
    }
}

/// Evaluates `checks` of `table` on its gold frame.
pub fn evaluate(table: &str, checks: &[Check], gold: &DataFrame, cx: &Context) -> Vec<CheckResult> {
    checks.iter().map(|check| evaluate_one(table, check, gold, cx)).collect()
}

/// Evaluates `check` of `table` on its gold frame (a SQL check reads the files of `cx`, not the
/// frame); a check that cannot be evaluated fails, saying why.
pub fn evaluate_one(table: &str, check: &Check, gold: &DataFrame, cx: &Context) -> CheckResult {
    let measured = measure(check, gold, cx).unwrap_or_else(|e| (false, None, format!("could not be evaluated: {e}")));
    result(table, check, measured, cx)
}

/// Evaluates the SQL check `check` of `table` over the files of `cx`; `Err` says why it could
/// not be evaluated.
pub fn evaluate_sql(table: &str, check: &Check, cx: &Context) -> Result<CheckResult, String> {
    measure(check, &DataFrame::empty(), cx).map(|measured| result(table, check, measured, cx))
}

fn result(table: &str, check: &Check, (passed, value, message): Measured, cx: &Context) -> CheckResult {
    CheckResult {
        table: table.to_string(),
        check: check.label(),
        kind: check.kind.key().to_string(),
        severity: check.severity.name().to_string(),
        passed,
        value,
        message,
        evaluated_at: cx.now,
    }
}

type Measured = (bool, Option<f64>, String);

fn within(value: f64, min: Option<f64>, max: Option<f64>) -> bool {
    min.is_none_or(|m| value >= m) && max.is_none_or(|m| value <= m)
}

fn bounds(min: Option<f64>, max: Option<f64>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("allowed {a} to {b}"),
        (Some(a), None) => format!("allowed at least {a}"),
        (None, Some(b)) => format!("allowed at most {b}"),
        (None, None) => "no bound".into(),
    }
}

fn numbers(gold: &DataFrame, column: &str) -> Result<Float64Chunked, String> {
    let c = gold.column(column).map_err(|e| e.to_string())?;
    if !c.dtype().is_primitive_numeric() {
        return Err(format!("`{column}` is {}, not a number", c.dtype()));
    }
    let c = c.cast(&DataType::Float64).map_err(|e| e.to_string())?;
    Ok(c.f64().map_err(|e| e.to_string())?.clone())
}

fn measure(check: &Check, gold: &DataFrame, cx: &Context) -> Result<Measured, String> {
    let rows = gold.height() as f64;
    Ok(match &check.kind {
        CheckKind::RowCount(r) => {
            let (min, max) = (r.min.map(|v| v as f64), r.max.map(|v| v as f64));
            if !within(rows, min, max) {
                return Ok((false, Some(rows), format!("{rows} rows, {}", bounds(min, max))));
            }
            match (r.max_change_percent, cx.previous_rows) {
                (Some(limit), Some(before)) => {
                    let change = if before == 0 {
                        if rows == 0.0 {
                            0.0
                        } else {
                            f64::INFINITY
                        }
                    } else {
                        (rows - before as f64).abs() / before as f64 * 100.0
                    };
                    let m = format!("{rows} rows, {before} in the previous run: {change:.2}% change, allowed {limit}%");
                    (change <= limit, Some(rows), m)
                }
                (Some(_), None) => (true, Some(rows), format!("{rows} rows; no previous run to compare with")),
                (None, _) => (true, Some(rows), format!("{rows} rows, {}", bounds(min, max))),
            }
        }
        CheckKind::NullRate(n) => {
            let nulls = gold.column(&n.column).map_err(|e| e.to_string())?.null_count() as f64;
            let rate = if rows == 0.0 { 0.0 } else { nulls / rows };
            (rate <= n.max, Some(rate), format!("{nulls} of {rows} rows null ({:.4}), allowed {}", rate, n.max))
        }
        CheckKind::DistinctCount(d) => {
            let c = gold.column(&d.column).map_err(|e| e.to_string())?;
            let distinct = c.drop_nulls().n_unique().map_err(|e| e.to_string())? as f64;
            let (min, max) = (d.min.map(|v| v as f64), d.max.map(|v| v as f64));
            (within(distinct, min, max), Some(distinct), format!("{distinct} distinct values, {}", bounds(min, max)))
        }
        CheckKind::Range(r) => {
            let values = numbers(gold, &r.column)?;
            let outside = values.iter().flatten().filter(|v| !within(*v, r.min, r.max)).count();
            let (lo, hi) = (values.min(), values.max());
            let seen = match (lo, hi) {
                _ if cx.pii.contains(&r.column) => "values not shown (personal information)".into(),
                (Some(lo), Some(hi)) => format!("values {lo} to {hi}"),
                _ => "no values".into(),
            };
            (
                outside == 0,
                Some(outside as f64),
                format!("{outside} value(s) outside; {seen}, {}", bounds(r.min, r.max)),
            )
        }
        CheckKind::MeanDrift(m) => {
            let mean = numbers(gold, &m.column)?.mean();
            let before = match &cx.previous_file {
                Some(file) => previous_mean(file, &m.column)?,
                None => None,
            };
            match (mean, before) {
                (Some(now), Some(before)) => {
                    let drift = if before == 0.0 {
                        if now == 0.0 {
                            0.0
                        } else {
                            f64::INFINITY
                        }
                    } else {
                        (now - before).abs() / before.abs() * 100.0
                    };
                    let msg = format!(
                        "mean {now:.6}, {before:.6} in the previous run: {drift:.2}% drift, allowed {}%",
                        m.max_percent
                    );
                    (drift <= m.max_percent, Some(now), msg)
                }
                (now, _) => (true, now, "no previous mean to compare with".into()),
            }
        }
        CheckKind::Freshness(f) => {
            let (newest, limit) = match (&f.source_max_age, &f.column, &f.max_age) {
                (Some(age), _, _) => (cx.source_modified.ok_or("the source file's time is not known")?, age),
                (None, Some(c), Some(age)) => (newest(gold, c)?.ok_or_else(|| format!("`{c}` has no values"))?, age),
                _ => return Err("give `source_max_age`, or `column` with `max_age`".into()),
            };
            let limit = parse_age(limit)?;
            let age = cx.now - newest;
            let what = if f.source_max_age.is_some() { "the source file" } else { "the newest value" };
            let msg = format!(
                "{what} is {} old ({}), allowed {}",
                words(age),
                newest.format("%Y-%m-%dT%H:%M:%SZ"),
                words(limit)
            );
            (age <= limit, Some(age.num_seconds() as f64), msg)
        }
        CheckKind::Sql(query) => sql(query, cx)?,
    })
}

/// An age in words: `3d 4h`, `12m`.
fn words(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, minutes) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// The newest value of a date or timestamp column.
fn newest(gold: &DataFrame, column: &str) -> Result<Option<DateTime<Utc>>, String> {
    let c = gold.column(column).map_err(|e| e.to_string())?;
    let (unit_micros, dtype) = match c.dtype() {
        DataType::Date => (86_400_000_000i64, DataType::Int32),
        DataType::Datetime(TimeUnit::Milliseconds, _) => (1_000, DataType::Int64),
        DataType::Datetime(TimeUnit::Microseconds, _) => (1, DataType::Int64),
        DataType::Datetime(TimeUnit::Nanoseconds, _) => (-1_000, DataType::Int64),
        other => return Err(format!("`{column}` is {other}, not a date or a timestamp")),
    };
    let values = c.cast(&dtype).and_then(|v| v.cast(&DataType::Int64)).map_err(|e| e.to_string())?;
    let max = values.i64().map_err(|e| e.to_string())?.max();
    Ok(max.and_then(|v| {
        let micros = if unit_micros < 0 { v / -unit_micros } else { v.saturating_mul(unit_micros) };
        DateTime::from_timestamp_micros(micros)
    }))
}

/// The mean of `column` in a previous gold file (none when the column was not there); reads
/// that column alone.
fn previous_mean(file: &std::path::Path, column: &str) -> Result<Option<f64>, String> {
    let mut scan = crate::reader::parquet_scan(file)?;
    let schema = scan.collect_schema().map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    if schema.get(column).is_none() {
        return Ok(None);
    }
    let df = scan.select([col(column)]).collect().map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    Ok(numbers(&df, column)?.mean())
}

#[cfg(feature = "query")]
fn sql(query: &str, cx: &Context) -> Result<Measured, String> {
    let result = crate::query::query_files(cx.database.connection()?, cx.files, query)?;
    let n = result.rows.len();
    let shown: Vec<String> = result
        .rows
        .iter()
        .take(3)
        .map(|r| {
            let cells = result.columns.iter().zip(r).map(|(c, v)| {
                let shown = if cx.pii.contains(c) { "***" } else { v.as_deref().unwrap_or("null") };
                format!("{c}={shown}")
            });
            format!("({})", cells.collect::<Vec<_>>().join(", "))
        })
        .collect();
    let msg = if n == 0 {
        "no offending rows".to_string()
    } else {
        format!("{n} offending row(s), e.g. {}", shown.join("; "))
    };
    Ok((n == 0, Some(n as f64), msg))
}

#[cfg(not(feature = "query"))]
fn sql(_: &str, _: &Context) -> Result<Measured, String> {
    Err("SQL checks need the `query` feature (DuckDB), which this jobforge was built without".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{MeanDrift, RowCount, Severity};

    fn frame(values: &[f64]) -> DataFrame {
        DataFrame::new_infer_height(vec![Column::new("score".into(), values)]).unwrap()
    }

    #[test]
    fn drift_and_change_are_measured_against_the_previous_run() {
        let dir = tempfile::tempdir().unwrap();
        let previous = dir.path().join("previous.parquet");
        let mut before = frame(&[1.0, 2.0, 3.0]);
        ParquetWriter::new(std::fs::File::create(&previous).unwrap()).finish(&mut before).unwrap();
        let files = BTreeMap::new();
        let cx = Context {
            now: Utc::now(),
            previous_rows: Some(3),
            previous_file: Some(previous),
            source_modified: None,
            files: &files,
            pii: &Default::default(),
            database: &Database::later(),
        };
        let checks = vec![
            Check {
                name: None,
                severity: Severity::Warn,
                kind: CheckKind::MeanDrift(MeanDrift { column: "score".into(), max_percent: 10.0 }),
            },
            Check {
                name: None,
                severity: Severity::Error,
                kind: CheckKind::RowCount(RowCount { min: None, max: None, max_change_percent: Some(50.0) }),
            },
        ];
        // Mean 2 -> 2.1: 5% drift; 3 -> 4 rows: 33% change.
        let results = evaluate("t", &checks, &frame(&[1.0, 2.0, 2.4, 3.0]), &cx);
        assert!(results[0].passed && results[1].passed, "{results:?}");
        assert!(results[0].message.contains("5.00% drift"), "{}", results[0].message);
        // Mean 2 -> 3: 50% drift (a warning); 3 -> 6 rows: 100% change (fails the table).
        let results = evaluate("t", &checks, &frame(&[3.0, 3.0, 3.0, 3.0, 3.0, 3.0]), &cx);
        assert!(!results[0].passed && !results[0].fails_table());
        assert!(!results[1].passed && results[1].fails_table(), "{:?}", results[1]);
        assert_eq!(results[1].value, Some(6.0));
        // A text column is not a number: the check fails, saying why.
        let text = DataFrame::new_infer_height(vec![Column::new("score".into(), ["a"])]).unwrap();
        let results = evaluate("t", &checks[..1], &text, &cx);
        assert!(!results[0].passed && results[0].message.contains("not a number"), "{:?}", results[0]);
    }
}
