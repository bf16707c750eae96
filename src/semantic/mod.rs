//! The WiQ semantic model: `wiq_schema.yml` loaded with located errors, checked against the
//! gold data (`jobforge validate`) and exported with introspected types (`jobforge model
//! export`).

pub mod check;
pub mod model;

use crate::diag::{Diagnostics, SourceText};
use std::path::Path;

pub use model::Model;

/// The model file name, at the project root.
pub const MODEL_FILE: &str = "wiq_schema.yml";

/// The gold (table, column) pairs the model marks `pii`; none when there is no model or it does
/// not parse (`validate` reports that). Parsed only when the file mentions `pii`.
pub fn pii_marks(project_dir: &Path) -> std::collections::BTreeSet<(String, String)> {
    let path = project_dir.join(MODEL_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else { return Default::default() };
    if !text.contains("pii") {
        return Default::default();
    }
    let Ok(model) = serde_yaml::from_str::<Model>(&text) else { return Default::default() };
    model
        .tables
        .iter()
        .flat_map(|(t, mt)| mt.columns.iter().filter(|(_, c)| c.pii).map(move |(c, _)| (t.clone(), c.clone())))
        .collect()
}

/// Loads the project's model, if it has one.
pub fn load(project_dir: &Path) -> Result<Option<(SourceText, Model)>, Diagnostics> {
    let path = project_dir.join(MODEL_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let mut diags = Diagnostics::default();
    let text = match SourceText::read(&path) {
        Ok(t) => t,
        Err(d) => {
            diags.push(d);
            return Err(diags);
        }
    };
    match crate::config::parse::<Model>(&text, &mut diags) {
        Some(model) => Ok(Some((text, model))),
        None => Err(diags),
    }
}
