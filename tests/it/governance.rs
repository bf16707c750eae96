//! Governance: lineage questions with their exact answers, column lineage through every step
//! kind, OpenLineage events valid against the published schemas, and the catalogue.

use crate::common::*;
use serde_json::{json, Value};

fn built() -> Project {
    let p = Project::sample();
    ok(&p.jobforge(&["run", "pipelines", "--openlineage", "lineage/events.ndjson"]));
    p
}

/// Answers with the project folder shown as `.` and the batch line fixed.
fn ask(p: &Project, question: &str) -> String {
    let out = p.jobforge(&["lineage", question]);
    ok(&out);
    let dir = p.path().display().to_string();
    stdout(&out)
        .replace(&dir, ".")
        .lines()
        .map(|l| if l.starts_with("  last batch ") { "  last batch <batch> at <time>" } else { l })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_question_form_gets_its_exact_answer() {
    let p = built();
    let gold_steps = "derive(broad_category_code, major_group_code, sub_major_group_code, minor_group_code) | join(silver.noc_hierarchy) | join(silver.noc_hierarchy) | join(silver.noc_hierarchy) | join(silver.noc_hierarchy) | select(unit_group_id, class_title, class_definition, broad_category_code, broad_category_title, major_group_code, major_group_title, sub_major_group_code, sub_major_group_title, minor_group_code, minor_group_title) | sort(unit_group_id)";
    assert_eq!(
        ask(&p, "Where does DIM NOC come from?"),
        format!(
            "dim_noc comes from source `noc_structure` (./data/source/noc/noc_structure_en.sample.csv; publisher Statistics Canada; licence Open Government Licence - Canada) through four layers:
  staged  ./data/staged/dim_noc.parquet  19 rows  [read csv]
  bronze  ./data/bronze/dim_noc.parquet  19 -> 19 rows  [columns: snake_case | rename(code_noc_2021_v1_0->noc_code, hierarchical_structure->level_name) | cast(level: int32)]
  silver  ./data/silver/dim_noc.parquet  19 -> 7 rows  [filter(level = 5) | clean(class_title) | expect(not_null, unique, regex) | rename(noc_code->unit_group_id)]
  gold    ./data/gold/dim_noc.parquet  7 -> 7 rows  [{gold_steps}]
  last batch <batch> at <time>
It also reads silver.noc_hierarchy; upstream tables: noc_hierarchy (source `noc_structure`, ./data/source/noc/noc_structure_en.sample.csv)."
        )
    );
    assert_eq!(
        ask(&p, "What feeds dim_noc?"),
        "dim_noc is fed by source `noc_structure` (./data/source/noc/noc_structure_en.sample.csv) and by silver.noc_hierarchy."
    );
    assert_eq!(
        ask(&p, "What depends on noc hierarchy?"),
        "noc_hierarchy feeds 1 table(s): dim_noc.\nRead directly by gold.dim_noc."
    );
    let feeds = ask(&p, "What does Dim-Noc feed?");
    assert!(
        feeds.starts_with(
            "dim_noc feeds 32 table(s): caf_job_architecture_bridge, caf_noc_bridge, cops_future_labour_market, "
        ),
        "{feeds}"
    );
    assert!(feeds.contains("Read directly by silver.") && feeds.contains("silver.cops_employment"), "{feeds}");
    let lineage = ask(&p, "Lineage of noc_hierarchy");
    assert!(
        lineage.starts_with("noc_hierarchy comes from source `noc_structure`")
            && lineage.ends_with("noc_hierarchy feeds 1 table(s): dim_noc.\nRead directly by gold.dim_noc."),
        "{lineage}"
    );
    assert_eq!(
        ask(&p, "How does noc_hierarchy become dim_noc?"),
        "noc_hierarchy becomes dim_noc through staged.noc_hierarchy -> bronze.noc_hierarchy -> silver.noc_hierarchy -> gold.dim_noc."
    );
    assert_eq!(ask(&p, "Path from cops_employment to dim_noc"), "No data flows from cops_employment to dim_noc.");
    assert_eq!(
        ask(&p, "Where does column dim_noc.unit_group_id come from?"),
        "dim_noc.unit_group_id comes from:
  gold.dim_noc.unit_group_id <- silver.dim_noc.unit_group_id
  silver.dim_noc.unit_group_id: rename from `noc_code` <- bronze.dim_noc.noc_code
  bronze.dim_noc.noc_code: bronze name of source column `Code - NOC 2021 V1.0` <- staged.dim_noc.Code - NOC 2021 V1.0
  staged.dim_noc.Code - NOC 2021 V1.0: source `noc_structure`, file ./data/source/noc/noc_structure_en.sample.csv"
    );
    let out = p.jobforge(&["lineage", "Where does dim_nok come from?"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no table `dim_nok`; the closest are: dim_noc,"), "{}", stderr(&out));
    let out = p.jobforge(&["lineage", "Who is the steward?"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("Where does TABLE come from?") && stderr(&out).contains("How does TABLE become OTHER?"),
        "{}",
        stderr(&out)
    );
    let json: Value =
        serde_json::from_str(&stdout(&p.jobforge(&["lineage", "Where does dim_noc come from", "--format", "json"])))
            .unwrap();
    assert_eq!(json["source"]["publisher"], "Statistics Canada");
    assert_eq!(json["layers"][2]["rows_out"], 7);
    let mermaid = stdout(&p.jobforge(&["lineage", "--graph", "mermaid", "dim_noc"]));
    assert!(
        mermaid.starts_with("flowchart LR\n") && mermaid.contains("  silver_noc_hierarchy --> gold_dim_noc\n"),
        "{mermaid}"
    );
    let dot = stdout(&p.jobforge(&["lineage", "--graph", "dot"]));
    assert!(dot.contains("\"source.noc_structure\" -> \"staged.dim_noc\";"), "{dot}");
}

#[test]
fn column_lineage_follows_every_step_kind() {
    let p = Project { dir: tempfile::tempdir().unwrap() };
    p.write(
        "sources.yml",
        "version: 1\ndefaults: { root: in }\nsources:\n  facts: { path: facts.csv }\n  names: { path: names.csv }\n",
    );
    p.write("in/facts.csv", "Code,Amount 2023,Amount 2024\n1,10,20\n2,30,40\n");
    p.write("in/names.csv", "Code,Label\n1,One\n2,Two\n");
    p.write(
        "pipelines/names.yml",
        "table: names\nsource: names\nsilver:\n  - clean: { columns: [label], trim: true }\n",
    );
    p.write(
        "pipelines/facts.yml",
        "table: facts
source: facts
bronze: { rename: { amount_2023: y2023, amount_2024: y2024 } }
silver:
  - rename: { code: id }
  - derive: { id5: \"concat(id, '0000')\" }
  - join: { ref: silver.names, on_columns: { id: code }, select: [label], prefix: name_ }
gold:
  - unpivot: { index: [id, id5, name_label], on: [y2023, y2024], variable: year, value: amount }
  - cast: { amount: float64 }
  - aggregate: { group_by: [id5, name_label, year], measures: { total: \"sum(amount)\" } }
",
    );
    p.write("pipelines/opaque.yml", "table: opaque\nsource: facts\ngold:\n  - sql: \"select code as c from input\"\n");
    ok(&p.jobforge(&["run", "pipelines"]));
    let hops = |column: &str| -> Vec<Value> {
        let out = p.jobforge(&["lineage", &format!("Where does column {column} come from?"), "--format", "json"]);
        ok(&out);
        serde_json::from_str::<Value>(&stdout(&out)).unwrap()["hops"].as_array().unwrap().clone()
    };
    let total = hops("facts.total");
    let how =
        |h: &Value| h["how"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(
        how(&total[0]),
        [
            "unpivot: the values of columns [y2023, y2024]",
            "cast to float64",
            "aggregate `sum(amount)` by [id5, name_label, year]"
        ]
    );
    let names: Vec<String> = total
        .iter()
        .map(|h| {
            format!(
                "{}.{}.{}",
                h["layer"].as_str().unwrap(),
                h["table"].as_str().unwrap(),
                h["column"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        names.contains(&"bronze.facts.y2024".to_string()) && names.contains(&"staged.facts.Amount 2023".to_string()),
        "{names:?}"
    );
    let bronze = total.iter().find(|h| h["layer"] == "bronze" && h["column"] == "y2023").unwrap();
    assert_eq!(how(bronze), ["bronze name of source column `Amount 2023`"]);
    let id5 = hops("facts.id5");
    let silver = id5.iter().find(|h| h["layer"] == "silver" && h["column"] == "id5").unwrap();
    assert_eq!(how(silver), ["rename from `code`", "derive `concat(id, '0000')`"]);
    assert_eq!(silver["inputs"], json!([["facts", "bronze", "code"]]), "through the rename to bronze.code");
    let renamed = id5.iter().find(|h| h["layer"] == "bronze" && h["column"] == "code").unwrap();
    assert_eq!(renamed["inputs"], json!([["facts", "staged", "Code"]]));
    let label = hops("facts.name_label");
    let joined = label.iter().find(|h| h["layer"] == "silver" && h["column"] == "name_label").unwrap();
    assert_eq!(how(joined), ["join from `silver.names`"]);
    assert!(
        label.iter().any(|h| h["table"] == "names" && h["layer"] == "silver" && how(h) == ["clean(label)"]),
        "{label:?}"
    );
    let year = hops("facts.year");
    assert_eq!(how(&year[0]), ["unpivot: the names of columns [y2023, y2024]"]);
    let opaque = hops("opaque.c");
    assert_eq!(opaque[0]["untraced"], true);
    assert_eq!(how(&opaque[0]), ["sql step (column lineage not traced)"]);
    assert_eq!(opaque.len(), 1, "never guessed");
}

fn schemas() -> Option<std::path::PathBuf> {
    let dir = repo().join("../shared/specs/openlineage");
    if dir.join("OpenLineage.json").exists() {
        return Some(dir);
    }
    assert!(
        std::env::var("JOBFORGE_REAL_DATA_REQUIRED").is_err(),
        "the OpenLineage schemas are not at {}",
        dir.display()
    );
    eprintln!("SKIPPED: the OpenLineage schemas are not at {}", dir.display());
    None
}

#[test]
fn openlineage_events_are_valid_against_the_published_schemas() {
    let Some(dir) = schemas() else { return };
    let read = |p: std::path::PathBuf| -> Value { serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap() };
    let core = read(dir.join("OpenLineage.json"));
    let id = core["$id"].as_str().unwrap().to_string();
    let with_core =
        || jsonschema::options().with_resource(id.clone(), jsonschema::Resource::from_contents(core.clone()));
    let run_event = with_core().build(&json!({ "$ref": format!("{id}#/$defs/RunEvent") })).unwrap();
    let facet = |name: &str| with_core().build(&read(dir.join("facets").join(format!("{name}.json")))).unwrap();
    let (schema, lineage, stats, job_type, error) = (
        facet("SchemaDatasetFacet"),
        facet("ColumnLineageDatasetFacet"),
        facet("OutputStatisticsOutputDatasetFacet"),
        facet("JobTypeJobFacet"),
        facet("ErrorMessageRunFacet"),
    );
    let p = built();
    // A second, failing run adds FAIL events.
    p.edit(
        "pipelines/noc_hierarchy.yml",
        "  - sort: [level, code]",
        "  - sql: \"select * from input where no_such_column = 1\"",
    );
    let _ = p.jobforge(&["run", "pipelines", "--select", "noc_hierarchy", "--openlineage", "lineage/events.ndjson"]);
    let text = std::fs::read_to_string(p.file("lineage/events.ndjson")).unwrap();
    let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), wiq_tables() * 4 * 2 + 4 * 2, "START and an end event per transition");
    let mut kinds = std::collections::BTreeMap::new();
    for e in &events {
        let errors: Vec<String> = run_event.iter_errors(e).map(|x| x.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?} in {e}");
        *kinds.entry(e["eventType"].as_str().unwrap().to_string()).or_insert(0) += 1;
        assert!(job_type.is_valid(&e["job"]["facets"]), "{}", e["job"]);
        for o in e["outputs"].as_array().unwrap() {
            if o.get("facets").is_some() {
                assert!(schema.is_valid(&o["facets"]) && lineage.is_valid(&o["facets"]), "{o}");
                assert!(stats.is_valid(&o["outputFacets"]), "{o}");
            }
        }
        if e["eventType"] == "FAIL" {
            assert!(error.is_valid(&e["run"]["facets"]), "{}", e["run"]);
            assert!(e["run"]["facets"]["errorMessage"]["message"].as_str().unwrap().contains("no_such_column"));
        }
    }
    assert_eq!(kinds["START"], wiq_tables() * 4 + 4);
    assert_eq!(kinds["COMPLETE"], wiq_tables() * 4 + 3);
    assert_eq!(kinds["FAIL"], 1);
    let gold = events.iter().find(|e| e["eventType"] == "COMPLETE" && e["job"]["name"] == "dim_noc.gold").unwrap();
    let fields = &gold["outputs"][0]["facets"]["columnLineage"]["fields"];
    assert_eq!(fields["major_group_title"]["inputFields"][0]["field"], "title");
    assert!(fields["major_group_title"]["inputFields"][0]["name"]
        .as_str()
        .unwrap()
        .ends_with("data/silver/noc_hierarchy.parquet"));
    assert_eq!(gold["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"], 7);
}

#[test]
fn the_catalogue_lists_every_gold_table_and_column() {
    let p = built();
    for format in ["md", "html", "json"] {
        let out = p.jobforge(&["catalogue", "--out", &format!("cat-{format}"), "--format", format]);
        ok(&out);
        assert!(stdout(&out).contains(&format!("catalogue of {} table(s)", wiq_tables())), "{}", stdout(&out));
    }
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(p.file("cat-json/catalogue.json")).unwrap()).unwrap();
    let index_md = std::fs::read_to_string(p.file("cat-md/index.md")).unwrap();
    let index_html = std::fs::read_to_string(p.file("cat-html/index.html")).unwrap();
    for entry in std::fs::read_dir(p.file("data/gold")).unwrap().flatten() {
        let name = entry.path().file_stem().unwrap().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        let gold = read_parquet(&entry.path());
        let table = json["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} missing"));
        let cols: Vec<&str> =
            table["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        let want: Vec<String> = gold.get_column_names().iter().map(|c| c.to_string()).collect();
        assert_eq!(cols, want, "{name}");
        assert!(
            index_md.contains(&format!("[{name}](tables/{name}.md)"))
                && index_html.contains(&format!("href=\"tables/{name}.html\"")),
            "{name}"
        );
        let md = std::fs::read_to_string(p.file(&format!("cat-md/tables/{name}.md"))).unwrap();
        let html = std::fs::read_to_string(p.file(&format!("cat-html/tables/{name}.html"))).unwrap();
        for c in &want {
            assert!(md.contains(&format!("| {c} |")) && html.contains(&format!("<code>{c}</code>")), "{name}.{c}");
        }
        assert!(
            html.contains("<svg") && !html.contains("http://") || html.contains("xmlns=\"http://www.w3.org/2000/svg\""),
            "{name}"
        );
        assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "{name}: no request leaves the machine");
    }
    let dim = json["tables"].as_array().unwrap().iter().find(|t| t["name"] == "dim_noc").unwrap();
    assert_eq!(dim["kind"], "dimension");
    assert_eq!(dim["publisher"], "Statistics Canada");
    assert_eq!(dim["row_count"], 7);
    assert_eq!(dim["primary_key"], json!(["unit_group_id"]));
    assert_eq!(dim["upstream"], json!(["noc_hierarchy"]));
    assert!(dim["columns"][0]["examples"].as_array().unwrap().contains(&json!("00010")));
    let glossary = std::fs::read_to_string(p.file("cat-md/glossary.md")).unwrap();
    assert!(glossary.contains("- **unit_group**: The most detailed level"), "{glossary}");
}
