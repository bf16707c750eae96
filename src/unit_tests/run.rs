//! Running unit tests: each test's layers run on frames built from its rows, through the same
//! transforms as a run (`exec::layers::transform`), in parallel on Polars' pool; nothing is
//! written and no source file is read.

use super::check::{csv_path, input_columns, references, INPUT};
use super::compare::{compare, Cell, Table};
use super::{layer_range, Rows, UnitTest};
use crate::config::pipeline::{DType, Step};
use crate::config::sources::Format;
use crate::exec::layers::{transform, Inputs};
use crate::plan::check::PROVENANCE;
use crate::plan::{parse_ref, Layer, Plan, TablePlan};
use polars::prelude::*;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// What one test did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub table: String,
    pub test: String,
    /// `file:line:col` of the test.
    pub at: String,
    pub layers: String,
    /// Empty when it passed.
    pub failures: Vec<String>,
    #[serde(skip)]
    pub elapsed: Duration,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs the tests whose name or table is in `names` (all when empty).
pub fn run(plan: &Plan, vars: &BTreeMap<String, String>, names: &[String]) -> Result<Vec<Outcome>, String> {
    let all: Vec<(usize, &UnitTest)> =
        plan.tables.iter().enumerate().flat_map(|(t, table)| table.spec.tests.iter().map(move |x| (t, x))).collect();
    for n in names {
        if !all.iter().any(|(t, x)| &x.name == n || &plan.tables[*t].name == n) {
            let known = all.iter().flat_map(|(t, x)| [x.name.as_str(), plan.tables[*t].name.as_str()]);
            let hint = crate::diag::did_you_mean(n, known).map(|h| format!("; {h}")).unwrap_or_default();
            return Err(format!("no test or table with tests named `{n}`{hint}"));
        }
    }
    let chosen: Vec<(usize, &UnitTest)> = all
        .into_iter()
        .filter(|(t, x)| names.is_empty() || names.iter().any(|n| n == &x.name || n == &plan.tables[*t].name))
        .collect();
    Ok(polars_core::runtime::THREAD_POOL
        .install(|| chosen.par_iter().map(|(t, test)| run_one(plan, vars, *t, test)).collect()))
}

/// The report: a line per test, then each failure with where the test is and what differed,
/// then the counts.
pub fn render(outcomes: &[Outcome], elapsed: Duration) -> String {
    let mut out = String::new();
    let width = outcomes.iter().map(|o| o.table.len() + o.test.len()).max().unwrap_or(0) + 6;
    for o in outcomes {
        let name = format!("{} > {} ", o.table, o.test);
        let status = if o.passed() { "ok" } else { "FAIL" };
        let ms = o.elapsed.as_secs_f64() * 1000.0;
        out.push_str(&format!("test {name:.<width$} {status} ({ms:.1} ms)\n"));
    }
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.passed()).collect();
    if !failed.is_empty() {
        out.push_str("\nfailures:\n");
        for o in &failed {
            out.push_str(&format!("\n{} > {} ({}, layers {})\n", o.table, o.test, o.at, o.layers));
            for f in &o.failures {
                out.push_str(&format!("  {f}\n"));
            }
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "{} passed, {} failed ({} tests in {:.2} s)\n",
        outcomes.len() - failed.len(),
        failed.len(),
        outcomes.len(),
        elapsed.as_secs_f64()
    ));
    out
}

fn run_one(plan: &Plan, vars: &BTreeMap<String, String>, t: usize, test: &UnitTest) -> Outcome {
    let started = Instant::now();
    let table = &plan.tables[t];
    let (line, col) = table.text.locate(Some(&test.section()), &test.name);
    let failures = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| execute(plan, vars, t, test)))
        .unwrap_or_else(|_| Err("internal error (a panic) while running the test".into()))
        .unwrap_or_else(|e| vec![e]);
    Outcome {
        table: table.name.clone(),
        test: test.name.clone(),
        at: format!("{}:{line}:{col}", table.text.path.display()),
        layers: test.layers.clone(),
        failures,
        elapsed: started.elapsed(),
    }
}

/// Runs the test's layers; the differences found (empty when it passes), or why it could not run.
fn execute(plan: &Plan, vars: &BTreeMap<String, String>, t: usize, test: &UnitTest) -> Result<Vec<String>, String> {
    let table = &plan.tables[t];
    let (first, last) = layer_range(&test.layers)?;
    let input = test.given.get(INPUT).ok_or("`given` has no `input`")?;
    let text_only = first <= Layer::Bronze;
    let mut df = frame(table, input, input_columns(table, first), entering_types(table, first), text_only)
        .map_err(|e| format!("input: {e}"))?;
    let mut given: HashMap<String, DataFrame> = HashMap::new();
    for read in references(table, test) {
        let (layer, name) = parse_ref(&read)?;
        let other = plan.table(name).map(|o| &plan.tables[o]).ok_or(format!("no table `{name}`"))?;
        let rows = test.given.get(&read).ok_or(format!("`given` has no `{read}`"))?;
        let types = declared_types(other, layer);
        let text_only = layer == Layer::Staged;
        let f = frame(table, rows, other.columns.get(&layer).cloned(), types, text_only)
            .map_err(|e| format!("{read}: {e}"))?;
        given.insert(read, f);
    }
    let read = |reference: &str| -> PolarsResult<DataFrame> {
        let (layer, name) = parse_ref(reference).map_err(|e| polars_err!(ComputeError: "{e}"))?;
        given
            .get(&format!("{layer}.{name}"))
            .cloned()
            .ok_or_else(|| polars_err!(ComputeError: "the test gives no rows for `{reference}`"))
    };
    let inputs = Inputs { plan, vars, read: &read };
    let mut quarantined = Vec::new();
    for layer in Layer::ALL.into_iter().filter(|l| *l >= first && *l <= last) {
        let built = transform(&inputs, t, layer, df).map_err(|e| format!("{layer}: {e}"))?;
        quarantined.extend(built.quarantined);
        df = built.df;
    }
    let mut failures = Vec::new();
    if let Some(rows) = &test.expect.rows {
        let diff = compare(&expected(table, rows)?, &df);
        if !diff.is_empty() {
            failures.extend(diff.render("rows"));
        }
    }
    if let Some(rows) = &test.expect.quarantine {
        let actual = crate::exec::layers::quarantine_text(quarantined).map_err(|e| e.to_string())?;
        let diff = compare(&expected(table, rows)?, &actual);
        if !diff.is_empty() {
            failures.extend(diff.render("quarantine"));
        }
    }
    Ok(failures)
}

/// The types of the columns entering `layer`: none before bronze (the source is text).
fn entering_types(table: &TablePlan, layer: Layer) -> Vec<(String, DType)> {
    match layer {
        Layer::Staged | Layer::Bronze => vec![],
        Layer::Silver => declared_types(table, Layer::Bronze),
        Layer::Gold => declared_types(table, Layer::Silver),
    }
}

/// Column types declared by casts up to and including `through`.
fn declared_types(table: &TablePlan, through: Layer) -> Vec<(String, DType)> {
    let mut out: indexmap::IndexMap<String, DType> = indexmap::IndexMap::new();
    if through >= Layer::Bronze {
        out.extend(table.spec.bronze.cast.iter().map(|(c, d)| (c.clone(), *d)));
    }
    for layer in [Layer::Silver, Layer::Gold].into_iter().filter(|l| *l <= through) {
        for step in table.steps(layer) {
            if let Step::Cast(m) = step {
                out.extend(m.iter().map(|(c, d)| (c.clone(), *d)));
            }
        }
    }
    out.into_iter().collect()
}

/// Expected rows as cells; a column an inline row does not name accepts any value.
fn expected(table: &TablePlan, rows: &Rows) -> Result<Table, String> {
    let (columns, cells) = cells(table, rows)?;
    let named = |r: usize, c: &str| match rows {
        Rows::Inline(rows) => rows[r].contains_key(c),
        Rows::File { .. } => true,
    };
    let rows = cells
        .into_iter()
        .enumerate()
        .map(|(r, row)| row.into_iter().zip(&columns).map(|((cell, _), c)| named(r, c).then_some(cell)).collect())
        .collect();
    Ok(Table { columns, rows })
}

/// A value's text, and what kind of YAML scalar it was written as when not text.
type Typed = (Cell, Option<Kind>);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Integer,
    Float,
    Boolean,
}

/// The columns and cells of rows (inline or CSV).
fn cells(table: &TablePlan, rows: &Rows) -> Result<(Vec<String>, Vec<Vec<Typed>>), String> {
    match rows {
        Rows::Inline(list) => {
            let columns = super::check::row_columns(table, rows)?;
            let cells = list
                .iter()
                .map(|r| columns.iter().map(|c| typed(r.get(c).unwrap_or(&serde_json::Value::Null))).collect())
                .collect();
            Ok((columns, cells))
        }
        Rows::File { csv } => {
            let path = csv_path(table, csv);
            let df = crate::reader::read_table(&path, crate::config::sources::Format::Csv, &Default::default())
                .map_err(|e| e.to_string())?;
            let columns: Vec<String> = df.get_column_names().iter().map(|c| c.to_string()).collect();
            let cells = (0..df.height())
                .map(|i| {
                    df.columns()
                        .iter()
                        .map(|c| (c.get(i).ok().and_then(|v| v.get_str().map(str::to_string)), None))
                        .collect()
                })
                .collect();
            Ok((columns, cells))
        }
    }
}

fn typed(v: &serde_json::Value) -> Typed {
    use serde_json::Value;
    match v {
        Value::Null => (None, None),
        Value::Bool(b) => (Some(b.to_string()), Some(Kind::Boolean)),
        Value::Number(n) if n.is_i64() || n.is_u64() => (Some(n.to_string()), Some(Kind::Integer)),
        Value::Number(n) => (Some(n.to_string()), Some(Kind::Float)),
        Value::String(s) => (Some(s.clone()), None),
        other => (Some(other.to_string()), None),
    }
}

/// A JSON source's rows typed as reading the file would type them (nested maps flattened, lists
/// as list columns), the `known` columns not given as null, plus provenance.
fn json_frame(
    table: &TablePlan,
    list: &[indexmap::IndexMap<String, serde_json::Value>],
    known: Option<Vec<String>>,
) -> Result<DataFrame, String> {
    let records: Vec<serde_json::Value> =
        list.iter().map(|r| serde_json::Value::Object(r.clone().into_iter().collect())).collect();
    let df = crate::reader::json::records_frame(&records).map_err(|e| e.to_string())?;
    let height = df.height();
    // In the header's order (the plan compares it), the header's columns not given as null.
    let mut given = df.into_columns();
    let mut columns = Vec::new();
    for name in known.unwrap_or_default().into_iter().filter(|n| !PROVENANCE.contains(&n.as_str())) {
        match given.iter().position(|c| c.name().as_str() == name) {
            Some(i) => columns.push(given.remove(i)),
            None => columns.push(Column::full_null(name.as_str().into(), height, &DataType::String)),
        }
    }
    columns.extend(given);
    with_provenance(table, &mut columns, height)?;
    DataFrame::new(height, columns).map_err(|e| e.to_string())
}

/// Appends the provenance columns a test frame carries.
fn with_provenance(table: &TablePlan, columns: &mut Vec<Column>, height: usize) -> Result<(), String> {
    columns.push(Column::new("_source_file".into(), vec![format!("test of {}", table.name); height]));
    columns.push(
        Column::new("_ingested_at".into(), vec![0i64; height])
            .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
            .map_err(|e| e.to_string())?,
    );
    columns.push(Column::new("_batch_id".into(), vec!["test".to_string(); height]));
    columns.push(Column::new("_layer".into(), vec!["test".to_string(); height]));
    Ok(())
}

/// A frame of `rows`: the `known` columns (those not given are null) or the ones given; all text
/// with `text_only` (the source as published), else cast as `types` declare (strictly: a value
/// that does not cast is an error) or as the values were written (all integers, all numbers or
/// all booleans); plus provenance.
fn frame(
    table: &TablePlan,
    rows: &Rows,
    known: Option<Vec<String>>,
    types: Vec<(String, DType)>,
    text_only: bool,
) -> Result<DataFrame, String> {
    if let (true, Format::Json | Format::Ndjson, Rows::Inline(list)) = (text_only, table.format, rows) {
        return json_frame(table, list, known);
    }
    let (given, cells) = cells(table, rows)?;
    let names: Vec<String> =
        known.unwrap_or_else(|| given.clone()).into_iter().filter(|c| !PROVENANCE.contains(&c.as_str())).collect();
    let mut columns = Vec::new();
    for name in &names {
        let i = given.iter().position(|g| g == name);
        let values: Vec<Cell> = cells.iter().map(|r| i.and_then(|i| r[i].0.clone())).collect();
        let kinds: Vec<Kind> = cells.iter().filter_map(|r| i.and_then(|i| r[i].1)).collect();
        let mut column = Column::new(name.as_str().into(), values);
        let non_null = cells.iter().filter(|r| i.is_some_and(|i| r[i].0.is_some())).count();
        let declared = types.iter().any(|(c, _)| c == name);
        if !text_only && !declared && non_null > 0 && kinds.len() == non_null {
            let dtype = if kinds.iter().all(|k| *k == Kind::Integer) {
                Some(DataType::Int64)
            } else if kinds.iter().all(|k| *k != Kind::Boolean) {
                Some(DataType::Float64)
            } else if kinds.iter().all(|k| *k == Kind::Boolean) {
                Some(DataType::Boolean)
            } else {
                None
            };
            if let Some(dtype) = dtype {
                column = column.strict_cast(&dtype).map_err(|e| format!("`{name}`: {e}"))?;
            }
        }
        columns.push(column);
    }
    with_provenance(table, &mut columns, cells.len())?;
    let df = DataFrame::new_infer_height(columns).map_err(|e| e.to_string())?;
    let casts: Vec<(String, DType)> = types.into_iter().filter(|(c, _)| names.contains(c)).collect();
    if casts.is_empty() {
        return Ok(df);
    }
    let (passed, failed) = crate::exec::rules::cast_columns(df, &casts).map_err(|e| e.to_string())?;
    if failed.height() > 0 {
        let reason = failed.column("_reason").ok().and_then(|c| c.get(0).ok()).map(|v| v.str_value().to_string());
        return Err(format!("a given value does not cast as the pipeline declares: {}", reason.unwrap_or_default()));
    }
    Ok(passed)
}
