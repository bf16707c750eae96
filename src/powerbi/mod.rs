//! `jobforge powerbi`: the semantic model as a Power BI project (PBIP) with a TMDL semantic
//! model, generated from `wiq_schema.yml` and the gold files through minijinja templates kept in
//! `src/powerbi/templates`; and `--check`, which reads a project back and reports what no longer
//! matches the model or the gold files. Output is deterministic: the same inputs give the same
//! bytes, with lineage tags derived from each object's path.

pub mod tmdl;

use crate::plan::check::PROVENANCE;
use crate::records::TableMetadata;
use crate::semantic::check::GoldFiles;
use crate::semantic::model::{Cardinality, CrossFilter, Model};
use minijinja::{context, Environment};
use polars::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const TEMPLATES: [(&str, &str); 6] = [
    ("database.tmdl", include_str!("templates/database.tmdl")),
    ("model.tmdl", include_str!("templates/model.tmdl")),
    ("expressions.tmdl", include_str!("templates/expressions.tmdl")),
    ("relationships.tmdl", include_str!("templates/relationships.tmdl")),
    ("table.tmdl", include_str!("templates/table.tmdl")),
    ("report.json", include_str!("templates/report.json")),
];

/// What a generation wrote.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub tables: usize,
    pub columns: usize,
    pub measures: usize,
    pub relationships: usize,
}

/// Everything generation reads: the model, the stable gold folder Power BI reads, the current
/// snapshot's gold files and table metadata, and source publishers.
pub struct Inputs<'a> {
    pub model: &'a Model,
    pub gold: &'a Path,
    pub gold_files: &'a GoldFiles,
    /// Gold-layer table metadata of the snapshot.
    pub metadata: &'a [TableMetadata],
    /// Publisher of each source id.
    pub publishers: BTreeMap<String, String>,
}

fn environment() -> Result<Environment<'static>, String> {
    let mut env = Environment::new();
    env.set_keep_trailing_newline(true);
    for (name, text) in TEMPLATES {
        env.add_template(name, text).map_err(|e| format!("template {name}: {e}"))?;
    }
    Ok(env)
}

fn render(env: &Environment, name: &str, ctx: minijinja::Value) -> Result<String, String> {
    env.get_template(name).and_then(|t| t.render(ctx)).map_err(|e| format!("template {name}: {e}"))
}

/// The TMDL data type of a polars type.
fn data_type(dtype: &DataType) -> &'static str {
    match dtype {
        d if d.is_integer() => "int64",
        d if d.is_float() => "double",
        DataType::Boolean => "boolean",
        DataType::Date | DataType::Datetime(..) => "dateTime",
        _ => "string",
    }
}

/// Numbers are summed unless they are keys, years or rates; everything else is not summarised.
fn summarize_by(column: &str, dtype: &DataType, is_key: bool) -> &'static str {
    let name = column.to_lowercase();
    let additive =
        (dtype.is_integer() || dtype.is_float()) && !is_key && !name.contains("year") && !name.contains("rate");
    if additive {
        "sum"
    } else {
        "none"
    }
}

/// The project's files (path relative to the output folder -> content) for `name`.
pub fn generate(inputs: &Inputs, name: &str) -> Result<(BTreeMap<PathBuf, String>, Summary), String> {
    let env = environment()?;
    let model = inputs.model;
    let mut files = BTreeMap::new();
    let mut summary = Summary::default();
    let semantic = PathBuf::from(format!("{name}.SemanticModel"));
    let definition = semantic.join("definition");
    // Absolute, but not through the stable path's links: Power BI must follow `current`.
    let gold_abs = std::path::absolute(inputs.gold).unwrap_or_else(|_| inputs.gold.to_path_buf());
    let gold_text = gold_abs.display().to_string();
    let separator = if gold_text.contains('\\') { "\\" } else { "/" };
    let keys: BTreeSet<String> = model
        .tables
        .iter()
        .flat_map(|(t, spec)| spec.primary_key.columns().into_iter().map(move |c| format!("{t}.{c}")))
        .chain(model.relationships.iter().flat_map(|r| [r.from.clone(), r.to.clone()]))
        .collect();
    for (table, spec) in &model.tables {
        let path = inputs
            .gold_files
            .get(table)
            .ok_or_else(|| format!("gold table `{table}` is not in the current run; run it first"))?;
        let schema = PlRefPath::try_from_path(path)
            .and_then(|p| LazyFrame::scan_parquet(p, ScanArgsParquet::default()))
            .and_then(|mut lf| lf.collect_schema())
            .map_err(|e| format!("gold table `{table}` ({}): {e}", path.display()))?;
        let meta = inputs.metadata.iter().find(|m| &m.name == table);
        let columns: Vec<minijinja::Value> = schema
            .iter()
            .map(|(column, dtype)| {
                let declared = spec.columns.get(column.as_str());
                let described = declared
                    .and_then(|d| d.description.clone())
                    .or_else(|| {
                        meta.as_ref().and_then(|m| {
                            m.columns.iter().find(|c| c.name == column.as_str()).and_then(|c| c.description.clone())
                        })
                    })
                    .unwrap_or_default();
                let is_key = keys.contains(&format!("{table}.{column}"));
                context! {
                    name => tmdl::quote(column),
                    description => tmdl::description_lines(&described),
                    data_type => data_type(dtype),
                    format => declared.and_then(|d| d.format.clone()),
                    hidden => PROVENANCE.contains(&column.as_str()),
                    lineage_tag => tmdl::lineage_tag(&format!("table/{table}/column/{column}")),
                    summarize_by => summarize_by(column, dtype, is_key),
                    source_column => tmdl::text_value(column),
                }
            })
            .collect();
        let measures: Vec<minijinja::Value> = model
            .measures
            .iter()
            .filter(|m| &m.table == table)
            .map(|m| {
                context! {
                    name => tmdl::quote(&m.name),
                    expression => m.expression.lines().map(str::trim).collect::<Vec<_>>().join(" "),
                    format => m.format.clone(),
                    description => tmdl::description_lines(m.description.as_deref().unwrap_or("")),
                    lineage_tag => tmdl::lineage_tag(&format!("table/{table}/measure/{}", m.name)),
                }
            })
            .collect();
        let mut description = Vec::new();
        description.extend(spec.description.clone());
        description.extend(spec.business_purpose.as_ref().map(|p| format!("Purpose: {p}")));
        description.extend(spec.source.as_ref().map(|s| format!("Source: {s}")));
        if let Some(m) = &meta {
            if let Some(p) = inputs.publishers.get(&m.source) {
                description.push(format!("Publisher: {p}"));
            }
            description.push(format!("Last batch {} at {}", m.batch_id, m.updated_at.format("%Y-%m-%dT%H:%M:%SZ")));
        }
        summary.tables += 1;
        summary.columns += columns.len();
        summary.measures += measures.len();
        let text = render(
            &env,
            "table.tmdl",
            context! {
                name => tmdl::quote(table),
                description => description.iter().flat_map(|d| tmdl::description_lines(d)).collect::<Vec<_>>(),
                lineage_tag => tmdl::lineage_tag(&format!("table/{table}")),
                columns => columns,
                measures => measures,
                file => tmdl::m_string(&format!("{separator}{table}.parquet")),
                batch_id => meta.as_ref().map(|m| m.batch_id.clone()).unwrap_or_default(),
            },
        )?;
        files.insert(definition.join("tables").join(format!("{table}.tmdl")), text);
    }
    let relationships: Vec<minijinja::Value> = model
        .relationships
        .iter()
        .map(|r| {
            let (ft, fc) = r.from.split_once('.').unwrap_or((&r.from, ""));
            let (tt, tc) = r.to.split_once('.').unwrap_or((&r.to, ""));
            context! {
                id => tmdl::lineage_tag(&format!("relationship/{}/{}", r.from, r.to)),
                description => tmdl::description_lines(r.description.as_deref().unwrap_or("")),
                cross_filter_both => r.cross_filter == CrossFilter::Both,
                active => r.active,
                from_one => r.cardinality == Cardinality::OneToOne,
                to_many => r.cardinality == Cardinality::ManyToMany,
                from_column => tmdl::column_ref(ft, fc),
                to_column => tmdl::column_ref(tt, tc),
            }
        })
        .collect();
    summary.relationships = relationships.len();
    files
        .insert(definition.join("relationships.tmdl"), render(&env, "relationships.tmdl", context! { relationships })?);
    files.insert(
        definition.join("database.tmdl"),
        render(&env, "database.tmdl", context! { name => tmdl::quote(name) })?,
    );
    let tables: Vec<String> = model.tables.keys().map(|t| tmdl::quote(t)).collect();
    let order: Vec<String> = std::iter::once("GoldFolder".to_string()).chain(model.tables.keys().cloned()).collect();
    let model_text = render(
        &env,
        "model.tmdl",
        context! { tables, query_order => serde_json::to_string(&order).unwrap_or_default(), model_name => model.model.clone() },
    )?;
    files.insert(definition.join("model.tmdl"), model_text);
    let expressions = context! { gold_folder => tmdl::m_string(&gold_text), lineage_tag => tmdl::lineage_tag("expression/GoldFolder") };
    files.insert(definition.join("expressions.tmdl"), render(&env, "expressions.tmdl", expressions)?);
    let json = |v: serde_json::Value| serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
    files.insert(semantic.join("definition.pbism"), json(serde_json::json!({ "version": "4.2", "settings": {} })));
    let report = PathBuf::from(format!("{name}.Report"));
    files.insert(
        report.join("definition.pbir"),
        json(serde_json::json!({ "version": "4.0", "datasetReference": { "byPath": { "path": format!("../{name}.SemanticModel") } } })),
    );
    files.insert(report.join("report.json"), render(&env, "report.json", context! { name => name })?);
    files.insert(
        PathBuf::from(format!("{name}.pbip")),
        json(serde_json::json!({
            "version": "1.0",
            "artifacts": [{ "report": { "path": format!("{name}.Report") } }],
            "settings": { "enableAutoRecovery": true }
        })),
    );
    Ok((files, summary))
}

/// Writes the files under `out`, each atomically, and removes table files the model no longer
/// has.
pub fn write(out: &Path, name: &str, files: &BTreeMap<PathBuf, String>) -> std::io::Result<()> {
    for (path, text) in files {
        crate::atomic::write_bytes(&out.join(path), text.as_bytes())?;
    }
    let tables = out.join(format!("{name}.SemanticModel/definition/tables"));
    for entry in std::fs::read_dir(&tables)?.flatten() {
        let rel = entry.path().strip_prefix(out).map(Path::to_path_buf).unwrap_or_default();
        if !files.contains_key(&rel) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Reads the project `dir` back with the TMDL reader.
pub fn read_back(dir: &Path, name: &str) -> Result<tmdl::ReadBack, String> {
    let definition = dir.join(format!("{name}.SemanticModel/definition"));
    let mut out = tmdl::ReadBack::default();
    let tables = definition.join("tables");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&tables)
        .map_err(|e| format!("{}: {e}", tables.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tmdl"))
        .collect();
    paths.sort();
    for p in paths {
        tmdl::read_table(&std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?, &mut out);
    }
    let rel = definition.join("relationships.tmdl");
    tmdl::read_relationships(&std::fs::read_to_string(&rel).map_err(|e| format!("{}: {e}", rel.display()))?, &mut out);
    Ok(out)
}

/// Every relationship, partition or column of the project at `dir` that no longer matches the
/// model or the gold files.
pub fn check(dir: &Path, name: &str, model: &Model, gold: &GoldFiles) -> Result<Vec<String>, String> {
    let read = read_back(dir, name)?;
    let mut problems = Vec::new();
    for r in &model.relationships {
        match read.relationships.iter().find(|x| x.from == r.from && x.to == r.to) {
            None => {
                problems.push(format!("relationship {} -> {} of the model is not in relationships.tmdl", r.from, r.to))
            }
            Some(x) => {
                if x.active != r.active {
                    problems.push(format!(
                        "relationship {} -> {}: isActive is {} in TMDL, {} in the model",
                        r.from, r.to, x.active, r.active
                    ));
                }
                if x.both != (r.cross_filter == CrossFilter::Both) {
                    problems.push(format!(
                        "relationship {} -> {}: cross-filter direction differs from the model",
                        r.from, r.to
                    ));
                }
            }
        }
    }
    for x in &read.relationships {
        if !model.relationships.iter().any(|r| r.from == x.from && r.to == x.to) {
            problems.push(format!("relationship {} -> {} in relationships.tmdl is not in the model", x.from, x.to));
        }
    }
    for table in model.tables.keys() {
        match read.partitions.get(table) {
            None => problems.push(format!("table `{table}` of the model has no partition in the project")),
            Some(file) => {
                let stem = file.strip_suffix(".parquet").unwrap_or(file);
                let Some(path) = gold.get(stem).filter(|p| p.exists()) else {
                    problems.push(format!(
                        "partition of `{table}` reads `{file}`, which is not in the current run's gold layer"
                    ));
                    continue;
                };
                let schema = PlRefPath::try_from_path(path)
                    .and_then(|p| LazyFrame::scan_parquet(p, ScanArgsParquet::default()))
                    .and_then(|mut lf| lf.collect_schema())
                    .map_err(|e| e.to_string())?;
                let tmdl_columns = read.columns.get(table).cloned().unwrap_or_default();
                for c in schema.iter_names() {
                    if !tmdl_columns.iter().any(|t| t == c.as_str()) {
                        problems.push(format!("column `{table}.{c}` of the gold data is not in the project"));
                    }
                }
                for c in &tmdl_columns {
                    if schema.get(c).is_none() {
                        problems.push(format!("column `{table}.{c}` of the project is not in the gold data"));
                    }
                }
            }
        }
    }
    for table in read.partitions.keys() {
        if !model.tables.contains_key(table) {
            problems.push(format!("table `{table}` of the project is not in the model"));
        }
    }
    Ok(problems)
}
