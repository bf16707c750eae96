//! `jobforge load` and `jobforge diff` against a real PostgreSQL server, the one
//! `scripts/with-postgres` starts (`JOBFORGE_TEST_POSTGRES`, `PGPASSWORD`). Each test works in a
//! schema of its own. Without a server they skip, except where `JOBFORGE_POSTGRES_REQUIRED` is
//! set (CI), where they fail.

use crate::common::*;
use std::time::Duration;

/// The server's URL and a fresh schema for `test`, or `None` to skip.
fn server(test: &str) -> Option<(String, String)> {
    let Ok(url) = std::env::var("JOBFORGE_TEST_POSTGRES") else {
        assert!(
            std::env::var_os("JOBFORGE_POSTGRES_REQUIRED").is_none(),
            "JOBFORGE_POSTGRES_REQUIRED is set but there is no server: run the tests under scripts/with-postgres"
        );
        eprintln!("skipped: no PostgreSQL server (run the tests under scripts/with-postgres)");
        return None;
    };
    let schema = format!("t_{test}");
    client(&url).batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).unwrap();
    Some((url, schema))
}

fn client(url: &str) -> postgres::Client {
    let mut config: postgres::Config = url.parse().unwrap();
    config.password(std::env::var("PGPASSWORD").unwrap_or_default());
    config.connect(postgres::NoTls).unwrap()
}

fn number(url: &str, sql: &str) -> i64 {
    client(url).query_one(sql, &[]).unwrap().get(0)
}

/// `jobforge diff A B`: true when it finds no difference.
fn same(p: &Project, a: &str, b: &str) -> bool {
    let out = p.jobforge(&["diff", a, b]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    out.status.success()
}

/// A sample project, run once.
fn built() -> Project {
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines"]));
    p
}

#[test]
fn the_plan_writes_nothing_and_a_load_is_whole_keyed_commented_and_recorded() {
    let Some((url, schema)) = server("whole") else { return };
    let p = built();
    let target = format!("{url}#{schema}");
    let out = p.jobforge(&["load", "--target", &target]);
    ok(&out);
    let plan = stdout(&out);
    let rows = p.read("data/gold/dim_noc.parquet").height();
    assert!(plan.contains("plan only (--execute applies it)"), "{plan}");
    assert!(
        plan.contains(&format!("dim_noc                            upsert by (unit_group_id): insert {rows},")),
        "{plan}"
    );
    assert!(plan.contains(&format!("CREATE TABLE \"{schema}\".\"dim_noc\" (")), "{plan}");
    assert!(plan.contains("DEFERRABLE INITIALLY DEFERRED"), "foreign keys from the model: {plan}");
    assert_eq!(number(&url, &format!("SELECT count(*) FROM pg_namespace WHERE nspname = '{schema}'")), 0);
    assert!(!p.file("data/loads").exists(), "a plan records nothing");

    let out = p.jobforge(&["load", "--target", &target, "--execute", "--format", "json"]);
    ok(&out);
    let load: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(load["executed"], true);
    for table in p.gold_tables() {
        let rows = p.read(&format!("data/gold/{table}.parquet")).height() as i64;
        assert_eq!(number(&url, &format!("SELECT count(*) FROM {schema}.{table}")), rows, "{table}");
    }
    assert!(same(&p, "run:latest", &target), "the database holds the run's gold");
    let keys = number(
        &url,
        &format!("SELECT count(*) FROM pg_constraint WHERE contype = 'p' AND conrelid = '{schema}.dim_noc'::regclass"),
    );
    assert_eq!(keys, 1, "the model's primary key");
    let fks = number(
        &url,
        &format!(
            "SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON c.connamespace = n.oid \
             WHERE n.nspname = '{schema}' AND contype = 'f' AND condeferrable AND condeferred"
        ),
    );
    assert!(fks >= 1, "relationships become deferred foreign keys");
    let comment: Option<String> = client(&url)
        .query_one(&format!("SELECT obj_description('{schema}.dim_noc'::regclass, 'pg_class')"), &[])
        .unwrap()
        .get(0);
    assert!(comment.is_some_and(|c| !c.is_empty()), "the model's description is the table's comment");
    assert_eq!(number(&url, &format!("SELECT count(*) FROM {schema}._jobforge_loads")), 1);
    let records: Vec<_> = std::fs::read_dir(p.file("data/loads")).unwrap().collect();
    assert_eq!(records.len(), 1);
    let password = std::env::var("PGPASSWORD").unwrap();
    for text in [stdout(&out), stderr(&out), std::fs::read_to_string(records[0].as_ref().unwrap().path()).unwrap()] {
        assert!(!text.contains(&password), "the password is never printed or recorded");
    }
    // Nothing changed: nothing to do.
    let plan = stdout(&p.jobforge(&["load", "--target", &target]));
    assert!(
        plan.contains("dim_noc                            upsert by (unit_group_id): insert 0, update 0, delete 0"),
        "{plan}"
    );
    assert!(!plan.contains("CREATE TABLE") && !plan.contains("FOREIGN KEY"), "{plan}");
}

#[test]
fn one_changed_value_is_reported_exactly_and_an_upsert_puts_it_back() {
    let Some((url, schema)) = server("changed") else { return };
    let p = built();
    let target = format!("{url}#{schema}");
    ok(&p.jobforge(&["load", "--target", &target, "--execute"]));
    let row = client(&url)
        .query_one(
            &format!(
                "UPDATE {schema}.dim_noc SET class_title = 'Changed in the warehouse' \
                 WHERE unit_group_id = (SELECT min(unit_group_id) FROM {schema}.dim_noc) \
                 RETURNING unit_group_id::text, (SELECT class_title FROM {schema}.dim_noc d WHERE d.unit_group_id = dim_noc.unit_group_id)"
            ),
            &[],
        )
        .unwrap();
    let (key, old): (String, String) = (row.get(0), row.get(1));
    let out = p.jobforge(&["diff", "run:latest", &target]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let report = stdout(&out);
    assert!(report.contains("DIFFERS  dim_noc:"), "{report}");
    assert!(
        report.contains(&format!("class_title: 1 changed, e.g. {key}: {old} -> Changed in the warehouse")),
        "{report}"
    );
    assert!(report.contains("1 differ"), "only that table differs: {report}");
    let out = p.jobforge(&["diff", "run:latest", &target, "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let dim = json["tables"].as_array().unwrap().iter().find(|t| t["table"] == "dim_noc").unwrap();
    assert_eq!(dim["changed"][0]["column"], "class_title");
    assert_eq!(dim["changed"][0]["changed"], 1);
    assert_eq!(dim["only_in_a"], 0);

    // A row added in the warehouse too: the upsert restores gold, by key.
    client(&url)
        .batch_execute(&format!(
            "CREATE TEMP TABLE extra AS SELECT * FROM {schema}.dim_noc WHERE unit_group_id = '{key}'; \
             UPDATE extra SET unit_group_id = '99999'; INSERT INTO {schema}.dim_noc SELECT * FROM extra;"
        ))
        .unwrap();
    let plan = stdout(&p.jobforge(&["load", "--target", &target]));
    assert!(
        plan.contains("dim_noc                            upsert by (unit_group_id): insert 0, update 1, delete 1"),
        "{plan}"
    );
    ok(&p.jobforge(&["load", "--target", &target, "--execute"]));
    assert!(same(&p, "run:latest", &target));
    assert_eq!(number(&url, &format!("SELECT count(*) FROM {schema}._jobforge_loads")), 2);
}

#[test]
fn a_killed_load_leaves_the_database_as_it_was() {
    let Some((url, schema)) = server("killed") else { return };
    let p = built();
    let target = format!("{url}#{schema}");
    // Killed in the middle of its first COPY: no schema, no table.
    let out = p.jobforge_env(&["load", "--target", &target, "--execute"], &[("JOBFORGE_FAULT", "load:copy")]);
    assert!(!out.status.success() && stderr(&out).contains("fault injected at `load:copy`"), "{}", stderr(&out));
    assert_eq!(number(&url, &format!("SELECT count(*) FROM pg_namespace WHERE nspname = '{schema}'")), 0);
    ok(&p.jobforge(&["load", "--target", &target, "--execute"]));

    // A second run changes a table; loads of it killed mid-COPY (staging the changed rows) and
    // just before the commit leave the first run's rows.
    let csv = p.file("data/source/noc/noc_structure_en.sample.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&csv, text.replace("Legislators", "Lawmakers")).unwrap();
    ok(&p.jobforge(&["run", "pipelines"]));
    for fault in ["load:copy", "load:commit"] {
        let out = p.jobforge_env(&["load", "--target", &target, "--execute"], &[("JOBFORGE_FAULT", fault)]);
        assert!(!out.status.success(), "{fault}");
        assert!(same(&p, "run:1", &target), "after a kill at {fault} the database holds run 1");
        assert_eq!(number(&url, &format!("SELECT count(*) FROM {schema}._jobforge_loads")), 1);
    }

    // Real kills at moments of the clock: each leaves either nothing new or the whole load.
    let fresh = format!("{schema}_k");
    let fresh_target = format!("{url}#{fresh}");
    for ms in [5u64, 40, 120, 250, 500] {
        client(&url).batch_execute(&format!("DROP SCHEMA IF EXISTS {fresh} CASCADE")).unwrap();
        let mut child = p.spawn(&["load", "--target", &fresh_target, "--execute"]);
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill();
        let _ = child.wait();
        let exists = number(&url, &format!("SELECT count(*) FROM pg_namespace WHERE nspname = '{fresh}'")) == 1;
        if exists {
            assert!(same(&p, "run:latest", &fresh_target), "killed after {ms} ms: a committed load is whole");
        }
    }
    ok(&p.jobforge(&["load", "--target", &target, "--execute"]));
    assert!(same(&p, "run:latest", &target));
}

#[test]
fn destructive_changes_and_violated_constraints_change_nothing() {
    let Some((url, schema)) = server("refused") else { return };
    let p = built();
    let target = format!("{url}#{schema}");
    ok(&p.jobforge(&["load", "--target", &target, "--execute"]));
    client(&url).batch_execute(&format!("ALTER TABLE {schema}.noc_hierarchy ADD COLUMN legacy text")).unwrap();
    let out = p.jobforge(&["load", "--target", &target, "--execute"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("refused: column `legacy` is no longer in gold"), "{}", stdout(&out));
    assert_eq!(number(&url, &format!("SELECT count(*) FROM {schema}._jobforge_loads")), 1, "nothing was loaded");
    ok(&p.jobforge(&["load", "--target", &target, "--execute", "--allow-destructive"]));
    let legacy = format!(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = '{schema}' AND column_name = 'legacy'"
    );
    assert_eq!(number(&url, &legacy), 0);

    // A constraint of the database's own that the new rows break: PostgreSQL's message, and
    // nothing of the load stays.
    client(&url)
        .batch_execute(&format!(
            "ALTER TABLE {schema}.dim_noc ADD CONSTRAINT short_titles CHECK (length(class_title) < 3) NOT VALID"
        ))
        .unwrap();
    let csv = p.file("data/source/noc/noc_structure_en.sample.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&csv, text.replace("Legislators", "Lawmakers")).unwrap();
    ok(&p.jobforge(&["run", "pipelines"]));
    let out = p.jobforge(&["load", "--target", &target, "--execute"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("the load was rolled back") && err.contains("short_titles"), "{err}");
    assert!(same(&p, "run:1", &target), "the database still holds run 1");
    assert_eq!(number(&url, &format!("SELECT count(*) FROM {schema}._jobforge_loads")), 2);
}

#[test]
fn a_second_load_waits_for_the_first() {
    let Some((url, schema)) = server("waits") else { return };
    let p = built();
    let target = format!("{url}#{schema}");
    let mut holder = client(&url);
    let mut tx = holder.transaction().unwrap();
    tx.execute(&format!("SELECT pg_advisory_xact_lock(hashtext('jobforge load'), hashtext('{schema}'))"), &[]).unwrap();
    let mut child = p.spawn(&["load", "--target", &target, "--execute"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(child.try_wait().unwrap().is_none(), "the second load waits while another holds the schema");
    assert_eq!(number(&url, &format!("SELECT count(*) FROM pg_namespace WHERE nspname = '{schema}'")), 0);
    tx.commit().unwrap();
    let out = child.wait_with_output().unwrap();
    ok(&out);
    assert!(stderr(&out).contains("waiting for another jobforge load"), "{}", stderr(&out));
    assert!(same(&p, "run:latest", &target));
}

#[test]
fn a_load_whose_connection_is_lost_changes_nothing() {
    let Some((url, schema)) = server("lost") else { return };
    let p = built();
    let target = format!("{url}#{schema}");
    ok(&p.jobforge(&["load", "--target", &target, "--execute"]));
    let csv = p.file("data/source/noc/noc_structure_en.sample.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&csv, text.replace("Legislators", "Lawmakers")).unwrap();
    ok(&p.jobforge(&["run", "pipelines"]));
    // The load waits for the lock inside its transaction; the server then drops its connection.
    let mut holder = client(&url);
    let mut tx = holder.transaction().unwrap();
    tx.execute(&format!("SELECT pg_advisory_xact_lock(hashtext('jobforge load'), hashtext('{schema}'))"), &[]).unwrap();
    let child = p.spawn(&["load", "--target", &target, "--execute"]);
    let waiting =
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'jobforge' AND wait_event_type = 'Lock'";
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while number(&url, waiting) == 0 {
        assert!(std::time::Instant::now() < deadline, "the load never waited for the lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    client(&url)
        .batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'jobforge' AND wait_event_type = 'Lock'",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    tx.commit().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // The server's last word, or the closed connection, depending on which the client sees first.
    let err = stderr(&out);
    assert!(err.contains("terminating connection") || err.contains("the connection to the server was lost"), "{err}");
    assert!(same(&p, "run:1", &target), "the database still holds run 1");
    assert_eq!(number(&url, &format!("SELECT count(*) FROM {schema}._jobforge_loads")), 1);
}

#[test]
fn targets_are_named_in_warehouse_yml_with_the_password_from_a_named_variable() {
    let Some((url, schema)) = server("named") else { return };
    let p = built();
    p.write(
        "warehouse.yml",
        &format!(
            "default: local\ntargets:\n  local: {{ duckdb: data/warehouse.duckdb }}\n  \
             pg: {{ postgres: \"{url}\", password_env: JF_TEST_PW, schema: {schema} }}\n"
        ),
    );
    let password = std::env::var("PGPASSWORD").unwrap();
    let env = [("JF_TEST_PW", password.as_str()), ("PGPASSWORD", "not-the-password-q7")];
    ok(&p.jobforge_env(&["load", "--target", "pg", "--execute"], &env));
    ok(&p.jobforge(&["load", "--execute"]));
    let out = p.jobforge_env(&["diff", "local", "pg"], &env);
    ok(&out);
    assert!(stdout(&out).contains("0 differ"), "{}", stdout(&out));
    // The wrong password: PostgreSQL's refusal, without the password.
    let out =
        p.jobforge_env(&["load", "--target", &format!("{url}#{schema}")], &[("PGPASSWORD", "not-the-password-q7")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("password authentication failed"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("not-the-password-q7"));
    // A target that is not declared is named, with the closest one.
    let out = p.jobforge(&["load", "--target", "pgg"]);
    assert!(stderr(&out).contains("`pgg` is not a target") && stderr(&out).contains("pg"), "{}", stderr(&out));
}
