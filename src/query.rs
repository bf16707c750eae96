//! `jobforge query`: DuckDB SQL over one layer's parquet files, one view per table, plus the
//! transition logs as `_transitions` and the table metadata as `_tables`.

use duckdb::types::Value;
use std::path::Path;

/// A query result: column names and rendered cell values.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Runs `sql` against the parquet tables of `layer` under `data`.
pub fn query(data: &Path, layer: &str, sql: &str) -> Result<QueryResult, String> {
    let conn = duckdb::Connection::open_in_memory().map_err(|e| e.to_string())?;
    let dir = data.join(layer);
    let mut tables: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| format!("no {layer} layer at {} ({e}); run `jobforge run` first", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "parquet")
                && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    tables.sort();
    let mut setup = String::new();
    for path in &tables {
        let name = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        setup.push_str(&format!(
            "CREATE VIEW {} AS SELECT * FROM read_parquet({});\n",
            ident(&name),
            sql_string(&path.to_string_lossy())
        ));
    }
    for (view, folder) in [("_transitions", "lineage"), ("_tables", "tables")] {
        let folder = data.join("catalog").join(folder);
        let has_json = std::fs::read_dir(&folder)
            .map(|d| d.filter_map(|e| e.ok()).any(|e| e.path().extension().is_some_and(|x| x == "json")))
            .unwrap_or(false);
        if has_json {
            let glob = folder.join("*.json");
            setup.push_str(&format!(
                "CREATE VIEW {view} AS SELECT * FROM read_json_auto({}, union_by_name = true);\n",
                sql_string(&glob.to_string_lossy())
            ));
        }
    }
    conn.execute_batch(&setup).map_err(|e| format!("cannot open the {layer} layer: {e}"))?;
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

fn render_value(v: Value) -> Option<String> {
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
        Value::Text(s) => s,
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
