//! The same sources.yml and pipelines run unchanged on the real published files in
//! ../shared/data/noc (CI has them; set JOBFORGE_REAL_DATA_REQUIRED=1 to fail when absent).

use crate::common::*;

fn real_dir() -> Option<std::path::PathBuf> {
    let dir = repo().join("../shared/data/noc");
    if dir.join("noc_structure_en.csv").exists() {
        return Some(dir.canonicalize().unwrap());
    }
    assert!(
        std::env::var("JOBFORGE_REAL_DATA_REQUIRED").is_err(),
        "the real files are not at {}",
        dir.display()
    );
    eprintln!("SKIPPED: the real files are not at {}", dir.display());
    None
}

#[test]
fn the_real_files_run_through_every_layer() {
    let Some(dir) = real_dir() else { return };
    let p = Project::sample();
    let out = p.jobforge_env(
        &["run", "pipelines"],
        &[("JOBFORGE_SOURCE_DIR", dir.to_str().unwrap())],
    );
    ok(&out);
    let dim = p.read("data/gold/dim_noc.parquet");
    assert_eq!(dim.height(), 516);
    let ids = strings(&dim, "unit_group_id");
    assert_eq!(
        ids.iter().collect::<std::collections::BTreeSet<_>>().len(),
        516
    );
    assert_eq!(ids[0].as_deref(), Some("00010"));
    assert!(ids
        .iter()
        .all(|i| i.as_deref().is_some_and(|s| s.len() == 5)));
    assert!(
        strings(&dim, "minor_group_title")
            .iter()
            .all(Option::is_some),
        "every unit group has a minor group"
    );
    let cops = p.read("data/gold/cops_employment.parquet");
    assert_eq!(cops.height(), 516 * 11);
    let skills = p.read("data/gold/oasis_skills.parquet");
    assert_eq!(
        strings(&skills, "oasis_code")[0].as_deref(),
        Some("00010.00")
    );
    assert!(skills
        .get_column_names()
        .iter()
        .all(|c| !c.contains(' ') && !c.contains('\u{feff}')));
    let log: Vec<serde_json::Value> = std::fs::read_dir(p.file("data/catalog/lineage"))
        .unwrap()
        .flatten()
        .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
        .collect();
    let silver = log
        .iter()
        .find(|l| l["table"] == "cops_employment" && l["target_layer"] == "silver")
        .unwrap();
    assert_eq!(silver["rows_in"], 533);
    assert_eq!(
        silver["rows_filtered"], 17,
        "00000, TEER_0..5 and NOC1_0..9 are aggregates"
    );
}
