//! `jobforge quality`: scorecards per table from each kept run's records, with history, in the
//! command's output and the catalogue.

use crate::common::*;

#[test]
fn scorecards_follow_the_runs_records_over_history() {
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines"]));
    // A second run where two unit group rows break rules: one repeats a code (uniqueness), one
    // has a code that is not five digits (validity).
    let csv = p.file("data/source/noc/noc_structure_en.sample.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let repeated = text.lines().find(|l| l.starts_with("5,Unit Group,00010,")).unwrap().to_string();
    let broken = repeated.replacen("00010", "0001X", 1);
    std::fs::write(&csv, format!("{text}{repeated}\n{broken}\n")).unwrap();
    ok(&p.jobforge(&["run", "pipelines"]));
    let out = p.jobforge(&["quality", "--format", "json"]);
    ok(&out);
    let cards: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let dim = cards.iter().find(|c| c["table"] == "dim_noc").unwrap();
    let history = dim["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    // Rows read by bronze and the rows quarantined, by rule, from the run's own records.
    let read: u64 = p
        .records("transitions")
        .iter()
        .filter(|t| t["table"] == "dim_noc" && t["target_layer"] == "bronze")
        .map(|t| t["rows_in"].as_u64().unwrap())
        .sum();
    let rules = strings(&p.read("data/quarantine/dim_noc.parquet"), "_rule");
    let by = |prefix: &str| rules.iter().flatten().filter(|r| r.starts_with(prefix)).count() as f64;
    assert!(by("unique(") >= 1.0 && by("regex(") >= 1.0, "{rules:?}");
    let latest = &dim["latest"];
    let close = |v: &serde_json::Value, want: f64| (v.as_f64().unwrap() - want).abs() < 1e-9;
    assert!(close(&latest["uniqueness"], 1.0 - by("unique(") / read as f64), "{latest}");
    assert!(
        close(&latest["validity"], 1.0 - (rules.len() as f64 - by("unique(") - by("exists_in(")) / read as f64),
        "{latest}"
    );
    assert!(history[0]["scores"]["uniqueness"] == 1.0 && history[0]["scores"]["validity"] == 1.0, "{history:?}");
    assert_eq!(latest["checks"], 1.0);
    assert_eq!(latest["timeliness"], 1.0);
    assert!(latest.get("referential").is_none(), "dim_noc has no exists_in rule");
    // COPS tables check their codes against dim_noc: referential consistency is measured.
    let cops = cards.iter().find(|c| c["table"] == "cops_employment").unwrap();
    assert_eq!(cops["latest"]["referential"], 1.0);
    // Completeness from gold's null counts.
    let tables = p.records("tables");
    let gold = tables.iter().find(|t| t["name"] == "dim_noc" && t["layer"] == "gold").unwrap();
    let columns: Vec<_> =
        gold["columns"].as_array().unwrap().iter().filter(|c| !c["name"].as_str().unwrap().starts_with('_')).collect();
    let nulls: u64 = columns.iter().map(|c| c["null_count"].as_u64().unwrap()).sum();
    let cells = gold["row_count"].as_u64().unwrap() * columns.len() as u64;
    assert!(close(&latest["completeness"], 1.0 - nulls as f64 / cells as f64));
    // For people: the change since the run before is marked.
    let text = stdout(&p.jobforge(&["quality"]));
    let line = text.lines().find(|l| l.starts_with("dim_noc ")).unwrap();
    assert!(line.contains('-') && line.trim_end().ends_with('2'), "{line}");
    // The catalogue shows the scorecard with a plot over the runs.
    ok(&p.jobforge(&["catalogue", "--out", "catalogue", "--format", "html"]));
    let page = std::fs::read_to_string(p.file("catalogue/tables/dim_noc.html")).unwrap();
    assert!(page.contains("<h2>Quality</h2>") && page.contains("<polyline"), "{page}");
}
