//! Each kind of bad input gives its own clear error, located at file:line:col, and `validate`
//! reports it with exit code 1 (run and plan refuse to start, exit 2).

use crate::common::*;

fn validate_error(p: &Project) -> String {
    let out = p.jobforge(&["validate"]);
    assert_eq!(out.status.code(), Some(1), "validate should fail: {}", stdout(&out));
    let run = p.jobforge(&["run", "pipelines"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(!p.file("data/gold/dim_noc.parquet").exists(), "nothing may run");
    stderr(&out)
}

#[test]
fn the_sample_project_validates() {
    let p = Project::sample();
    let out = p.jobforge(&["validate"]);
    ok(&out);
    assert!(stdout(&out).contains("4 table(s), 16 node(s), no problems"));
}

#[test]
fn yaml_syntax_error_is_located() {
    let p = Project::sample();
    p.edit("pipelines/dim_noc.yml", "  cast: { level: int32 }", "  cast: { level: int32");
    let e = validate_error(&p);
    assert!(e.contains("pipelines/dim_noc.yml:"), "{e}");
    assert!(e.contains("did not find expected ',' or '}'"), "{e}");
}

#[test]
fn unknown_key_is_located_with_a_suggestion() {
    let p = Project::sample();
    p.edit("pipelines/dim_noc.yml", "  - filter: \"level = 5\"", "  - fitler: \"level = 5\"");
    let e = validate_error(&p);
    assert!(e.contains("pipelines/dim_noc.yml:16:5: silver[0]: unknown variant `fitler`"), "{e}");
    assert!(e.contains("did you mean `filter`?"), "{e}");
    let p = Project::sample();
    p.edit("sources.yml", "    path: noc_structure_en.csv", "    pth: noc_structure_en.csv");
    let e = validate_error(&p);
    assert!(e.contains("sources.yml:") && e.contains("unknown field `pth`"), "{e}");
    assert!(e.contains("did you mean `path`?"), "{e}");
}

#[test]
fn unknown_column_is_located_with_a_suggestion() {
    let p = Project::sample();
    p.edit("pipelines/dim_noc.yml", "  - rename: { noc_code: unit_group_id }", "  - rename: { noc_cod: unit_group_id }");
    let e = validate_error(&p);
    assert!(e.contains("pipelines/dim_noc.yml:22:15: unknown column `noc_cod` in rename; did you mean `noc_code`?"), "{e}");
}

#[test]
fn missing_required_source_column_names_column_and_file() {
    let p = Project::sample();
    p.edit("pipelines/dim_noc.yml", "cast: { level: int32 }", "cast: { level: int32, lvl: int32 }");
    let e = validate_error(&p);
    assert!(e.contains("required column `lvl` is missing from the source"), "{e}");
    assert!(e.contains("noc_structure_en.csv"), "{e}");
}

#[test]
fn missing_source_file_is_reported() {
    let p = Project::sample();
    std::fs::remove_file(p.file("data/source/skills_oasis_2023_v1.0.csv")).unwrap();
    let e = validate_error(&p);
    assert!(e.contains("sources.yml:"), "{e}");
    assert!(e.contains("source `oasis_skills`: file not found:") && e.contains("skills_oasis_2023_v1.0.csv"), "{e}");
}

#[test]
fn cycle_is_reported_with_its_path() {
    let p = Project::sample();
    p.edit("pipelines/noc_hierarchy.yml", "  - sort: [level, code]", "  - join: { ref: gold.dim_noc, on_columns: { code: unit_group_id }, select: [class_title], prefix: ug_ }");
    let e = validate_error(&p);
    assert!(e.contains("cycle in the plan:"), "{e}");
    assert!(e.contains("gold.dim_noc -> gold.noc_hierarchy"), "{e}");
}

#[test]
fn all_problems_are_reported_together_as_json() {
    let p = Project::sample();
    p.edit("pipelines/dim_noc.yml", "  - filter: \"level = 5\"", "  - filter: \"levl = 5\"");
    p.edit("pipelines/oasis_skills.yml", "source: oasis_skills", "source: oasis_skils");
    let out = p.jobforge(&["validate", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{v}");
    assert!(errors.iter().any(|e| e["message"] == "unknown column `levl` in filter" && e["line"] == 16));
    assert!(errors.iter().any(|e| e["message"] == "unknown source `oasis_skils`" && e["hint"] == "did you mean `oasis_skills`?"));
}
