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
    let out = p.jobforge(&["validate", "--config-only"]);
    ok(&out);
    assert!(
        stdout(&out).contains(&format!(
            "{t} table(s), {n} node(s); model WiQ with {t} table(s) and {r} relationship(s), no errors",
            t = wiq_tables(),
            n = wiq_tables() * 4,
            r = yaml_len("wiq_schema.yml", "relationships")
        )),
        "{}",
        stdout(&out)
    );
    // Without --config-only the model is checked against the gold data, which does not exist yet.
    let out = p.jobforge(&["validate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("wiq_schema.yml:") && stderr(&out).contains("run `jobforge run` first"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn yaml_syntax_error_is_located() {
    let p = Project::sample();
    p.edit("pipelines/noc_hierarchy.yml", "  cast: { level: int32 }\n", "  cast: { level: int32 }\n\tbad: 1\n");
    let e = validate_error(&p);
    assert!(e.contains("pipelines/noc_hierarchy.yml:11:1: found character that cannot start any token"), "{e}");
}

#[test]
fn unknown_key_is_located_with_a_suggestion() {
    let p = Project::sample();
    p.edit("pipelines/dim_noc.yml", "  - filter: \"level = 5\"", "  - fitler: \"level = 5\"");
    let e = validate_error(&p);
    assert!(
        e.contains("pipelines/dim_noc.yml:16:5: silver[0]: unknown field `fitler`, expected one of `filter`, `derive`"),
        "{e}"
    );
    assert!(e.contains("did you mean `filter`?"), "{e}");
    let p = Project::sample();
    p.edit("sources.yml", "    pattern: [\"noc/noc_structure_en*.csv\"]", "    pth: noc/noc_structure_en.csv");
    let e = validate_error(&p);
    assert!(e.contains("sources.yml:") && e.contains("unknown field `pth`"), "{e}");
    assert!(e.contains("did you mean `path`?"), "{e}");
}

#[test]
fn unknown_column_is_located_with_a_suggestion() {
    let p = Project::sample();
    p.edit(
        "pipelines/dim_noc.yml",
        "  - rename: { noc_code: unit_group_id }",
        "  - rename: { noc_cod: unit_group_id }",
    );
    let e = validate_error(&p);
    assert!(
        e.contains("pipelines/dim_noc.yml:22:15: unknown column `noc_cod` in rename; did you mean `noc_code`?"),
        "{e}"
    );
}

#[test]
fn missing_required_source_column_names_column_and_file() {
    let p = Project::sample();
    p.edit("pipelines/dim_noc.yml", "cast: { level: int32 }", "cast: { level: int32, lvl: int32 }");
    let e = validate_error(&p);
    assert!(e.contains("required column `lvl` is missing from the source"), "{e}");
    assert!(e.contains("noc_structure_en.sample.csv"), "{e}");
}

#[test]
fn missing_source_file_is_reported() {
    let p = Project::sample();
    std::fs::remove_file(p.file("data/source/noc/skills_oasis_2023_v1.0.sample.csv")).unwrap();
    let e = validate_error(&p);
    assert!(e.contains("sources.yml:"), "{e}");
    assert!(e.contains("source `oasis_skills`: no file matches") && e.contains("skills_oasis_2023_v1.0*.csv"), "{e}");
}

#[test]
fn cycle_is_reported_with_its_path() {
    let p = Project::sample();
    p.edit(
        "pipelines/noc_hierarchy.yml",
        "      unique: [code]\n",
        "      unique: [code]\n      exists_in: { code: gold.dim_noc.unit_group_id }\n",
    );
    let e = validate_error(&p);
    assert!(e.contains("cycle in the plan:"), "{e}");
    let cycle = e.split("cycle in the plan: ").nth(1).unwrap().lines().next().unwrap();
    let nodes: Vec<&str> = cycle.split(" -> ").collect();
    assert_eq!(nodes.first(), nodes.last(), "a cycle ends where it starts: {cycle}");
    assert!(nodes.contains(&"silver.noc_hierarchy") && nodes.contains(&"gold.dim_noc"), "{cycle}");
}

#[test]
fn all_problems_are_reported_together_as_json() {
    let p = Project::sample();
    p.edit("pipelines/dim_noc.yml", "  - filter: \"level = 5\"", "  - filter: \"levl = 5\"");
    p.edit("pipelines/oasis_interests.yml", "source: oasis_interests", "source: oasis_intrests");
    let out = p.jobforge(&["validate", "--config-only", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{v}");
    assert!(errors.iter().any(|e| e["message"] == "unknown column `levl` in filter" && e["line"] == 16));
    assert!(errors
        .iter()
        .any(|e| e["message"] == "unknown source `oasis_intrests`" && e["hint"] == "did you mean `oasis_interests`?"));
}
