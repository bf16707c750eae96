//! Read options and formats on a purpose-built project: Latin-1 with `;` and rows to skip,
//! Excel by sheet name, NDJSON with text columns, Parquet, a glob pattern with a version rule
//! and an exclude, a `sql` step with `ref()` and `var()`, and source schema drift.

use crate::common::*;
use polars::prelude::*;

const SOURCES: &str = r#"version: 1
defaults:
  root: "{{ env('FORMATS_ROOT_UNSET', 'in') }}"
sources:
  latin:
    path: latin.csv
    read: { encoding: latin-1, delimiter: ";", skip_rows: 1 }
  excel:
    path: titles.xlsx
    read: { sheet: Titles, skip_rows: 1 }
  events:
    path: events.ndjson
    read: { text_columns: [code] }
  scores:
    path: scores.parquet
  report:
    pattern: ["report_v*.csv"]
    exclude: ["~$*"]
    version: highest
"#;

fn project() -> Project {
    let dir = tempfile::tempdir().unwrap();
    let p = Project { dir };
    p.write("sources.yml", SOURCES);
    std::fs::create_dir_all(p.file("in")).unwrap();
    std::fs::write(p.file("in/latin.csv"), b"Exported 2024-01-01\nCode;Ville\n00010;Montr\xe9al\n00011;Qu\xe9bec\n")
        .unwrap();
    std::fs::copy(repo().join("tests/fixtures/titles.xlsx"), p.file("in/titles.xlsx")).unwrap();
    std::fs::write(p.file("in/events.ndjson"), "{\"code\": 10, \"n\": 1.5}\n{\"code\": 11, \"n\": 2.5}\n").unwrap();
    let mut df = df!("unit_group_id" => ["00010", "10010"], "score" => [3.0, 4.0]).unwrap();
    ParquetWriter::new(std::fs::File::create(p.file("in/scores.parquet")).unwrap()).finish(&mut df).unwrap();
    std::fs::write(p.file("in/report_v1.9.csv"), "version\n1.9\n").unwrap();
    std::fs::write(p.file("in/report_v1.10.csv"), "version\n1.10\n").unwrap();
    std::fs::write(p.file("in/~$report_v9.csv"), "version\nlock file\n").unwrap();
    for (table, body) in [
        ("latin", "bronze: { rename: { ville: city } }\ngold:\n  - sql: \"select code, city, '{{ var('region') }}' as region from input where code not in (select unit_group_id from {{ ref('gold.scores') }})\""),
        ("excel", "bronze: { cast: { score: float64 } }"),
        ("events", "bronze: { cast: { n: float64 } }"),
        ("scores", "gold:\n  - expect: { range: { score: { min: 0, max: 5 } } }"),
        ("report", ""),
    ] {
        p.write(&format!("pipelines/{table}.yml"), &format!("table: {table}\nsource: {table}\n{body}\n"));
    }
    p
}

#[test]
fn every_format_and_read_option_reaches_gold() {
    let p = project();
    let out = p.jobforge(&["run", "pipelines", "--var", "region=QC"]);
    ok(&out);
    let latin = p.read("data/gold/latin.parquet");
    assert_eq!(strings(&latin, "code"), [Some("00011".to_string())], "00010 is removed by the sql step's ref");
    assert_eq!(strings(&latin, "city"), [Some("Québec".to_string())]);
    assert_eq!(strings(&latin, "region"), [Some("QC".to_string())]);
    let excel = p.read("data/gold/excel.parquet");
    assert_eq!(strings(&excel, "code"), [Some("00010".into()), Some("00011".into()), Some("10010".into())]);
    assert_eq!(excel.column("score").unwrap().f64().unwrap().get(1), Some(3.5));
    assert_eq!(excel.column("score").unwrap().null_count(), 1);
    let events = p.read("data/staged/events.parquet");
    assert_eq!(events.column("code").unwrap().dtype(), &DataType::String);
    assert_eq!(strings(&p.read("data/gold/report.parquet"), "version"), [Some("1.10".to_string())]);
    let plan = stdout(&p.jobforge(&["plan", "--dry-run", "--var", "region=QC"]));
    assert!(plan.contains("report_v1.10.csv") && !plan.contains("report_v1.9.csv"), "{plan}");
    let out = p.jobforge(&[
        "query",
        "select name, layer, row_count from _tables where name = 'excel' and layer = 'gold'",
        "--format",
        "csv",
    ]);
    ok(&out);
    assert_eq!(stdout(&out), "name,layer,row_count\nexcel,gold,3\n");
}

#[test]
fn new_and_vanished_source_columns_are_reported() {
    let p = project();
    ok(&p.jobforge(&["run", "pipelines", "--var", "region=QC", "--select", "report"]));
    std::fs::write(p.file("in/report_v1.10.csv"), "version,notes\n1.10,new\n").unwrap();
    let out = p.jobforge(&["run", "pipelines", "--var", "region=QC", "--select", "report"]);
    ok(&out);
    assert!(stdout(&out).contains("warning  report: new column `notes` in"), "{}", stdout(&out));
    std::fs::write(p.file("in/report_v1.10.csv"), "version\n1.10\n").unwrap();
    let out = p.jobforge(&["run", "pipelines", "--var", "region=QC", "--select", "report"]);
    ok(&out);
    assert!(stdout(&out).contains("warning  report: column `notes` is no longer in"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("new column"), "{}", stdout(&out));
}

#[test]
fn a_latin_1_file_read_as_utf_8_is_an_error_naming_line_and_column() {
    let p = project();
    p.edit("sources.yml", "encoding: latin-1, ", "");
    let out = p.jobforge(&["run", "pipelines", "--var", "region=QC"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("latin.csv:3:12: byte 0xE9 is not valid UTF-8"), "{}", stderr(&out));
}
