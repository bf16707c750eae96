//! `jobforge diff`: parity of a run with a parquet folder and a DuckDB file, by the model's keys.

use crate::common::*;
use polars::prelude::*;

/// A sample project with one run and its gold copied to `copy/`.
fn built() -> Project {
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines"]));
    std::fs::create_dir_all(p.file("copy")).unwrap();
    for table in p.gold_tables() {
        std::fs::copy(p.file(&format!("data/gold/{table}.parquet")), p.file(&format!("copy/{table}.parquet"))).unwrap();
    }
    p
}

/// Rewrites `copy/<table>.parquet` through `change`.
fn change(p: &Project, table: &str, change: impl FnOnce(DataFrame) -> DataFrame) {
    let path = p.file(&format!("copy/{table}.parquet"));
    let mut df = change(read_parquet(&path));
    ParquetWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut df).unwrap();
}

#[test]
fn a_copy_is_the_same_until_a_value_a_row_or_a_type_changes() {
    let p = built();
    let out = p.jobforge(&["diff", "run:latest", "copy"]);
    ok(&out);
    let same = format!("{t} table(s) compared: {t} same, 0 differ\n", t = wiq_tables());
    assert!(stdout(&out).ends_with(&same), "{}", stdout(&out));
    assert!(stdout(&out).contains("same     dim_noc: "), "{}", stdout(&out));
    // One title changed, one hierarchy row gone, one column retyped.
    let first_code = strings(&p.read("data/gold/dim_noc.parquet"), "unit_group_id")[0].clone().unwrap();
    let first_title = strings(&p.read("data/gold/dim_noc.parquet"), "class_title")[0].clone().unwrap();
    change(&p, "dim_noc", |df| {
        let titles: Vec<Option<String>> = strings(&df, "class_title")
            .into_iter()
            .enumerate()
            .map(|(i, t)| if i == 0 { Some("Changed".to_string()) } else { t })
            .collect();
        let mut df = df;
        df.with_column(Column::new("class_title".into(), titles)).unwrap();
        df
    });
    change(&p, "noc_hierarchy", |df| df.slice(1, df.height() - 1));
    change(&p, "cops_employment", |df| df.lazy().with_column(col("year").cast(DataType::String)).collect().unwrap());
    let out = p.jobforge(&["diff", "run:latest", "copy"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    let expected = format!("class_title: 1 changed, e.g. {first_code}: {first_title} -> Changed");
    assert!(text.contains(&expected), "{expected}\n{text}");
    assert!(text.contains("DIFFERS  noc_hierarchy: ") && text.contains("1 only in A, e.g. "), "{text}");
    assert!(text.contains("column `year` is INTEGER in A, VARCHAR in B"), "{text}");
    let differ = format!("{} table(s) compared: {} same, 3 differ\n", wiq_tables(), wiq_tables() - 3);
    assert!(text.ends_with(&differ), "{text}");
    // JSON says the same.
    let out = p.jobforge(&["diff", "run:latest", "copy", "--table", "dim_noc", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["tables"][0]["key"], serde_json::json!(["unit_group_id"]));
    assert_eq!(json["tables"][0]["changed"][0]["changed"], 1);
}

#[test]
fn numbers_within_tolerance_and_text_options() {
    let p = built();
    let value = |df: &DataFrame| df.column("employment").unwrap().f64().unwrap().get(0).unwrap();
    let before = value(&p.read("data/gold/cops_employment.parquet"));
    change(&p, "cops_employment", |df| {
        let mut values: Vec<Option<f64>> = df.column("employment").unwrap().f64().unwrap().iter().collect();
        values[0] = Some(before + 0.001);
        let mut df = df;
        df.with_column(Column::new("employment".into(), values)).unwrap();
        df
    });
    let args = ["diff", "run:latest", "copy", "--table", "cops_employment"];
    assert_eq!(p.jobforge(&args).status.code(), Some(1));
    ok(&p.jobforge(&[&args[..], &["--abs", "0.01"]].concat()));
    let rel = if before == 0.0 { "1" } else { "0.5" };
    ok(&p.jobforge(&[&args[..], &["--rel", rel]].concat()));
    // Text that differs only in case and spaces.
    change(&p, "noc_hierarchy", |df| {
        df.lazy().with_column((lit(" ") + col("title").str().to_uppercase()).alias("title")).collect().unwrap()
    });
    let args = ["diff", "run:latest", "copy", "--table", "noc_hierarchy"];
    assert_eq!(p.jobforge(&args).status.code(), Some(1));
    ok(&p.jobforge(&[&args[..], &["--trim", "--ignore-case"]].concat()));
}

#[test]
fn a_duckdb_file_and_tables_without_a_key() {
    let p = built();
    let db = p.file("warehouse.duckdb");
    let conn = duckdb::Connection::open(&db).unwrap();
    let gold = |t: &str| p.file(&format!("data/gold/{t}.parquet")).display().to_string();
    conn.execute_batch(&format!(
        "CREATE TABLE dim_noc AS SELECT * EXCLUDE (_source_file, _ingested_at, _batch_id, _layer) FROM read_parquet('{}');
         CREATE SCHEMA wiq;
         CREATE TABLE wiq.noc_hierarchy AS SELECT * FROM read_parquet('{}');",
        gold("dim_noc"),
        gold("noc_hierarchy")
    ))
    .unwrap();
    drop(conn);
    let out = p.jobforge(&["diff", "run:latest", "duckdb:warehouse.duckdb", "--table", "dim_noc"]);
    ok(&out);
    assert!(stdout(&out).contains("same     dim_noc: "), "{}", stdout(&out));
    // Provenance columns are compared only when asked: the copy has none.
    let out = p.jobforge(&["diff", "run:latest", "duckdb:warehouse.duckdb", "--table", "dim_noc", "--provenance"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("`_batch_id` only in A"), "{}", stdout(&out));
    // Another schema; a key that is not there falls back to rows as multisets.
    let out =
        p.jobforge(&["diff", "run:latest", "duckdb:warehouse.duckdb#wiq", "--table", "noc_hierarchy", "--key", "nope"]);
    ok(&out);
    assert!(stdout(&out).contains("compared as multisets"), "{}", stdout(&out));
    // Tables only on one side are differences.
    let out = p.jobforge(&["diff", "run:latest", "duckdb:warehouse.duckdb#wiq"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("DIFFERS  dim_noc: ") && stdout(&out).contains("absent"), "{}", stdout(&out));
    // Sides that are not there are named.
    let out = p.jobforge(&["diff", "run:latest", "postgres://nobody@127.0.0.1:1/wiq"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot connect to postgres://nobody@127.0.0.1:1/wiq"), "{}", stderr(&out));
    let out = p.jobforge(&["diff", "run:latest", "elsewhere"]);
    assert!(stderr(&out).contains("`elsewhere` is not a side"), "{}", stderr(&out));
    let out = p.jobforge(&["diff", "run:latest", "duckdb:missing.duckdb"]);
    assert!(stderr(&out).contains("no DuckDB database at"), "{}", stderr(&out));
}
