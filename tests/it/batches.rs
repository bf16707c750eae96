//! Large CSV sources read in batches (staged written a batch at a time, bronze applied per
//! batch): every layer, quarantine and count is what a whole read gives. Batches are made small
//! with `JOBFORGE_BATCH_BYTES` so the sample files split into many.

use crate::common::*;
use polars::prelude::*;
use serde_json::Value;

/// Every parquet file of the current run by stable path, without the columns a run sets.
fn layers(p: &Project) -> Vec<(String, DataFrame)> {
    let mut out = Vec::new();
    for layer in ["staged", "bronze", "silver", "gold", "quarantine"] {
        let mut files: Vec<_> =
            std::fs::read_dir(p.file(&format!("data/{layer}"))).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            // Two projects: their files differ by the folder they are in.
            let df = read_parquet(&f).drop_many(["_batch_id", "_ingested_at", "_source_file"]);
            out.push((format!("{layer}/{}", f.file_name().unwrap().to_string_lossy()), df));
        }
    }
    out
}

/// Per transition: table, layer, counts and each step's counts.
fn counts(p: &Project) -> Vec<String> {
    let mut out: Vec<String> = p
        .records("transitions")
        .iter()
        .map(|t| {
            let keep = |v: &Value| {
                let mut v = v.clone();
                for k in ["transition_id", "batch_id", "started_at", "ended_at", "source_files", "target_file"] {
                    v.as_object_mut().unwrap().remove(k);
                }
                v.to_string()
            };
            keep(t)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_csv_read_in_batches_builds_what_a_whole_read_builds() {
    let whole = Project::sample();
    ok(&whole.jobforge(&["run", "pipelines"]));
    let batched = Project::sample();
    ok(&batched.jobforge_env(&["run", "pipelines"], &[("JOBFORGE_BATCH_BYTES", "700")]));
    let (a, b) = (layers(&whole), layers(&batched));
    assert_eq!(a.len(), b.len());
    assert!(a.len() > 4 * 50, "every layer of every table: {}", a.len());
    for ((name, x), (other, y)) in a.iter().zip(&b) {
        assert_eq!(name, other);
        assert!(x.equals_missing(y), "{name} differs:\n{x}\n{y}");
    }
    assert_eq!(counts(&whole), counts(&batched));
    // The staged metadata counts the whole file, not the first batch.
    let meta = |p: &Project| {
        p.records("tables")
            .into_iter()
            .find(|m| m["name"] == "dim_noc" && m["layer"] == "staged")
            .map(|m| {
                let data: Vec<Value> = m["columns"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|c| !c["name"].as_str().unwrap().starts_with('_'))
                    .cloned()
                    .collect();
                (m["row_count"].clone(), data)
            })
            .unwrap()
    };
    assert_eq!(meta(&whole), meta(&batched));
}

#[test]
fn a_bad_row_in_a_later_batch_is_named_by_its_line_in_the_file() {
    // Past the first 256 KiB, which compile checks: only the read finds the bad row.
    let mut rows = String::from("\u{feff}code,name,amount\n");
    for i in 0..15_000 {
        rows.push_str(&format!("{i:05},\"name, {i}\",{i}.5\n"));
    }
    rows.push_str("00200,\"a name\nacross lines\",1\n");
    rows.push_str("00201,n,2,extra\n");
    let p = Project::with_files(&[
        ("sources.yml", "version: 1\nsources:\n  big: { path: big.csv }\n"),
        ("data/source/big.csv", &rows),
        ("pipelines/big.yml", "table: big\nsource: big\nbronze:\n  cast: { amount: float64 }\n"),
    ]);
    let whole = p.jobforge(&["run", "pipelines"]);
    let batched = p.jobforge_env(&["run", "pipelines"], &[("JOBFORGE_BATCH_BYTES", "50000")]);
    let line = "big.csv:15004:1: line 15004 has 4 fields, the header has 3";
    assert!(stdout(&whole).contains(line), "{}", stdout(&whole));
    assert!(stdout(&batched).contains(line), "{}", stdout(&batched));
    // Without the bad row, the quoted line end and the BOM read the same in batches.
    p.edit("data/source/big.csv", "00201,n,2,extra\n", "00201,n,x\n");
    ok(&p.jobforge(&["run", "pipelines"]));
    let whole = (p.read("data/bronze/big.parquet"), p.read("data/quarantine/big.parquet"));
    ok(&p.jobforge_env(&["run", "pipelines", "--full-refresh"], &[("JOBFORGE_BATCH_BYTES", "50000")]));
    let batched = (p.read("data/bronze/big.parquet"), p.read("data/quarantine/big.parquet"));
    let strip = |df: &DataFrame| df.drop_many(["_batch_id", "_ingested_at"]);
    assert_eq!(whole.0.height(), 15_001);
    assert!(strip(&whole.0).equals_missing(&strip(&batched.0)));
    assert!(strip(&whole.1).equals_missing(&strip(&batched.1)));
    assert_eq!(strings(&whole.0, "name")[15_000].as_deref(), Some("a name\nacross lines"));
    assert_eq!(strings(&batched.1, "_reason")[0].as_deref(), Some("amount: cannot cast 'x' to float64"));
}
