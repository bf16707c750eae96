//! `jobforge load`: gold into a DuckDB warehouse, planned by default, applied in one transaction.

use crate::common::*;

fn warehouse_rows(p: &Project, sql: &str) -> i64 {
    let conn = duckdb::Connection::open(p.file("data/warehouse.duckdb")).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn same(p: &Project) -> bool {
    let out = p.jobforge(&["diff", "run:latest", "duckdb:data/warehouse.duckdb"]);
    assert!(out.status.code() == Some(0) || out.status.code() == Some(1), "{}", stderr(&out));
    out.status.success()
}

#[test]
fn the_plan_writes_nothing_and_execute_loads_what_it_said() {
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines"]));
    let out = p.jobforge(&["load"]);
    ok(&out);
    let plan = stdout(&out);
    assert!(plan.contains("plan only (--execute applies it)"), "{plan}");
    let rows = p.read("data/gold/dim_noc.parquet").height();
    assert!(
        plan.contains(&format!(
            "dim_noc                            upsert by (unit_group_id): insert {rows}, update 0, delete 0"
        )),
        "{plan}"
    );
    assert!(plan.contains("PRIMARY KEY (\"unit_group_id\")"), "{plan}");
    assert!(!p.file("data/warehouse.duckdb").exists() && !p.file("data/loads").exists(), "a plan writes nothing");
    let out = p.jobforge(&["load", "--execute"]);
    ok(&out);
    assert!(stdout(&out).contains(": loaded\n"), "{}", stdout(&out));
    assert!(same(&p), "the warehouse holds the run's gold");
    assert_eq!(warehouse_rows(&p, "SELECT count(*) FROM _jobforge_loads"), 1);
    assert_eq!(std::fs::read_dir(p.file("data/loads")).unwrap().count(), 1);
    let comment: i64 = warehouse_rows(
        &p,
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'dim_noc' AND comment IS NOT NULL AND comment <> ''",
    );
    assert_eq!(comment, 1, "the model's description is the table's comment");
    // Loaded again with nothing changed: nothing to do.
    let plan = stdout(&p.jobforge(&["load"]));
    assert!(
        plan.contains("dim_noc                            upsert by (unit_group_id): insert 0, update 0, delete 0"),
        "{plan}"
    );
}

#[test]
fn a_changed_run_is_planned_by_key_and_a_killed_load_changes_nothing() {
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines"]));
    ok(&p.jobforge(&["load", "--execute"]));
    let csv = p.file("data/source/noc/noc_structure_en.sample.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&csv, text.replace("Legislators", "Lawmakers")).unwrap();
    ok(&p.jobforge(&["run", "pipelines"]));
    assert!(!same(&p));
    let plan = stdout(&p.jobforge(&["load"]));
    assert!(
        plan.contains("dim_noc                            upsert by (unit_group_id): insert 0, update 1, delete 0"),
        "{plan}"
    );
    // Killed between the load's statements and its commit: the target is as it was.
    let out = p.jobforge_env(&["load", "--execute"], &[("JOBFORGE_FAULT", "load:commit")]);
    assert!(!out.status.success());
    assert!(!same(&p), "nothing of the killed load is visible");
    assert_eq!(warehouse_rows(&p, "SELECT count(*) FROM _jobforge_loads"), 1);
    ok(&p.jobforge(&["load", "--execute"]));
    assert!(same(&p));
    assert_eq!(warehouse_rows(&p, "SELECT count(*) FROM dim_noc WHERE class_title LIKE '%Lawmakers%'"), 1);
}

#[test]
fn destructive_changes_are_refused_unless_allowed() {
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines"]));
    ok(&p.jobforge(&["load", "--execute"]));
    p.edit(
        "pipelines/noc_hierarchy.yml",
        "  - select: [code, level, level_name, title, parent_code, class_definition]",
        "  - select: [code, level, level_name, title, parent_code]",
    );
    ok(&p.jobforge(&["run", "pipelines"]));
    let out = p.jobforge(&["load", "--execute"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("refused: column `class_definition` is no longer in gold"), "{}", stdout(&out));
    assert_eq!(warehouse_rows(&p, "SELECT count(*) FROM _jobforge_loads"), 1, "nothing was loaded");
    ok(&p.jobforge(&["load", "--execute", "--allow-destructive"]));
    assert!(same(&p));
    assert_eq!(
        warehouse_rows(&p, "SELECT count(*) FROM duckdb_columns() WHERE table_name = 'noc_hierarchy' AND column_name = 'class_definition'"),
        0
    );
    // A password in a URL is refused without being shown.
    let out = p.jobforge(&["load", "--target", "postgres://me:hunter2@localhost/wiq"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("set PGPASSWORD") && !stderr(&out).contains("hunter2"), "{}", stderr(&out));
}

#[test]
fn a_second_writer_is_refused_while_a_load_holds_the_warehouse() {
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines"]));
    ok(&p.jobforge(&["load", "--execute"]));
    // Another process holding the warehouse open for writing.
    let holder = duckdb::Connection::open(p.file("data/warehouse.duckdb")).unwrap();
    let out = p.jobforge(&["load", "--execute"]);
    drop(holder);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot open") && stderr(&out).contains("lock"), "{}", stderr(&out));
    ok(&p.jobforge(&["load", "--execute"]));
}

#[test]
fn append_adds_the_batches_not_loaded_yet() {
    let p = Project::sample();
    p.edit(
        "wiq_schema.yml",
        "  cops_employment:\n    kind: fact\n",
        "  cops_employment:\n    kind: fact\n    load: append\n",
    );
    ok(&p.jobforge(&["run", "pipelines"]));
    let rows = p.read("data/gold/cops_employment.parquet").height() as i64;
    ok(&p.jobforge(&["load", "--execute"]));
    assert_eq!(warehouse_rows(&p, "SELECT count(*) FROM cops_employment"), rows);
    // The same batch again: nothing to add.
    let plan = stdout(&p.jobforge(&["load"]));
    assert!(plan.contains("cops_employment                    append: insert 0, update 0, delete 0"), "{plan}");
    // A new run rebuilds the table: its rows are a new batch, added beside the first.
    ok(&p.jobforge(&["run", "pipelines", "--full-refresh", "--select", "cops_employment"]));
    let plan = stdout(&p.jobforge(&["load"]));
    assert!(
        plan.contains(&format!("cops_employment                    append: insert {rows}, update 0, delete 0")),
        "{plan}"
    );
    ok(&p.jobforge(&["load", "--execute"]));
    assert_eq!(warehouse_rows(&p, "SELECT count(*) FROM cops_employment"), 2 * rows);
    assert_eq!(warehouse_rows(&p, "SELECT count(DISTINCT _batch_id) FROM cops_employment"), 2);
}
