//! `jobforge export dagster`: the generated code location, loaded by a real Dagster (from the
//! package registry, in the virtual environment `scripts/with-dagster` makes), materialises every
//! asset of the sample project by running jobforge, and reports rows and checks. Without that
//! environment the test skips, except where `JOBFORGE_DAGSTER_REQUIRED` is set (CI).

use crate::common::*;

fn python() -> Option<String> {
    match std::env::var("JOBFORGE_TEST_PYTHON") {
        Ok(p) => Some(p),
        Err(_) => {
            assert!(
                std::env::var_os("JOBFORGE_DAGSTER_REQUIRED").is_none(),
                "JOBFORGE_DAGSTER_REQUIRED is set but there is no Dagster: run the tests under scripts/with-dagster"
            );
            eprintln!("skipped: no Dagster (run the tests under scripts/with-dagster)");
            None
        }
    }
}

/// Loads the code location in `dir`, materialises every asset in dependency order, and prints
/// what Dagster saw as JSON.
const MATERIALISE: &str = r#"
import json, sys
sys.path.insert(0, sys.argv[1])
import dagster as dg
import jobforge_dagster as location

defs = location.defs
dg.Definitions.validate_loadable(defs)
result = dg.materialize(location.ASSETS, raise_on_error=False)
rows = {}
for event in result.get_asset_materialization_events():
    m = event.materialization
    rows[m.asset_key.to_user_string()] = m.metadata["rows"].value
checks = [
    {"asset": e.asset_key.to_user_string(), "check": e.check_name, "passed": e.passed}
    for e in result.get_asset_check_evaluations()
]
graph = defs.resolve_asset_graph()
print(json.dumps({
    "success": result.success,
    "rows": rows,
    "checks": checks,
    "deps": {k.to_user_string(): sorted(p.to_user_string() for p in graph.get(k).parent_keys) for k in graph.get_all_asset_keys()},
    "groups": {k.to_user_string(): graph.get(k).group_name for k in graph.get_all_asset_keys()},
    "schedules": sorted(s.name for s in defs.schedules),
    "sensors": sorted(s.name for s in defs.sensors),
    "monthly_cops": sorted(k.to_user_string() for k in defs.get_job_def("monthly_cops_job").asset_layer.executable_asset_keys),
}))
"#;

#[test]
fn the_code_location_materialises_every_table_through_jobforge() {
    let Some(python) = python() else { return };
    let p = Project::sample();
    std::fs::copy(repo().join("schedules.yml"), p.file("schedules.yml")).unwrap();
    let out = p.jobforge(&["export", "dagster", "--out", "orchestration"]);
    ok(&out);
    let script = p.file("materialise.py");
    std::fs::write(&script, MATERIALISE).unwrap();
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_jobforge")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let home = p.file("dagster_home");
    std::fs::create_dir_all(&home).unwrap();
    let run = std::process::Command::new(&python)
        .arg(&script)
        .arg(p.file("orchestration"))
        .env("PATH", path)
        .env("DAGSTER_HOME", &home)
        .env_remove("JOBFORGE_SOURCE_DIR")
        .current_dir(p.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(run.status.success(), "{text}\n{}", String::from_utf8_lossy(&run.stderr));
    let seen: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(seen["success"], true, "{seen:#}");
    // Every table is an asset, materialised by jobforge: the gold layer is there, rows as written.
    let tables = p.gold_tables();
    assert!(tables.len() > 10);
    for table in &tables {
        let rows = p.read(&format!("data/gold/{table}.parquet")).height();
        assert_eq!(seen["rows"][table], rows, "{table}");
    }
    // Dependencies and groups come from the plan; checks are asset checks.
    let deps = seen["deps"]["dim_noc"].as_array().unwrap();
    assert_eq!(deps, &[serde_json::json!("noc_hierarchy")]);
    assert_eq!(seen["groups"]["dim_noc"], "noc");
    let checks = seen["checks"].as_array().unwrap();
    assert!(checks
        .iter()
        .any(|c| c["asset"] == "dim_noc" && c["check"] == "null_rate_class_title" && c["passed"] == true));
    assert!(checks.iter().any(|c| c["asset"] == "cops_employment" && c["check"] == "range_year"));
    assert_eq!(seen["schedules"], serde_json::json!(["monthly_cops", "nightly"]));
    assert!(seen["sensors"].as_array().unwrap().iter().any(|s| s == "noc_structure_changed"));
    let cops = seen["monthly_cops"].as_array().unwrap();
    assert!(cops.iter().all(|t| t.as_str().unwrap().starts_with("cops_")) && !cops.is_empty(), "{cops:?}");
    // Each materialisation was a jobforge run.
    let last = p.manifests().pop().unwrap();
    assert_eq!(last["seq"], tables.len(), "one commit per asset");
}

#[test]
fn schedules_are_checked_and_located() {
    let p = Project::sample();
    p.write("schedules.yml", "schedules:\n  - name: nightly\n    cron: \"0 3 * *\"\n    domain: nocc\n");
    let out = p.jobforge(&["export", "dagster", "--out", "orchestration"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("schedules.yml:") && err.contains("not a five-field cron expression"), "{err}");
    assert!(err.contains("no pipeline has domain `nocc`") && err.contains("noc"), "{err}");
    assert!(!p.file("orchestration").exists());
}
