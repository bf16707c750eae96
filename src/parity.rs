//! `jobforge diff A B`: parity of two sets of tables, to prove a copy matches its original
//! before a cutover. A side is a committed run's gold layer (`run:latest`, `run:ID`, `run:SEQ`),
//! a folder of parquet files, or a warehouse (`duckdb:PATH[#schema]`, `postgres://URL[#schema]`,
//! or a target named in `warehouse.yml`). Both sides are mounted in one in-memory DuckDB as
//! schemas `a` and `b` (PostgreSQL tables copied in); tables pair by name, rows by the
//! model's primary key (or `--key`), else as multisets. Per table: rows only in A, only in B,
//! changed cells per column with examples, and column and type differences, within numeric
//! tolerances and text options. Provenance columns are left out unless asked for, and so are
//! JobForge's own tables in a warehouse (`_jobforge_*`).

use crate::plan::check::PROVENANCE;
use crate::query::{count, text_rows};
use crate::sql::{ident, literal};
use crate::store::Store;
use crate::warehouse::{Resolved, Target};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Side {
    /// A committed run of the project's data folder: `latest`, a sequence number or a run id.
    Run(String),
    /// A folder of `<table>.parquet` files.
    Folder(PathBuf),
    /// A warehouse (DuckDB file or PostgreSQL database) and the schema holding the tables.
    Warehouse(Resolved),
}

impl Side {
    /// Reads `run:ID`, a folder path, `duckdb:PATH[#schema]`, `postgres://URL[#schema]` or a
    /// target named in `warehouse.yml`.
    pub fn parse(text: &str, project: &Path) -> Result<Side, String> {
        if let Some(id) = text.strip_prefix("run:") {
            return Ok(Side::Run(if id.is_empty() { "latest".into() } else { id.into() }));
        }
        if let Some(r) = crate::warehouse::lookup(text, project)? {
            return Ok(Side::Warehouse(r));
        }
        let path = project.join(text);
        if path.is_dir() {
            Ok(Side::Folder(path))
        } else {
            Err(format!(
                "`{text}` is not a side: write run:latest, run:ID, a folder of parquet files, duckdb:PATH[#schema], \
                 postgres://USER@HOST:PORT/DB[#schema], or a target named in warehouse.yml"
            ))
        }
    }

    fn is_postgres(&self) -> bool {
        matches!(self, Side::Warehouse(Resolved { target: Target::Postgres(_), .. }))
    }
}

/// How to compare.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Key columns for every table, instead of the model's primary keys.
    pub key: Vec<String>,
    /// Numbers within this absolute difference are equal.
    pub abs: f64,
    /// Numbers within this fraction of the larger magnitude are equal.
    pub rel: f64,
    /// Compare text without leading and trailing whitespace.
    pub trim: bool,
    /// Compare text without regard to case.
    pub ignore_case: bool,
    /// Compare provenance columns too.
    pub provenance: bool,
    /// Only these tables (all when empty).
    pub tables: Vec<String>,
}

/// What differs in one column.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnChange {
    pub column: String,
    pub changed: u64,
    /// `key: A value -> B value`, a few.
    pub examples: Vec<String>,
}

/// The comparison of one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableDiff {
    pub table: String,
    pub rows_a: Option<u64>,
    pub rows_b: Option<u64>,
    /// The key rows were paired by; empty when compared as multisets.
    pub key: Vec<String>,
    pub only_in_a: u64,
    pub only_in_b: u64,
    /// A few rows (or keys) only in A, and only in B.
    pub only_in_a_examples: Vec<String>,
    pub only_in_b_examples: Vec<String>,
    pub changed: Vec<ColumnChange>,
    /// Columns missing on a side or of another type.
    pub columns: Vec<String>,
    /// Why rows could not be paired by key, and other notes.
    pub notes: Vec<String>,
}

impl TableDiff {
    pub fn differs(&self) -> bool {
        self.rows_a.is_none()
            || self.rows_b.is_none()
            || self.only_in_a > 0
            || self.only_in_b > 0
            || !self.changed.is_empty()
            || !self.columns.is_empty()
    }
}

/// Mounts `side` as schema `schema` of `conn`: one view per table.
fn mount(conn: &duckdb::Connection, project: &Path, side: &Side, schema: &str) -> Result<String, String> {
    conn.execute_batch(&format!("CREATE SCHEMA {schema};")).map_err(|e| e.to_string())?;
    let view = |name: &str, from: &str| format!("CREATE VIEW {schema}.{} AS SELECT * FROM {from};\n", ident(name));
    let mut setup = String::new();
    let described = match side {
        Side::Run(id) => {
            let store = Store::open(&project.join("data"));
            let m = store.find(id)?;
            for (name, path) in store.layer_files(&m, "gold") {
                setup.push_str(&view(&name, &format!("read_parquet({})", literal(&path.to_string_lossy()))));
            }
            format!("run #{} {}", m.seq, m.run_id)
        }
        Side::Folder(dir) => {
            let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
                .collect();
            files.sort();
            for path in &files {
                let name = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
                setup.push_str(&view(&name, &format!("read_parquet({})", literal(&path.to_string_lossy()))));
            }
            format!("{} ({} parquet files)", dir.display(), files.len())
        }
        Side::Warehouse(Resolved { target: Target::Postgres(pg), schema: db_schema }) => {
            let mut client = pg.connect()?;
            let names = crate::warehouse::postgres::copy_to_duckdb(&mut client, db_schema, conn, schema)?;
            return Ok(format!("{} (schema {db_schema}, {} tables)", pg.url, names.len()));
        }
        Side::Warehouse(Resolved { target: Target::DuckDb(path), schema: db_schema }) => {
            if !path.is_file() {
                return Err(format!("no DuckDB database at {}", path.display()));
            }
            let alias = format!("{schema}_db");
            conn.execute_batch(&format!("ATTACH {} AS {alias} (READ_ONLY);", literal(&path.to_string_lossy())))
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            let names = text_rows(
                conn,
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = ? ORDER BY 1",
                &[&alias, db_schema],
            )?;
            for name in names.iter().flatten() {
                setup.push_str(&view(name, &format!("{alias}.{}.{}", ident(db_schema), ident(name))));
            }
            format!("{} (schema {db_schema})", path.display())
        }
    };
    conn.execute_batch(&setup).map_err(|e| format!("cannot read {described}: {e}"))?;
    Ok(described)
}

/// Table name -> [(column, type)] of a mounted schema.
fn columns(conn: &duckdb::Connection, schema: &str) -> Result<BTreeMap<String, Vec<(String, String)>>, String> {
    let rows = text_rows(
        conn,
        "SELECT table_name, column_name, data_type FROM information_schema.columns \
         WHERE table_schema = ? ORDER BY table_name, ordinal_position",
        &[schema],
    )?;
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for row in rows {
        if let Ok([t, c, d]) = <[String; 3]>::try_from(row) {
            out.entry(t).or_default().push((c, d));
        }
    }
    Ok(out)
}

/// The result of a comparison: what each side was, and each table's differences.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub a: String,
    pub b: String,
    pub tables: Vec<TableDiff>,
}

impl Report {
    pub fn differs(&self) -> bool {
        self.tables.iter().any(TableDiff::differs)
    }

    /// The report for people.
    pub fn render(&self) -> String {
        let mut out = format!("A: {}\nB: {}\n", self.a, self.b);
        for t in &self.tables {
            let rows = |n: Option<u64>| n.map_or("absent".to_string(), |n| n.to_string());
            let by = if t.key.is_empty() { "as multisets".to_string() } else { format!("by ({})", t.key.join(", ")) };
            let verdict = if t.differs() { "DIFFERS" } else { "same" };
            out.push_str(&format!(
                "{:<8} {}: {} rows in A, {} in B, compared {by}\n",
                verdict,
                t.table,
                rows(t.rows_a),
                rows(t.rows_b)
            ));
            for c in &t.columns {
                out.push_str(&format!("         column {c}\n"));
            }
            if t.only_in_a > 0 {
                out.push_str(&format!(
                    "         {} only in A, e.g. {}\n",
                    t.only_in_a,
                    t.only_in_a_examples.join("; ")
                ));
            }
            if t.only_in_b > 0 {
                out.push_str(&format!(
                    "         {} only in B, e.g. {}\n",
                    t.only_in_b,
                    t.only_in_b_examples.join("; ")
                ));
            }
            for c in &t.changed {
                out.push_str(&format!(
                    "         {}: {} changed, e.g. {}\n",
                    c.column,
                    c.changed,
                    c.examples.join("; ")
                ));
            }
            for n in &t.notes {
                out.push_str(&format!("         note: {n}\n"));
            }
        }
        let differ = self.tables.iter().filter(|t| t.differs()).count();
        out.push_str(&format!(
            "{} table(s) compared: {} same, {differ} differ\n",
            self.tables.len(),
            self.tables.len() - differ
        ));
        out
    }
}

/// Compares side `a` with side `b`; `keys` gives each table's primary key from the model.
pub fn diff(
    project: &Path,
    a: &Side,
    b: &Side,
    keys: &BTreeMap<String, Vec<String>>,
    options: &Options,
) -> Result<Report, String> {
    let conn = duckdb::Connection::open_in_memory().map_err(|e| e.to_string())?;
    let described_a = mount(&conn, project, a, "a")?;
    let described_b = mount(&conn, project, b, "b")?;
    let (mut cols_a, mut cols_b) = (columns(&conn, "a")?, columns(&conn, "b")?);
    // Against PostgreSQL, the other side's types are compared as PostgreSQL would store them
    // (an unsigned count is a bigint there, a nanosecond timestamp a microsecond one).
    for (other, pg) in [(&mut cols_a, b.is_postgres()), (&mut cols_b, a.is_postgres())] {
        if pg {
            for (_, ty) in other.values_mut().flatten() {
                *ty = crate::warehouse::postgres::round_trip(ty);
            }
        }
    }
    // JobForge's own bookkeeping in a warehouse (`_jobforge_loads`) is not data.
    let names: BTreeSet<&String> =
        cols_a.keys().chain(cols_b.keys()).filter(|n| !n.starts_with("_jobforge_")).collect();
    let mut tables = Vec::new();
    for name in names {
        if !options.tables.is_empty() && !options.tables.contains(name) {
            continue;
        }
        let key =
            if options.key.is_empty() { keys.get(name).cloned().unwrap_or_default() } else { options.key.clone() };
        tables.push(compare_table(&conn, name, cols_a.get(name), cols_b.get(name), key, options)?);
    }
    for t in &options.tables {
        if !tables.iter().any(|d| &d.table == t) {
            return Err(format!("no table `{t}` on either side"));
        }
    }
    Ok(Report { a: described_a, b: described_b, tables })
}

type Columns = Vec<(String, String)>;

/// The first column of the rows `sql` returns, as text.
fn strings(conn: &duckdb::Connection, sql: &str) -> Result<Vec<String>, String> {
    Ok(text_rows(conn, sql, &[])?.into_iter().filter_map(|r| r.into_iter().next()).collect())
}

fn is_numeric(dtype: &str) -> bool {
    let d = dtype.to_uppercase();
    [
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "FLOAT",
        "DOUBLE",
        "REAL",
    ]
    .contains(&d.as_str())
        || d.starts_with("DECIMAL")
}

fn compare_table(
    conn: &duckdb::Connection,
    name: &str,
    a: Option<&Columns>,
    b: Option<&Columns>,
    key: Vec<String>,
    options: &Options,
) -> Result<TableDiff, String> {
    let table = ident(name);
    let mut diff = TableDiff {
        table: name.to_string(),
        rows_a: None,
        rows_b: None,
        key: vec![],
        only_in_a: 0,
        only_in_b: 0,
        only_in_a_examples: vec![],
        only_in_b_examples: vec![],
        changed: vec![],
        columns: vec![],
        notes: vec![],
    };
    if a.is_some() {
        diff.rows_a = Some(count(conn, &format!("SELECT count(*) FROM a.{table}"))?);
    }
    if b.is_some() {
        diff.rows_b = Some(count(conn, &format!("SELECT count(*) FROM b.{table}"))?);
    }
    let (Some(a), Some(b)) = (a, b) else {
        diff.notes.push(format!("the table is only in {}", if a.is_some() { "A" } else { "B" }));
        return Ok(diff);
    };
    let compared = |c: &String| options.provenance || !PROVENANCE.contains(&c.as_str());
    let type_of = |cols: &Columns, c: &str| cols.iter().find(|(n, _)| n == c).map(|(_, t)| t.clone());
    for (c, t) in a.iter().filter(|(c, _)| compared(c)) {
        match type_of(b, c) {
            None => diff.columns.push(format!("`{c}` only in A")),
            Some(u) if &u != t => diff.columns.push(format!("`{c}` is {t} in A, {u} in B")),
            Some(_) => {}
        }
    }
    for (c, _) in b.iter().filter(|(c, _)| compared(c) && type_of(a, c).is_none()) {
        diff.columns.push(format!("`{c}` only in B"));
    }
    let common: Vec<&(String, String)> = a.iter().filter(|(c, _)| compared(c) && type_of(b, c).is_some()).collect();
    if common.is_empty() {
        diff.notes.push("no column in common".into());
        return Ok(diff);
    }
    let mut key = key;
    let missing_key: Vec<&String> = key.iter().filter(|k| !common.iter().any(|(c, _)| c == *k)).collect();
    if !missing_key.is_empty() {
        diff.notes.push(format!("key column(s) {missing_key:?} not on both sides; rows compared as multisets"));
        key.clear();
    }
    let keys_sql = key.iter().map(|k| ident(k)).collect::<Vec<_>>().join(", ");
    for side in ["a", "b"] {
        if key.is_empty() {
            break;
        }
        let repeated = count(
            conn,
            &format!("SELECT count(*) FROM (SELECT {keys_sql} FROM {side}.{table} GROUP BY ALL HAVING count(*) > 1)"),
        )?;
        if repeated > 0 {
            diff.notes
                .push(format!("{repeated} key value(s) repeat in {}; rows compared as multisets", side.to_uppercase()));
            key.clear();
        }
    }
    // A cell as compared: text trimmed and folded as asked.
    let cell = |alias: &str, column: &str, dtype: &str| {
        let c = format!("{alias}.{}", ident(column));
        if is_numeric(dtype) {
            return c;
        }
        let mut e = format!("CAST({c} AS VARCHAR)");
        if options.trim {
            e = format!("trim({e})");
        }
        if options.ignore_case {
            e = format!("lower({e})");
        }
        e
    };
    let shown = |alias: &str, cols: &[&(String, String)]| {
        let parts: Vec<String> =
            cols.iter().map(|(c, _)| format!("coalesce(CAST({alias}.{} AS VARCHAR), 'null')", ident(c))).collect();
        format!("concat_ws(', ', {})", parts.join(", "))
    };
    if key.is_empty() {
        // Rows as multisets: EXCEPT ALL both ways, over cells as compared, named c0, c1, ...
        let list = |alias: &str| {
            let cells = common.iter().enumerate().map(|(i, (c, t))| format!("{} AS c{i}", cell(alias, c, t)));
            cells.collect::<Vec<_>>().join(", ")
        };
        let example = (0..common.len()).map(|i| format!("coalesce(CAST(c{i} AS VARCHAR), 'null')")).collect::<Vec<_>>();
        let example = format!("concat_ws(', ', {})", example.join(", "));
        let sides = [
            ("a", "b", &mut diff.only_in_a, &mut diff.only_in_a_examples),
            ("b", "a", &mut diff.only_in_b, &mut diff.only_in_b_examples),
        ];
        for (from, to, n, examples) in sides {
            let except = format!(
                "SELECT {} FROM {from}.{table} {from} EXCEPT ALL SELECT {} FROM {to}.{table} {to}",
                list(from),
                list(to)
            );
            *n = count(conn, &format!("SELECT count(*) FROM ({except})"))?;
            if *n > 0 {
                *examples = strings(conn, &format!("SELECT {example} FROM ({except}) ORDER BY 1 LIMIT 3"))?;
            }
        }
        return Ok(diff);
    }
    diff.key = key.clone();
    let on =
        key.iter().map(|k| format!("a.{0} IS NOT DISTINCT FROM b.{0}", ident(k))).collect::<Vec<_>>().join(" AND ");
    let key_cols: Vec<&(String, String)> = common.iter().copied().filter(|(c, _)| key.contains(c)).collect();
    for (from, to, n, examples) in [
        ("a", "b", &mut diff.only_in_a, &mut diff.only_in_a_examples),
        ("b", "a", &mut diff.only_in_b, &mut diff.only_in_b_examples),
    ] {
        let only = format!("FROM {from}.{table} {from} WHERE NOT EXISTS (SELECT 1 FROM {to}.{table} {to} WHERE {on})");
        *n = count(conn, &format!("SELECT count(*) {only}"))?;
        if *n > 0 {
            *examples = strings(conn, &format!("SELECT {} {only} ORDER BY 1 LIMIT 3", shown(from, &key_cols)))?;
        }
    }
    let value_cols: Vec<&(String, String)> = common.iter().copied().filter(|(c, _)| !key.contains(c)).collect();
    let differs = |c: &str, ta: &str, tb: &str| {
        if is_numeric(ta) && is_numeric(tb) {
            let (x, y) = (format!("a.{}", ident(c)), format!("b.{}", ident(c)));
            format!(
                "NOT (({x} IS NULL AND {y} IS NULL) OR ({x} IS NOT NULL AND {y} IS NOT NULL AND \
                 abs({x}::DOUBLE - {y}::DOUBLE) <= greatest({abs}, {rel} * greatest(abs({x}::DOUBLE), abs({y}::DOUBLE)))))",
                abs = options.abs,
                rel = options.rel
            )
        } else {
            format!("{} IS DISTINCT FROM {}", cell("a", c, ta), cell("b", c, tb))
        }
    };
    if value_cols.is_empty() {
        return Ok(diff);
    }
    let b_type = |c: &str| type_of(b, c).unwrap_or_default();
    let counts: Vec<String> =
        value_cols.iter().map(|(c, t)| format!("count(*) FILTER (WHERE {})", differs(c, t, &b_type(c)))).collect();
    let joined = format!("FROM a.{table} a JOIN b.{table} b ON {on}");
    let sql = format!("SELECT {} {joined}", counts.join(", "));
    let changed: Vec<i64> = conn
        .query_row(&sql, [], |r| (0..value_cols.len()).map(|i| r.get::<_, i64>(i)).collect())
        .map_err(|e| format!("{e}\n{sql}"))?;
    for ((c, t), n) in value_cols.iter().zip(changed) {
        if n == 0 {
            continue;
        }
        let example = format!(
            "concat({}, ': ', coalesce(CAST(a.{col} AS VARCHAR), 'null'), ' -> ', coalesce(CAST(b.{col} AS VARCHAR), 'null'))",
            shown("a", &key_cols),
            col = ident(c)
        );
        let examples = strings(
            conn,
            &format!("SELECT {example} {joined} WHERE {} ORDER BY 1 LIMIT 3", differs(c, t, &b_type(c))),
        )?;
        diff.changed.push(ColumnChange { column: c.clone(), changed: n as u64, examples });
    }
    Ok(diff)
}
