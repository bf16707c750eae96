//! OpenLineage 2-0-2 RunEvents for a run: for every layer transition a START and a COMPLETE
//! (or FAIL) event, with input and output datasets, the output's schema, column-lineage and
//! output-statistics facets, written as NDJSON for Marquez, DataHub or OpenMetadata.

use super::columns;
use crate::plan::{Layer, Plan};
use crate::records::{TableMetadata, TransitionLog};
use crate::store::{Manifest, Store};
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;

const PRODUCER: &str = concat!("https://github.com/jobforge/jobforge/tree/v", env!("CARGO_PKG_VERSION"));
const RUN_EVENT: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const NAMESPACE: &str = "jobforge";

fn facet(name: &str, version: &str) -> String {
    format!("https://openlineage.io/spec/facets/{version}/{name}.json#/$defs/{name}")
}

/// A dataset name: the absolute stable path of the file (not resolved through the store's
/// links, so a dataset keeps its name from run to run).
fn dataset(path: &str) -> Value {
    let abs = std::path::absolute(path).map(|p| p.display().to_string()).unwrap_or_else(|_| path.to_string());
    json!({ "namespace": "file", "name": abs })
}

/// The events of one transition.
fn events(plan: &Plan, metadata: &[TableMetadata], log: &TransitionLog) -> Vec<Value> {
    let job = json!({
        "namespace": NAMESPACE,
        "name": format!("{}.{}", log.table, log.target_layer),
        "facets": { "jobType": {
            "_producer": PRODUCER,
            "_schemaURL": facet("JobTypeJobFacet", "2-0-4"),
            "processingType": "BATCH",
            "integration": "JOBFORGE",
            "jobType": "TASK"
        } }
    });
    let inputs: Vec<Value> = log.source_files.iter().map(|f| dataset(f)).collect();
    let mut output = dataset(&log.target_file);
    let layer: Option<Layer> = log.target_layer.parse().ok();
    let table = plan.table(&log.table);
    if let (Some(meta), Some(layer), Some(t)) =
        (metadata.iter().find(|m| m.layer == log.target_layer && m.name == log.table), layer, table)
    {
        let fields: Vec<Value> = meta.columns.iter().map(|c| json!({ "name": c.name, "type": c.data_type })).collect();
        let mut lineage = serde_json::Map::new();
        for c in &meta.columns {
            let hop = columns::hop(plan, t, layer, &c.name);
            let inputs: Vec<Value> = if layer == Layer::Staged {
                vec![json!({ "namespace": "file", "name": dataset(&log.source_files[0])["name"], "field": c.name })]
            } else {
                hop.inputs
                    .iter()
                    .filter_map(|(table, l, col)| {
                        let file = crate::plan::render::layer_file(Path::new(&log.target_file).parent()?.parent()?, *l, table);
                        Some(json!({ "namespace": "file", "name": dataset(&file.display().to_string())["name"], "field": col }))
                    })
                    .collect()
            };
            if !inputs.is_empty() {
                lineage.insert(c.name.clone(), json!({ "inputFields": inputs }));
            }
        }
        output["facets"] = json!({
            "schema": { "_producer": PRODUCER, "_schemaURL": facet("SchemaDatasetFacet", "1-2-0"), "fields": fields },
            "columnLineage": { "_producer": PRODUCER, "_schemaURL": facet("ColumnLineageDatasetFacet", "1-2-0"), "fields": lineage },
        });
        output["outputFacets"] = json!({
            "outputStatistics": {
                "_producer": PRODUCER,
                "_schemaURL": facet("OutputStatisticsOutputDatasetFacet", "1-0-2"),
                "rowCount": log.counts.rows_out,
                "size": meta.file_size
            }
        });
    }
    let time = |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let start = json!({
        "eventType": "START",
        "eventTime": time(&log.started_at),
        "producer": PRODUCER,
        "schemaURL": RUN_EVENT,
        "run": { "runId": log.transition_id, "facets": {} },
        "job": job,
        "inputs": inputs,
        "outputs": [dataset(&log.target_file)],
    });
    let mut run = json!({ "runId": log.transition_id, "facets": {} });
    let event_type = if log.status == "success" { "COMPLETE" } else { "FAIL" };
    if event_type == "FAIL" {
        run["facets"]["errorMessage"] = json!({
            "_producer": PRODUCER,
            "_schemaURL": facet("ErrorMessageRunFacet", "1-0-1"),
            "message": log.errors.join("; "),
            "programmingLanguage": "Rust"
        });
    }
    let end = json!({
        "eventType": event_type,
        "eventTime": time(&log.ended_at),
        "producer": PRODUCER,
        "schemaURL": RUN_EVENT,
        "run": run,
        "job": job,
        "inputs": inputs,
        "outputs": [output],
    });
    vec![start, end]
}

/// Appends the events of the snapshot's own run to `file` as NDJSON; returns how many were
/// written.
pub fn write_run(plan: &Plan, store: &Store, run: &Manifest, file: &Path) -> std::io::Result<usize> {
    let metadata = store.table_metadata(run);
    let mut lines = String::new();
    let mut count = 0;
    for log in store.transitions(run).iter().filter(|l| l.batch_id == run.run_id) {
        for e in events(plan, &metadata, log) {
            lines.push_str(&e.to_string());
            lines.push('\n');
            count += 1;
        }
    }
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(file)?;
    f.write_all(lines.as_bytes())?;
    f.sync_all()?;
    Ok(count)
}
