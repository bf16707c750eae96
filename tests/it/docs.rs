//! The reference page documents every key of every YAML kind and every step: checked against
//! the JSON Schema so the two cannot drift.

use crate::common::repo;
use serde_json::Value;
use std::collections::BTreeSet;

/// Every property name and enum variant in a schema.
fn keys(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                out.extend(props.keys().cloned());
            }
            if let Some(Value::Array(values)) = map.get("enum") {
                out.extend(values.iter().filter_map(|x| x.as_str().map(str::to_string)));
            }
            map.values().for_each(|x| keys(x, out));
        }
        Value::Array(items) => items.iter().for_each(|x| keys(x, out)),
        _ => {}
    }
}

#[test]
fn reference_documents_every_schema_key() {
    let doc = std::fs::read_to_string(repo().join("docs/reference.md")).expect("docs/reference.md");
    let mut missing = Vec::new();
    for (name, schema) in jobforge::schema::schemas() {
        let mut all = BTreeSet::new();
        keys(&schema, &mut all);
        assert!(all.len() >= 5, "{name} has too few keys");
        for k in all {
            if !doc.contains(&format!("`{k}`")) {
                missing.push(format!("{name}: `{k}`"));
            }
        }
    }
    assert!(missing.is_empty(), "docs/reference.md does not document: {missing:?}");
}

#[test]
fn committed_schemas_match_the_code() {
    for (name, schema) in jobforge::schema::schemas() {
        let path = repo().join("schemas").join(name);
        let committed: Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
                .unwrap();
        assert!(committed == schema, "{name} is stale: run `jobforge schema`");
    }
}
