//! `jobforge schema`: JSON Schema (schemars) of `sources.yml`, the pipeline files,
//! `wiq_schema.yml`, `warehouse.yml` and `schedules.yml`, so editors complete and check them.

use crate::config::{Pipeline, SourcesFile};
use crate::semantic::Model;
use std::path::Path;

/// The schemas by file name.
pub fn schemas() -> Vec<(&'static str, serde_json::Value)> {
    let to_json = |s: schemars::schema::RootSchema| serde_json::to_value(s).unwrap_or_default();
    #[allow(unused_mut)]
    let mut out = vec![
        ("sources.schema.json", to_json(schemars::schema_for!(SourcesFile))),
        ("pipeline.schema.json", to_json(schemars::schema_for!(Pipeline))),
        ("wiq_schema.schema.json", to_json(schemars::schema_for!(Model))),
        ("schedules.schema.json", to_json(schemars::schema_for!(crate::dagster::SchedulesFile))),
    ];
    #[cfg(feature = "query")]
    out.push(("warehouse.schema.json", to_json(schemars::schema_for!(crate::warehouse::targets::WarehouseFile))));
    out
}

/// Writes every schema into `dir`; returns the paths written.
pub fn write(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for (name, schema) in schemas() {
        let path = dir.join(name);
        let mut text = serde_json::to_string_pretty(&schema).map_err(std::io::Error::other)?;
        text.push('\n');
        crate::atomic::write_bytes(&path, text.as_bytes())?;
        out.push(path);
    }
    Ok(out)
}
