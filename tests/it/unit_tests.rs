//! `jobforge test`: unit tests written in pipeline files, checked at compile and run in memory.

use crate::common::*;

const SOURCES: &str = "version: 1\nsources:\n  codes: { path: codes.csv }\n  names: { path: names.csv }\n";

/// A two-table project: `names` (gold) is joined onto `codes`, whose silver pads codes, checks
/// them and keeps the known ones; `tests` is appended to codes.yml.
fn project(tests: &str) -> Project {
    let codes = format!(
        "table: codes\nsource: codes\nbronze:\n  cast: {{ amount: float64 }}\nsilver:\n  - clean: {{ columns: [code], pad: {{ width: 5 }} }}\n  - expect:\n      unique: [code]\n      range: {{ amount: {{ min: 0 }} }}\ngold:\n  - join: {{ ref: names, on: [code], select: [name], how: inner }}\n  - select: [code, amount, name]\n{tests}"
    );
    Project::with_files(&[
        ("sources.yml", SOURCES),
        ("data/source/codes.csv", "Code,Amount\n10,1.5\n"),
        ("data/source/names.csv", "code,name\n00010,Ten\n"),
        ("pipelines/codes.yml", &codes),
        ("pipelines/names.yml", "table: names\nsource: names\n"),
    ])
}

/// `line:col` (from 1) of the first `token` in codes.yml.
fn line_col(p: &Project, token: &str) -> String {
    let text = std::fs::read_to_string(p.file("pipelines/codes.yml")).unwrap();
    let (i, line) = text.lines().enumerate().find(|(_, l)| l.contains(token)).unwrap();
    format!("{}:{}", i + 1, line.find(token).unwrap() + 1)
}

const PASSING: &str = r#"tests:
  - name: codes_are_padded_and_named
    given:
      input:
        - { Code: "10", Amount: "1.5" }
        - { Code: "00020", Amount: "2" }
        - { Code: "30", Amount: "3" }
      gold.names:
        - { code: "00010", name: Ten }
        - { code: "00020", name: Twenty }
    expect:
      rows:
        - { code: "00010", amount: 1.5, name: Ten }
        - { code: "00020", amount: 2, name: Twenty }
"#;

#[test]
fn a_passing_test_with_a_join_given_inline() {
    let p = project(PASSING);
    let out = p.jobforge(&["test", "pipelines/"]);
    ok(&out);
    let text = stdout(&out);
    assert!(text.contains("test codes > codes_are_padded_and_named ") && text.contains(" ok ("), "{text}");
    assert!(text.contains("1 passed, 0 failed (1 tests in"), "{text}");
    // No parquet, no data folder: tests run in memory.
    assert!(!p.file("data/runs").exists() && !p.file("data/gold").exists());
}

#[test]
fn a_failing_test_prints_the_exact_diff_and_exits_1() {
    let failing = PASSING
        .replace("{ code: \"00020\", amount: 2, name: Twenty }", "{ code: \"00020\", amount: 2.5, name: Twenty }")
        + "        - { code: \"00030\", amount: 3, name: Thirty }\n";
    let p = project(&failing);
    let out = p.jobforge(&["test"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    let at = format!("{}:{}", p.file("pipelines/codes.yml").display(), line_col(&p, "codes_are_padded_and_named"));
    let expected = format!(
        "codes > codes_are_padded_and_named ({at}, layers staged..gold)\n  rows: expected 3 row(s), got 2\n  rows: changed   {{code: \"00020\", name: \"Twenty\"}}: amount expected \"2.5\", got \"2\"\n  rows: missing    {{code: \"00030\", amount: \"3\", name: \"Thirty\"}}\n"
    );
    assert!(text.contains(&expected), "expected:\n{expected}\ngot:\n{text}");
    assert!(text.ends_with(&format!("0 passed, 1 failed (1 tests in {}", text.rsplit("tests in ").next().unwrap())));
}

#[test]
fn quarantined_rows_are_expected_with_their_rule() {
    let tests = r#"tests:
  - name: bad_rows_go_to_quarantine
    layers: bronze..silver
    given:
      input:
        - { Code: "10", Amount: "1" }
        - { Code: "00010", Amount: "2" }
        - { Code: "20", Amount: "-1" }
        - { Code: "30", Amount: "lots" }
    expect:
      rows:
        - { code: "00010", amount: 1 }
      quarantine:
        - { _rule: "unique(code)", code: "00010", amount: "2.0" }
        - { _rule: "range(amount)", code: "00020" }
        - { _rule: "cast(amount: float64)", code: "30", amount: lots }
"#;
    let p = project(tests);
    let out = p.jobforge(&["test", "bad_rows_go_to_quarantine"]);
    ok(&out);
    // The same test expecting no quarantine fails, naming each row.
    let p = project(&tests.replace(
        "      quarantine:\n        - { _rule: \"unique(code)\", code: \"00010\", amount: \"2.0\" }\n        - { _rule: \"range(amount)\", code: \"00020\" }\n        - { _rule: \"cast(amount: float64)\", code: \"30\", amount: lots }\n",
        "      quarantine: []\n",
    ));
    let out = p.jobforge(&["test"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("quarantine: expected 0 row(s), got 3"), "{}", stdout(&out));
}

#[test]
fn rows_can_come_from_a_csv_file_beside_the_pipeline() {
    let tests = r#"tests:
  - name: from_files
    layers: silver
    given:
      input: { csv: codes_input.csv }
    expect:
      rows: { csv: codes_expected.csv }
"#;
    let p = project(tests);
    p.write("pipelines/codes_input.csv", "code,amount\n7,1.5\n00008,2\n");
    p.write("pipelines/codes_expected.csv", "code\n00007\n00008\n");
    ok(&p.jobforge(&["test", "codes"]));
    p.write("pipelines/codes_expected.csv", "code\n00007\n");
    let out = p.jobforge(&["test", "codes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("rows: unexpected {code: \"00008\"}"), "{}", stdout(&out));
}

#[test]
fn test_shapes_are_checked_at_compile_with_their_location() {
    let typo =
        PASSING.replace("{ code: \"00010\", amount: 1.5, name: Ten }", "{ code: \"00010\", amuont: 1.5, name: Ten }");
    let p = project(&typo);
    for args in [&["test"][..], &["validate", "--config-only"][..]] {
        let out = p.jobforge(args);
        assert_eq!(out.status.code(), Some(if args[0] == "validate" { 1 } else { 2 }), "{args:?}");
        let e = stderr(&out);
        let at = format!("{}:{}:", p.file("pipelines/codes.yml").display(), line_col(&p, "amuont"));
        assert!(e.contains(&at), "{args:?}: {e}");
        assert!(
            e.contains("unknown column `amuont` in the output of gold") && e.contains("did you mean `amount`?"),
            "{e}"
        );
    }
    // `run` and `plan` do not read tests: a broken test does not stop the data.
    ok(&p.jobforge(&["run", "pipelines"]));
    // A table the layers read must be given; one they do not read must not be.
    let p = project(&PASSING.replace("      gold.names:", "      gold.nmaes:"));
    let e = stderr(&p.jobforge(&["test"]));
    assert!(e.contains("`given` has `gold.nmaes`, which layers staged..gold do not read"), "{e}");
    assert!(e.contains("layers staged..gold read `gold.names`; give its rows under `given`"), "{e}");
    // Layers must parse.
    let p = project(&PASSING.replace("    given:", "    layers: gold..silver\n    given:"));
    assert!(stderr(&p.jobforge(&["test"])).contains("runs backwards"));
    // Unknown test names are refused with a suggestion.
    let p = project(PASSING);
    let out = p.jobforge(&["test", "codes_are_padded"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("did you mean `codes_are_padded_and_named`?"), "{}", stderr(&out));
}

#[test]
fn editing_a_test_rebuilds_no_table() {
    let p = project(PASSING);
    ok(&p.jobforge(&["run", "pipelines"]));
    p.edit("pipelines/codes.yml", "name: codes_are_padded_and_named", "name: padded_and_named");
    let out = p.jobforge(&["run", "pipelines"]);
    ok(&out);
    assert!(stdout(&out).starts_with("nothing to do"), "{}", stdout(&out));
}

#[test]
fn every_wiq_pipeline_file_has_passing_tests() {
    let p = Project::sample();
    let out = p.jobforge(&["test", "--format", "json"]);
    ok(&out);
    let outcomes: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let outcomes = outcomes.as_array().unwrap();
    for entry in std::fs::read_dir(p.file("pipelines")).unwrap() {
        let file = entry.unwrap().path();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            outcomes.iter().any(|o| o["at"].as_str().unwrap().contains(&format!("pipelines/{name}:"))),
            "{name} has no test"
        );
    }
    assert!(outcomes.iter().all(|o| o["failures"] == serde_json::json!([])), "{outcomes:?}");
}

#[test]
fn tests_read_no_source_data_and_ignore_provenance() {
    let with_provenance = PASSING.replace(
        "{ code: \"00010\", amount: 1.5, name: Ten }",
        "{ code: \"00010\", amount: 1.5, name: Ten, _batch_id: any }",
    );
    let p = project(&with_provenance);
    ok(&p.jobforge(&["test"]));
    // Source rows do not matter to a test; after a run, the files themselves are not needed.
    p.write("data/source/codes.csv", "Code,Amount\nnot,a number\n");
    ok(&p.jobforge(&["test"]));
    p.write("data/source/codes.csv", "Code,Amount\n10,1.5\n");
    ok(&p.jobforge(&["run", "pipelines"]));
    std::fs::remove_dir_all(p.file("data/source")).unwrap();
    let out = p.jobforge(&["test"]);
    ok(&out);
    assert!(stdout(&out).contains("1 passed, 0 failed"), "{}", stdout(&out));
    // Without a run that recorded the header, a missing source is named.
    let p = project(PASSING);
    std::fs::remove_dir_all(p.file("data/source")).unwrap();
    let out = p.jobforge(&["test"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("source `codes`"), "{}", stderr(&out));
}
