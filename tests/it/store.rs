//! The store: a run is one atomic snapshot. Faults injected at every write, barrier, commit,
//! publish and retention boundary, and real kills of a running child, each followed by commands
//! that must see the gold layer of one run; one writer; names that would leave the data folder;
//! readers without the raw files; history, `--run` and rollback; read-only queries.

use crate::common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The `_batch_id`s of every published gold table, read through the stable paths.
fn published_batches(p: &Project) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for table in p.gold_tables() {
        let df = p.read(&format!("data/gold/{table}.parquet"));
        out.extend(strings(&df, "_batch_id").into_iter().flatten());
    }
    out
}

/// The `_batch_id`s the gold layer shows to `jobforge query`, across four tables.
fn queried_batches(p: &Project) -> BTreeSet<String> {
    let sql = "select distinct _batch_id from (select _batch_id from dim_noc union all select _batch_id from \
               noc_hierarchy union all select _batch_id from cops_employment union all select _batch_id from oasis_skills)";
    let out = p.jobforge(&["query", sql, "--format", "csv"]);
    ok(&out);
    stdout(&out).lines().skip(1).map(str::to_string).collect()
}

/// Every run folder is named by a committed manifest, and no temporary file is left.
fn assert_no_leftovers(p: &Project) {
    let committed: BTreeSet<String> =
        p.manifests().iter().map(|m| m["folder"].as_str().unwrap().trim_start_matches("runs/").to_string()).collect();
    let folders: BTreeSet<String> = std::fs::read_dir(p.file("data/runs"))
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    assert!(folders.is_subset(&committed), "uncommitted run folders: {:?}", folders.difference(&committed));
    let temporaries: Vec<String> = p.data_files().into_iter().filter(|f| f.ends_with(".tmp")).collect();
    assert!(temporaries.is_empty(), "temporary files: {temporaries:?}");
}

fn latest_run_id(p: &Project) -> String {
    p.manifests().last().unwrap()["run_id"].as_str().unwrap().to_string()
}

/// A project with one committed run, edited so that the next run changes dim_noc.
fn built_and_edited() -> (Project, String) {
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines"]));
    let first = latest_run_id(&p);
    p.edit("pipelines/dim_noc.yml", "  - sort: [unit_group_id]", "  - sort: [\"unit_group_id desc\"]");
    (p, first)
}

#[test]
fn a_fault_at_any_boundary_leaves_one_consistent_run() {
    // (point, whether the new run is committed when the process dies there)
    let points = [
        ("write:staged/dim_noc", false),
        ("write:gold/dim_noc", false),
        ("write:quarantine/cops_employment", false),
        ("write:records", false),
        ("barrier", false),
        ("commit", false),
        ("committed", true),
        ("publish", true),
        ("published", true),
        ("retention", true),
    ];
    for (point, committed) in points {
        let (p, first) = built_and_edited();
        let out = p.jobforge_env(&["run", "pipelines", "--keep", "1", "--full-refresh"], &[("JOBFORGE_FAULT", point)]);
        assert!(!out.status.success(), "{point}: the injected fault must kill the run\n{}", stderr(&out));
        assert!(stderr(&out).contains(&format!("fault injected at `{point}`")), "{point}: {}", stderr(&out));
        let seen = queried_batches(&p);
        assert_eq!(seen.len(), 1, "{point}: the gold layer mixes runs: {seen:?}");
        let batch = seen.into_iter().next().unwrap();
        assert_eq!(batch == first, !committed, "{point}: saw run {batch}, the first was {first}");
        assert_eq!(published_batches(&p), BTreeSet::from([batch.clone()]), "{point}: stable paths");
        let first_id = strings(&p.read("data/gold/dim_noc.parquet"), "unit_group_id")[0].clone().unwrap();
        assert_eq!(first_id == "00010", !committed, "{point}: dim_noc is from the other run");
        assert_no_leftovers(&p);
        // The next run starts clean and commits.
        ok(&p.jobforge(&["run", "pipelines", "--keep", "1", "--full-refresh"]));
        assert_eq!(queried_batches(&p), BTreeSet::from([latest_run_id(&p)]), "{point}: after the next run");
        assert_no_leftovers(&p);
    }
}

#[test]
fn a_run_killed_at_any_moment_leaves_one_consistent_run() {
    let (p, first) = built_and_edited();
    let mut runs = BTreeSet::from([first]);
    for delay_ms in [5, 40, 120, 250, 500] {
        let mut child = p.spawn(&["run", "pipelines", "--full-refresh"]);
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        runs.extend(p.manifests().iter().map(|m| m["run_id"].as_str().unwrap().to_string()));
        let seen = queried_batches(&p);
        assert_eq!(seen.len(), 1, "killed after {delay_ms} ms: the gold layer mixes runs: {seen:?}");
        assert!(runs.contains(seen.iter().next().unwrap()), "killed after {delay_ms} ms: gold of an uncommitted run");
        assert_eq!(published_batches(&p), seen, "killed after {delay_ms} ms: stable paths");
        assert_no_leftovers(&p);
    }
}

#[test]
fn one_writer_at_a_time() {
    let p = Project::sample();
    let data = p.file("data");
    let lock = jobforge::store::Lock::acquire(&data, "a test holding the lock", jobforge::store::Wait::No).unwrap();
    let out = p.jobforge(&["run", "pipelines"]);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(e.contains(&format!("pid {}", std::process::id())) && e.contains("a test holding the lock"), "{e}");
    assert!(e.contains("--wait"), "{e}");
    assert!(p.manifests().is_empty());
    // Readers do not block on a writer.
    let out = p.jobforge(&["runs"]);
    ok(&out);
    let mut waiting = p.spawn(&["run", "pipelines", "--wait"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(waiting.try_wait().unwrap().is_none(), "--wait must wait for the lock");
    drop(lock);
    ok(&waiting.wait_with_output().unwrap());
    assert_eq!(p.manifests().len(), 1);
}

#[test]
fn two_runs_at_once_commit_one_after_the_other() {
    let p = Project::sample();
    let run = ["run", "pipelines", "--full-refresh"];
    let (a, b) = (p.spawn(&[&run[..], &["--wait"]].concat()), p.spawn(&run).wait_with_output());
    // The second, without --wait, either ran before or after the first, or was refused naming it.
    let b = b.unwrap();
    if !b.status.success() {
        assert!(stderr(&b).contains("another jobforge process holds the data folder"), "{}", stderr(&b));
    }
    ok(&a.wait_with_output().unwrap());
    let expected: Vec<u64> = if b.status.success() { vec![1, 2] } else { vec![1] };
    let manifests = p.manifests();
    assert_eq!(manifests.iter().map(|m| m["seq"].as_u64().unwrap()).collect::<Vec<_>>(), expected);
    ok(&p.spawn(&[&run[..], &["--wait"]].concat()).wait_with_output().unwrap());
    assert_eq!(queried_batches(&p), BTreeSet::from([latest_run_id(&p)]));
    assert_no_leftovers(&p);
}

#[test]
fn names_that_leave_the_data_folder_are_refused_at_compile() {
    let long = "x".repeat(5000);
    for (name, expected) in [
        ("../../x", "must start with a letter"),
        ("noc/../../x", "contains `/`"),
        ("/tmp/jobforge_escape", "must start with a letter"),
        ("\"\"", "cannot be empty"),
        (long.as_str(), "5000 bytes long"),
        ("\"2021\"", "must start with a letter"),
    ] {
        let p = Project::sample();
        p.edit("pipelines/noc_hierarchy.yml", "table: noc_hierarchy", &format!("table: {name}"));
        let out = p.jobforge(&["run", "pipelines"]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let e = stderr(&out);
        assert!(e.contains("noc_hierarchy.yml:2:1:"), "{name}: {e}");
        assert!(e.contains(expected), "{name}: {e}");
        assert!(!p.file("data/manifests").exists(), "{name}: nothing may run");
    }
    assert!(!std::path::Path::new("/tmp/jobforge_escape.parquet").exists());
    // A source that climbs out of its root is refused, naming the source.
    let p = Project::sample();
    p.edit("sources.yml", "pattern: [\"noc/noc_structure_en", "pattern: [\"../../noc_structure_en");
    let out = p.jobforge(&["validate"]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(e.contains("sources.yml:") && e.contains("climbs out of the source root"), "{e}");
}

#[test]
fn readers_work_from_the_record_without_the_source_files() {
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines"]));
    std::fs::remove_dir_all(p.file("data/source")).unwrap();
    // Today's config no longer matches the run; readers describe what the run recorded.
    p.edit("pipelines/dim_noc.yml", "table: dim_noc", "table: dim_noc_renamed");
    let lineage = |p: &Project| {
        let out = p.jobforge(&["lineage", "Where does dim_noc come from?"]);
        ok(&out);
        assert!(stdout(&out).contains("noc_structure_en.sample.csv"), "{}", stdout(&out));
        assert!(stdout(&out).contains("7 -> 7 rows"), "{}", stdout(&out));
    };
    lineage(&p);
    // The snapshot keeps the config as one file; one kept as earlier builds kept it, a folder of
    // the YAML files, reads the same.
    let run = p.file(&format!("data/runs/{}", latest_run_id(&p)));
    let config: BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(run.join("config.json")).unwrap()).unwrap();
    assert!(config["pipelines/dim_noc.yml"].contains("table: dim_noc\n"));
    assert!(config["sources.yml"].contains("noc_structure"));
    for (rel, text) in &config {
        std::fs::create_dir_all(run.join("config").join(rel).parent().unwrap()).unwrap();
        std::fs::write(run.join("config").join(rel), text).unwrap();
    }
    std::fs::remove_file(run.join("config.json")).unwrap();
    lineage(&p);
    let out = p.jobforge(&["catalogue", "--out", "cat", "--format", "json"]);
    ok(&out);
    let cat: Value = serde_json::from_str(&std::fs::read_to_string(p.file("cat/catalogue.json")).unwrap()).unwrap();
    let dim = cat["tables"].as_array().unwrap().iter().find(|t| t["name"] == "dim_noc").unwrap();
    assert_eq!(dim["row_count"], 7);
    let out = p.jobforge(&["query", "select count(*) from dim_noc", "--format", "csv"]);
    ok(&out);
    assert_eq!(stdout(&out), "count_star()\n7\n");
    let out = p.jobforge(&["status"]);
    ok(&out);
    assert!(stdout(&out).contains("source `noc_structure` is missing"), "{}", stdout(&out));
    ok(&p.jobforge(&["model", "export", "--format", "json"]));
}

#[test]
fn history_run_and_rollback() {
    let (p, first) = built_and_edited();
    ok(&p.jobforge(&["run", "pipelines"]));
    let second = latest_run_id(&p);
    let top = |args: &[&str]| {
        let out = p.jobforge(args);
        ok(&out);
        stdout(&out).lines().nth(1).unwrap().to_string()
    };
    let sql = "select unit_group_id from dim_noc limit 1";
    assert_eq!(top(&["query", sql, "--format", "csv"]), "21232");
    assert_eq!(top(&["query", sql, "--format", "csv", "--run", "1"]), "00010");
    assert_eq!(top(&["query", sql, "--format", "csv", "--run", &first[..8]]), "00010");
    let out = p.jobforge(&["rollback", "1"]);
    ok(&out);
    assert!(stdout(&out).contains(&first), "{}", stdout(&out));
    assert_eq!(top(&["query", sql, "--format", "csv"]), "00010");
    assert_eq!(published_batches(&p), BTreeSet::from([first.clone()]));
    let out = p.jobforge(&["runs"]);
    ok(&out);
    let text = stdout(&out);
    assert!(text.contains("rollback") && text.contains(&second), "{text}");
    let manifests = p.manifests();
    assert_eq!(manifests.len(), 3);
    assert_eq!(manifests[2]["rollback_of"].as_str(), Some(first.as_str()));
    let out = p.jobforge(&["query", sql, "--run", "99"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no kept run `99`"), "{}", stderr(&out));
}

#[test]
fn retention_keeps_the_last_runs_and_their_files() {
    let p = Project::sample();
    for _ in 0..3 {
        ok(&p.jobforge(&["run", "pipelines", "--select", "noc_hierarchy", "--keep", "2", "--full-refresh"]));
    }
    let manifests = p.manifests();
    assert_eq!(manifests.iter().map(|m| m["seq"].as_u64().unwrap()).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(std::fs::read_dir(p.file("data/runs")).unwrap().count(), 2);
    assert_no_leftovers(&p);
}

#[test]
fn a_failed_table_keeps_its_previous_version_and_status_says_so() {
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines"]));
    let first = latest_run_id(&p);
    p.edit("pipelines/noc_hierarchy.yml", "  - sort: [level, code]", "  - sql: \"select * from input where nope = 1\"");
    let out = p.jobforge(&["run", "pipelines"]);
    assert_eq!(out.status.code(), Some(1));
    let m = p.manifests().pop().unwrap();
    assert_eq!(m["tables"]["noc_hierarchy"]["status"], "failed");
    assert_eq!(m["tables"]["noc_hierarchy"]["built_by"].as_str(), Some(first.as_str()));
    assert_eq!(m["tables"]["dim_noc"]["built_by"], m["run_id"]);
    let hierarchy = p.read("data/gold/noc_hierarchy.parquet");
    assert_eq!(strings(&hierarchy, "_batch_id")[0].as_deref(), Some(first.as_str()));
    let out = p.jobforge(&["status", "--format", "json"]);
    ok(&out);
    let rows: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let row = |t: &str| rows.as_array().unwrap().iter().find(|r| r["table"] == t).unwrap().clone();
    assert_eq!(row("noc_hierarchy")["last_run"], "failed");
    assert!(row("noc_hierarchy")["error"].as_str().unwrap().contains("sql"));
    assert_eq!(row("oasis_skills")["stale"], serde_json::json!([]));
    // A changed source makes the tables built from it stale.
    let csv = p.file("data/source/noc/noc_structure_en.sample.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&csv, text.replace("Legislators", "Lawmakers")).unwrap();
    let rows: Value = serde_json::from_str(&stdout(&p.jobforge(&["status", "--format", "json"]))).unwrap();
    let dim = rows.as_array().unwrap().iter().find(|r| r["table"] == "dim_noc").unwrap();
    let stale = dim["stale"].as_array().unwrap();
    assert!(stale.iter().any(|s| s.as_str().unwrap().contains("source `noc_structure` changed")), "{dim}");
}

#[test]
fn query_only_reads_and_prints_iso_times() {
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines"]));
    for sql in [
        "copy (select 1) to 'written.csv'",
        "attach 'other.duckdb'",
        "create table t as select 1",
        "select 1; select 2",
    ] {
        let out = p.jobforge(&["query", sql]);
        assert_eq!(out.status.code(), Some(1), "{sql}");
        assert!(stderr(&out).contains("query:"), "{sql}: {}", stderr(&out));
    }
    assert!(!p.file("written.csv").exists() && !p.file("other.duckdb").exists());
    let out =
        p.jobforge(&["query", "select _ingested_at, date '2024-03-15' as d from dim_noc limit 1", "--format", "csv"]);
    ok(&out);
    let row = stdout(&out).lines().nth(1).unwrap().to_string();
    let (ts, d) = row.split_once(',').unwrap();
    assert_eq!(d, "2024-03-15");
    assert!(chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%dT%H:%M:%S%.f").is_ok(), "{row}");
}

#[test]
fn a_table_is_stale_when_what_it_reads_was_rebuilt_after_it() {
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines"]));
    let stale_of = |p: &Project, table: &str| -> Value {
        let out = p.jobforge(&["status", "--format", "json"]);
        ok(&out);
        let rows: Value = serde_json::from_str(&stdout(&out)).unwrap();
        rows.as_array().unwrap().iter().find(|r| r["table"] == table).unwrap()["stale"].clone()
    };
    assert_eq!(stale_of(&p, "dim_noc"), serde_json::json!([]), "one run builds consistent tables");
    // Rebuilt from the same inputs, its output is the same: nothing that reads it is stale.
    ok(&p.jobforge(&["run", "pipelines", "--select", "noc_hierarchy", "--full-refresh"]));
    assert_eq!(stale_of(&p, "dim_noc"), serde_json::json!([]));
    // Rebuilt from a changed pipeline, alone: dim_noc read the version before.
    p.edit("pipelines/noc_hierarchy.yml", "  - sort: [level, code]", "  - sort: [code, level]");
    ok(&p.jobforge(&["run", "pipelines", "--select", "noc_hierarchy"]));
    assert_eq!(stale_of(&p, "dim_noc"), serde_json::json!(["reads silver.noc_hierarchy, rebuilt after it"]));
    assert_eq!(stale_of(&p, "noc_hierarchy"), serde_json::json!([]));
    // The next run rebuilds what was stale, and only that.
    let out = p.jobforge(&["run", "pipelines"]);
    ok(&out);
    assert!(stdout(&out).contains("success  dim_noc (a table it reads changed (noc_hierarchy))"), "{}", stdout(&out));
    assert_eq!(stale_of(&p, "dim_noc"), serde_json::json!([]));
}

/// The inode of a file under the project (hard links share one).
fn inode(p: &Project, rel: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p.file(rel)).unwrap().ino()
}

/// A layer file read through its stable path, without the columns that differ from run to run.
fn layer_rows(p: &Project, layer: &str, table: &str) -> polars::prelude::DataFrame {
    p.read(&format!("data/{layer}/{table}.parquet")).drop_many(["_batch_id", "_ingested_at"])
}

#[test]
fn tables_reading_one_source_alike_share_its_staged_and_bronze_files() {
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines"]));
    let manifest = p.manifests().last().unwrap().clone();
    let caf: Vec<String> = manifest["tables"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, t)| t["source"] == "caf_occupations")
        .map(|(name, _)| name.clone())
        .collect();
    assert!(caf.len() > 2, "the CAF tables that read occupations.json: {caf:?}");
    for layer in ["staged", "bronze"] {
        let files: BTreeSet<u64> = caf.iter().map(|t| inode(&p, &format!("data/{layer}/{t}.parquet"))).collect();
        assert_eq!(files.len(), 1, "one {layer} file written for {caf:?}");
    }
    // Each table still has its own transition log and metadata for the layers it shares.
    let logs = p.records("transitions");
    let meta = p.records("tables");
    for t in &caf {
        for layer in ["staged", "bronze"] {
            let log: Vec<&Value> = logs.iter().filter(|l| l["table"] == *t && l["target_layer"] == layer).collect();
            assert_eq!(log.len(), 1, "{t} {layer}");
            assert_eq!(log[0]["status"], "success");
            assert!(log[0]["target_file"].as_str().unwrap().ends_with(&format!("{layer}/{t}.parquet")));
            assert_eq!(meta.iter().filter(|m| m["name"] == *t && m["layer"] == layer).count(), 1, "{t} {layer}");
        }
    }
    // Built on its own, a table's staged and bronze hold what the shared files hold.
    let last = caf.last().unwrap();
    let shared: Vec<_> = ["staged", "bronze"].iter().map(|l| layer_rows(&p, l, last)).collect();
    let counts = |p: &Project| -> Vec<Value> {
        p.records("transitions")
            .into_iter()
            .filter(|l| l["table"] == last.as_str() && l["target_layer"] != "silver" && l["target_layer"] != "gold")
            .map(|l| l["counts"].clone())
            .collect()
    };
    let shared_counts = counts(&p);
    ok(&p.jobforge(&["run", "pipelines", "--select", last, "--full-refresh"]));
    let others = inode(&p, &format!("data/staged/{}.parquet", caf[0]));
    assert_ne!(inode(&p, &format!("data/staged/{last}.parquet")), others, "built on its own");
    for (layer, before) in ["staged", "bronze"].iter().zip(&shared) {
        let alone = layer_rows(&p, layer, last);
        assert!(alone.equals_missing(before), "{layer} of {last}:\n{alone}\n{before}");
    }
    assert_eq!(counts(&p), shared_counts);
}

#[test]
fn tables_without_quarantined_rows_share_one_empty_quarantine_file() {
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines"]));
    let mut empty = BTreeSet::new();
    let mut with_rows = 0;
    for table in p.gold_tables() {
        let rel = format!("data/quarantine/{table}.parquet");
        if p.read(&rel).height() == 0 {
            empty.insert(inode(&p, &rel));
        } else {
            with_rows += 1;
        }
    }
    assert!(with_rows > 0, "the sample quarantines rows in some tables");
    assert_eq!(empty.len(), 1, "one empty quarantine file");
}

/// The transition logs of `table` in the current snapshot: (batch, status) of each.
fn logs_of(p: &Project, table: &str) -> Vec<(String, String)> {
    let logs = p.records("transitions").into_iter().filter(|l| l["table"] == table);
    logs.map(|l| (l["batch_id"].as_str().unwrap().to_string(), l["status"].as_str().unwrap().to_string())).collect()
}

/// The number of rows of `view` (`_tables`, `_transitions`, `_checks`) `jobforge query` sees, and
/// of its distinct tables.
fn record_view(p: &Project, view: &str, table_column: &str) -> (u64, u64) {
    let sql = format!("select count(*), count(distinct {table_column}) from {view}");
    let out = p.jobforge(&["query", &sql, "--format", "csv"]);
    ok(&out);
    let row = stdout(&out).lines().nth(1).unwrap().to_string();
    let (rows, tables) = row.split_once(',').unwrap();
    (rows.parse().unwrap(), tables.parse().unwrap())
}

#[test]
fn a_run_writes_the_records_of_what_it_built_and_carries_the_others_per_table() {
    let (p, first) = built_and_edited();
    let tables = p.manifests()[0]["tables"].as_object().unwrap().len() as u64;
    let views = |p: &Project| {
        let checks = record_view(p, "_checks", "\"table\"");
        (record_view(p, "_tables", "name"), record_view(p, "_transitions", "\"table\""), checks)
    };
    let before = views(&p);
    assert_eq!((before.0 .1, before.1 .1), (tables, tables), "metadata and logs of every table");
    assert!(before.2 .1 > 1, "the sample checks tables: {:?}", before.2);
    ok(&p.jobforge(&["run", "pipelines"]));
    let m = p.manifests().pop().unwrap();
    assert_eq!(m["format"], 2);
    let kept: Vec<String> = m["tables"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, t)| t["status"] != "success")
        .map(|(n, _)| n.clone())
        .collect();
    assert!(!kept.is_empty() && (kept.len() as u64) < tables, "the edit rebuilds some tables: {kept:?}");
    let folder = |m: &Value| format!("data/{}", m["folder"].as_str().unwrap());
    let built = |m: &Value, kind: &str| -> BTreeSet<String> {
        let path = p.file(&format!("{}/{kind}.json", folder(m)));
        let records: Vec<Value> = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        records
            .iter()
            .map(|r| r[if kind == "tables" { "name" } else { "table" }].as_str().unwrap().to_string())
            .collect()
    };
    for kind in ["tables", "transitions"] {
        assert!(built(&m, kind).contains("dim_noc") && !built(&m, kind).contains(&kept[0]), "{kind}");
        for t in &kept {
            assert!(p.file(&format!("{}/carried/{kind}/{t}.json", folder(&m))).exists(), "{kind} of {t}");
        }
    }
    assert_eq!(
        logs_of(&p, &kept[0]).into_iter().map(|(b, _)| b).collect::<BTreeSet<_>>(),
        BTreeSet::from([first.clone()])
    );
    assert_eq!(views(&p), before);
    // Carried again, a table's records are links of the files it had.
    p.edit("pipelines/dim_noc.yml", "  - sort: [\"unit_group_id desc\"]", "  - sort: [unit_group_id]");
    ok(&p.jobforge(&["run", "pipelines"]));
    let next = p.manifests().pop().unwrap();
    for kind in ["tables", "transitions"] {
        for t in &kept {
            let rel = |m: &Value| format!("{}/carried/{kind}/{t}.json", folder(m));
            assert_eq!(inode(&p, &rel(&next)), inode(&p, &rel(&m)), "{kind} of {t}: carried as a link");
        }
    }
    assert_eq!(views(&p), before);

    // A failed table keeps its previous records and adds the logs of the failed build ...
    p.edit("pipelines/noc_hierarchy.yml", "  - sort: [level, code]", "  - sql: \"select * from input where nope = 1\"");
    assert_eq!(p.jobforge(&["run", "pipelines"]).status.code(), Some(1));
    let failed = latest_run_id(&p);
    let logs = logs_of(&p, "noc_hierarchy");
    assert!(logs.iter().any(|(b, s)| b == &failed && s == "failed"), "{logs:?}");
    assert!(logs.iter().any(|(b, s)| b == &first && s == "success"), "{logs:?}");
    assert!(logs.iter().all(|(b, _)| b == &first || b == &failed), "{logs:?}");
    // ... which the next snapshot that carries it drops: its logs are those of the version held.
    ok(&p.jobforge(&["run", "pipelines", "--select", "cops_employment", "--full-refresh"]));
    assert_eq!(p.manifests().pop().unwrap()["tables"]["noc_hierarchy"]["status"], "kept");
    let logs = logs_of(&p, "noc_hierarchy");
    assert!(!logs.is_empty() && logs.iter().all(|(b, s)| b == &first && s == "success"), "{logs:?}");
    assert_eq!(record_view(&p, "_transitions", "\"table\"").1, tables);
}

#[test]
fn a_snapshot_of_format_1_stays_readable_and_the_next_run_carries_its_records() {
    let (p, first) = built_and_edited();
    ok(&p.jobforge(&["run", "pipelines"]));
    let count = |p: &Project| (record_view(p, "_tables", "name"), record_view(p, "_transitions", "\"table\""));
    let before = count(&p);
    // Rewrite the second snapshot as format 1 wrote it: the records of every table, carried or
    // built, in three files.
    let path = p.file("data/manifests/000002.json");
    let mut m: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let folder = p.file(&format!("data/{}", m["folder"].as_str().unwrap()));
    assert!(folder.join("carried").exists());
    for kind in ["tables", "transitions", "checks"] {
        let all = p.records(kind);
        std::fs::write(folder.join(format!("{kind}.json")), serde_json::to_vec(&all).unwrap()).unwrap();
    }
    std::fs::remove_dir_all(folder.join("carried")).unwrap();
    m["format"] = 1.into();
    std::fs::write(&path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    assert_eq!(count(&p), before);
    // The next run (dim_noc edited back) carries the records of the tables it holds.
    p.edit("pipelines/dim_noc.yml", "  - sort: [\"unit_group_id desc\"]", "  - sort: [unit_group_id]");
    ok(&p.jobforge(&["run", "pipelines"]));
    assert_eq!(p.manifests().pop().unwrap()["format"], 2);
    assert_eq!(count(&p), before);
    let logs = logs_of(&p, "noc_hierarchy");
    assert!(!logs.is_empty() && logs.iter().all(|(b, _)| b == &first), "carried from the old snapshot: {logs:?}");
    // And the old snapshot is still what `--run` reads.
    let out = p.jobforge(&["query", "select count(*) from _transitions", "--run", "2", "--format", "csv"]);
    ok(&out);
    assert_eq!(stdout(&out).lines().nth(1), Some(before.1 .0.to_string().as_str()));
}
