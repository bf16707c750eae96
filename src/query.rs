//! `jobforge query`: read-only DuckDB SQL over one layer of a committed snapshot, one view per
//! table, plus the snapshot's transition logs as `_transitions`, table metadata as `_tables` and
//! check results as `_checks`; and the SQL checks of a run over its files (`query_files`). Only
//! the views a statement reads are made (DuckDB binds each view as it is made, reading its file's
//! footer): the tables its parse names.

use crate::sql::{ident, literal};
use crate::store::{Manifest, RecordKind, Store};
use duckdb::types::Value;
use std::collections::BTreeSet;

/// A query result: column names and rendered cell values.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// The one integer `sql` returns (a count); the statement is part of the error.
pub(crate) fn count(conn: &duckdb::Connection, sql: &str) -> Result<u64, String> {
    conn.query_row(sql, [], |r| r.get::<_, i64>(0)).map(|n| n as u64).map_err(|e| format!("{e}\n{sql}"))
}

/// The rows `sql` (with `params`) returns, every cell as text, null as `null`.
pub(crate) fn text_rows(conn: &duckdb::Connection, sql: &str, params: &[&str]) -> Result<Vec<Vec<String>>, String> {
    let fail = |e: duckdb::Error| format!("{e}\n{sql}");
    let mut stmt = conn.prepare(sql).map_err(fail)?;
    let mut rows = stmt.query(duckdb::params_from_iter(params.iter())).map_err(fail)?;
    let width = rows.as_ref().map_or(0, |s| s.column_count());
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(fail)? {
        let cells = (0..width).map(|i| row.get::<_, Option<String>>(i).map(|v| v.unwrap_or_else(|| "null".into())));
        out.push(cells.collect::<Result<_, _>>().map_err(fail)?);
    }
    Ok(out)
}

/// A new in-memory DuckDB database. Its start (the catalog of functions, the parser's grammar)
/// takes most of a short query's time: the SQL checks of a run share one.
pub fn open() -> Result<duckdb::Connection, String> {
    duckdb::Connection::open_in_memory().map_err(|e| format!("cannot open DuckDB: {e}"))
}

/// Runs the read-only statement `sql` against the tables of `layer` in the snapshot `m`.
pub fn query(store: &Store, m: &Manifest, layer: &str, sql: &str) -> Result<QueryResult, String> {
    let views = |reads: &Reads| {
        let mut setup = String::new();
        for (name, path) in store.layer_files(m, layer).into_iter().filter(|(name, _)| reads.names("", name)) {
            setup.push_str(&format!(
                "CREATE OR REPLACE VIEW {} AS SELECT * FROM read_parquet({});\n",
                ident(&name),
                literal(&path.to_string_lossy())
            ));
        }
        let records = [
            ("_transitions", RecordKind::Transitions),
            ("_tables", RecordKind::Tables),
            ("_checks", RecordKind::Checks),
        ];
        for (view, kind) in records.into_iter().filter(|(view, _)| reads.names("", view)) {
            // Files holding no record (`[]`) would give the view no columns.
            let files: Vec<String> = store
                .record_files(m, kind)
                .into_iter()
                .filter(|f| {
                    std::fs::read(f).is_ok_and(|b| b.iter().filter(|c| !c.is_ascii_whitespace()).nth(1) != Some(&b']'))
                })
                .map(|f| literal(&f.to_string_lossy()))
                .collect();
            if !files.is_empty() {
                setup.push_str(&format!(
                    "CREATE OR REPLACE VIEW {view} AS SELECT * FROM read_json_auto([{}], format = 'array', union_by_name = true);\n",
                    files.join(", ")
                ));
            }
        }
        setup
    };
    run_with_views(&open()?, sql, views, &format!("cannot open the {layer} layer"))
}

/// Runs the read-only statement `sql` over files given as layer -> table -> path: gold tables
/// by name, every layer's as `layer.table`. `conn` may hold the views of earlier statements over
/// the same files (each statement makes or replaces those it reads).
pub fn query_files(
    conn: &duckdb::Connection,
    files: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, std::path::PathBuf>>,
    sql: &str,
) -> Result<QueryResult, String> {
    let views = |reads: &Reads| {
        let mut setup = String::new();
        for (layer, tables) in files {
            setup.push_str(&format!("CREATE SCHEMA IF NOT EXISTS {};\n", ident(layer)));
            for (name, path) in tables {
                let from = format!("SELECT * FROM read_parquet({})", literal(&path.to_string_lossy()));
                if reads.names(layer, name) {
                    setup.push_str(&format!("CREATE OR REPLACE VIEW {}.{} AS {from};\n", ident(layer), ident(name)));
                }
                if layer == "gold" && reads.names("", name) {
                    setup.push_str(&format!("CREATE OR REPLACE VIEW {} AS {from};\n", ident(name)));
                }
            }
        }
        setup
    };
    run_with_views(conn, sql, views, "cannot open the run's tables")
}

/// Runs the read-only `sql` on `conn` once `views` has made the views it reads; where it then
/// names a table that is not there, again with every view, so that DuckDB's message suggests
/// the names there are.
fn run_with_views(
    conn: &duckdb::Connection,
    sql: &str,
    views: impl Fn(&Reads) -> String,
    opening: &str,
) -> Result<QueryResult, String> {
    let attempt = |reads: &Reads| {
        conn.execute_batch(&views(reads)).map_err(|e| format!("{opening}: {e}"))?;
        run(conn, sql)
    };
    let reads = read_only(conn, sql)?;
    match attempt(&reads) {
        Err(e) if reads != Reads::Every && e.contains("does not exist") => attempt(&Reads::Every),
        result => result,
    }
}

/// Runs `sql` (which `read_only` accepted); every cell rendered as text.
fn run(conn: &duckdb::Connection, sql: &str) -> Result<QueryResult, String> {
    let mut stmt = conn.prepare(sql).map_err(|e| format!("query: {e}"))?;
    let mut rows = stmt.query([]).map_err(|e| format!("query: {e}"))?;
    let mut out = Vec::new();
    let columns: Vec<String> = rows.as_ref().map(|s| s.column_names()).unwrap_or_default();
    while let Some(row) = rows.next().map_err(|e| format!("query: {e}"))? {
        let mut cells = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            let v: Value = row.get(i).map_err(|e| format!("query: {e}"))?;
            cells.push(render_value(v));
        }
        out.push(cells);
    }
    Ok(QueryResult { columns, rows: out })
}

/// The tables a statement names, as its parse gives them; `Every` where it cannot tell (a name
/// qualified by a catalog) or looks at the catalog itself (`information_schema.tables`,
/// `duckdb_views()`, any table function), so that every view is made.
#[derive(Debug, PartialEq)]
enum Reads {
    Every,
    /// (schema, table), lower case (DuckDB's names are case-insensitive); the schema empty
    /// where the statement gives none.
    Tables(BTreeSet<(String, String)>),
}

impl Reads {
    /// Whether the statement may read table `name` of `schema` (`""` for an unqualified name,
    /// which `main` names too).
    fn names(&self, schema: &str, name: &str) -> bool {
        match self {
            Reads::Every => true,
            Reads::Tables(tables) => tables.iter().any(|(s, t)| {
                let schema_matches = s == schema || (schema.is_empty() && s == "main");
                schema_matches && t.eq_ignore_ascii_case(name)
            }),
        }
    }

    /// The base tables of a parse (`json_serialize_sql`), at any depth: joins, subqueries, common
    /// table expressions (whose own names may be among them; a view is made only for a table).
    fn of(parse: &serde_json::Value) -> Reads {
        fn walk(v: &serde_json::Value, out: &mut BTreeSet<(String, String)>) -> bool {
            match v {
                serde_json::Value::Object(o) => {
                    let field = |k: &str| o.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_lowercase();
                    match o.get("type").and_then(|t| t.as_str()) {
                        Some("TABLE_FUNCTION") => return false,
                        Some("BASE_TABLE") => {
                            let (schema, table) = (field("schema_name"), field("table_name"));
                            let system = ["information_schema", "pg_catalog"].contains(&schema.as_str())
                                || ["duckdb_", "pragma_", "sqlite_"].iter().any(|p| table.starts_with(p));
                            if system || !field("catalog_name").is_empty() {
                                return false;
                            }
                            out.insert((schema, table));
                        }
                        _ => {}
                    }
                    o.values().all(|x| walk(x, out))
                }
                serde_json::Value::Array(items) => items.iter().all(|x| walk(x, out)),
                _ => true,
            }
        }
        let mut tables = BTreeSet::new();
        if walk(parse, &mut tables) {
            Reads::Tables(tables)
        } else {
            Reads::Every
        }
    }
}

/// The tables the read-only statement `sql` names, lower case, whatever schema qualifies them;
/// `None` when its parse cannot tell (see `Reads`) or it is not one statement that reads.
pub fn tables_read(conn: &duckdb::Connection, sql: &str) -> Option<BTreeSet<String>> {
    match read_only(conn, sql).ok()? {
        Reads::Every => None,
        Reads::Tables(tables) => Some(tables.into_iter().map(|(_, name)| name).collect()),
    }
}

/// Refuses anything but one statement that reads: DuckDB's own parser serialises SELECT
/// statements only, so COPY, ATTACH, SET, INSERT, CREATE, EXPORT and PRAGMA are all refused.
/// Returns the tables it reads.
fn read_only(conn: &duckdb::Connection, sql: &str) -> Result<Reads, String> {
    let parsed: String = conn
        .query_row("SELECT json_serialize_sql(?)::VARCHAR", [sql], |r| r.get(0))
        .map_err(|e| format!("query: {e}"))?;
    let v: serde_json::Value = serde_json::from_str(&parsed).map_err(|e| format!("query: {e}"))?;
    if v["error"] == serde_json::Value::Bool(true) {
        let message = v["error_message"].as_str().unwrap_or("not a query");
        if message.contains("Only SELECT") {
            return Err("query: only statements that read (SELECT, WITH ... SELECT, VALUES) are allowed; \
                        `jobforge query` never writes"
                .into());
        }
        return Err(format!("query: {message}"));
    }
    match v["statements"].as_array().map(Vec::len) {
        Some(1) => Ok(Reads::of(&v)),
        Some(n) => Err(format!("query: give one statement, not {n}")),
        None => Err("query: no statement".into()),
    }
}

fn render_value(v: Value) -> Option<String> {
    use duckdb::types::TimeUnit;
    let micros = |unit: TimeUnit, n: i64| match unit {
        TimeUnit::Second => n.saturating_mul(1_000_000),
        TimeUnit::Millisecond => n.saturating_mul(1_000),
        TimeUnit::Microsecond => n,
        TimeUnit::Nanosecond => n / 1_000,
    };
    Some(match v {
        Value::Null => return None,
        Value::Boolean(b) => b.to_string(),
        Value::TinyInt(i) => i.to_string(),
        Value::SmallInt(i) => i.to_string(),
        Value::Int(i) => i.to_string(),
        Value::BigInt(i) => i.to_string(),
        Value::HugeInt(i) => i.to_string(),
        Value::UTinyInt(i) => i.to_string(),
        Value::USmallInt(i) => i.to_string(),
        Value::UInt(i) => i.to_string(),
        Value::UBigInt(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Double(f) => f.to_string(),
        Value::Decimal(d) => d.to_string(),
        Value::Text(s) => s,
        Value::Date32(days) => chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163)
            .map_or_else(|| days.to_string(), |d| d.format("%Y-%m-%d").to_string()),
        Value::Timestamp(unit, n) => chrono::DateTime::from_timestamp_micros(micros(unit, n))
            .map_or_else(|| n.to_string(), |t| t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.f").to_string()),
        Value::Time64(unit, n) => chrono::NaiveTime::from_num_seconds_from_midnight_opt(
            (micros(unit, n) / 1_000_000) as u32,
            ((micros(unit, n) % 1_000_000) * 1_000) as u32,
        )
        .map_or_else(|| n.to_string(), |t| t.format("%H:%M:%S%.f").to_string()),
        other => format!("{other:?}"),
    })
}

impl QueryResult {
    /// An aligned text table.
    pub fn to_table(&self) -> String {
        let cell = |c: &Option<String>| c.clone().unwrap_or_else(|| "NULL".into());
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for row in &self.rows {
            for (i, c) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell(c).chars().count());
            }
        }
        let line = |cells: Vec<String>| {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join(" | ")
                .trim_end()
                .to_string()
                + "\n"
        };
        let mut out = line(self.columns.clone());
        out.push_str(&(widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("-+-") + "\n"));
        for row in &self.rows {
            out.push_str(&line(row.iter().map(cell).collect()));
        }
        out.push_str(&format!("({} row{})\n", self.rows.len(), if self.rows.len() == 1 { "" } else { "s" }));
        out
    }

    /// RFC 4180 CSV with a header row; NULL is an empty field.
    pub fn to_csv(&self) -> String {
        let field = |s: &str| {
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        let mut out = self.columns.iter().map(|c| field(c)).collect::<Vec<_>>().join(",") + "\n";
        for row in &self.rows {
            out.push_str(
                &(row.iter().map(|c| c.as_deref().map(field).unwrap_or_default()).collect::<Vec<_>>().join(",") + "\n"),
            );
        }
        out
    }

    /// A JSON array of objects.
    pub fn to_json(&self) -> String {
        let rows: Vec<serde_json::Map<String, serde_json::Value>> = self
            .rows
            .iter()
            .map(|r| {
                self.columns
                    .iter()
                    .cloned()
                    .zip(r.iter().map(|c| c.clone().map_or(serde_json::Value::Null, serde_json::Value::String)))
                    .collect()
            })
            .collect();
        serde_json::to_string_pretty(&rows).unwrap_or_default() + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_reads_the_tables_its_parse_names() {
        let conn = duckdb::Connection::open_in_memory().expect("duckdb");
        let reads = |sql: &str| read_only(&conn, sql).expect("a query");
        let tables =
            |pairs: &[(&str, &str)]| Reads::Tables(pairs.iter().map(|(s, t)| (s.to_string(), t.to_string())).collect());
        let check = "SELECT d.unit_group_id FROM dim_noc d WHERE NOT EXISTS \
                     (SELECT 1 FROM silver.noc_hierarchy h WHERE h.code = d.minor_group_code)";
        assert_eq!(reads(check), tables(&[("", "dim_noc"), ("silver", "noc_hierarchy")]));
        let mixed = "WITH x AS (SELECT * FROM Gold.A) SELECT * FROM x JOIN b USING (k) \
                     WHERE k IN (SELECT k FROM d) UNION ALL SELECT * FROM main.c";
        assert_eq!(reads(mixed), tables(&[("", "b"), ("", "d"), ("", "x"), ("gold", "a"), ("main", "c")]));
        assert_eq!(reads("SELECT 42"), tables(&[]));
        for every in [
            "SELECT * FROM memory.main.a",
            "SELECT table_name FROM information_schema.tables",
            "SELECT * FROM duckdb_views()",
            "SELECT * FROM duckdb_tables",
            "SELECT * FROM read_parquet('x.parquet') JOIN a USING (k)",
        ] {
            assert_eq!(reads(every), Reads::Every, "{every}");
        }
        let upper = reads("select * from DIM_NOC");
        assert!(upper.names("", "dim_noc") && !upper.names("gold", "dim_noc"));
        assert!(reads("SELECT * FROM main.a").names("", "a"));
        assert!(read_only(&conn, "DROP TABLE a").is_err());
    }

    #[test]
    fn a_missing_table_is_named_with_the_tables_there_are() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dim_noc.parquet");
        let mut df = polars::df!("code" => ["a"]).expect("frame");
        polars::prelude::ParquetWriter::new(std::fs::File::create(&path).expect("file"))
            .finish(&mut df)
            .expect("parquet");
        let files = std::collections::BTreeMap::from([(
            "gold".to_string(),
            std::collections::BTreeMap::from([("dim_noc".to_string(), path)]),
        )]);
        let conn = open().expect("duckdb");
        assert_eq!(
            query_files(&conn, &files, "SELECT count(*) AS n FROM gold.dim_noc").expect("query").rows,
            [[Some("1".into())]]
        );
        let e = query_files(&conn, &files, "SELECT * FROM dim_nco").expect_err("no such table");
        assert!(e.contains("dim_noc"), "{e}");
        // The same database again: the statements' views are made again, not refused.
        assert_eq!(query_files(&conn, &files, "SELECT code FROM dim_noc").expect("query").rows, [[Some("a".into())]]);
    }
}
