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
