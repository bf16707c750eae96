//! Running the sample project: layers, provenance, balanced transitions, quarantine, DuckDB,
//! atomic writes under a crash, dry runs and selection.

use crate::common::*;
use serde_json::Value;

const TABLES: [&str; 4] = ["cops_employment", "dim_noc", "noc_hierarchy", "oasis_skills"];
const LAYERS: [&str; 4] = ["staged", "bronze", "silver", "gold"];

fn transitions(p: &Project) -> Vec<Value> {
    p.records("transitions")
}

#[test]
fn sample_run_writes_all_four_layers_with_provenance() {
    let p = Project::sample();
    let out = p.jobforge(&["run", "pipelines"]);
    ok(&out);
    assert!(stdout(&out).contains(&format!("{} succeeded, 0 failed, 0 skipped", wiq_tables())), "{}", stdout(&out));
    let mut batches = std::collections::BTreeSet::new();
    let metadata = p.records("tables");
    for table in TABLES {
        for layer in LAYERS {
            let df = p.read(&format!("data/{layer}/{table}.parquet"));
            assert!(df.height() > 0, "{layer}.{table} is empty");
            for c in ["_source_file", "_ingested_at", "_batch_id", "_layer"] {
                assert!(df.column(c).is_ok(), "{layer}.{table} lacks {c}");
            }
            assert!(strings(&df, "_layer").iter().all(|l| l.as_deref() == Some(layer)));
            assert!(strings(&df, "_source_file")[0].as_deref().unwrap().ends_with(".csv"));
            batches.extend(strings(&df, "_batch_id").into_iter().flatten());
            let meta = metadata.iter().find(|m| m["name"] == table && m["layer"] == layer).unwrap();
            assert_eq!(meta["row_count"].as_u64(), Some(df.height() as u64));
        }
    }
    assert_eq!(batches.len(), 1, "one batch id per run");
    let dim = p.read("data/gold/dim_noc.parquet");
    assert_eq!(strings(&dim, "unit_group_id")[0].as_deref(), Some("00010"));
    assert_eq!(strings(&dim, "major_group_title")[0].as_deref(), Some("Legislative and senior managers"));
    assert_eq!(dim.height(), 7);
    let manifests = p.manifests();
    assert_eq!(manifests.len(), 1);
    assert_eq!(
        manifests[0]["run_id"].as_str(),
        batches.iter().next().map(String::as_str),
        "the run id is the batch id"
    );
    assert_eq!(manifests[0]["tables"]["dim_noc"]["files"]["gold"]["rows"], 7);
}

#[test]
fn every_transition_balances_and_aggregates_are_filtered() {
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines"]));
    let logs = transitions(&p);
    assert_eq!(logs.len(), wiq_tables() * LAYERS.len());
    for log in &logs {
        let n = |k: &str| log[k].as_i64().unwrap();
        assert_eq!(
            n("rows_in") + n("rows_fanout_added") + n("rows_reshaped_out"),
            n("rows_out") + n("rows_filtered") + n("rows_join_dropped") + n("rows_quarantined") + n("rows_reshaped_in"),
            "unbalanced: {log}"
        );
        assert_eq!(log["status"], "success");
    }
    let cops_silver = logs.iter().find(|l| l["table"] == "cops_employment" && l["target_layer"] == "silver").unwrap();
    assert_eq!(cops_silver["rows_in"], 12);
    assert_eq!(cops_silver["rows_filtered"], 5, "00000, TEER_0, TEER_1, NOC1_0, NOC1_2");
    assert_eq!(cops_silver["rows_quarantined"], 0);
    let cops_gold = p.read("data/gold/cops_employment.parquet");
    assert_eq!(cops_gold.height(), 7 * 11);
    assert_eq!(cops_gold.column("year").unwrap().dtype(), &polars::prelude::DataType::Int32);
    let na = cops_gold.column("employment").unwrap().null_count();
    assert_eq!(na, 11, "00012 is N/A in every year: nulls, not quarantined rows");
}

#[test]
fn failing_rows_are_quarantined_with_rule_and_reason() {
    let p = Project::sample();
    let csv = "data/source/noc/noc_structure_en.sample.csv";
    let text = std::fs::read_to_string(p.file(csv)).unwrap();
    let extra = "5,Unit Group,00010,Legislators again,A duplicate unit group\nfive,Unit Group,99999,Bad level,Level is not a number\n";
    p.write(csv, &format!("{text}{extra}"));
    let out = p.jobforge(&["run", "pipelines"]);
    ok(&out);
    let q = p.read("data/quarantine/dim_noc.parquet");
    let rules = strings(&q, "_rule");
    let reasons = strings(&q, "_reason");
    assert_eq!(q.height(), 2, "{q}");
    assert!(rules.contains(&Some("cast(level: int32)".into())), "{rules:?}");
    assert!(reasons.contains(&Some("level: cannot cast 'five' to int32".into())), "{reasons:?}");
    assert!(reasons.contains(&Some("duplicate (noc_code) = (00010)".into())), "{reasons:?}");
    assert!(strings(&q, "_source_file").iter().all(|s| s.as_deref().unwrap().ends_with("noc_structure_en.sample.csv")));
    let dim = p.read("data/gold/dim_noc.parquet");
    assert_eq!(dim.height(), 7, "the first 00010 stays, its repeat is quarantined");
    let bronze =
        transitions(&p).into_iter().find(|l| l["table"] == "dim_noc" && l["target_layer"] == "bronze").unwrap();
    assert_eq!(bronze["rows_quarantined"], 1);
}

#[test]
fn duckdb_queries_gold_and_the_catalog() {
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines"]));
    let out =
        p.jobforge(&["query", "select count(*) as n, min(unit_group_id) as first from dim_noc", "--format", "csv"]);
    ok(&out);
    assert_eq!(stdout(&out), "n,first\n7,00010\n");
    let out =
        p.jobforge(&["query", "select count(*) as n from _transitions where status = 'success'", "--format", "json"]);
    ok(&out);
    let rows: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(rows[0]["n"], (wiq_tables() * 4).to_string());
    let out = p.jobforge(&["query", "select count(*) as n from cops_employment", "--layer", "silver"]);
    ok(&out);
    assert!(stdout(&out).contains("7"), "{}", stdout(&out));
}

#[test]
fn a_run_killed_mid_write_leaves_the_previous_gold_intact() {
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines"]));
    let gold = p.file("data/gold/dim_noc.parquet");
    let before = std::fs::read(&gold).unwrap();
    p.edit("pipelines/dim_noc.yml", "  - sort: [unit_group_id]", "  - sort: [\"unit_group_id desc\"]");
    let out = p.jobforge_env(&["run", "pipelines", "--select", "dim_noc"], &[("JOBFORGE_FAULT", "write:gold/dim_noc")]);
    assert!(!out.status.success(), "the injected fault must kill the run");
    assert_eq!(std::fs::read(&gold).unwrap(), before, "gold changed under a killed write");
    assert_eq!(strings(&p.read("data/gold/dim_noc.parquet"), "unit_group_id")[0].as_deref(), Some("00010"));
    ok(&p.jobforge(&["run", "pipelines", "--select", "dim_noc"]));
    assert_eq!(strings(&p.read("data/gold/dim_noc.parquet"), "unit_group_id")[0].as_deref(), Some("21232"));
    let runs = std::fs::read_dir(p.file("data/runs")).unwrap().count();
    assert_eq!(runs, p.manifests().len(), "an uncommitted run folder was left");
}

#[test]
fn plan_dry_run_writes_nothing_and_lists_files() {
    let p = Project::sample();
    let before = p.data_files();
    let out = p.jobforge(&["plan", "--dry-run", "pipelines"]);
    ok(&out);
    let text = stdout(&out);
    assert!(text.contains(&format!("{} node(s)", wiq_tables() * 4)), "{text}");
    assert!(text.contains("noc_structure_en.sample.csv ("), "{text}");
    assert!(text.contains("needs: silver.noc_hierarchy"), "{text}");
    let out = p.jobforge(&["plan", "--dry-run", "--format", "json"]);
    ok(&out);
    let nodes: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let order: Vec<String> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| format!("{}.{}", n["layer"].as_str().unwrap(), n["table"].as_str().unwrap()))
        .collect();
    let at = |s: &str| order.iter().position(|o| o == s).unwrap();
    assert!(at("silver.noc_hierarchy") < at("gold.dim_noc"));
    assert!(at("silver.dim_noc") < at("silver.cops_employment"));
    assert_eq!(p.data_files(), before, "plan wrote files");
}

#[test]
fn select_runs_exactly_the_selected_tables() {
    let p = Project::sample();
    let built = |p: &Project| p.gold_tables();
    ok(&p.jobforge(&["run", "pipelines", "--select", "noc_hierarchy"]));
    assert_eq!(built(&p), ["noc_hierarchy"]);
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines", "--select", "+dim_noc"]));
    assert_eq!(built(&p), ["dim_noc", "noc_hierarchy"]);
    let out = p.jobforge(&["run", "pipelines", "--select", "cops_employment"]);
    ok(&out);
    assert!(stdout(&out).contains("1 succeeded"), "{}", stdout(&out));
    assert_eq!(built(&p), ["cops_employment", "dim_noc", "noc_hierarchy"]);
    // A table that reads dim_noc and another table not built yet fails, naming the other.
    let out = p.jobforge(&["run", "pipelines", "--select", "dim_noc+", "--full-refresh"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("failed   caf_noc_bridge: silver: step 6 `expect(not_null, exists_in)`: `silver.dim_caf_occupation` has not been built; run it first or select it with `+`"),
        "{}",
        stdout(&out)
    );
    ok(&p.jobforge(&["run", "pipelines", "--select", "dim_caf_occupation"]));
    let out = p.jobforge(&["run", "pipelines", "--select", "dim_noc+", "--full-refresh"]);
    ok(&out);
    assert!(stdout(&out).contains("33 succeeded"), "dim_noc and the 32 tables built from it: {}", stdout(&out));
    let out = p.jobforge(&["run", "pipelines", "--select", "dim_nco"]);
    assert!(stderr(&out).contains("did you mean `dim_noc`?"), "{}", stderr(&out));
}

#[test]
fn a_failing_table_skips_its_dependents_and_the_others_run() {
    let p = Project::sample();
    p.edit(
        "pipelines/noc_hierarchy.yml",
        "  - sort: [level, code]",
        "  - sql: \"select * from input where no_such_column = 1\"",
    );
    let out = p.jobforge(&["run", "pipelines"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains(&format!("{} succeeded, 1 failed, 0 skipped", wiq_tables() - 1)), "{text}");
    assert!(text.contains("failed   noc_hierarchy: gold: step 2 `sql`"), "{text}");
    // dim_noc reads silver.noc_hierarchy, which did build, so it succeeds.
    assert!(text.contains("success  dim_noc"), "{text}");
    // Now fail dim_noc's silver: every table checking its unit groups against it is skipped.
    let p = Project::sample();
    p.edit(
        "pipelines/dim_noc.yml",
        "  - filter: \"level = 5\"",
        "  - sql: \"select * from input where no_such_column = 1\"",
    );
    let out = p.jobforge(&["run", "pipelines"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("failed   dim_noc: silver: step 1 `sql`"), "{text}");
    assert!(text.contains("skipped  cops_employment: silver needs silver.dim_noc which did not build"), "{text}");
    assert!(text.contains("success  noc_hierarchy"), "{text}");
    assert!(text.contains("success  dim_occupations"), "{text}");
    assert!(!p.file("data/gold/cops_employment.parquet").exists());
    assert!(!p.file("data/bronze/cops_employment.parquet").exists(), "a table commits whole or not at all");
    let m = p.manifests().pop().unwrap();
    assert_eq!(m["tables"]["cops_employment"]["status"], "skipped");
    assert_eq!(m["tables"]["dim_noc"]["status"], "failed");
    assert_eq!(m["status"], "failed");
}
