//! Nested JSON sources (records under a path, envelope fields, flattened objects, lists exploded
//! into child tables), malformed JSON located, and the `match` step end to end, on a
//! purpose-built project and on the bundled TBS and CAF samples.

use crate::common::*;
use polars::prelude::*;

const SOURCES: &str = r#"version: 1
defaults:
  root: in
sources:
  careers:
    path: careers.json
    read: { records: data.careers, envelope: [scraped_at] }
  titles:
    path: titles.csv
"#;

const CAREERS: &str = r#"{
  "scraped_at": "2026-02-05T12:00:00Z",
  "data": {
    "count": 3,
    "careers": [
      {"career_id": "pilot", "title": "Pilot", "pay": 70000, "provenance": {"url": "https://x/pilot"}, "environment": ["air_force", "navy"]},
      {"career_id": "cook", "title": "Cook", "pay": 52000.5, "provenance": {"url": "https://x/cook"}, "environment": []},
      {"career_id": "medic", "title": "Medical Technician", "provenance": {"url": null}, "environment": ["army"]}
    ]
  }
}
"#;

fn project() -> Project {
    let dir = tempfile::tempdir().unwrap();
    let p = Project { dir };
    p.write("sources.yml", SOURCES);
    p.write("in/careers.json", CAREERS);
    p.write("in/titles.csv", "code,title\n10010,Financial managers\n63200,Cooks\n31301,Registered nurses\n72600,Air pilots and flight engineers\n");
    p.write(
        "pipelines/careers.yml",
        "table: careers\nsource: careers\ngold:\n  - select: [career_id, title, pay, provenance_url, scraped_at]\n",
    );
    p.write(
        "pipelines/career_environments.yml",
        "table: career_environments\nsource: careers\nsilver:\n  - select: [career_id, environment]\n  - explode: { columns: [environment], position: position }\n",
    );
    p.write("pipelines/titles.yml", "table: titles\nsource: titles\n");
    p.write(
        "pipelines/career_titles.yml",
        r#"table: career_titles
source: careers
silver:
  - select: [career_id, title]
  - match:
      columns: [title]
      ref: silver.titles
      key: [code]
      against: [title]
      scorer: { token_set: 0.5, tfidf: 0.5 }
      normalize: { stem: true }
      top_k: 2
      min_score: 0.5
      prefix: noc_
      score_column: confidence
"#,
    );
    p
}

fn counts(p: &Project, table: &str, layer: &str) -> serde_json::Value {
    let out = p.jobforge(&[
        "query",
        &format!("select * from _transitions where \"table\" = '{table}' and target_layer = '{layer}'"),
        "--format",
        "json",
    ]);
    ok(&out);
    serde_json::from_str::<serde_json::Value>(&stdout(&out)).unwrap()[0].clone()
}

#[test]
fn nested_records_keep_their_types_and_lists_become_child_tables() {
    let p = project();
    let out = p.jobforge(&["run", "pipelines"]);
    ok(&out);
    let careers = p.read("data/gold/careers.parquet");
    assert_eq!(strings(&careers, "career_id"), [Some("pilot".into()), Some("cook".into()), Some("medic".into())]);
    assert_eq!(careers.column("pay").unwrap().dtype(), &DataType::Float64, "an integer column with a decimal");
    assert_eq!(careers.column("pay").unwrap().f64().unwrap().get(2), None, "a missing field is null");
    assert_eq!(strings(&careers, "provenance_url")[0].as_deref(), Some("https://x/pilot"));
    assert_eq!(strings(&careers, "scraped_at")[2].as_deref(), Some("2026-02-05T12:00:00Z"), "envelope on every row");
    let staged = p.read("data/staged/careers.parquet");
    assert_eq!(staged.column("environment").unwrap().dtype(), &DataType::List(Box::new(DataType::String)));
    let env = p.read("data/gold/career_environments.parquet");
    assert_eq!(
        strings(&env, "environment"),
        [Some("air_force".into()), Some("navy".into()), Some("army".into())],
        "one row per item; the empty list gives none"
    );
    let positions: Vec<Option<i64>> = env.column("position").unwrap().i64().unwrap().iter().collect();
    assert_eq!(positions, [Some(1), Some(2), Some(1)]);
    let c = counts(&p, "career_environments", "silver");
    assert_eq!((c["rows_in"].as_str(), c["rows_out"].as_str()), (Some("3"), Some("3")), "{c}");
    assert_eq!((c["rows_reshaped_in"].as_str(), c["rows_reshaped_out"].as_str()), (Some("3"), Some("3")), "{c}");
    // The plan shows the step; lineage follows the exploded column to the JSON field.
    let plan = stdout(&p.jobforge(&["plan", "--dry-run"]));
    assert!(plan.contains("explode(environment)"), "{plan}");
    let out = p.jobforge(&["lineage", "Where does column career_environments.position come from?"]);
    ok(&out);
    assert!(stdout(&out).contains("explode: the item's position in [environment]"), "{}", stdout(&out));
}

#[test]
fn the_match_step_ranks_candidates_and_counts_every_row() {
    let p = project();
    ok(&p.jobforge(&["run", "pipelines"]));
    let df = p.read("data/gold/career_titles.parquet");
    let pairs: Vec<(Option<String>, Option<String>)> =
        strings(&df, "career_id").into_iter().zip(strings(&df, "noc_code")).collect();
    assert_eq!(
        pairs,
        [(Some("pilot".into()), Some("72600".into())), (Some("cook".into()), Some("63200".into()))],
        "Pilot -> Air pilots, Cook -> Cooks; Medical Technician has no candidate at 0.5"
    );
    let confidence = df.column("confidence").unwrap().f64().unwrap();
    assert!(confidence.iter().flatten().all(|c| (0.5..=1.0).contains(&c)), "{confidence:?}");
    let ranks: Vec<Option<i32>> = df.column("match_rank").unwrap().i32().unwrap().iter().collect();
    assert_eq!(ranks, [Some(1), Some(1)]);
    assert_eq!(strings(&df, "match_method")[0].as_deref(), Some("0.5*token_set+0.5*tfidf(title ~ title)"));
    let c = counts(&p, "career_titles", "silver");
    assert_eq!(
        (c["rows_in"].as_str(), c["rows_join_dropped"].as_str(), c["rows_out"].as_str()),
        (Some("3"), Some("1"), Some("2")),
        "{c}"
    );
    // The same input gives the same rows, scores and ranks.
    ok(&p.jobforge(&["run", "pipelines", "--full-refresh"]));
    let business = |d: DataFrame| d.drop_many(["_ingested_at", "_batch_id"]);
    assert!(business(p.read("data/gold/career_titles.parquet")).equals_missing(&business(df)));
    // A compile error names the unknown candidate column with a suggestion.
    p.edit("pipelines/career_titles.yml", "against: [title]", "against: [titel]");
    let out = p.jobforge(&["validate", "--config-only"]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains("career_titles.yml:")
            && e.contains("unknown column `titel` in match of `silver.titles` (against)")
            && e.contains("did you mean `title`?"),
        "{e}"
    );
}

#[test]
fn malformed_json_is_located_and_leaves_the_previous_run_whole() {
    let p = project();
    ok(&p.jobforge(&["run", "pipelines"]));
    let before = std::fs::read(p.file("data/gold/careers.parquet")).unwrap();
    p.write("in/careers.json", &CAREERS.replace("\"title\": \"Cook\",", "\"title\": \"Cook\""));
    let out = p.jobforge(&["run", "pipelines"]);
    assert_ne!(out.status.code(), Some(0));
    let e = format!("{}{}", stdout(&out), stderr(&out));
    assert!(e.contains("in/careers.json:7:") && e.contains("malformed JSON: expected `,` or `}`"), "{e}");
    assert_eq!(std::fs::read(p.file("data/gold/careers.parquet")).unwrap(), before, "the previous run stays whole");
    // A wrong records path names the fields the document has.
    p.write("in/careers.json", CAREERS);
    p.edit("sources.yml", "records: data.careers", "records: data.career");
    let out = p.jobforge(&["validate", "--config-only"]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(e.contains("no field `career` in `data` (did you mean `careers`?); it has `count`, `careers`"), "{e}");
}

#[test]
fn the_bundled_tbs_and_caf_samples_build_bilingual_tables() {
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines"]));
    let og = p.read("data/gold/dim_og.parquet");
    let ai = strings(&og, "og_code").iter().position(|c| c.as_deref() == Some("AI")).unwrap();
    assert_eq!(
        strings(&og, "group_name_en")[ai].as_deref(),
        Some("Air Traffic Control"),
        "the code is cut from the name"
    );
    assert!(strings(&og, "group_name_fr").iter().all(Option::is_some), "every group has its French name");
    let caf = p.read("data/gold/dim_caf_occupation.parquet");
    assert!(strings(&caf, "title_fr").iter().flatten().any(|t| t.contains('·')), "inclusive French kept");
    // A failed French page leaves the French title null, not `Carrieres`.
    assert!(!strings(&caf, "title_fr").iter().flatten().any(|t| t == "Carrieres"));
    // The sample's malformed copy is located by line and column.
    let path = p.file("data/source/caf/occupations.sample.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"occupations\": [", "\"occupations\": [,", 1)).unwrap();
    let out = p.jobforge(&["validate", "--config-only"]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(e.contains("occupations.sample.json:") && e.contains("malformed JSON"), "{e}");
}
