//! The embedded DuckDB target: gold parquet read directly by DuckDB into an attached database
//! file, planned with counting queries and applied as one SQL transaction.

use super::{Load, LoadRequest, TableLoad};
use crate::query::{count, text_rows};
use crate::semantic::model::{LoadStrategy, Model};
use crate::sql::{ident, literal};
use crate::store::Manifest;
use std::path::Path;

/// (column, type) pairs that `sql` returns.
fn column_types(conn: &duckdb::Connection, sql: &str, args: &[&str]) -> Result<Vec<(String, String)>, String> {
    Ok(text_rows(conn, sql, args)?
        .into_iter()
        .map(|mut r| (std::mem::take(&mut r[0]), std::mem::take(&mut r[1])))
        .collect())
}

/// Plans the load of snapshot `m` into the DuckDB file at `path`, or with `execute` applies it
/// in one transaction.
pub fn load(request: LoadRequest, path: &Path) -> Result<Load, String> {
    let LoadRequest { store, snapshot: m, model, target, schema, execute, .. } = request;
    let conn = duckdb::Connection::open_in_memory().map_err(|e| e.to_string())?;
    let exists = path.is_file();
    if execute {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        conn.execute_batch(&format!("ATTACH {} AS wh;", literal(&path.to_string_lossy())))
    } else if exists {
        conn.execute_batch(&format!("ATTACH {} AS wh (READ_ONLY);", literal(&path.to_string_lossy())))
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
                literal(schema)
            ),
        )? > 0;
    let mut tables = Vec::new();
    for (name, file) in store.layer_files(m, "gold") {
        let src = source(&file);
        let columns =
            column_types(&conn, &format!("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {src})"), &[])?;
        let existing: Vec<(String, String)> = if schema_exists {
            column_types(
                &conn,
                "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = 'wh' AND schema_name = ? \
                 AND table_name = ? ORDER BY column_index",
                &[schema, &name],
            )?
        } else {
            vec![]
        };
        let qualified = format!("wh.{}.{}", ident(schema), ident(&name));
        let mut t = TableLoad::plan(&request, &name, file, &qualified, columns, &existing, |alter, ty| {
            format!("{alter} TYPE {ty}")
        })?;
        let rows = m.file(&name, "gold").map_or(0, |f| f.rows);
        if !t.exists {
            t.insert = rows;
        } else {
            let current = count(&conn, &format!("SELECT count(*) FROM {qualified}"))?;
            match t.strategy {
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
                    let on = t.key_match("s", "t");
                    t.insert = count(
                        &conn,
                        &format!(
                            "SELECT count(*) FROM {src} s WHERE NOT EXISTS (SELECT 1 FROM {qualified} t WHERE {on})"
                        ),
                    )?;
                    t.delete = count(
                        &conn,
                        &format!(
                            "SELECT count(*) FROM {qualified} t WHERE NOT EXISTS (SELECT 1 FROM {src} s WHERE {on})"
                        ),
                    )?;
                    let changed = t.changed("s", "t", &existing);
                    t.update = count(
                        &conn,
                        &format!("SELECT count(*) FROM {src} s JOIN {qualified} t ON {on} WHERE {changed}"),
                    )?;
                }
            }
        }
        tables.push(t);
    }
    let mut load = Load::new(m, target, schema, tables);
    if !execute || load.refused() {
        return Ok(load);
    }
    apply(&conn, m, model, &load, schema, schema_exists)?;
    load.executed = true;
    Ok(load)
}

/// The gold file as a DuckDB table expression.
fn source(file: &Path) -> String {
    format!("read_parquet({})", literal(&file.to_string_lossy()))
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
        let src = &source(&t.file);
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
                    let on = t.key_match("s", "t");
                    let on_t = t.key_match("s", &qualified);
                    sql.push_str(&format!(
                        "DELETE FROM {qualified} t WHERE NOT EXISTS (SELECT 1 FROM {src} s WHERE {on});\n"
                    ));
                    let sets = t.value_sets("s");
                    let changed = t.changed("s", &qualified, &t.columns);
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
        for c in t.comments(model, &qualified, literal) {
            sql.push_str(&c);
            sql.push_str(";\n");
        }
    }
    let loads = format!("wh.{}._jobforge_loads", ident(schema));
    sql.push_str(&format!(
        "CREATE TABLE IF NOT EXISTS {loads} (loaded_at TIMESTAMP, run_id VARCHAR, seq BIGINT, tables VARCHAR);\n\
         INSERT INTO {loads} VALUES (now()::TIMESTAMP, {}, {}, {});\n",
        literal(&m.run_id),
        m.seq,
        literal(&serde_json::to_string(&load.tables).unwrap_or_default())
    ));
    conn.execute_batch(&sql).map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK;");
        format!("the load was rolled back, the target is as it was: {e}")
    })?;
    crate::fault::point("load:commit");
    conn.execute_batch("COMMIT;").map_err(|e| format!("the load was rolled back, the target is as it was: {e}"))
}
