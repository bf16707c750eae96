//! `jobforge powerbi`: golden files on the sample data, determinism, read-back equal to the
//! model, awkward names, `--check` catching hand edits, and model errors blocking generation.

use crate::common::*;
use jobforge::powerbi::{self, tmdl};
use polars::prelude::*;
use std::path::Path;

const DEFINITION: &str = "WiQ.SemanticModel/definition";

/// Replaces what changes from run to run (batch ids and times, the temporary gold folder).
fn normalise(text: &str, gold: &Path) -> String {
    let gold = std::path::absolute(gold).unwrap().display().to_string();
    text.lines()
        .map(|l| {
            if l.starts_with("/// Last batch ") {
                "/// Last batch <batch> at <time>".to_string()
            } else if l.contains("annotation JobForge_BatchId = ") {
                "\tannotation JobForge_BatchId = <batch>".to_string()
            } else {
                l.replace(&gold, "<gold>")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn built() -> Project {
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines"]));
    p
}

#[test]
fn sample_project_matches_the_golden_files_and_is_deterministic() {
    let p = built();
    let out = p.jobforge(&["powerbi", "--out", "pbi"]);
    ok(&out);
    assert!(
        stdout(&out).contains(&format!("wrote {} table(s)", wiq_tables()))
            && stdout(&out).contains(&format!(
                "{} measure(s) and {} relationship(s)",
                yaml_len("wiq_schema.yml", "measures"),
                yaml_len("wiq_schema.yml", "relationships")
            )),
        "{}",
        stdout(&out)
    );
    let gold = p.file("data/gold");
    for file in [
        "WiQ.pbip",
        "WiQ.Report/definition.pbir",
        "WiQ.SemanticModel/definition.pbism",
        "WiQ.SemanticModel/definition/database.tmdl",
        "WiQ.SemanticModel/definition/model.tmdl",
        "WiQ.SemanticModel/definition/expressions.tmdl",
        "WiQ.SemanticModel/definition/relationships.tmdl",
        "WiQ.SemanticModel/definition/tables/dim_noc.tmdl",
        "WiQ.SemanticModel/definition/tables/cops_employment.tmdl",
    ] {
        let got = normalise(&std::fs::read_to_string(p.file("pbi").join(file)).unwrap(), &gold);
        let golden = repo().join("tests/golden/powerbi").join(file);
        if std::env::var("JOBFORGE_UPDATE_GOLDEN").is_ok() {
            std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
            std::fs::write(&golden, &got).unwrap();
        }
        let want = std::fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("{}: {e} (set JOBFORGE_UPDATE_GOLDEN=1)", golden.display()));
        assert_eq!(got, want, "{file} differs from its golden file");
    }
    let first: Vec<(String, Vec<u8>)> = walk(&p.file("pbi"));
    ok(&p.jobforge(&["powerbi", "--out", "pbi"]));
    assert_eq!(walk(&p.file("pbi")), first, "same inputs, same bytes");
}

fn walk(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push((e.path().display().to_string(), std::fs::read(e.path()).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn read_back_equals_the_model_and_check_catches_hand_edits() {
    let p = built();
    ok(&p.jobforge(&["powerbi", "--out", "pbi"]));
    let read = powerbi::read_back(&p.file("pbi"), "WiQ").unwrap();
    let text = std::fs::read_to_string(p.file("wiq_schema.yml")).unwrap();
    let model: jobforge::semantic::Model = serde_yaml::from_str(&text).unwrap();
    assert_eq!(read.partitions.len(), model.tables.len());
    for table in model.tables.keys() {
        assert_eq!(read.partitions[table], format!("{table}.parquet"));
        let gold = read_parquet(&p.file(&format!("data/gold/{table}.parquet")));
        let names: Vec<String> = gold.get_column_names().iter().map(|c| c.to_string()).collect();
        assert_eq!(read.columns[table], names, "{table}");
    }
    let pairs: Vec<(String, String, bool)> =
        read.relationships.iter().map(|r| (r.from.clone(), r.to.clone(), r.active)).collect();
    let want: Vec<(String, String, bool)> =
        model.relationships.iter().map(|r| (r.from.clone(), r.to.clone(), r.active)).collect();
    assert_eq!(pairs, want);
    assert_eq!(read.measures["dim_noc"], ["Unit Groups"]);
    ok(&p.jobforge(&["powerbi", "--check", "pbi"]));
    // Hand edits: a relationship made inactive, a column removed, a partition repointed.
    let rel = p.file(&format!("pbi/{DEFINITION}/relationships.tmdl"));
    let text = std::fs::read_to_string(&rel).unwrap();
    let text = text.replacen(
        "\tfromColumn: dim_noc.minor_group_code",
        "\tisActive: false\n\tfromColumn: dim_noc.minor_group_code",
        1,
    );
    std::fs::write(&rel, text).unwrap();
    let dim = p.file(&format!("pbi/{DEFINITION}/tables/dim_noc.tmdl"));
    let text = std::fs::read_to_string(&dim)
        .unwrap()
        .replace("sourceColumn: class_definition", "sourceColumn: class_definitions");
    std::fs::write(&dim, text).unwrap();
    let cops = p.file(&format!("pbi/{DEFINITION}/tables/cops_employment.tmdl"));
    let text =
        std::fs::read_to_string(&cops).unwrap().replace("/cops_employment.parquet", "/cops_employment_old.parquet");
    std::fs::write(&cops, text).unwrap();
    let out = p.jobforge(&["powerbi", "--check", "pbi"]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(e.contains("mismatch: relationship dim_noc.minor_group_code -> noc_hierarchy.code: isActive is false in TMDL, true in the model"), "{e}");
    assert!(e.contains("mismatch: column `dim_noc.class_definition` of the gold data is not in the project"), "{e}");
    assert!(e.contains("mismatch: column `dim_noc.class_definitions` of the project is not in the gold data"), "{e}");
    assert!(e.contains("mismatch: partition of `cops_employment` reads `cops_employment_old.parquet`, which is not in the current run's gold layer"), "{e}");
    assert!(e.contains("4 mismatch(es)"), "{e}");
}

#[test]
fn awkward_names_are_quoted_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let gold = dir.path().join("gold");
    std::fs::create_dir_all(&gold).unwrap();
    let mut df = df!("Code NOC" => ["00010"], "O'Neil.rate" => [1.5], "table" => [1i64]).unwrap();
    ParquetWriter::new(std::fs::File::create(gold.join("My Table.parquet")).unwrap()).finish(&mut df).unwrap();
    let model: jobforge::semantic::Model = serde_yaml::from_str(
        "model: Odd
tables:
  My Table:
    kind: fact
    description: \"Line one\\nLine 'two' with \\\"quotes\\\"\"
measures:
  - { name: \"Sum of 'rate'\", table: My Table, expression: \"SUM('My Table'[O'Neil.rate])\" }
",
    )
    .unwrap();
    let gold_files = [("My Table".to_string(), gold.join("My Table.parquet"))].into_iter().collect();
    let inputs = powerbi::Inputs {
        model: &model,
        gold: &gold,
        gold_files: &gold_files,
        metadata: &[],
        publishers: Default::default(),
    };
    let (files, summary) = powerbi::generate(&inputs, "Odd").unwrap();
    assert_eq!(summary, powerbi::Summary { tables: 1, columns: 3, measures: 1, relationships: 0 });
    let table = &files[&Path::new("Odd.SemanticModel/definition/tables/My Table.tmdl").to_path_buf()];
    assert!(table.contains("/// Line one\n/// Line 'two' with \"quotes\"\ntable 'My Table'\n"), "{table}");
    assert!(table.contains("\tcolumn 'O''Neil.rate'\n") && table.contains("sourceColumn: \"O'Neil.rate\""), "{table}");
    assert!(table.contains("\tcolumn 'table'\n") && table.contains("\tcolumn 'Code NOC'\n"), "{table}");
    assert!(table.contains("\tmeasure 'Sum of ''rate''' = SUM('My Table'[O'Neil.rate])\n"), "{table}");
    powerbi::write(dir.path().join("out").as_path(), "Odd", &files).unwrap();
    let read = powerbi::read_back(&dir.path().join("out"), "Odd").unwrap();
    assert_eq!(read.columns["My Table"], ["Code NOC", "O'Neil.rate", "table"]);
    assert_eq!(read.measures["My Table"], ["Sum of 'rate'"]);
    assert_eq!(tmdl::unquote(&tmdl::quote("My Table")), "My Table");
}

#[test]
fn model_errors_block_generation_unless_forced() {
    let p = built();
    p.edit(
        "wiq_schema.yml",
        "  dim_noc:\n    kind: dimension\n    primary_key: unit_group_id\n",
        "  dim_noc:\n    kind: dimension\n    primary_key: class_definition_x\n",
    );
    let out = p.jobforge(&["powerbi", "--out", "pbi"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("primary key column `dim_noc.class_definition_x` is not in the gold data"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("or pass --force"), "{}", stderr(&out));
    assert!(!p.file("pbi").exists());
    ok(&p.jobforge(&["stagegold", "--out", "pbi", "--force"]));
    assert!(p.file("pbi/WiQ.pbip").exists());
}
