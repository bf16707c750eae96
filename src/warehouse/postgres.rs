//! PostgreSQL: connecting (the password from the environment or the password file, never from
//! the URL, never printed), loading gold in one transaction through `COPY ... FROM STDIN`
//! (CSV written by Polars straight into the connection), and reading tables into DuckDB for
//! `jobforge diff`.
//!
//! A load takes a transaction-scoped advisory lock per schema (a second load waits), writes
//! new tables and `replace` tables by COPY, stages `upsert` and `append` tables by COPY into
//! temporary tables and merges them with SQL, adds foreign keys from the model's `error`
//! relationships as `DEFERRABLE INITIALLY DEFERRED` (checked at commit), and records itself in
//! `_jobforge_loads`. Any failure, a lost connection or a killed process rolls it all back.
//! The plan runs the same reads in a transaction that is rolled back: it writes nothing.

use super::{Load, LoadRequest, TableLoad};
use crate::semantic::model::{LoadStrategy, Model, Severity};
use crate::sql::{ident, idents, literal};
use crate::store::Manifest;
use polars::prelude::*;
use postgres::{Client, NoTls, Transaction};
use std::path::{Path, PathBuf};

/// A PostgreSQL database: its URL (without a password) and where its password comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Pg {
    pub url: String,
    pub password_env: Option<String>,
}

impl Pg {
    /// Checks `url` (a `postgres://` URL or `key=value` pairs) and refuses one with a password.
    pub fn parse(url: &str, password_env: Option<String>) -> Result<Pg, String> {
        let config: postgres::Config =
            url.parse().map_err(|e| format!("`{}` is not a PostgreSQL URL: {e}", redact(url)))?;
        if config.get_password().is_some() {
            return Err(format!(
                "`{}` holds a password, which would be printed and recorded: remove it and set PGPASSWORD \
                 (or `password_env` in warehouse.yml, or a line in ~/.pgpass)",
                redact(url)
            ));
        }
        Ok(Pg { url: url.to_string(), password_env })
    }

    /// Connects; the user defaults to `PGUSER`, then `USER`.
    pub fn connect(&self) -> Result<Client, String> {
        let mut config: postgres::Config = self.url.parse().map_err(|e| format!("{e}"))?;
        if config.get_user().is_none() {
            if let Some(user) = std::env::var("PGUSER").ok().or_else(|| std::env::var("USER").ok()) {
                config.user(&user);
            }
        }
        if let Some(password) = self.password(&config)? {
            config.password(password);
        }
        config.application_name("jobforge");
        let mut client =
            config.connect(NoTls).map_err(|e| format!("cannot connect to {}: {}", self.url, error_text(&e)))?;
        client.batch_execute("SET TimeZone = 'UTC'").map_err(|e| error_text(&e))?;
        Ok(client)
    }

    /// The password: the named variable, `PGPASSWORD`, or the matching line of the password file.
    fn password(&self, config: &postgres::Config) -> Result<Option<String>, String> {
        if let Some(var) = &self.password_env {
            return std::env::var(var)
                .map(Some)
                .map_err(|_| format!("`password_env` names {var}, which is not set in the environment"));
        }
        if let Ok(p) = std::env::var("PGPASSWORD") {
            return Ok(Some(p));
        }
        let file = match std::env::var_os("PGPASSFILE") {
            Some(f) => PathBuf::from(f),
            None => match std::env::var_os("HOME") {
                Some(h) => Path::new(&h).join(".pgpass"),
                None => return Ok(None),
            },
        };
        let Ok(text) = std::fs::read_to_string(&file) else { return Ok(None) };
        let host = match config.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "localhost".to_string(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432).to_string();
        let user = config.get_user().unwrap_or_default().to_string();
        let db = config.get_dbname().unwrap_or(&user).to_string();
        Ok(pgpass_lookup(&text, [&host, &port, &db, &user]))
    }
}

/// The password of the first `.pgpass` line matching host, port, database and user (`*`
/// matches anything; `\:` and `\\` are escapes).
fn pgpass_lookup(text: &str, want: [&str; 4]) -> Option<String> {
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => field.extend(chars.next()),
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
                c => field.push(c),
            }
        }
        fields.push(field);
        if fields.len() == 5 && fields.iter().zip(want).all(|(f, w)| f == "*" || f == w) {
            return fields.pop();
        }
    }
    None
}

/// `url` with any password replaced by `***`.
fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((auth, host)) = rest.split_once('@') {
            if let Some((user, _)) = auth.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
        return url.to_string();
    }
    url.split_whitespace()
        .map(|kv| if kv.starts_with("password=") { "password=***" } else { kv })
        .collect::<Vec<_>>()
        .join(" ")
}

/// PostgreSQL's own message (with its detail and hint) for a database error, else the error
/// and its causes.
pub fn error_text(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = db.message().to_string();
        if let Some(d) = db.detail() {
            s.push_str(&format!(" ({d})"));
        }
        if let Some(h) = db.hint() {
            s.push_str(&format!("; hint: {h}"));
        }
        return s;
    }
    if e.is_closed() {
        return "the connection to the server was lost (nothing uncommitted is kept)".into();
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    s
}

/// The PostgreSQL type a column of DuckDB type `ty` is stored as (as `pg_type_of` stores the
/// Polars type DuckDB reads as `ty`).
#[cfg(feature = "query")]
pub fn pg_type(ty: &str) -> String {
    let t = match ty {
        "VARCHAR" => "text",
        "BOOLEAN" => "boolean",
        "TINYINT" | "SMALLINT" | "UTINYINT" => "smallint",
        "INTEGER" | "USMALLINT" => "integer",
        "BIGINT" | "UINTEGER" => "bigint",
        "UBIGINT" => "numeric(20,0)",
        "HUGEINT" | "UHUGEINT" => "numeric(39,0)",
        "FLOAT" => "real",
        "DOUBLE" => "double precision",
        "DATE" => "date",
        "TIMESTAMP" | "TIMESTAMP_NS" | "TIMESTAMP_MS" | "TIMESTAMP_S" => "timestamp without time zone",
        "TIMESTAMP WITH TIME ZONE" => "timestamp with time zone",
        "TIME" => "time without time zone",
        "UUID" => "uuid",
        "INTERVAL" => "interval",
        t if t.starts_with("DECIMAL(") => return format!("numeric{}", &t["DECIMAL".len()..]).replace(' ', ""),
        _ => "text",
    };
    t.to_string()
}

/// The DuckDB type a PostgreSQL column of type `ty` (as `format_type` writes it) is read as.
#[cfg(feature = "query")]
pub fn duckdb_type(ty: &str) -> String {
    let t = match ty {
        "bigint" => "BIGINT",
        "integer" => "INTEGER",
        "smallint" => "SMALLINT",
        "double precision" => "DOUBLE",
        "real" => "FLOAT",
        "boolean" => "BOOLEAN",
        "date" => "DATE",
        "timestamp without time zone" => "TIMESTAMP",
        "timestamp with time zone" => "TIMESTAMP WITH TIME ZONE",
        "time without time zone" => "TIME",
        "uuid" => "UUID",
        "interval" => "INTERVAL",
        t if t.starts_with("numeric(") => {
            let inner = &t["numeric(".len()..t.len() - 1];
            let precision: u32 = inner.split(',').next().and_then(|p| p.trim().parse().ok()).unwrap_or(99);
            return if precision <= 38 { format!("DECIMAL({inner})") } else { "DOUBLE".into() };
        }
        "numeric" => "DOUBLE",
        _ => "VARCHAR",
    };
    t.to_string()
}

/// The DuckDB type a gold column of DuckDB type `ty` has after a round trip through PostgreSQL.
#[cfg(feature = "query")]
pub fn round_trip(ty: &str) -> String {
    duckdb_type(&pg_type(ty))
}

/// (column, type) of `schema.table` in the database; empty when there is no such table.
fn pg_columns(tx: &mut Transaction, schema: &str, table: &str) -> Result<Vec<(String, String)>, String> {
    let rows = tx
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
             JOIN pg_class c ON a.attrelid = c.oid JOIN pg_namespace n ON c.relnamespace = n.oid \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&schema, &table],
        )
        .map_err(|e| error_text(&e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

fn count(tx: &mut Transaction, sql: &str) -> Result<u64, String> {
    let row = tx.query_one(sql, &[]).map_err(|e| format!("{}: {sql}", error_text(&e)))?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

fn exec(tx: &mut Transaction, sql: &str) -> Result<u64, String> {
    tx.execute(sql, &[]).map_err(|e| format!("{}: {sql}", error_text(&e)))
}

/// The columns and Polars types of a gold file.
fn gold_schema(file: &Path) -> Result<Schema, String> {
    let mut scan = crate::reader::parquet_scan(file)?;
    scan.collect_schema().map(|s| s.as_ref().clone()).map_err(|e| format!("cannot read {}: {e}", file.display()))
}

/// The PostgreSQL type a gold column of Polars type `dtype` is stored as (text for the types
/// PostgreSQL has no counterpart of, written as their text).
pub fn pg_type_of(dtype: &DataType) -> &'static str {
    match dtype {
        DataType::Boolean => "boolean",
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint",
        DataType::Int32 | DataType::UInt16 => "integer",
        DataType::Int64 | DataType::UInt32 => "bigint",
        DataType::UInt64 => "numeric(20,0)",
        DataType::Float32 => "real",
        DataType::Float64 => "double precision",
        DataType::Date => "date",
        DataType::Datetime(_, None) => "timestamp without time zone",
        DataType::Datetime(_, Some(_)) => "timestamp with time zone",
        _ => "text",
    }
}

/// The gold file as a frame, with every column PostgreSQL stores as text cast to text.
fn gold_frame(file: &Path, columns: &[(String, String)], dtypes: &[DataType]) -> Result<DataFrame, String> {
    let df = crate::reader::parquet_frame(file)?;
    let mut out = Vec::with_capacity(columns.len());
    for ((name, pg), dtype) in columns.iter().zip(dtypes) {
        let c = df.column(name).map_err(|e| format!("{}: {e}", file.display()))?;
        if pg == "text" && dtype != &DataType::String {
            out.push(c.cast(&DataType::String).map_err(|e| {
                format!("{}: column `{name}` ({dtype}) cannot be written as text for PostgreSQL: {e}", file.display())
            })?);
        } else {
            out.push(c.clone());
        }
    }
    DataFrame::new(df.height(), out).map_err(|e| e.to_string())
}

/// (column, PostgreSQL type) pairs.
type Columns = Vec<(String, String)>;

/// Rows per piece of CSV sent to the server.
const CHUNK_ROWS: usize = 65_536;

/// A gold frame as pieces of CSV for `COPY ... FROM STDIN (FORMAT csv)` (strings quoted, nulls
/// empty), `CHUNK_ROWS` rows at a time.
struct CsvChunks {
    df: DataFrame,
    offset: usize,
}

impl CsvChunks {
    fn new(df: DataFrame) -> CsvChunks {
        CsvChunks { df, offset: 0 }
    }

    fn next_piece(&mut self) -> Option<Result<Vec<u8>, String>> {
        if self.offset >= self.df.height() {
            return None;
        }
        let mut slice = self.df.slice(self.offset as i64, CHUNK_ROWS);
        self.offset += CHUNK_ROWS;
        let mut out = Vec::with_capacity(slice.estimated_size());
        let written = CsvWriter::new(&mut out)
            .include_header(false)
            .with_quote_style(QuoteStyle::NonNumeric)
            .finish(&mut slice)
            .map_err(|e| format!("cannot write CSV: {e}"));
        Some(written.map(|_| out))
    }
}

/// Streams the CSV pieces `next` gives into `table` with `COPY ... FROM STDIN`; returns the
/// rows copied.
fn copy_in(
    tx: &mut Transaction,
    table: &str,
    columns: &[(String, String)],
    mut next: impl FnMut() -> Option<Result<Vec<u8>, String>>,
) -> Result<u64, String> {
    let names: Vec<String> = columns.iter().map(|(c, _)| c.clone()).collect();
    let sql = format!("COPY {table} ({}) FROM STDIN (FORMAT csv)", idents(&names));
    let mut writer = tx.copy_in(&sql).map_err(|e| format!("{}: {sql}", error_text(&e)))?;
    let mut written = Ok(());
    while let Some(piece) = next() {
        written = piece.and_then(|p| std::io::Write::write_all(&mut writer, &p).map_err(|e| e.to_string()));
        crate::fault::point("load:copy");
        if written.is_err() {
            break;
        }
    }
    match (written, writer.finish()) {
        (Ok(()), Ok(n)) => Ok(n),
        (_, Err(e)) => Err(format!("COPY into {table}: {}", error_text(&e))),
        (Err(e), Ok(_)) => Err(format!("COPY into {table}: {e}")),
    }
}

/// A foreign key from the model: (name, from column, referenced table, referenced column).
type ForeignKey = (String, String, String, String);

/// The model's `error` relationships from `table` to another loaded table, by that table's
/// single-column primary key.
fn foreign_keys(model: Option<&Model>, table: &str, loaded: &[TableLoad]) -> Vec<ForeignKey> {
    let Some(model) = model else { return vec![] };
    let mut out = Vec::new();
    for r in &model.relationships {
        let (Some((ft, fc)), Some((tt, tc))) = (r.from.split_once('.'), r.to.split_once('.')) else { continue };
        if ft != table || r.severity != Severity::Error {
            continue;
        }
        let Some(parent) = loaded.iter().find(|t| t.table == tt) else { continue };
        let pk = model.tables.get(tt).map(|t| t.primary_key.columns()).unwrap_or_default();
        if parent.strategy == LoadStrategy::Append || pk != [tc.to_string()] {
            continue;
        }
        let mut name = format!("{ft}_{fc}_fkey");
        while name.len() > 63 {
            name.pop();
        }
        out.push((name, fc.to_string(), tt.to_string(), tc.to_string()));
    }
    out
}

/// Plans the load of snapshot `m` into `pg`, or with `execute` applies it, in one transaction.
pub fn load(request: LoadRequest, pg: &Pg) -> Result<Load, String> {
    let LoadRequest { store, snapshot: m, model, target, schema, execute, .. } = request;
    let mut client = pg.connect()?;
    let mut tx = client.transaction().map_err(|e| error_text(&e))?;
    if execute {
        // One load per schema at a time: a second waits here until the first ends.
        let lock =
            format!("SELECT pg_try_advisory_xact_lock(hashtext('jobforge load'), hashtext({}))", literal(schema));
        let got: bool = tx.query_one(&lock, &[]).map_err(|e| error_text(&e))?.get(0);
        if !got {
            eprintln!("waiting for another jobforge load into {} schema {schema} to finish", pg.url);
            exec(
                &mut tx,
                &format!(
                    "SELECT pg_advisory_xact_lock(hashtext('jobforge load'), hashtext({}))::text",
                    literal(schema)
                ),
            )?;
        }
    }
    let mut tables = Vec::new();
    let mut existing_columns = Vec::new();
    let mut dtypes = Vec::new();
    for (name, file) in store.layer_files(m, "gold") {
        let gold = gold_schema(&file)?;
        let columns: Vec<(String, String)> =
            gold.iter().map(|(c, dtype)| (c.to_string(), pg_type_of(dtype).to_string())).collect();
        dtypes.push(gold.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>());
        let existing = pg_columns(&mut tx, schema, &name)?;
        let qualified = format!("{}.{}", ident(schema), ident(&name));
        let mut t = TableLoad::plan(&request, &name, file, &qualified, columns, &existing, |alter, ty| {
            format!("{alter} TYPE {ty} USING {}::{ty}", alter.rsplit(' ').next().unwrap_or_default())
        })?;
        let rows = m.file(&name, "gold").map_or(0, |f| f.rows);
        if !t.exists {
            t.insert = rows;
        } else if t.strategy == LoadStrategy::Replace {
            t.delete = count(&mut tx, &format!("SELECT count(*) FROM {qualified}"))?;
            t.insert = rows;
        } else {
            // Staged, to compare with what is there.
            let stage = stage_name(tables.len());
            let defs: Vec<String> = t.columns.iter().map(|(c, ty)| format!("{} {ty}", ident(c))).collect();
            exec(&mut tx, &format!("CREATE TEMP TABLE {stage} ({}) ON COMMIT DROP", defs.join(", ")))?;
            let mut chunks = CsvChunks::new(gold_frame(&t.file, &t.columns, &dtypes[tables.len()])?);
            copy_in(&mut tx, &stage, &t.columns, || chunks.next_piece())?;
            if t.strategy == LoadStrategy::Append {
                t.insert = count(&mut tx, &format!("SELECT count(*) FROM {stage} s WHERE {}", new_batch(&qualified)))?;
            } else {
                let on = t.key_match("s", "t");
                t.insert = count(
                    &mut tx,
                    &format!(
                        "SELECT count(*) FROM {stage} s WHERE NOT EXISTS (SELECT 1 FROM {qualified} t WHERE {on})"
                    ),
                )?;
                t.delete = count(
                    &mut tx,
                    &format!(
                        "SELECT count(*) FROM {qualified} t WHERE NOT EXISTS (SELECT 1 FROM {stage} s WHERE {on})"
                    ),
                )?;
                let changed = t.changed("s", "t", &existing);
                t.update = count(
                    &mut tx,
                    &format!("SELECT count(*) FROM {stage} s JOIN {qualified} t ON {on} WHERE {changed}"),
                )?;
            }
        }
        existing_columns.push(existing);
        tables.push(t);
    }
    // Foreign keys, once every table is known.
    for i in 0..tables.len() {
        for (name, column, parent, parent_column) in foreign_keys(model, &tables[i].table, &tables) {
            let qualified = format!("{}.{}", ident(schema), ident(&tables[i].table));
            let present = count(
                &mut tx,
                &format!(
                    "SELECT count(*) FROM pg_constraint WHERE conname = {} AND conrelid = to_regclass({})",
                    literal(&name),
                    literal(&qualified)
                ),
            )?;
            if present == 0 {
                let sql = format!(
                    "ALTER TABLE {qualified} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {}.{} ({}) \
                     DEFERRABLE INITIALLY DEFERRED",
                    ident(&name),
                    ident(&column),
                    ident(schema),
                    ident(&parent),
                    ident(&parent_column)
                );
                tables[i].ddl.push(sql.clone());
                tables[i].constraints.push(sql);
            }
        }
    }
    let mut load = Load::new(m, target, schema, tables);
    if !execute || load.refused() {
        tx.rollback().map_err(|e| error_text(&e))?;
        return Ok(load);
    }
    apply(&mut tx, m, model, &mut load, schema, &existing_columns, &dtypes)
        .map_err(|e| format!("the load was rolled back, the target is as it was: {e}"))?;
    crate::fault::point("load:commit");
    tx.commit().map_err(|e| format!("the load was rolled back, the target is as it was: {}", error_text(&e)))?;
    load.executed = true;
    Ok(load)
}

fn stage_name(i: usize) -> String {
    format!("pg_temp._jobforge_stage_{i}")
}

/// A staged row `s` of a batch the target `table` does not hold yet.
fn new_batch(table: &str) -> String {
    format!("NOT EXISTS (SELECT 1 FROM {table} t WHERE t._batch_id IS NOT DISTINCT FROM s._batch_id)")
}

/// Applies the planned load inside `tx`; the counts become what the statements did.
fn apply(
    tx: &mut Transaction,
    m: &Manifest,
    model: Option<&Model>,
    load: &mut Load,
    schema: &str,
    existing: &[Vec<(String, String)>],
    dtypes: &[Vec<DataType>],
) -> Result<(), String> {
    exec(tx, &format!("CREATE SCHEMA IF NOT EXISTS {}", ident(schema)))?;
    for t in &load.tables {
        for d in t.ddl.iter().filter(|d| !t.constraints.contains(d)) {
            exec(tx, d)?;
        }
    }
    // The tables copied straight in, read and encoded as CSV on another thread a few pieces
    // ahead of the COPY that sends them, so that work overlaps with the server's; `None` ends
    // a table.
    let direct: Vec<usize> = (0..load.tables.len())
        .filter(|&i| !load.tables[i].exists || load.tables[i].strategy == LoadStrategy::Replace)
        .collect();
    let jobs: Vec<(PathBuf, Columns, Vec<DataType>)> = direct
        .iter()
        .map(|&i| (load.tables[i].file.clone(), load.tables[i].columns.clone(), dtypes[i].clone()))
        .collect();
    std::thread::scope(|scope| {
        let (send, encoded) = std::sync::mpsc::sync_channel::<Option<Result<Vec<u8>, String>>>(4);
        scope.spawn(move || {
            for (file, columns, dtypes) in &jobs {
                match gold_frame(file, columns, dtypes) {
                    Ok(df) => {
                        let mut chunks = CsvChunks::new(df);
                        while let Some(piece) = chunks.next_piece() {
                            if send.send(Some(piece)).is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        if send.send(Some(Err(e))).is_err() {
                            return;
                        }
                    }
                }
                if send.send(None).is_err() {
                    return;
                }
            }
        });
        apply_tables(tx, model, load, schema, existing, &encoded)
    })?;
    for t in &load.tables {
        for c in &t.constraints {
            exec(tx, c)?;
        }
    }
    let loads = format!("{}._jobforge_loads", ident(schema));
    exec(
        tx,
        &format!("CREATE TABLE IF NOT EXISTS {loads} (loaded_at timestamptz, run_id text, seq bigint, tables jsonb)"),
    )?;
    let tables = serde_json::to_string(&load.tables).map_err(|e| e.to_string())?;
    exec(
        tx,
        &format!("INSERT INTO {loads} VALUES (now(), {}, {}, {}::jsonb)", literal(&m.run_id), m.seq, literal(&tables)),
    )?;
    // Deferred foreign keys are checked now, before the commit, so a violation names itself.
    exec(tx, "SET CONSTRAINTS ALL IMMEDIATE")?;
    Ok(())
}

/// The rows and comments of every table, in order; `encoded` gives the CSV of each table
/// copied straight in.
fn apply_tables(
    tx: &mut Transaction,
    model: Option<&Model>,
    load: &mut Load,
    schema: &str,
    existing: &[Vec<(String, String)>],
    encoded: &std::sync::mpsc::Receiver<Option<Result<Vec<u8>, String>>>,
) -> Result<(), String> {
    for (i, t) in load.tables.iter_mut().enumerate() {
        let qualified = format!("{}.{}", ident(schema), ident(&t.table));
        let stage = stage_name(i);
        let cols = idents(&t.columns.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>());
        if !t.exists || t.strategy == LoadStrategy::Replace {
            t.delete = if t.exists { exec(tx, &format!("DELETE FROM {qualified}"))? } else { 0 };
            let next = || encoded.recv().unwrap_or_else(|_| Some(Err("the CSV encoder stopped".into())));
            t.insert = copy_in(tx, &qualified, &t.columns, next)?;
        } else if t.strategy == LoadStrategy::Append {
            t.insert = exec(
                tx,
                &format!(
                    "INSERT INTO {qualified} ({cols}) SELECT {cols} FROM {stage} s WHERE {}",
                    new_batch(&qualified)
                ),
            )?;
        } else {
            let on = t.key_match("s", "t");
            t.delete =
                exec(tx, &format!("DELETE FROM {qualified} t WHERE NOT EXISTS (SELECT 1 FROM {stage} s WHERE {on})"))?;
            let sets = t.value_sets("s");
            t.update = if sets.is_empty() {
                0
            } else {
                let changed = t.changed("s", "t", &existing[i]);
                exec(
                    tx,
                    &format!("UPDATE {qualified} t SET {} FROM {stage} s WHERE {on} AND {changed}", sets.join(", ")),
                )?
            };
            t.insert = exec(
                tx,
                &format!(
                    "INSERT INTO {qualified} ({cols}) SELECT {cols} FROM {stage} s \
                     WHERE NOT EXISTS (SELECT 1 FROM {qualified} t WHERE {on})"
                ),
            )?;
        }
        // The comments in one round trip.
        let comments: Vec<String> = t.comments(model, &qualified, literal);
        if !comments.is_empty() {
            tx.batch_execute(&comments.join(";\n"))
                .map_err(|e| format!("{} (comments of {})", error_text(&e), t.table))?;
        }
    }
    Ok(())
}

#[cfg(feature = "query")]
/// Copies every table of `schema` in the database (but JobForge's own, `_jobforge_*`) into
/// DuckDB schema `into` of `conn`, with the DuckDB types the columns map to; returns the names.
pub fn copy_to_duckdb(
    client: &mut Client,
    schema: &str,
    conn: &::duckdb::Connection,
    into: &str,
) -> Result<Vec<String>, String> {
    use postgres::fallible_iterator::FallibleIterator;
    let mut tx = client.build_transaction().read_only(true).start().map_err(|e| error_text(&e))?;
    let names: Vec<String> = tx
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON c.relnamespace = n.oid \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm') \
             AND c.relname NOT LIKE '\\_jobforge\\_%' ORDER BY 1",
            &[&schema],
        )
        .map_err(|e| error_text(&e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for name in &names {
        let columns = pg_columns(&mut tx, schema, name)?;
        let raw = format!("{into}.{}", ident(&format!("_raw_{name}")));
        let text_defs: Vec<String> = columns.iter().map(|(c, _)| format!("{} VARCHAR", ident(c))).collect();
        conn.execute_batch(&format!("CREATE TABLE {raw} ({});", text_defs.join(", "))).map_err(|e| e.to_string())?;
        let select: Vec<String> = columns.iter().map(|(c, _)| format!("{}::text", ident(c))).collect();
        let sql = format!("SELECT {} FROM {}.{}", select.join(", "), ident(schema), ident(name));
        {
            let mut appender = conn.appender_to_db(&format!("_raw_{name}"), into).map_err(|e| e.to_string())?;
            let mut rows = tx.query_raw(&sql, std::iter::empty::<&str>()).map_err(|e| error_text(&e))?;
            let mut values: Vec<Option<String>> = Vec::with_capacity(columns.len());
            while let Some(row) = rows.next().map_err(|e| error_text(&e))? {
                values.clear();
                for i in 0..columns.len() {
                    values.push(row.try_get::<_, Option<String>>(i).map_err(|e| error_text(&e))?);
                }
                appender.append_row(::duckdb::appender_params_from_iter(values.iter())).map_err(|e| e.to_string())?;
            }
            appender.flush().map_err(|e| e.to_string())?;
        }
        let casts: Vec<String> =
            columns.iter().map(|(c, ty)| format!("CAST({0} AS {1}) AS {0}", ident(c), duckdb_type(ty))).collect();
        conn.execute_batch(&format!(
            "CREATE TABLE {into}.{} AS SELECT {} FROM {raw}; DROP TABLE {raw};",
            ident(name),
            casts.join(", ")
        ))
        .map_err(|e| format!("cannot read {schema}.{name}: {e}"))?;
    }
    tx.commit().map_err(|e| error_text(&e))?;
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgpass_lines_match_with_wildcards_and_escapes() {
        let text = "# comment\nother:5432:*:me:no\n127.0.0.1:*:wiq:me:p\\:w\\\\d\n";
        assert_eq!(pgpass_lookup(text, ["127.0.0.1", "5433", "wiq", "me"]).as_deref(), Some("p:w\\d"));
        assert_eq!(pgpass_lookup(text, ["127.0.0.1", "5433", "wiq", "you"]), None);
    }

    #[cfg(feature = "query")]
    #[test]
    fn types_round_trip() {
        assert_eq!(pg_type("DECIMAL(10,2)"), "numeric(10,2)");
        assert_eq!(duckdb_type("numeric(10,2)"), "DECIMAL(10,2)");
        for t in ["VARCHAR", "BIGINT", "DOUBLE", "DATE", "TIMESTAMP", "BOOLEAN", "INTEGER"] {
            assert_eq!(round_trip(t), t);
        }
        assert_eq!(round_trip("UINTEGER"), "BIGINT");
    }

    #[test]
    fn passwords_are_never_shown() {
        assert_eq!(redact("postgres://me:s3cret@h/db"), "postgres://me:***@h/db");
        assert_eq!(redact("host=h password=s3cret user=me"), "host=h password=*** user=me");
        assert!(!Pg::parse("postgres://me:s3cret@h/db", None).unwrap_err().contains("s3cret"));
    }
}
