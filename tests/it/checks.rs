//! Data-quality checks (`checks:`): evaluated by `run` before the commit and by `jobforge check`
//! on a committed run; a failed `error` check fails its table and skips the tables built from
//! it, which keep their previous versions; results are records of the run.

use crate::common::*;

fn results(p: &Project) -> Vec<serde_json::Value> {
    p.records("checks")
}

fn find<'a>(all: &'a [serde_json::Value], table: &str, check: &str) -> &'a serde_json::Value {
    all.iter()
        .find(|r| r["table"] == table && r["check"] == check)
        .unwrap_or_else(|| panic!("no result of {table}.{check} in {all:#?}"))
}

#[test]
fn a_run_records_its_checks_and_a_failed_warning_does_not_stop_the_table() {
    let p = Project::sample();
    p.edit(
        "pipelines/dim_noc.yml",
        "checks:\n",
        "checks:\n  - row_count: { max: 1 }\n    name: tiny\n    severity: warn\n",
    );
    let out = p.jobforge(&["run", "pipelines"]);
    ok(&out);
    let rows = p.read("data/gold/dim_noc.parquet").height();
    assert!(
        stdout(&out).contains(&format!("warning  dim_noc: check `tiny` failed: {rows} rows, allowed at most 1")),
        "{}",
        stdout(&out)
    );
    let all = results(&p);
    let tiny = find(&all, "dim_noc", "tiny");
    assert_eq!((tiny["passed"].as_bool(), tiny["severity"].as_str()), (Some(false), Some("warn")));
    assert_eq!(tiny["value"].as_f64(), Some(rows as f64));
    for check in ["null_rate(class_title)", "every_unit_group_sits_in_a_minor_group", "freshness(_ingested_at)"] {
        assert_eq!(find(&all, "dim_noc", check)["passed"], true, "{check}");
    }
    // A for_each file's checks run for each table it makes.
    assert_eq!(find(&all, "cops_employment", "range(year)")["passed"], true);
    // The results are queryable, and carried by a run that rebuilds nothing else.
    let out = p.jobforge(&["query", "SELECT count(*) AS n FROM _checks WHERE NOT passed", "--format", "csv"]);
    ok(&out);
    assert_eq!(stdout(&out).lines().nth(1), Some("1"), "{}", stdout(&out));
    p.edit("pipelines/oasis_interests.yml", "description:", "description: edited;");
    ok(&p.jobforge(&["run", "pipelines"]));
    assert_eq!(find(&results(&p), "dim_noc", "tiny")["passed"], false, "carried with the table");
}

#[test]
fn a_failed_error_check_fails_its_table_and_skips_its_readers_which_keep_their_versions() {
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines"]));
    let before = p.read("data/gold/dim_noc.parquet");
    let employment_before = p.read("data/gold/cops_employment.parquet");
    let first = p.manifests()[0]["run_id"].as_str().unwrap().to_string();
    // Fewer unit groups (a spec change, so the table rebuilds): more than the 10% change the
    // sample's row_count check allows.
    p.edit("pipelines/dim_noc.yml", "  - filter: \"level = 5\"", "  - filter: \"level = 5 AND noc_code < '2'\"");
    let out = p.jobforge(&["run", "pipelines", "--full-refresh"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("failed   dim_noc: check failed: `row_count`"), "{text}");
    assert!(text.contains("% change, allowed 10%"), "{text}");
    assert!(text.contains("skipped  cops_employment: it reads dim_noc, whose checks failed"), "{text}");
    // Both keep the first run's version; the published data did not change.
    assert_eq!(p.read("data/gold/dim_noc.parquet"), before);
    assert_eq!(p.read("data/gold/cops_employment.parquet"), employment_before);
    let last = p.manifests().pop().unwrap();
    assert_eq!(last["tables"]["dim_noc"]["status"], "failed");
    assert_eq!(last["tables"]["dim_noc"]["built_by"], first.as_str());
    assert_eq!(last["tables"]["cops_employment"]["status"], "skipped");
    let row_count = find(&results(&p), "dim_noc", "row_count").clone();
    assert_eq!(row_count["passed"], false, "the failing result is recorded");
    // `jobforge check` evaluates today's checks on the published run (the first one's data).
    let out = p.jobforge(&["check", "dim_noc"]);
    ok(&out);
    assert!(stdout(&out).contains("pass  dim_noc.row_count"), "{}", stdout(&out));
    assert_eq!(std::fs::read_dir(p.file("data/checks")).unwrap().count(), 1, "the check is recorded");
}

#[test]
fn a_sql_check_reads_the_versions_the_run_commits_of_tables_built_after_its_own() {
    let p = Project::sample();
    // dim_noc's checks run as soon as it is built, beside the build; cops_employment's gold
    // reads dim_noc's, so it settles later: the check waits for it and reads this run's version.
    p.edit(
        "pipelines/cops_projections.yml",
        "  - sort: [unit_group_id, year]",
        "  - sort: [unit_group_id, year]\n  - join: { ref: dim_noc, on: [unit_group_id], select: [class_title] }",
    );
    p.edit(
        "pipelines/dim_noc.yml",
        "checks:\n",
        "checks:\n  - name: no_management_projections\n    severity: warn\n    \
         sql: SELECT unit_group_id, year FROM cops_employment WHERE unit_group_id < '1'\n",
    );
    ok(&p.jobforge(&["run", "pipelines"]));
    let first = find(&results(&p), "dim_noc", "no_management_projections").clone();
    let gold = p.read("data/gold/cops_employment.parquet");
    let management = gold.column("unit_group_id").unwrap().str().unwrap().iter().flatten().filter(|v| *v < "1").count();
    assert!(management > 0, "the sample projects management occupations");
    assert_eq!((first["passed"].as_bool(), first["value"].as_f64()), (Some(false), Some(management as f64)));
    // The next run drops those rows from cops_employment (and rebuilds dim_noc with it).
    p.edit("pipelines/cops_projections.yml", "and unit_group_id <> '00000'", "and unit_group_id >= '1'");
    ok(&p.jobforge(&["run", "pipelines", "--full-refresh"]));
    let second = find(&results(&p), "dim_noc", "no_management_projections").clone();
    assert_eq!((second["passed"].as_bool(), second["value"].as_f64()), (Some(true), Some(0.0)), "{second}");
}

#[test]
fn jobforge_check_evaluates_edited_checks_without_a_rebuild() {
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines"]));
    p.edit(
        "pipelines/dim_noc.yml",
        "checks:\n",
        "checks:\n  - name: no_legislators\n    severity: warn\n    sql: SELECT unit_group_id FROM dim_noc WHERE class_title = 'Legislators'\n  \
         - name: writes\n    sql: DELETE FROM dim_noc\n  - freshness: { source_max_age: 30d }\n",
    );
    // An edited check rebuilds nothing.
    assert!(stdout(&p.jobforge(&["run", "pipelines"])).starts_with("nothing to do"));
    let source =
        std::fs::File::options().write(true).open(p.file("data/source/noc/noc_structure_en.sample.csv")).unwrap();
    source.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(40 * 86_400)).unwrap();
    drop(source);
    let out = p.jobforge(&["check", "dim_noc", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let all: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let legislators = find(&all, "dim_noc", "no_legislators");
    assert_eq!(legislators["message"], "1 offending row(s), e.g. (unit_group_id=00010)");
    assert!(find(&all, "dim_noc", "writes")["message"].as_str().unwrap().contains("only statements that read"));
    // The run recorded the file's time when it read it; the source itself is not read again.
    let fresh = find(&all, "dim_noc", "freshness");
    assert_eq!(fresh["passed"], true, "{fresh}");
    // Rebuilt, the table fails its own `error` checks and keeps its version; the run records the
    // source file's new time.
    let out = p.jobforge(&["run", "pipelines", "--full-refresh", "--select", "dim_noc"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("failed   dim_noc: check failed:"), "{}", stdout(&out));
    let out = p.jobforge(&["check", "dim_noc"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("FAIL  dim_noc.freshness: the source file is 40d 0h old"), "{}", stdout(&out));
}

#[test]
fn checks_are_checked_at_compile_time_and_located() {
    let p = Project::sample();
    p.edit(
        "pipelines/dim_noc.yml",
        "checks:\n",
        "checks:\n  - null_rate: { column: class_titel, max: 0 }\n  - freshness: { column: _ingested_at, max_age: soon }\n  \
         - range: { column: level, min: 5, max: 1 }\n",
    );
    let out = p.jobforge(&["validate", "--config-only"]);
    assert_eq!(out.status.code(), Some(1));
    let err = format!("{}{}", stdout(&out), stderr(&out));
    assert!(err.contains("pipelines/dim_noc.yml:"), "{err}");
    assert!(err.contains("`class_titel` is not a column of gold.dim_noc") && err.contains("class_title"), "{err}");
    assert!(err.contains("`soon` is not an age"), "{err}");
    assert!(err.contains("`level` is not a column of gold.dim_noc") || err.contains("min 5 is above max 1"), "{err}");
    p.edit(
        "pipelines/dim_noc.yml",
        "  - null_rate: { column: class_titel, max: 0 }\n",
        "  - null_rate: { column: class_title, max: 0 }\n    row_count: { min: 1 }\n",
    );
    let out = p.jobforge(&["validate", "--config-only"]);
    let err = format!("{}{}", stdout(&out), stderr(&out));
    assert!(err.contains("pipelines/dim_noc.yml:") && err.contains("exactly one kind"), "{err}");
}

#[test]
fn project_default_checks_apply_to_every_table_unless_it_names_its_own() {
    let p = Project::sample();
    p.edit(
        "sources.yml",
        "defaults:\n",
        "defaults:\n  checks:\n    - name: not_empty\n      row_count: { min: 1 }\n    - null_rate: { column: _batch_id, max: 0 }\n",
    );
    p.edit(
        "pipelines/dim_noc.yml",
        "checks:\n",
        "checks:\n  - name: not_empty\n    severity: warn\n    row_count: { min: 100000 }\n",
    );
    let out = p.jobforge(&["run", "pipelines"]);
    ok(&out);
    let all = results(&p);
    let tables = p.gold_tables();
    for table in &tables {
        assert_eq!(find(&all, table, "null_rate(_batch_id)")["passed"], true, "{table}");
        let not_empty = find(&all, table, "not_empty");
        assert_eq!(not_empty["passed"], table != "dim_noc", "{table}: {not_empty}");
    }
    assert_eq!(find(&all, "dim_noc", "not_empty")["severity"], "warn", "the table's own check wins");
    // A default naming a column some table lacks is located in sources.yml, per table.
    p.edit("sources.yml", "column: _batch_id", "column: class_title");
    let out = p.jobforge(&["validate", "--config-only"]);
    assert_eq!(out.status.code(), Some(1));
    let err = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        err.contains("sources.yml:") && err.contains("`class_title` is not a column of gold.cops_employment"),
        "{err}"
    );
    assert!(!err.contains("is not a column of gold.dim_noc"), "dim_noc has it: {err}");
}
