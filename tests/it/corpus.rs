//! A corpus of malformed projects, one case per class of bad input: each is refused at compile
//! (`validate` exit 1, `run` exit 2 before anything runs) with its message at its file:line.

use crate::common::*;

/// The 1-based line of the first line of `rel` containing `needle`.
fn line_of(p: &Project, rel: &str, needle: &str) -> usize {
    let text = std::fs::read_to_string(p.file(rel)).unwrap();
    text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("{rel} has no {needle:?}")) + 1
}

/// Asserts that compiling reports `message` at `rel:line`, and that nothing runs.
fn refused(p: &Project, rel: &str, line: usize, message: &str) {
    refused_by_validate(p, rel, line, message);
    let run = p.jobforge(&["run", "pipelines"]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(!p.file("data/manifests").exists(), "nothing may run");
}

/// Asserts that `validate` reports `message` at `rel:line` (the model file is `validate`'s alone).
fn refused_by_validate(p: &Project, rel: &str, line: usize, message: &str) {
    let out = p.jobforge(&["validate", "--config-only"]);
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    let at = format!("{rel}:{line}:");
    assert!(e.lines().any(|l| l.contains(&at) && l.contains(message)), "want `{at}` ... `{message}` in:\n{e}");
}

#[test]
fn a_regex_that_does_not_compile() {
    let p = Project::sample();
    p.edit("pipelines/cops_labour_market.yml", r#"replace: { "^N/[AD]$": "" }"#, r#"replace: { "^N/[AD$": "" }"#);
    let line = line_of(&p, "pipelines/cops_labour_market.yml", "^N/[AD$");
    refused(&p, "pipelines/cops_labour_market.yml", line, "regex `^N/[AD$` does not compile: unclosed character class");
    let p = Project::sample();
    p.edit(
        "pipelines/noc_hierarchy.yml",
        "      unique: [code]\n",
        "      unique: [code]\n      regex: { code: \"(0\" }\n",
    );
    let line = line_of(&p, "pipelines/noc_hierarchy.yml", "regex:");
    refused(&p, "pipelines/noc_hierarchy.yml", line, "regex `(0` does not compile: unclosed group");
}

#[test]
fn sql_that_does_not_parse_and_an_undefined_var() {
    let p = Project::sample();
    p.edit(
        "pipelines/noc_hierarchy.yml",
        "  - sort: [level, code]",
        "  - sql: |\n      select *\n      fromm input where",
    );
    let line = line_of(&p, "pipelines/noc_hierarchy.yml", "fromm input");
    refused(&p, "pipelines/noc_hierarchy.yml", line, "sql does not parse:");
    let p = Project::sample();
    p.edit(
        "pipelines/noc_hierarchy.yml",
        "  - sort: [level, code]",
        "  - sql: \"select * from input where level = {{ var('lvl') }}\"",
    );
    let line = line_of(&p, "pipelines/noc_hierarchy.yml", "var('lvl')");
    refused(&p, "pipelines/noc_hierarchy.yml", line, "variable `lvl` is not set (use --var lvl=VALUE)");
    // Given the var, it compiles.
    ok(&p.jobforge(&["--var", "lvl=5", "validate", "--config-only"]));
}

#[test]
fn an_aggregate_without_a_group() {
    let p = Project::sample();
    p.edit(
        "pipelines/noc_hierarchy.yml",
        "  - sort: [level, code]",
        "  - aggregate: { group_by: [], measures: { n: \"count(level)\" } }",
    );
    let line = line_of(&p, "pipelines/noc_hierarchy.yml", "aggregate:");
    refused(&p, "pipelines/noc_hierarchy.yml", line, "`aggregate` needs at least one `group_by` column");
}

#[test]
fn for_each_items_must_be_values_and_not_empty() {
    let p = Project::sample();
    let text = std::fs::read_to_string(p.file("pipelines/cops_projections.yml")).unwrap();
    let start = text.find("for_each:").unwrap();
    let end = text.find("table: ").unwrap();
    p.write("pipelines/cops_projections.yml", &format!("{}for_each: []\n{}", &text[..start], &text[end..]));
    let line = line_of(&p, "pipelines/cops_projections.yml", "for_each:");
    refused(&p, "pipelines/cops_projections.yml", line, "`for_each` is empty");
    p.write("pipelines/cops_projections.yml", &format!("{}for_each: [[a, b]]\n{}", &text[..start], &text[end..]));
    refused(&p, "pipelines/cops_projections.yml", line, "`for_each` item `- a - b` is not a single value");
    // Numbers are items like any other value.
    let p = Project::with_files(&[
        ("sources.yml", "version: 1\nsources:\n  t: { path: t.csv }\n"),
        ("data/source/t.csv", "a\n1\n"),
        ("pipelines/t.yml", "for_each: [5, 4]\ntable: \"t_{{ item }}\"\nsource: t\n"),
    ]);
    let out = p.jobforge(&["plan", "--dry-run"]);
    ok(&out);
    assert!(stdout(&out).contains("t_5 [gold]") && stdout(&out).contains("t_4 [gold]"), "{}", stdout(&out));
}

#[test]
fn a_template_error_names_the_undefined_name_and_its_line() {
    let p = Project::sample();
    p.edit(
        "pipelines/cops_projections.yml",
        "table: \"cops_{{ item }}\"",
        "table: \"cops_{{ item }}\"\nsteward: \"{{ itme }}\"",
    );
    let line = line_of(&p, "pipelines/cops_projections.yml", "itme");
    refused(&p, "pipelines/cops_projections.yml", line, "`itme` is not defined");
}

#[test]
fn ids_and_model_tables_given_twice_are_located_at_the_repeat() {
    let p = Project::sample();
    let sources = std::fs::read_to_string(p.file("sources.yml")).unwrap();
    p.write("sources.yml", &format!("{sources}  noc_structure:\n    pattern: [\"other*.csv\"]\n"));
    let line = sources.lines().count() + 1;
    refused(&p, "sources.yml", line, "`noc_structure` is given twice in the same mapping (first at line");
    let p = Project::sample();
    p.edit("wiq_schema.yml", "tables:\n  dim_noc:\n", "tables:\n  noc_hierarchy:\n    kind: dimension\n  dim_noc:\n");
    let line = line_of(&p, "wiq_schema.yml", "  noc_hierarchy:");
    let second = std::fs::read_to_string(p.file("wiq_schema.yml"))
        .unwrap()
        .lines()
        .skip(line)
        .position(|l| l == "  noc_hierarchy:")
        .unwrap()
        + line
        + 1;
    refused_by_validate(&p, "wiq_schema.yml", second, "`noc_hierarchy` is given twice in the same mapping");
}

#[test]
fn a_relationship_from_an_undeclared_table() {
    let p = Project::sample();
    p.edit("wiq_schema.yml", "  - { from: dim_noc.minor_group_code,", "  - { from: dim_nocs.minor_group_code,");
    let line = line_of(&p, "wiq_schema.yml", "dim_nocs.minor_group_code");
    refused_by_validate(
        &p,
        "wiq_schema.yml",
        line,
        "table `dim_nocs` is not declared under `tables`; did you mean `dim_noc`?",
    );
}

#[test]
fn an_unsupported_version_and_names_that_are_not_identifiers() {
    let p = Project::sample();
    p.edit("sources.yml", "version: 1", "version: 2");
    let line = line_of(&p, "sources.yml", "version: 2");
    refused(&p, "sources.yml", line, "`version: 2` is not supported; this jobforge reads `version: 1`");
    for name in ["2021", "\"\""] {
        let p = Project::sample();
        p.edit("pipelines/noc_hierarchy.yml", "table: noc_hierarchy", &format!("table: {name}"));
        refused(&p, "pipelines/noc_hierarchy.yml", 2, "table name");
    }
}

#[test]
fn a_yaml_file_that_is_not_utf8_is_located() {
    let p = Project::sample();
    let mut bytes = std::fs::read(p.file("pipelines/noc_hierarchy.yml")).unwrap();
    let at = bytes.windows(6).position(|w| w == b"Every ").unwrap();
    bytes[at + 1] = 0xE9;
    std::fs::write(p.file("pipelines/noc_hierarchy.yml"), bytes).unwrap();
    let line = 5;
    refused(&p, "pipelines/noc_hierarchy.yml", line, "byte 0xE9 is not valid UTF-8");
}
