//! `jobforge load`: a committed run's gold layer into a warehouse, planned by default and applied
//! with `--execute` in one transaction (every table or none). Targets: an embedded DuckDB file
//! (`duckdb.rs`, the default `data/warehouse.duckdb`) or a PostgreSQL database (`postgres.rs`),
//! named in `warehouse.yml` (`targets.rs`) or given as `duckdb:PATH` / `postgres://URL`.
//!
//! Per table, from the model: the strategy (`replace`; `upsert` by the primary key: new keys
//! inserted, changed rows updated, keys gone from gold deleted; `append` of the batches not
//! loaded yet), the primary key, foreign keys from the relationships (PostgreSQL, checked at
//! commit) and the table and column comments. Added columns are applied; dropped or retyped
//! ones are refused unless `--allow-destructive`. Each load is recorded in the warehouse
//! (`_jobforge_loads`, in the same transaction) and in the data folder.

#[cfg(feature = "query")]
mod duckdb;
pub mod postgres;
pub mod targets;

use crate::plan::check::PROVENANCE;
use crate::semantic::model::{LoadStrategy, Model};
use crate::sql::{ident, idents};
use crate::store::{Manifest, Store};
use serde::Serialize;
use std::path::PathBuf;

pub use targets::{lookup, resolve, Resolved};

/// Where gold is loaded (and what `diff` can read).
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    DuckDb(PathBuf),
    Postgres(postgres::Pg),
}

impl Target {
    /// What the target is, for people and records (never a password).
    pub fn describe(&self) -> String {
        match self {
            Target::DuckDb(p) => format!("duckdb:{}", p.display()),
            Target::Postgres(pg) => pg.url.clone(),
        }
    }

    /// The schema used when none is named.
    pub fn default_schema(&self) -> &'static str {
        match self {
            Target::DuckDb(_) => "main",
            Target::Postgres(_) => "public",
        }
    }
}

/// What the load does (or did) to one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableLoad {
    pub table: String,
    pub strategy: LoadStrategy,
    pub key: Vec<String>,
    /// Schema statements, in order (constraints between tables come after every table's).
    pub ddl: Vec<String>,
    pub insert: u64,
    pub update: u64,
    pub delete: u64,
    /// Destructive changes refused (without `--allow-destructive`).
    pub refused: Vec<String>,
    /// The gold file and its columns with their types in the target's own type names.
    #[serde(skip)]
    file: PathBuf,
    #[serde(skip)]
    columns: Vec<(String, String)>,
    /// The statement that creates the table, and whether the target has it yet.
    #[serde(skip)]
    create: String,
    #[serde(skip)]
    exists: bool,
    /// Foreign keys to add, applied after every table exists (also listed in `ddl`).
    #[serde(skip)]
    constraints: Vec<String>,
}

impl TableLoad {
    /// The plan of one gold table: strategy and key from the model, the statement that creates
    /// it, and the schema changes from the target's `existing` columns to gold's `columns` (both
    /// in the target's type names). `alter_type` writes the statement that retypes a column.
    fn plan(
        request: &LoadRequest,
        name: &str,
        file: PathBuf,
        qualified: &str,
        columns: Vec<(String, String)>,
        existing: &[(String, String)],
        alter_type: impl Fn(&str, &str) -> String,
    ) -> Result<TableLoad, String> {
        let (model, allow_destructive) = (request.model, request.allow_destructive);
        let model_table = model.and_then(|md| md.tables.get(name));
        let key = model_table.map(|t| t.primary_key.columns()).unwrap_or_default();
        let strategy = model_table.and_then(|t| t.load).unwrap_or(if key.is_empty() {
            LoadStrategy::Replace
        } else {
            LoadStrategy::Upsert
        });
        if strategy == LoadStrategy::Upsert && key.is_empty() {
            return Err(format!("table `{name}`: upsert needs a primary key in the model"));
        }
        let defs: Vec<String> = columns.iter().map(|(c, ty)| format!("{} {ty}", ident(c))).collect();
        // Appended batches repeat keys: only the other strategies declare the primary key.
        let pk = if key.is_empty() || strategy == LoadStrategy::Append {
            String::new()
        } else {
            format!(", PRIMARY KEY ({})", idents(&key))
        };
        let mut t = TableLoad {
            table: name.to_string(),
            strategy,
            key: if strategy == LoadStrategy::Upsert { key } else { vec![] },
            ddl: vec![],
            insert: 0,
            update: 0,
            delete: 0,
            refused: vec![],
            file,
            create: format!("CREATE TABLE {qualified} ({}{pk})", defs.join(", ")),
            exists: !existing.is_empty(),
            columns: vec![],
            constraints: vec![],
        };
        if !t.exists {
            t.ddl.push(t.create.clone());
        }
        // Destructive changes are applied only when allowed, else refused with the reason.
        let destructive = |t: &mut TableLoad, why: String, ddl: String| {
            if allow_destructive {
                t.ddl.push(ddl)
            } else {
                t.refused.push(why)
            }
        };
        if t.exists {
            for (c, ty) in &columns {
                match existing.iter().find(|(n, _)| n == c) {
                    None => t.ddl.push(format!("ALTER TABLE {qualified} ADD COLUMN {} {ty}", ident(c))),
                    Some((_, old)) if old != ty => destructive(
                        &mut t,
                        format!("column `{c}` changes type from {old} to {ty}"),
                        alter_type(&format!("ALTER TABLE {qualified} ALTER COLUMN {}", ident(c)), ty),
                    ),
                    Some(_) => {}
                }
            }
            for (c, _) in existing {
                if !columns.iter().any(|(n, _)| n == c) {
                    destructive(
                        &mut t,
                        format!("column `{c}` is no longer in gold"),
                        format!("ALTER TABLE {qualified} DROP COLUMN {}", ident(c)),
                    );
                }
            }
        }
        t.columns = columns;
        Ok(t)
    }

    /// `s.k = t.k AND ...` over the key.
    fn key_match(&self, s: &str, t: &str) -> String {
        self.key.iter().map(|k| format!("{s}.{0} = {t}.{0}", ident(k))).collect::<Vec<_>>().join(" AND ")
    }

    /// `c = s.c` for every column but the key: an upsert's `SET` from its gold row `s`.
    fn value_sets(&self, s: &str) -> Vec<String> {
        self.columns
            .iter()
            .filter(|(c, _)| !self.key.contains(c))
            .map(|(c, _)| format!("{0} = {s}.{0}", ident(c)))
            .collect()
    }

    /// True for a target row `t` that differs from its gold row `s` in a value column
    /// (provenance aside) that the target has (`existing`).
    fn changed(&self, s: &str, t: &str, existing: &[(String, String)]) -> String {
        let values: Vec<String> = self
            .columns
            .iter()
            .filter(|(c, _)| !self.key.contains(c) && !PROVENANCE.contains(&c.as_str()))
            .map(|(c, _)| {
                if existing.iter().any(|(n, _)| n == c) {
                    format!("{s}.{0} IS DISTINCT FROM {t}.{0}", ident(c))
                } else {
                    "true".to_string()
                }
            })
            .collect();
        if values.is_empty() {
            "false".into()
        } else {
            format!("({})", values.join(" OR "))
        }
    }

    /// `COMMENT ON` statements from the model's descriptions.
    fn comments(&self, model: Option<&Model>, qualified: &str, quote: impl Fn(&str) -> String) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(mt) = model.and_then(|md| md.tables.get(&self.table)) {
            if let Some(d) = &mt.description {
                out.push(format!("COMMENT ON TABLE {qualified} IS {}", quote(d)));
            }
            for (c, col) in &mt.columns {
                if let (Some(d), true) = (&col.description, self.columns.iter().any(|(n, _)| n == c)) {
                    out.push(format!("COMMENT ON COLUMN {qualified}.{} IS {}", ident(c), quote(d)));
                }
            }
        }
        out
    }
}

/// A whole load.
#[derive(Debug, Clone, Serialize)]
pub struct Load {
    pub run_id: String,
    pub seq: u64,
    pub target: String,
    pub schema: String,
    pub executed: bool,
    pub tables: Vec<TableLoad>,
}

impl Load {
    pub fn refused(&self) -> bool {
        self.tables.iter().any(|t| !t.refused.is_empty())
    }

    /// The plan (or what was applied) for people.
    pub fn render(&self) -> String {
        let mode = if self.executed { "loaded" } else { "plan only (--execute applies it)" };
        let mut out =
            format!("load of run #{} {} into {} schema {}: {mode}\n", self.seq, self.run_id, self.target, self.schema);
        for t in &self.tables {
            let by = if t.key.is_empty() { String::new() } else { format!(" by ({})", t.key.join(", ")) };
            out.push_str(&format!(
                "  {:<34} {}{by}: insert {}, update {}, delete {}\n",
                t.table,
                t.strategy.name(),
                t.insert,
                t.update,
                t.delete
            ));
            for d in &t.ddl {
                out.push_str(&format!("      {d}\n"));
            }
            for r in &t.refused {
                out.push_str(&format!("      refused: {r} (--allow-destructive applies it)\n"));
            }
        }
        out
    }

    fn new(m: &Manifest, target: &Target, schema: &str, tables: Vec<TableLoad>) -> Load {
        Load {
            run_id: m.run_id.clone(),
            seq: m.seq,
            target: target.describe(),
            schema: schema.to_string(),
            executed: false,
            tables,
        }
    }
}

/// What a load is asked to do; each backend reads it.
#[derive(Clone, Copy)]
pub struct LoadRequest<'a> {
    pub store: &'a Store,
    /// The committed run whose gold is loaded.
    pub snapshot: &'a Manifest,
    pub model: Option<&'a Model>,
    pub target: &'a Target,
    pub schema: &'a str,
    pub execute: bool,
    pub allow_destructive: bool,
}

/// Plans the load of snapshot `m` into `target`, or with `execute` applies it in one
/// transaction and records it.
pub fn load(
    store: &Store,
    m: &Manifest,
    model: Option<&Model>,
    target: &Target,
    schema: &str,
    execute: bool,
    allow_destructive: bool,
) -> Result<Load, String> {
    let request = LoadRequest { store, snapshot: m, model, target, schema, execute, allow_destructive };
    let load = match target {
        #[cfg(feature = "query")]
        Target::DuckDb(path) => duckdb::load(request, path)?,
        #[cfg(not(feature = "query"))]
        Target::DuckDb(_) => return Err("this jobforge was built without the `query` feature (DuckDB)".into()),
        Target::Postgres(pg) => postgres::load(request, pg)?,
    };
    if load.executed {
        store.record_load(&serde_json::to_value(&load).map_err(|e| e.to_string())?)?;
    }
    Ok(load)
}
