//! Incremental runs: a rerun builds the tables whose pipeline, source file or inputs changed,
//! holds the others, and says which and why.

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeSet;

fn run(p: &Project, extra: &[&str]) -> String {
    let out = p.jobforge(&[&["run", "pipelines"], extra].concat());
    ok(&out);
    stdout(&out)
}

fn run_id(m: &Value) -> String {
    m["run_id"].as_str().unwrap().to_string()
}

/// The tables with `status` in manifest `m`.
fn with_status(m: &Value, status: &str) -> BTreeSet<String> {
    m["tables"].as_object().unwrap().iter().filter(|(_, t)| t["status"] == status).map(|(n, _)| n.clone()).collect()
}

/// `start` and every table that reads it, directly or through others, per the manifest.
fn downstream(m: &Value, start: &str) -> BTreeSet<String> {
    let tables = m["tables"].as_object().unwrap();
    let mut out = BTreeSet::from([start.to_string()]);
    loop {
        let before = out.len();
        for (name, t) in tables {
            let reads = t["reads"].as_array().unwrap();
            if reads.iter().any(|r| out.contains(r.as_str().unwrap().split_once('.').unwrap().1)) {
                out.insert(name.clone());
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

#[test]
fn a_rerun_with_nothing_changed_writes_nothing() {
    let p = Project::sample();
    run(&p, &[]);
    let before = p.manifests();
    let runs_changed = || std::fs::metadata(p.file("data/runs")).unwrap().modified().unwrap();
    let runs_before = runs_changed();
    let text = run(&p, &[]);
    assert!(text.starts_with(&format!("nothing to do: {} table(s) up to date", wiq_tables())), "{text}");
    assert_eq!(runs_changed(), runs_before, "no run folder made (and removed) in data/runs");
    let first = run_id(&before[0]);
    assert!(text.contains(&format!("unchanged dim_noc (unchanged since run {}", &first[..8])), "{text}");
    assert_eq!(p.manifests().len(), before.len(), "no new snapshot");
    assert_eq!(std::fs::read_dir(p.file("data/runs")).unwrap().count(), 1, "no run folder left behind");
    // A comment changes no table.
    let spec = std::fs::read_to_string(p.file("pipelines/dim_noc.yml")).unwrap();
    p.write("pipelines/dim_noc.yml", &format!("# reviewed\n{spec}"));
    assert!(run(&p, &[]).starts_with("nothing to do"));
    // --full-refresh builds everything again.
    let text = run(&p, &["--full-refresh"]);
    assert!(text.contains(&format!("{} succeeded, 0 failed, 0 skipped, 0 unchanged", wiq_tables())), "{text}");
    assert!(text.contains("success  dim_noc (--full-refresh)"), "{text}");
}

#[test]
fn an_edited_pipeline_rebuilds_its_table_and_what_reads_it() {
    let p = Project::sample();
    run(&p, &[]);
    let before = p.manifests().pop().unwrap();
    let first = run_id(&before);
    p.edit("pipelines/noc_hierarchy.yml", "  - sort: [level, code]", "  - sort: [code, level]");
    let text = run(&p, &[]);
    let m = p.manifests().pop().unwrap();
    // Rebuilt: the table and the tables whose build key changed with it, all downstream of it;
    // tables that read only layers it left as they were are held.
    let expected = with_status(&m, "success");
    let changed_keys: BTreeSet<String> = m["tables"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(n, t)| t["keys"]["gold"] != before["tables"][n.as_str()]["keys"]["gold"])
        .map(|(n, _)| n.clone())
        .collect();
    assert_eq!(expected, changed_keys, "{text}");
    assert!(expected.contains("noc_hierarchy") && expected.contains("dim_noc"), "{text}");
    assert!(expected.is_subset(&downstream(&m, "noc_hierarchy")), "{text}");
    assert_eq!(with_status(&m, "unchanged").len(), wiq_tables() - expected.len(), "{text}");
    assert!(text.contains("success  noc_hierarchy (its pipeline or source options changed)"), "{text}");
    assert!(text.contains("success  dim_noc (a table it reads changed (noc_hierarchy))"), "{text}");
    // Held tables keep the files, rows and builder of the first run; rebuilt ones are new.
    for (name, t) in m["tables"].as_object().unwrap() {
        let batches: BTreeSet<_> =
            strings(&p.read(&format!("data/gold/{name}.parquet")), "_batch_id").into_iter().flatten().collect();
        let by = if expected.contains(name) { run_id(&m) } else { first.clone() };
        assert_eq!(t["built_by"].as_str(), Some(by.as_str()), "{name}");
        assert!(batches.is_empty() || batches == BTreeSet::from([by.clone()]), "{name}: {batches:?}");
    }
    // Every table is fresh, and the next run has nothing to do.
    let status: Value = serde_json::from_str(&stdout(&p.jobforge(&["status", "--format", "json"]))).unwrap();
    assert!(status.as_array().unwrap().iter().all(|r| r["stale"] == serde_json::json!([])), "{status}");
    assert!(run(&p, &[]).starts_with("nothing to do"));
}

#[test]
fn a_changed_source_file_rebuilds_the_tables_built_from_it() {
    let p = Project::sample();
    run(&p, &[]);
    let csv = p.file("data/source/noc/noc_structure_en.sample.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.contains("Legislators"));
    std::fs::write(&csv, text.replace("Legislators", "Lawmakers")).unwrap();
    let out = run(&p, &[]);
    let m = p.manifests().pop().unwrap();
    let from_source: BTreeSet<String> = m["tables"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, t)| t["source"] == "noc_structure")
        .map(|(n, _)| n.clone())
        .collect();
    assert!(!from_source.is_empty());
    for name in &from_source {
        assert!(out.contains(&format!("success  {name} (its source file changed")), "{out}");
    }
    let rebuilt = from_source.iter().fold(BTreeSet::new(), |mut all, t| {
        all.extend(downstream(&m, t));
        all
    });
    assert_eq!(with_status(&m, "success"), rebuilt, "{out}");
    let titles = strings(&p.read("data/gold/noc_hierarchy.parquet"), "title");
    assert!(titles.iter().flatten().any(|t| t.contains("Lawmakers")), "{titles:?}");
}

#[test]
fn a_failed_table_is_rebuilt_only_when_its_inputs_change() {
    let p = Project::sample();
    run(&p, &[]);
    let original = std::fs::read_to_string(p.file("pipelines/noc_hierarchy.yml")).unwrap();
    p.edit("pipelines/noc_hierarchy.yml", "  - sort: [level, code]", "  - sql: \"select * from input where nope = 1\"");
    let out = p.jobforge(&["run", "pipelines"]);
    assert_eq!(out.status.code(), Some(1));
    // Its held version was built from the restored pipeline: nothing to rebuild but what read the
    // failed run's silver layer.
    p.write("pipelines/noc_hierarchy.yml", &original);
    let text = run(&p, &[]);
    let m = p.manifests().pop().unwrap();
    assert_eq!(m["tables"]["noc_hierarchy"]["status"], "unchanged", "{text}");
    assert_eq!(m["tables"]["dim_noc"]["status"], "success", "{text}");
    assert!(text.contains("success  dim_noc (a table it reads changed (noc_hierarchy))"), "{text}");
}

/// A rerun's first check: the inputs stamped in the current snapshot. It answers "nothing to
/// do" without loading the config only when nothing it records changed: the config files, the
/// environment the templates read, a folder a pattern lists, a source file.
#[test]
fn a_rerun_checks_the_inputs_its_snapshot_stamped() {
    let p = Project::sample();
    run(&p, &[]);
    // Exit code, summary, and whether the stamp answered.
    let rerun = |args: &[&str], env: &[(&str, &str)]| {
        let env = [env, &[("JOBFORGE_LOG", "jobforge=debug")]].concat();
        let out = p.jobforge_env(&[&["run", "pipelines"], args].concat(), &env);
        (out.status.code(), stdout(&out), String::from_utf8_lossy(&out.stderr).contains("inputs as stamped"))
    };
    let stamped = |env: &[(&str, &str)]| rerun(&[], env);
    let (code, text, fast) = stamped(&[]);
    assert_eq!(code, Some(0));
    assert!(text.starts_with(&format!("nothing to do: {} table(s) up to date", wiq_tables())), "{text}");
    assert!(fast, "nothing changed: answered from the stamp");
    // Another source root through the environment `sources.yml` reads: every path changes.
    copy_dir(&p.file("data/source"), &p.file("copy"));
    let csv = p.file("copy/noc/noc_structure_en.sample.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&csv, text.replace("Legislators", "Lawmakers")).unwrap();
    let (code, text, fast) = stamped(&[("JOBFORGE_SOURCE_DIR", "copy")]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!fast && text.contains(&format!("{} succeeded", wiq_tables())), "{text}");
    let titles = strings(&p.read("data/gold/noc_hierarchy.parquet"), "title");
    assert!(titles.iter().flatten().any(|t| t.contains("Lawmakers")), "{titles:?}");
    let (_, text, fast) = stamped(&[("JOBFORGE_SOURCE_DIR", "copy")]);
    assert!(fast && text.starts_with("nothing to do"), "{text}");
    // A second file matching a pattern: the folder changed, and the source no longer resolves.
    std::fs::copy(&csv, p.file("copy/noc/noc_structure_en.v2.csv")).unwrap();
    let (code, text, fast) = stamped(&[("JOBFORGE_SOURCE_DIR", "copy")]);
    assert!(!fast && code == Some(2), "{text}");
    std::fs::remove_file(p.file("copy/noc/noc_structure_en.v2.csv")).unwrap();
    // A source file rewritten: its tables are rebuilt.
    std::fs::write(&csv, std::fs::read_to_string(&csv).unwrap().replace("Lawmakers", "Senators")).unwrap();
    let (code, text, fast) = stamped(&[("JOBFORGE_SOURCE_DIR", "copy")]);
    assert!(!fast && code == Some(0) && text.contains("success  noc_hierarchy (its source file changed"), "{text}");
    // Another selection is decided table by table (the stamp is of the whole run's).
    let (_, text, fast) = rerun(&["--select", "noc_hierarchy"], &[("JOBFORGE_SOURCE_DIR", "copy")]);
    assert!(!fast && text.starts_with("nothing to do: 1 table(s)"), "{text}");
}

/// The model's `pii` marks shape what a run records of a table (its values are kept out of the
/// metadata): marking a column rebuilds the tables that hold it (and what reads them), no other;
/// so does a model that appears with such a mark in a project that had none.
#[test]
fn marking_a_column_pii_rebuilds_the_tables_that_hold_it() {
    let p = Project::sample();
    let model = std::fs::read_to_string(p.file("wiq_schema.yml")).unwrap();
    std::fs::remove_file(p.file("wiq_schema.yml")).unwrap();
    run(&p, &[]);
    let out = p.jobforge_env(&["run", "pipelines"], &[("JOBFORGE_LOG", "jobforge=debug")]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("inputs as stamped"), "no model, nothing changed");
    let title = "      class_title: { type: text, description: \"Unit group title\" }";
    assert!(model.contains(title));
    p.write("wiq_schema.yml", &model.replacen(title, &title.replace(" }", ", pii: true }"), 1));
    let text = run(&p, &[]);
    assert!(text.contains("success  dim_noc (its pipeline or source options changed)"), "{text}");
    let m = p.manifests().pop().unwrap();
    assert_eq!(m["tables"]["dim_noc"]["built_by"], m["run_id"], "{text}");
    assert!(!with_status(&m, "unchanged").is_empty(), "tables without the column are held: {text}");
    assert!(run(&p, &[]).starts_with("nothing to do"));
    // Unmarked again in the model: rebuilt again.
    p.write("wiq_schema.yml", &model);
    assert!(run(&p, &[]).contains("success  dim_noc (its pipeline or source options changed)"));
}
