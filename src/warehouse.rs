//! `jobforge load`: a committed run's gold layer into a warehouse, planned by default and applied
//! with `--execute` in one transaction (every table or none). The target is an embedded DuckDB
//! file (`duckdb:PATH`, default `data/warehouse.duckdb`). Per table, from the model: the
//! strategy (`replace`; `upsert` by the primary key: new keys inserted, changed rows updated,
//! keys gone from gold deleted; `append` of the batches not loaded yet), the primary key, and the
//! table and column comments. Added columns are applied; dropped or retyped ones are refused
//! unless `--allow-destructive`. Each load is recorded in the warehouse (`_jobforge_loads`, in
//! the same transaction) and in the data folder.

use crate::plan::check::PROVENANCE;
use crate::query::{count, ident, sql_string, text_rows};
use crate::semantic::model::{LoadStrategy, Model};
use crate::store::{Manifest, Store};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Where gold is loaded.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    DuckDb(PathBuf),
}

impl Target {
    /// Reads `duckdb:PATH` (relative to the project); PostgreSQL is refused, naming what is missing.
    pub fn parse(text: &str, project: &Path) -> Result<Target, String> {
        if let Some(path) = text.strip_prefix("duckdb:") {
            return Ok(Target::DuckDb(project.join(path)));
        }
        if text.starts_with("postgres:") || text.starts_with("postgresql:") {
            return Err(format!("`{text}`: PostgreSQL targets are not supported yet; load into duckdb:PATH"));
        }
        Err(format!("`{text}` is not a target: write duckdb:PATH"))
    }

    fn describe(&self) -> String {
        match self {
            Target::DuckDb(p) => format!("duckdb:{}", p.display()),
        }
    }
}

/// What the load does (or did) to one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableLoad {
    pub table: String,
    pub strategy: LoadStrategy,
    pub key: Vec<String>,
    /// Schema statements, in order.
    pub ddl: Vec<String>,
    pub insert: u64,
    pub update: u64,
    pub delete: u64,
    /// Destructive changes refused (without `--allow-destructive`).
    pub refused: Vec<String>,
    /// What `apply` needs and the plan does not show: the gold file read (`read_parquet(..)`),
    /// its columns with their types, the statement that creates the table, and whether the
    /// target has it yet.
    #[serde(skip)]
    src: String,
    #[serde(skip)]
    columns: Vec<(String, String)>,
    #[serde(skip)]
    create: String,
    #[serde(skip)]
    exists: bool,
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
}

/// (column, type) pairs that `sql` returns.
fn column_types(conn: &duckdb::Connection, sql: &str, args: &[&str]) -> Result<Vec<(String, String)>, String> {
    Ok(text_rows(conn, sql, args)?
        .into_iter()
        .map(|mut r| (std::mem::take(&mut r[0]), std::mem::take(&mut r[1])))
        .collect())
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
    let Target::DuckDb(path) = target;
    let conn = duckdb::Connection::open_in_memory().map_err(|e| e.to_string())?;
    let exists = path.is_file();
    if execute {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        conn.execute_batch(&format!("ATTACH {} AS wh;", sql_string(&path.to_string_lossy())))
    } else if exists {
        conn.execute_batch(&format!("ATTACH {} AS wh (READ_ONLY);", sql_string(&path.to_string_lossy())))
    } else {
        Ok(())
    }
    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let attached = execute || exists;
    let schema_exists = attached
        && count(
            &conn,
            &format!(
                "SELECT count(*) FROM duckdb_schemas() WHERE database_name = 'wh' AND schema_name = {}",
                sql_string(schema)
            ),
        )? > 0;
    let mut tables = Vec::new();
    for (name, file) in store.layer_files(m, "gold") {
        let name = &name;
        let src = format!("read_parquet({})", sql_string(&file.to_string_lossy()));
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
        let source: Vec<(String, String)> =
            column_types(&conn, &format!("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {src})"), &[])?;
        let target_columns: Vec<(String, String)> = if schema_exists {
            column_types(
                &conn,
                "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'wh' AND schema_name = ? \
                 AND table_name = ? ORDER BY column_index",
                &[schema, name],
            )?
        } else {
            vec![]
        };
        let qualified = format!("wh.{}.{}", ident(schema), ident(name));
        let cols: Vec<String> = source.iter().map(|(c, ty)| format!("{} {ty}", ident(c))).collect();
        // Appended batches repeat keys: only the other strategies declare the primary key.
        let pk = if key.is_empty() || strategy == LoadStrategy::Append {
            String::new()
        } else {
            format!(", PRIMARY KEY ({})", idents(&key))
        };
        let mut t = TableLoad {
            table: name.clone(),
            strategy,
            key: if strategy == LoadStrategy::Upsert { key.clone() } else { vec![] },
            ddl: vec![],
            insert: 0,
            update: 0,
            delete: 0,
            refused: vec![],
            src: src.clone(),
            create: format!("CREATE TABLE {qualified} ({}{pk})", cols.join(", ")),
            exists: !target_columns.is_empty(),
            columns: vec![],
        };
        let rows = m.file(name, "gold").map_or(0, |f| f.rows);
        if !t.exists {
            t.ddl.push(t.create.clone());
            t.insert = rows;
        } else {
            // Destructive changes are applied only when allowed, else refused with the reason.
            let destructive = |t: &mut TableLoad, why: String, ddl: String| {
                if allow_destructive {
                    t.ddl.push(ddl)
                } else {
                    t.refused.push(why)
                }
            };
            for (c, ty) in &source {
                match target_columns.iter().find(|(n, _)| n == c) {
                    None => t.ddl.push(format!("ALTER TABLE {qualified} ADD COLUMN {} {ty}", ident(c))),
                    Some((_, old)) if old != ty => destructive(
                        &mut t,
                        format!("column `{c}` changes type from {old} to {ty}"),
                        format!("ALTER TABLE {qualified} ALTER {} TYPE {ty}", ident(c)),
                    ),
                    Some(_) => {}
                }
            }
            for (c, _) in &target_columns {
                if !source.iter().any(|(n, _)| n == c) {
                    destructive(
                        &mut t,
                        format!("column `{c}` is no longer in gold"),
                        format!("ALTER TABLE {qualified} DROP COLUMN {}", ident(c)),
                    );
                }
            }
            let current = count(&conn, &format!("SELECT count(*) FROM {qualified}"))?;
            match strategy {
                LoadStrategy::Replace => {
                    t.delete = current;
                    t.insert = rows;
                }
                LoadStrategy::Append => {
                    t.insert = count(
                        &conn,
                        &format!("SELECT count(*) FROM {src} s WHERE _batch_id NOT IN (SELECT DISTINCT _batch_id FROM {qualified})"),
                    )?;
                }
                LoadStrategy::Upsert => {
                    let (ins, upd, del) = upsert_counts(&conn, &src, &qualified, &key, &source, &target_columns)?;
                    (t.insert, t.update, t.delete) = (ins, upd, del);
                }
            }
        }
        t.columns = source;
        tables.push(t);
    }
    let mut load = Load {
        run_id: m.run_id.clone(),
        seq: m.seq,
        target: target.describe(),
        schema: schema.to_string(),
        executed: false,
        tables,
    };
    if !execute || load.refused() {
        return Ok(load);
    }
    apply(&conn, m, model, &load, schema, schema_exists)?;
    load.executed = true;
    store.record_load(&serde_json::to_value(&load).map_err(|e| e.to_string())?)?;
    Ok(load)
}

fn idents(cols: &[String]) -> String {
    cols.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ")
}

/// Rows to insert, update and delete to make the target equal gold by `key` (a row whose
/// values other than provenance are unchanged is not updated).
fn upsert_counts(
    conn: &duckdb::Connection,
    src: &str,
    target: &str,
    key: &[String],
    source: &[(String, String)],
    target_columns: &[(String, String)],
) -> Result<(u64, u64, u64), String> {
    let on = key.iter().map(|k| format!("s.{0} = t.{0}", ident(k))).collect::<Vec<_>>().join(" AND ");
    let insert =
        count(conn, &format!("SELECT count(*) FROM {src} s WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {on})"))?;
    let delete =
        count(conn, &format!("SELECT count(*) FROM {target} t WHERE NOT EXISTS (SELECT 1 FROM {src} s WHERE {on})"))?;
    let changed = changed_predicate("t", key, source, target_columns);
    let update = count(conn, &format!("SELECT count(*) FROM {src} s JOIN {target} t ON {on} WHERE {changed}"))?;
    Ok((insert, update, delete))
}

/// True for a target row (`target`, an alias or a table name) that differs from its gold row `s`
/// in a value column.
fn changed_predicate(
    target: &str,
    key: &[String],
    source: &[(String, String)],
    target_columns: &[(String, String)],
) -> String {
    let values: Vec<String> = source
        .iter()
        .filter(|(c, _)| !key.contains(c) && !PROVENANCE.contains(&c.as_str()))
        .map(|(c, _)| {
            if target_columns.iter().any(|(n, _)| n == c) {
                format!("s.{0} IS DISTINCT FROM {target}.{0}", ident(c))
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

/// Applies `load` in one transaction: schema, rows, comments and the load record.
fn apply(
    conn: &duckdb::Connection,
    m: &Manifest,
    model: Option<&Model>,
    load: &Load,
    schema: &str,
    schema_exists: bool,
) -> Result<(), String> {
    let mut sql = String::from("BEGIN TRANSACTION;\n");
    if !schema_exists {
        sql.push_str(&format!("CREATE SCHEMA IF NOT EXISTS wh.{};\n", ident(schema)));
    }
    for t in &load.tables {
        let src = &t.src;
        let qualified = format!("wh.{}.{}", ident(schema), ident(&t.table));
        if t.strategy == LoadStrategy::Replace && t.exists {
            // A replaced table is made anew: DuckDB refuses to delete and re-insert one key in
            // one transaction.
            sql.push_str(&format!("DROP TABLE {qualified};\n{};\n", t.create));
            sql.push_str(&format!("INSERT INTO {qualified} BY NAME SELECT * FROM {src};\n"));
        } else {
            for d in &t.ddl {
                sql.push_str(d);
                sql.push_str(";\n");
            }
            match t.strategy {
                _ if !t.exists => sql.push_str(&format!("INSERT INTO {qualified} BY NAME SELECT * FROM {src};\n")),
                LoadStrategy::Replace => {}
                LoadStrategy::Append => sql.push_str(&format!(
                    "INSERT INTO {qualified} BY NAME SELECT * FROM {src} WHERE _batch_id NOT IN (SELECT DISTINCT _batch_id FROM {qualified});\n"
                )),
                LoadStrategy::Upsert => {
                    let on = t.key.iter().map(|k| format!("s.{0} = t.{0}", ident(k))).collect::<Vec<_>>().join(" AND ");
                    let on_t = t.key.iter().map(|k| format!("{qualified}.{0} = s.{0}", ident(k))).collect::<Vec<_>>().join(" AND ");
                    sql.push_str(&format!(
                        "DELETE FROM {qualified} t WHERE NOT EXISTS (SELECT 1 FROM {src} s WHERE {on});\n"
                    ));
                    let source = &t.columns;
                    let sets: Vec<String> = source
                        .iter()
                        .filter(|(c, _)| !t.key.contains(c))
                        .map(|(c, _)| format!("{0} = s.{0}", ident(c)))
                        .collect();
                    let changed = changed_predicate(&qualified, &t.key, source, source);
                    if !sets.is_empty() {
                        sql.push_str(&format!(
                            "UPDATE {qualified} SET {} FROM {src} s WHERE {on_t} AND {changed};\n",
                            sets.join(", ")
                        ));
                    }
                    sql.push_str(&format!(
                        "INSERT INTO {qualified} BY NAME SELECT * FROM {src} s WHERE NOT EXISTS (SELECT 1 FROM {qualified} t WHERE {on});\n"
                    ));
                }
            }
        }
        if let Some(mt) = model.and_then(|md| md.tables.get(&t.table)) {
            if let Some(d) = &mt.description {
                sql.push_str(&format!("COMMENT ON TABLE {qualified} IS {};\n", sql_string(d)));
            }
            for (c, col) in &mt.columns {
                if let Some(d) = &col.description {
                    sql.push_str(&format!("COMMENT ON COLUMN {qualified}.{} IS {};\n", ident(c), sql_string(d)));
                }
            }
        }
    }
    let loads = format!("wh.{}._jobforge_loads", ident(schema));
    sql.push_str(&format!(
        "CREATE TABLE IF NOT EXISTS {loads} (loaded_at TIMESTAMP, run_id VARCHAR, seq BIGINT, tables VARCHAR);\n\
         INSERT INTO {loads} VALUES (now()::TIMESTAMP, {}, {}, {});\n",
        sql_string(&m.run_id),
        m.seq,
        sql_string(&serde_json::to_string(&load.tables).unwrap_or_default())
    ));
    conn.execute_batch(&sql).map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK;");
        format!("the load was rolled back, the target is as it was: {e}")
    })?;
    crate::fault::point("load:commit");
    conn.execute_batch("COMMIT;").map_err(|e| format!("the load was rolled back, the target is as it was: {e}"))
}
