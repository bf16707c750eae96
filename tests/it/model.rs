//! The semantic model checks, each on a purpose-built broken gold folder with its exact
//! message, and `validate` on the sample and real WiQ gold.

use crate::common::*;
use jobforge::diag::{Diagnostics, SourceText};
use jobforge::semantic::check::{check, Finding};
use jobforge::semantic::Model;
use polars::prelude::*;

/// Gold files holding `tables`, and a model; returns the findings.
fn findings(model: &str, tables: Vec<(&str, DataFrame)>) -> Vec<Finding> {
    let dir = tempfile::tempdir().unwrap();
    let mut gold = std::collections::BTreeMap::new();
    for (name, mut df) in tables {
        let path = dir.path().join(format!("{name}.parquet"));
        ParquetWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut df).unwrap();
        gold.insert(name.to_string(), path);
    }
    let text = SourceText { path: "wiq_schema.yml".into(), text: model.to_string() };
    let mut diags = Diagnostics::default();
    let model: Model = jobforge::config::parse(&text, &mut diags).unwrap_or_else(|| panic!("{diags}"));
    check(&text, &model, Some(&gold))
}

fn messages(f: &[Finding]) -> Vec<String> {
    f.iter().map(|f| f.at.message.clone()).collect()
}

const MODEL: &str = "model: Test
tables:
  dim:
    kind: dimension
    primary_key: unit_group_id
    columns:
      unit_group_id: { type: text }
  fact:
    kind: fact
relationships:
  - { from: fact.unit_group_id, to: dim.unit_group_id }
";

fn dim(ids: &[Option<&str>]) -> DataFrame {
    df!("unit_group_id" => ids, "class_title" => ids.iter().map(|_| "t").collect::<Vec<_>>()).unwrap()
}

fn fact(ids: &[&str]) -> DataFrame {
    df!("unit_group_id" => ids, "value" => ids.iter().map(|_| 1.0).collect::<Vec<_>>()).unwrap()
}

#[test]
fn a_clean_model_has_no_findings() {
    let f = findings(MODEL, vec![("dim", dim(&[Some("00010"), Some("00011")])), ("fact", fact(&["00010", "00010"]))]);
    assert!(f.is_empty(), "{:?}", messages(&f));
}

#[test]
fn duplicate_and_null_keys() {
    let f = findings(MODEL, vec![("dim", dim(&[Some("00010"), Some("00010"), None])), ("fact", fact(&["00010"]))]);
    let m = messages(&f);
    assert!(m.contains(&"primary key column `dim.unit_group_id` has 1 null value(s)".to_string()), "{m:?}");
    assert!(
        m.contains(&"primary key (unit_group_id) of `dim` is not unique: 2 rows share a key, e.g. (00010)".to_string()),
        "{m:?}"
    );
    assert!(m.contains(&"relationship fact.unit_group_id -> dim.unit_group_id: declared many_to_one but the one side `dim.unit_group_id` repeats (2 rows share a value, e.g. 00010)".to_string()), "{m:?}");
    let located = f.iter().find(|f| f.check == "primary_key").unwrap();
    assert_eq!((located.at.line, located.at.file.display().to_string()), (5, "wiq_schema.yml".to_string()));
}

#[test]
fn orphans_are_counted_with_an_example_at_their_severity() {
    let data = || vec![("dim", dim(&[Some("00010")])), ("fact", fact(&["00010", "99999", "99999"]))];
    let f = findings(MODEL, data());
    assert_eq!(messages(&f), ["relationship fact.unit_group_id -> dim.unit_group_id: 2 orphan row(s) in `fact` whose value is not in `dim.unit_group_id`, e.g. 99999"]);
    assert_eq!(f[0].severity, jobforge::semantic::model::Severity::Error);
    let warn = findings(&MODEL.replace("to: dim.unit_group_id }", "to: dim.unit_group_id, severity: warn }"), data());
    assert_eq!(warn[0].severity, jobforge::semantic::model::Severity::Warn);
}

#[test]
fn type_mismatch_and_missing_column() {
    let model = MODEL.replace(
        "      unit_group_id: { type: text }",
        "      unit_group_id: { type: text }\n      title: { type: text }\n      class_title: { type: integer }",
    );
    let f = findings(&model, vec![("dim", dim(&[Some("00010")])), ("fact", df!("unit_group_id" => [10i64]).unwrap())]);
    let m = messages(&f);
    assert!(
        m.contains(&"column `dim.title` is not in the gold data; did you mean `class_title`?".to_string()),
        "{m:?}"
    );
    assert!(
        m.contains(&"column `dim.class_title` is declared integer but the gold data has text (str)".to_string()),
        "{m:?}"
    );
    assert!(m.contains(&"relationship fact.unit_group_id -> dim.unit_group_id: types differ (fact.unit_group_id is integer, dim.unit_group_id is text)".to_string()), "{m:?}");
}

#[test]
fn wrong_cardinality() {
    let model = MODEL.replace("to: dim.unit_group_id }", "to: dim.unit_group_id, cardinality: one_to_one }");
    let f = findings(&model, vec![("dim", dim(&[Some("00010")])), ("fact", fact(&["00010", "00010"]))]);
    assert_eq!(messages(&f), ["relationship fact.unit_group_id -> dim.unit_group_id: declared one_to_one but the many side `fact.unit_group_id` repeats (2 rows share a value, e.g. 00010)"]);
}

#[test]
fn ambiguous_paths_and_non_key_ends_break_the_star() {
    let model = "model: Test
tables:
  a: { kind: fact }
  b: { kind: dimension, primary_key: id }
  c: { kind: dimension, primary_key: id }
relationships:
  - { from: a.b_id, to: b.id }
  - { from: b.c_id, to: c.id }
  - { from: a.c_id, to: c.id }
  - { from: a.b_id, to: b.name, active: false }
";
    let a = df!("b_id" => ["1"], "c_id" => ["1"]).unwrap();
    let b = df!("id" => ["1"], "c_id" => ["1"], "name" => ["1"]).unwrap();
    let c = df!("id" => ["1"]).unwrap();
    let m = messages(&findings(model, vec![("a", a), ("b", b), ("c", c)]));
    assert_eq!(
        m,
        [
            "relationship a.c_id -> c.id makes two active paths between `a` and `c` (the other is a - b - c); mark one inactive",
            "relationship a.b_id -> b.name: the one side `b.name` is not the primary key of `b` (its key is [id])",
        ]
    );
}

#[test]
fn every_gold_table_is_modelled_or_excluded() {
    let data = || vec![("dim", dim(&[Some("00010")])), ("fact", fact(&["00010"])), ("scratch", fact(&["00010"]))];
    let m = messages(&findings(MODEL, data()));
    assert_eq!(m, ["gold table `scratch` is not in the model; add it under `tables` or list it under `excluded`"]);
    assert!(findings(&format!("{MODEL}excluded: [scratch]\n"), data()).is_empty());
    let m = messages(&findings(&MODEL.replace("  fact:\n", "  fakt:\n"), data()));
    assert!(
        m.contains(&"table `fakt` is not in the gold layer".to_string())
            || m.iter().any(|x| x.starts_with("table `fakt` is not in the gold layer")),
        "{m:?}"
    );
}

#[test]
fn validate_checks_the_sample_model_and_exports_it() {
    let p = Project::sample();
    ok(&p.jobforge(&["validate", "--config-only"]));
    assert_eq!(p.jobforge(&["validate"]).status.code(), Some(1), "no gold yet: checks fail closed");
    ok(&p.jobforge(&["run", "pipelines"]));
    let out = p.jobforge(&["validate"]);
    ok(&out);
    assert!(
        stdout(&out).contains(&format!(
            "model WiQ with {} table(s) and {} relationship(s), no errors, 0 warning(s)",
            wiq_tables(),
            yaml_len("wiq_schema.yml", "relationships")
        )),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = p.jobforge(&["model", "export", "--format", "json"]);
    ok(&out);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let dim = v["tables"].as_array().unwrap().iter().find(|t| t["name"] == "dim_noc").unwrap();
    assert_eq!(dim["row_count"], 7);
    assert_eq!(dim["columns"][0]["name"], "unit_group_id");
    assert_eq!(dim["columns"][0]["data_type"], "text");
    // A broken key in the data and an unknown key in the model come out together.
    p.edit("wiq_schema.yml", "    primary_key: unit_group_id\n", "    primary_key: unit_group_id\n    primry: x\n");
    p.edit("pipelines/dim_noc.yml", "  - filter: \"level = 5\"", "  - filter: \"levl = 5\"");
    let out = p.jobforge(&["validate", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let errors = v["errors"].as_array().unwrap();
    assert!(errors.iter().any(|e| e["message"] == "unknown column `levl` in filter"), "{v}");
    assert!(
        errors.iter().any(|e| e["file"].as_str().unwrap().ends_with("wiq_schema.yml")
            && e["message"].as_str().unwrap().contains("unknown field `primry`")),
        "{v}"
    );
}
