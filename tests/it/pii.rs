//! Personal information: a column the model marks `pii` never shows its values outside the
//! data itself. A recognisable value is planted in a source column that feeds a `pii` column,
//! sent to quarantine by a rule, returned by a SQL check and carried into another table; it is
//! then looked for in every file the project holds but the parquet data and the source, and in
//! everything the commands print.

use crate::common::*;

const PLANTED: &str = "Zyxwvut Quixote 4711";

fn files_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn a_pii_value_is_found_nowhere_but_in_the_data() {
    let p = Project::sample();
    p.edit(
        "wiq_schema.yml",
        "      class_title: { type: text, description: \"Unit group title\" }",
        "      class_title: { type: text, description: \"Unit group title\", pii: true }",
    );
    let csv = p.file("data/source/noc/noc_structure_en.sample.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(
        &csv,
        text.replacen(
            "5,Unit Group,00011,Senior government managers and officials",
            &format!("5,Unit Group,00011,{PLANTED}"),
            1,
        ),
    )
    .unwrap();
    // A rule the planted value fails (its row goes to quarantine with a reason), a SQL check
    // that returns it, a range check on nothing sensitive.
    p.edit(
        "pipelines/dim_noc.yml",
        "      regex: { noc_code: \"[0-9]{5}\" }",
        "      regex: { noc_code: \"[0-9]{5}\", class_title: \"[^0-9]*\" }",
    );
    p.edit(
        "pipelines/dim_noc.yml",
        "checks:\n",
        "checks:\n  - name: planted\n    severity: warn\n    sql: SELECT code, title FROM silver.noc_hierarchy WHERE title LIKE 'Zyxwvut%'\n",
    );
    let mut printed = String::new();
    for args in [
        vec!["run", "pipelines", "--openlineage", "lineage.ndjson"],
        vec!["check"],
        vec!["catalogue", "--out", "catalogue", "--format", "html"],
        vec!["catalogue", "--out", "catalogue-md", "--format", "md"],
        vec!["catalogue", "--out", "catalogue-json", "--format", "json"],
        vec!["powerbi", "--out", "powerbi"],
        vec!["model", "export", "--format", "json"],
        vec!["query", "SELECT * FROM _tables", "--format", "csv"],
        vec!["query", "SELECT * FROM _checks", "--format", "csv"],
        vec!["query", "SELECT _rule, _reason FROM dim_noc", "--layer", "quarantine", "--format", "csv"],
        vec!["status", "--format", "json"],
    ] {
        let out = p.jobforge_env(&args, &[("JOBFORGE_LOG", "debug")]);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{args:?}: {}", stderr(&out));
        printed.push_str(&stdout(&out));
        printed.push_str(&stderr(&out));
    }
    // The value was planted for real: it is in the data.
    let hierarchy = p.read("data/gold/noc_hierarchy.parquet");
    assert!(strings(&hierarchy, "title").iter().flatten().any(|t| t == PLANTED), "planted in noc_hierarchy");
    let quarantine = p.read("data/quarantine/dim_noc.parquet");
    let reasons = strings(&quarantine, "_reason");
    assert!(reasons.iter().flatten().any(|r| r.contains("***")), "the rule's reason is masked: {reasons:?}");
    assert!(!reasons.iter().flatten().any(|r| r.contains(PLANTED)), "{reasons:?}");
    let checks = p.records("checks");
    let planted = checks.iter().find(|c| c["check"] == "planted").unwrap();
    assert_eq!(planted["passed"], false, "the SQL check found the row: {planted}");
    assert!(planted["message"].as_str().unwrap().contains("title=***"), "{planted}");
    // ... and nowhere else.
    assert!(
        !printed.contains(PLANTED),
        "printed: {}",
        &printed[printed.find(PLANTED).unwrap_or(0)..][..200.min(printed.len())]
    );
    let mut files = Vec::new();
    files_under(p.path(), &mut files);
    let source = p.file("data/source");
    let mut looked = 0;
    for f in files {
        if f.starts_with(&source) || f.extension().is_some_and(|e| e == "parquet") {
            continue;
        }
        let bytes = std::fs::read(&f).unwrap();
        looked += 1;
        assert!(
            !String::from_utf8_lossy(&bytes).contains(PLANTED),
            "{} shows the pii value",
            f.strip_prefix(p.path()).unwrap().display()
        );
    }
    assert!(looked > 50, "looked in {looked} files");
}
