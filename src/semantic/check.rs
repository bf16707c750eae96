//! Checks of the semantic model against the gold data: tables and columns exist with
//! compatible types, primary keys are unique and non-null, relationships hold (types, unique
//! one side, orphans, declared cardinality), the model is a valid star for Power BI (one active
//! path between two tables, relationships end on keys), and every gold table is modelled or
//! excluded. Also the model export with introspected types and row counts.

use super::model::{split_column, Cardinality, ColumnType, Model, Relationship, Severity};
use crate::diag::{did_you_mean, Diagnostic, SourceText};
use crate::plan::check::PROVENANCE;
use polars::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// One model problem: a located diagnostic with its severity and the check that found it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub check: &'static str,
    #[serde(flatten)]
    pub at: Diagnostic,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warn => "warning",
        };
        write!(f, "{level}: {} [{}]", self.at, self.check)
    }
}

/// The model's view of a polars type.
pub fn column_type(dtype: &DataType) -> Option<ColumnType> {
    Some(match dtype {
        DataType::String => ColumnType::Text,
        DataType::Boolean => ColumnType::Boolean,
        DataType::Date => ColumnType::Date,
        DataType::Datetime(..) => ColumnType::Datetime,
        d if d.is_integer() => ColumnType::Integer,
        d if d.is_float() => ColumnType::Decimal,
        _ => return None,
    })
}

fn compatible(declared: ColumnType, actual: ColumnType) -> bool {
    declared == actual || (declared == ColumnType::Decimal && actual == ColumnType::Integer)
}

fn type_name(t: Option<ColumnType>) -> String {
    t.map_or("an unsupported type".into(), |t| format!("{t:?}").to_lowercase())
}

/// The gold files of a snapshot, by table name.
pub type GoldFiles = BTreeMap<String, PathBuf>;

/// Reads every gold table of the snapshot; the second list names the files it could not read.
fn read_gold(gold: &GoldFiles) -> (BTreeMap<String, DataFrame>, Vec<(String, String)>) {
    let mut out = BTreeMap::new();
    let mut unreadable = Vec::new();
    for (name, path) in gold {
        match std::fs::File::open(path).map_err(PolarsError::from).and_then(|f| ParquetReader::new(f).finish()) {
            Ok(df) => {
                out.insert(name.clone(), df);
            }
            Err(e) => unreadable.push((name.clone(), format!("{}: {e}", path.display()))),
        }
    }
    (out, unreadable)
}

struct Checker<'a> {
    text: &'a SourceText,
    findings: Vec<Finding>,
}

impl Checker<'_> {
    fn push(&mut self, severity: Severity, check: &'static str, section: Option<&str>, token: &str, message: String) {
        let at = self.text.diag(section, token, message);
        self.findings.push(Finding { severity, check, at });
    }
}

/// Values of `key` columns (joined by `, `) that occur more than once: (count of repeated
/// rows, an example).
fn repeats(df: &DataFrame, key: &[String]) -> PolarsResult<(usize, Option<String>)> {
    let exprs: Vec<Expr> = key.iter().map(|c| col(c.as_str()).cast(DataType::String).fill_null(lit("null"))).collect();
    let repeated = df
        .clone()
        .lazy()
        .select([concat_str(exprs, ", ", false).alias("k")])
        .group_by_stable([col("k")])
        .agg([len().alias("n")])
        .filter(col("n").gt(lit(1)))
        .collect()?;
    let count = repeated.column("n")?.as_materialized_series().sum::<u64>()? as usize;
    let example = first_text(repeated.column("k")?)?;
    Ok((count, example))
}

/// The first value of a column as text (None when it is empty).
fn first_text(c: &Column) -> PolarsResult<Option<String>> {
    if c.is_empty() {
        return Ok(None);
    }
    Ok(c.cast(&DataType::String)?.str()?.get(0).map(str::to_string))
}

/// Runs every model check against the gold files of the current run; with `None`, the model's
/// own consistency alone (`validate --config-only`). Checks fail closed: no gold at all, or a
/// gold file that cannot be read, is an error.
pub fn check(text: &SourceText, model: &Model, gold: Option<&GoldFiles>) -> Vec<Finding> {
    let (data, unreadable) = gold.map(read_gold).unwrap_or_default();
    let mut c = Checker { text, findings: Vec::new() };
    if gold.is_some_and(|g| g.is_empty()) && !model.tables.is_empty() {
        c.push(
            Severity::Error,
            "gold_built",
            None,
            "tables:",
            "the gold layer has not been built, so the model cannot be checked against data; run `jobforge run` \
             first, or pass `--config-only` to check the config and the model alone"
                .into(),
        );
    }
    for (name, e) in &unreadable {
        c.push(
            Severity::Error,
            "table_readable",
            Some("tables:"),
            name,
            format!("cannot read gold table `{name}`: {e}"),
        );
    }
    check_star(&mut c, model);
    for m in &model.measures {
        if !model.tables.contains_key(&m.table) {
            let hint = did_you_mean(&m.table, model.tables.keys().map(String::as_str))
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            c.push(
                Severity::Error,
                "measure",
                Some("measures:"),
                &m.table,
                format!("measure `{}` is on table `{}`, which is not in the model{hint}", m.name, m.table),
            );
        }
    }
    if data.is_empty() {
        // Config only, or nothing readable: the model's own consistency is all there is to check.
        return c.findings;
    }
    for (name, table) in &model.tables {
        let Some(df) = data.get(name) else {
            c.push(
                Severity::Error,
                "table_exists",
                Some("tables:"),
                name,
                format!("table `{name}` is not in the gold layer of the current run"),
            );
            continue;
        };
        let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
        for (column, spec) in &table.columns {
            match df.column(column) {
                Err(_) => {
                    let hint = did_you_mean(column, names.iter().map(String::as_str))
                        .map(|h| format!("; {h}"))
                        .unwrap_or_default();
                    c.push(
                        Severity::Error,
                        "column_exists",
                        Some(&format!("{name}:")),
                        column,
                        format!("column `{name}.{column}` is not in the gold data{hint}"),
                    );
                }
                Ok(series) => {
                    let actual = column_type(series.dtype());
                    if let Some(declared) = spec.data_type {
                        if !actual.is_some_and(|a| compatible(declared, a)) {
                            let message = format!(
                                "column `{name}.{column}` is declared {} but the gold data has {} ({})",
                                type_name(Some(declared)),
                                type_name(actual),
                                series.dtype()
                            );
                            c.push(Severity::Error, "column_type", Some(&format!("{name}:")), column, message);
                        }
                    }
                }
            }
            if let Some(term) = &spec.glossary_term {
                if !model.glossary.contains_key(term) {
                    c.push(
                        Severity::Error,
                        "glossary",
                        Some(&format!("{name}:")),
                        term,
                        format!(
                            "column `{name}.{column}` names glossary term `{term}`, which the glossary does not define"
                        ),
                    );
                }
            }
        }
        let key = table.primary_key.columns();
        let missing: Vec<&String> = key.iter().filter(|k| !names.contains(k)).collect();
        if let Some(k) = missing.first() {
            c.push(
                Severity::Error,
                "primary_key",
                Some(&format!("{name}:")),
                k,
                format!("primary key column `{name}.{k}` is not in the gold data"),
            );
        } else if !key.is_empty() {
            for k in &key {
                let nulls = df.column(k).map(|s| s.null_count()).unwrap_or(0);
                if nulls > 0 {
                    c.push(
                        Severity::Error,
                        "primary_key",
                        Some(&format!("{name}:")),
                        k,
                        format!("primary key column `{name}.{k}` has {nulls} null value(s)"),
                    );
                }
            }
            if let Ok((count, example)) = repeats(df, &key) {
                if count > 0 {
                    let message = format!(
                        "primary key ({}) of `{name}` is not unique: {count} rows share a key, e.g. ({})",
                        key.join(", "),
                        example.unwrap_or_default()
                    );
                    c.push(Severity::Error, "primary_key", Some(&format!("{name}:")), "primary_key", message);
                }
            }
        }
    }
    for r in &model.relationships {
        check_relationship(&mut c, model, &data, r);
    }
    for name in data.keys() {
        if !model.tables.contains_key(name) && !model.excluded.contains(name) {
            c.push(
                Severity::Error,
                "coverage",
                None,
                "tables:",
                format!("gold table `{name}` is not in the model; add it under `tables` or list it under `excluded`"),
            );
        }
    }
    c.findings
}

fn check_relationship(c: &mut Checker, model: &Model, data: &BTreeMap<String, DataFrame>, r: &Relationship) {
    let label = format!("relationship {} -> {}", r.from, r.to);
    let side = |reference: &str| -> Result<(String, String, Column), String> {
        let (t, col) = split_column(reference).ok_or_else(|| format!("`{reference}` must be table.column"))?;
        let df = data.get(t).ok_or_else(|| format!("table `{t}` is not in the gold layer"))?;
        let series = df.column(col).map_err(|_| format!("column `{reference}` is not in the gold data"))?;
        Ok((t.to_string(), col.to_string(), series.clone()))
    };
    let (from, to) = match (side(&r.from), side(&r.to)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => {
            return c.push(Severity::Error, "relationship", Some("relationships:"), &r.from, format!("{label}: {e}"))
        }
    };
    let (from_type, to_type) = (column_type(from.2.dtype()), column_type(to.2.dtype()));
    if from_type != to_type {
        let message = format!(
            "{label}: types differ ({} is {}, {} is {})",
            r.from,
            type_name(from_type),
            r.to,
            type_name(to_type)
        );
        return c.push(Severity::Error, "relationship", Some("relationships:"), &r.from, message);
    }
    let one_key = model.tables.get(&to.0).map(|t| t.primary_key.columns()).unwrap_or_default();
    if r.cardinality != Cardinality::ManyToMany && one_key != [to.1.clone()] {
        let message = format!(
            "{label}: the one side `{}` is not the primary key of `{}` (its key is [{}])",
            r.to,
            to.0,
            one_key.join(", ")
        );
        c.push(Severity::Error, "star", Some("relationships:"), &r.from, message);
    }
    let unique = |s: &Column| -> (usize, Option<String>) {
        let df = DataFrame::new_infer_height(vec![s.clone()]).unwrap_or_default();
        repeats(&df, &[s.name().to_string()]).unwrap_or((0, None))
    };
    let (to_repeats, to_example) = unique(&to.2);
    if r.cardinality != Cardinality::ManyToMany && to_repeats > 0 {
        let message = format!(
            "{label}: declared {} but the one side `{}` repeats ({to_repeats} rows share a value, e.g. {})",
            cardinality_name(r.cardinality),
            r.to,
            to_example.unwrap_or_default()
        );
        c.push(Severity::Error, "cardinality", Some("relationships:"), &r.from, message);
    }
    if r.cardinality == Cardinality::OneToOne {
        let (from_repeats, example) = unique(&from.2);
        if from_repeats > 0 {
            let message = format!("{label}: declared one_to_one but the many side `{}` repeats ({from_repeats} rows share a value, e.g. {})", r.from, example.unwrap_or_default());
            c.push(Severity::Error, "cardinality", Some("relationships:"), &r.from, message);
        }
    }
    let orphans = (|| -> PolarsResult<(usize, Option<String>)> {
        let keys = to.2.as_materialized_series().drop_nulls().cast(&DataType::String)?;
        let values = DataFrame::new_infer_height(vec![from.2.clone().with_name("v".into())])?;
        let c = col("v").cast(DataType::String);
        let orphans = values
            .lazy()
            .filter(c.clone().is_not_null().and(c.is_in(lit(keys).implode(false), false).not()))
            .collect()?;
        let example = first_text(orphans.column("v")?)?;
        Ok((orphans.height(), example))
    })();
    if let Ok((count, example)) = orphans {
        if count > 0 {
            let message = format!(
                "{label}: {count} orphan row(s) in `{}` whose value is not in `{}`, e.g. {}",
                from.0,
                r.to,
                example.unwrap_or_default()
            );
            c.push(r.severity, "orphans", Some("relationships:"), &r.from, message);
        }
    }
}

fn cardinality_name(c: Cardinality) -> &'static str {
    match c {
        Cardinality::ManyToOne => "many_to_one",
        Cardinality::OneToOne => "one_to_one",
        Cardinality::ManyToMany => "many_to_many",
    }
}

/// Power BI allows one active path between two tables: an active relationship that joins two
/// tables already connected by active relationships makes the model ambiguous.
fn check_star(c: &mut Checker, model: &Model) {
    for r in &model.relationships {
        for end in [&r.from, &r.to] {
            let table = split_column(end).map(|(t, _)| t);
            if !table.is_some_and(|t| model.tables.contains_key(t)) {
                let name = table.unwrap_or(end);
                let hint = did_you_mean(name, model.tables.keys().map(String::as_str))
                    .map(|h| format!("; {h}"))
                    .unwrap_or_default();
                let message =
                    format!("relationship {} -> {}: table `{name}` is not declared under `tables`{hint}", r.from, r.to);
                c.push(Severity::Error, "relationship", Some("relationships:"), end, message);
            }
        }
    }
    let mut adjacency: HashMap<String, Vec<String>> = HashMap::new();
    for r in model.relationships.iter().filter(|r| r.active) {
        let (Some((a, _)), Some((b, _))) = (split_column(&r.from), split_column(&r.to)) else { continue };
        if let Some(path) = find_path(&adjacency, a, b) {
            let message = format!("relationship {} -> {} makes two active paths between `{a}` and `{b}` (the other is {}); mark one inactive", r.from, r.to, path.join(" - "));
            c.push(Severity::Error, "star", Some("relationships:"), &r.from, message);
            continue;
        }
        adjacency.entry(a.to_string()).or_default().push(b.to_string());
        adjacency.entry(b.to_string()).or_default().push(a.to_string());
    }
}

fn find_path(adjacency: &HashMap<String, Vec<String>>, from: &str, to: &str) -> Option<Vec<String>> {
    let mut previous: HashMap<&str, &str> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([from]);
    while let Some(n) = queue.pop_front() {
        if n == to {
            let mut path = vec![to.to_string()];
            let mut at = to;
            while let Some(p) = previous.get(at) {
                path.push(p.to_string());
                at = p;
            }
            path.reverse();
            return Some(path);
        }
        for next in adjacency.get(n).into_iter().flatten() {
            if next != from && !previous.contains_key(next.as_str()) {
                previous.insert(next, n);
                queue.push_back(next);
            }
        }
    }
    None
}

/// The model with the gold data's column types and row counts, for other tools.
pub fn export(model: &Model, gold: &GoldFiles) -> serde_json::Value {
    let (data, _) = read_gold(gold);
    let tables: Vec<serde_json::Value> = model
        .tables
        .iter()
        .map(|(name, t)| {
            let df = data.get(name);
            let columns: Vec<serde_json::Value> = df
                .map(|df| {
                    df.columns()
                        .iter()
                        .filter(|c| !PROVENANCE.contains(&c.name().as_str()))
                        .map(|c| {
                            let declared = t.columns.get(c.name().as_str());
                            serde_json::json!({
                                "name": c.name().as_str(),
                                "data_type": type_name(column_type(c.dtype())),
                                "polars_type": c.dtype().to_string(),
                                "nullable": c.null_count() > 0,
                                "description": declared.and_then(|d| d.description.clone()),
                                "pii": declared.is_some_and(|d| d.pii),
                                "format": declared.and_then(|d| d.format.clone()),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            serde_json::json!({
                "name": name,
                "kind": t.kind,
                "primary_key": t.primary_key.columns(),
                "description": t.description,
                "row_count": df.map(|d| d.height()),
                "columns": columns,
            })
        })
        .collect();
    serde_json::json!({
        "model": model.model,
        "description": model.description,
        "tables": tables,
        "relationships": model.relationships,
        "measures": model.measures,
        "glossary": model.glossary,
    })
}
