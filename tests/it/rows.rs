//! Every row accounted for: empty cells are null, casts are strict in every layer, `unique` runs
//! after the row rules on whole keys, counts are gross and balance, a panic fails only its
//! table, Excel cells read as Excel means them, and CSV problems name their line.

use crate::common::*;
use serde_json::Value;

const FIVE_ROWS: &str = "id,name,amount\n1,,10\n1,x,20\n2,y,\n3,z,1.7\n,w,5\n";

fn five_rows_project() -> Project {
    Project::with_files(&[
        ("sources.yml", "version: 1\nsources:\n  five: { path: five.csv }\n"),
        ("data/source/five.csv", FIVE_ROWS),
        (
            "pipelines/five.yml",
            "table: five\nsource: five\nbronze:\n  cast: { amount: float64 }\nsilver:\n  - expect: { not_null: [name, id], unique: [id] }\ngold:\n  - cast: { amount: int32 }\n",
        ),
    ])
}

fn transition(p: &Project, table: &str, layer: &str) -> Value {
    p.records("transitions")
        .into_iter()
        .find(|t| t["table"] == table && t["target_layer"] == layer)
        .unwrap_or_else(|| panic!("no transition {layer}.{table}"))
}

fn floats(df: &polars::prelude::DataFrame, column: &str) -> Vec<Option<f64>> {
    let c = df.column(column).unwrap().cast(&polars::prelude::DataType::Float64).unwrap();
    c.f64().unwrap().iter().collect()
}

#[test]
fn five_rows_each_meet_their_fate_layer_by_layer() {
    let p = five_rows_project();
    ok(&p.jobforge(&["run", "pipelines"]));
    let bronze = p.read("data/bronze/five.parquet");
    assert_eq!(strings(&bronze, "id"), [Some("1"), Some("1"), Some("2"), Some("3"), None].map(|s| s.map(String::from)));
    assert_eq!(strings(&bronze, "name")[0], None, "an empty field is null");
    assert_eq!(floats(&bronze, "amount"), [Some(10.0), Some(20.0), None, Some(1.7), Some(5.0)]);
    let silver = p.read("data/silver/five.parquet");
    assert_eq!(strings(&silver, "name"), [Some("x"), Some("y"), Some("z")].map(|s| s.map(String::from)));
    assert_eq!(
        strings(&silver, "id"),
        [Some("1"), Some("2"), Some("3")].map(|s| s.map(String::from)),
        "the valid repeat of a key whose first row failed another rule stays"
    );
    let gold = p.read("data/gold/five.parquet");
    assert_eq!(strings(&gold, "id"), [Some("1"), Some("2")].map(|s| s.map(String::from)));
    assert_eq!(floats(&gold, "amount"), [Some(20.0), None]);
    assert_eq!(gold.column("amount").unwrap().dtype(), &polars::prelude::DataType::Int32);
    let q = p.read("data/quarantine/five.parquet");
    let fates: Vec<(String, String, String)> = (0..q.height())
        .map(|i| {
            let at = |c: &str| strings(&q, c)[i].clone().unwrap_or_default();
            (at("_layer"), at("_rule"), at("_reason"))
        })
        .collect();
    assert_eq!(
        fates,
        [
            ("silver".into(), "not_null(name)".into(), "name is null".into()),
            ("silver".into(), "not_null(id)".into(), "id is null".into()),
            ("gold".into(), "cast(amount: int32)".into(), "amount: cannot cast '1.7' to int32".into()),
        ]
    );
    let n = |t: &Value, k: &str| t[k].as_u64().unwrap();
    let bronze = transition(&p, "five", "bronze");
    assert_eq!((n(&bronze, "rows_in"), n(&bronze, "rows_out"), n(&bronze, "rows_quarantined")), (5, 5, 0));
    let silver = transition(&p, "five", "silver");
    assert_eq!((n(&silver, "rows_in"), n(&silver, "rows_out"), n(&silver, "rows_quarantined")), (5, 3, 2));
    let gold = transition(&p, "five", "gold");
    assert_eq!((n(&gold, "rows_in"), n(&gold, "rows_out"), n(&gold, "rows_quarantined")), (3, 2, 1));
}

#[test]
fn null_values_and_empty_text_are_configurable() {
    let p = five_rows_project();
    p.edit("sources.yml", "path: five.csv }", "path: five.csv, read: { null_values: [\"\", \"x\"] } }");
    ok(&p.jobforge(&["run", "pipelines"]));
    let bronze = p.read("data/bronze/five.parquet");
    assert_eq!(strings(&bronze, "name")[1], None, "`x` is declared a null value");
    let p = five_rows_project();
    p.edit("sources.yml", "path: five.csv }", "path: five.csv, read: { null_values: [] } }");
    p.edit("pipelines/five.yml", "cast: { amount: float64 }", "cast: {}");
    ok(&p.jobforge(&["run", "pipelines"]));
    assert_eq!(strings(&p.read("data/bronze/five.parquet"), "name")[0].as_deref(), Some(""));
}

#[test]
fn a_key_with_a_null_fails_and_repeats_keep_the_first() {
    let p = Project::with_files(&[
        ("sources.yml", "version: 1\nsources:\n  keys: { path: keys.csv }\n"),
        ("data/source/keys.csv", "a,b,v\nx,1,r1\nx,,r2\n,1,r3\nx,1,r4\ny,2,r5\n"),
        ("pipelines/keys.yml", "table: keys\nsource: keys\nsilver:\n  - expect: { unique: [a, b] }\n"),
    ]);
    ok(&p.jobforge(&["run", "pipelines"]));
    assert_eq!(strings(&p.read("data/silver/keys.parquet"), "v"), [Some("r1".to_string()), Some("r5".to_string())]);
    let q = p.read("data/quarantine/keys.parquet");
    assert_eq!(strings(&q, "v"), [Some("r2"), Some("r3"), Some("r4")].map(|s| s.map(String::from)));
    let reasons = strings(&q, "_reason");
    assert_eq!(reasons[0].as_deref(), Some("(a, b) = (x, null) has a null; a key must be whole"));
    assert_eq!(reasons[2].as_deref(), Some("duplicate (a, b) = (x, 1)"));
}

fn join_project() -> Project {
    Project::with_files(&[
        ("sources.yml", "version: 1\nsources:\n  left: { path: left.csv }\n  right: { path: right.csv }\n"),
        ("data/source/left.csv", "k,v\na,1\nb,2\nc,3\nd,4\n"),
        ("data/source/right.csv", "k,w\na,x\na,y\nb,z\ne,q\n"),
        ("pipelines/right.yml", "table: right\nsource: right\nsilver:\n  - sort: [k]\n"),
        (
            "pipelines/left.yml",
            "table: left\nsource: left\ngold:\n  - join: { ref: silver.right, on: [k], how: inner }\n  - sql: \"select * from input where v <> '2'\"\n",
        ),
    ])
}

#[test]
fn joins_and_sql_are_counted_gross() {
    let p = join_project();
    ok(&p.jobforge(&["run", "pipelines"]));
    let gold = transition(&p, "left", "gold");
    let steps = gold["steps_applied"].as_array().unwrap();
    let n = |s: &Value, k: &str| s[k].as_u64().unwrap();
    let join = &steps[0];
    assert_eq!(join["step"], "join(silver.right)");
    assert_eq!(
        (n(join, "rows_in"), n(join, "rows_join_dropped"), n(join, "rows_fanout_added"), n(join, "rows_out")),
        (4, 2, 1, 3),
        "c and d find no match; a matches twice: {join}"
    );
    let sql = &steps[1];
    assert_eq!((n(sql, "rows_reshaped_in"), n(sql, "rows_reshaped_out"), n(sql, "rows_out")), (3, 2, 2), "{sql}");
    assert_eq!((n(&gold, "rows_in"), n(&gold, "rows_out")), (4, 2));
    assert_eq!(p.read("data/gold/left.parquet").height(), 2);
    // Every step and every transition balances, from counts measured on their own.
    for t in p.records("transitions") {
        for s in t["steps_applied"].as_array().unwrap().iter().chain([&t]) {
            assert_eq!(
                n(s, "rows_in") + n(s, "rows_fanout_added") + n(s, "rows_reshaped_out"),
                n(s, "rows_out")
                    + n(s, "rows_filtered")
                    + n(s, "rows_join_dropped")
                    + n(s, "rows_quarantined")
                    + n(s, "rows_reshaped_in"),
                "{s}"
            );
        }
    }
}

#[test]
fn a_panic_fails_its_table_and_skips_its_dependents() {
    let p = join_project();
    let out = p.jobforge_env(&["run", "pipelines"], &[("JOBFORGE_FAULT", "panic:silver/right")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("0 succeeded, 1 failed, 1 skipped"), "{text}");
    assert!(
        text.contains("failed   right: silver: internal error (a panic): fault injected at `panic:silver/right`"),
        "{text}"
    );
    assert!(text.contains("skipped  left: gold needs silver.right which did not build"), "{text}");
}

#[test]
fn excel_cells_read_as_excel_means_them() {
    let p = Project::with_files(&[
        (
            "sources.yml",
            "version: 1\nsources:\n  cells: { path: cell_types.xlsx, read: { null_values: [\"\", \"N/A\"] } }\n",
        ),
        (
            "pipelines/cells.yml",
            "table: cells\nsource: cells\nbronze:\n  cast: { integer: int32, decimal: float64, flag: boolean, when: date }\n",
        ),
    ]);
    std::fs::create_dir_all(p.file("data/source")).unwrap();
    std::fs::copy(repo().join("tests/fixtures/cell_types.xlsx"), p.file("data/source/cell_types.xlsx")).unwrap();
    ok(&p.jobforge(&["run", "pipelines"]));
    let staged = p.read("data/staged/cells.parquet");
    let col = |c: &str| strings(&staged, c);
    assert_eq!(col("text"), [Some("00010".into()), Some("x".into())]);
    assert_eq!(col("when"), [Some("2024-03-15".into()), Some("2025-01-02".into())]);
    assert_eq!(col("stamp"), [Some("2025-01-02T13:45:00".into()), Some("2024-02-29".into())]);
    assert_eq!(col("elapsed"), [Some("PT36H5M0S".into()), Some("PT1H30M0S".into())]);
    assert_eq!(col("flag"), [Some("true".into()), Some("false".into())]);
    assert_eq!(col("integer"), [Some("42".into()), Some("-7".into())]);
    assert_eq!(col("blank"), [None, None]);
    assert_eq!(col("note"), [None, None], "N/A is a null value here, and so is the empty text");
    let gold = p.read("data/gold/cells.parquet");
    assert_eq!(gold.height(), 2, "every row casts");
    assert_eq!(gold.column("when").unwrap().dtype(), &polars::prelude::DataType::Date);
    assert_eq!(p.read("data/quarantine/cells.parquet").height(), 0);
}

#[test]
fn csv_problems_name_their_line_and_the_fix() {
    let one = |csv: &str, read: &str| {
        Project::with_files(&[
            ("sources.yml", &format!("version: 1\nsources:\n  t: {{ path: t.csv{read} }}\n")),
            ("data/source/t.csv", csv),
            ("pipelines/t.yml", "table: t\nsource: t\n"),
        ])
    };
    // A header alone is a valid, empty table.
    let p = one("a,b\n", "");
    ok(&p.jobforge(&["run", "pipelines"]));
    let gold = p.read("data/gold/t.parquet");
    let names: Vec<String> = gold.get_column_names().iter().take(2).map(|c| c.to_string()).collect();
    assert_eq!((gold.height(), names), (0, vec!["a".to_string(), "b".to_string()]));
    // A row with an extra field: the line, and the option that accepts it.
    let p = one("a,b\n1,2\n3,4,5\n", "");
    let out = p.jobforge(&["validate", "--config-only"]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains("t.csv:3:1: line 3 has 3 fields, the header has 2") && e.contains("ragged_rows: truncate"),
        "{e}"
    );
    assert!(!e.contains("truncate_ragged_lines"), "{e}");
    let p = one("a,b\n1,2\n3,4,5\n", ", read: { ragged_rows: truncate }");
    ok(&p.jobforge(&["run", "pipelines"]));
    assert_eq!(strings(&p.read("data/gold/t.parquet"), "b"), [Some("2".to_string()), Some("4".to_string())]);
    // An unclosed quote is located where it opens.
    let p = one("a,b\n1,2\n3,\"four\n5,6\n", "");
    let out = p.jobforge(&["run", "pipelines"]);
    assert_eq!(out.status.code(), Some(2), "found at compile");
    assert!(stderr(&out).contains("t.csv:3:3: a quoted value opened here is never closed"), "{}", stderr(&out));
}

#[test]
fn validate_fails_closed_on_an_unreadable_gold_file() {
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines"]));
    let gold = p.file("data/gold/dim_noc.parquet");
    std::fs::remove_file(&gold).unwrap();
    std::fs::write(&gold, b"not parquet").unwrap();
    let out = p.jobforge(&["validate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot read gold table `dim_noc`"), "{}", stderr(&out));
}
