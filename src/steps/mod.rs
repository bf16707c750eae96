//! Step kinds that keep every face in one file: their YAML config, the column check, the
//! execution, column lineage and the label. A new step of this kind is one file here plus its
//! variant in `config::pipeline::Step`; the compiler, the runner, lineage and the plan view
//! reach it through [`StepKind`]. (The older steps still live as `match` arms in
//! `exec::steps`, `plan::check`, `lineage::columns` and `plan::render`.)

pub mod explode;
pub mod fuzzy_match;
pub mod similarity;

use crate::exec::steps::{RefReader, StepResult};
use crate::plan::check::Problem;
use polars::prelude::*;

/// Where an output column of a step comes from.
#[derive(Debug, Clone)]
pub enum ColumnInput {
    /// A column of the step's input frame.
    Local(String),
    /// A column of another table, `layer.table`.
    Ref(String, String),
}

/// One step kind's faces.
pub trait StepKind {
    /// A one-word name with the main argument, for plans and transition logs.
    fn label(&self) -> String;
    /// Other tables it reads (`layer.table`): edges in the plan.
    fn references(&self) -> Vec<String> {
        vec![]
    }
    /// What can be decided without the columns (settings in range).
    fn check_static(&self) -> Vec<Problem> {
        vec![]
    }
    /// The columns after the step, from those before; unknown names are problems.
    /// `ref_columns` gives the columns of another table (`layer.table`), when known.
    fn columns(
        &self,
        before: Vec<String>,
        ref_columns: &dyn Fn(&str) -> Option<Vec<String>>,
        problems: &mut Vec<Problem>,
    ) -> Option<Vec<String>>;
    /// What `column` after the step is made from, and how (None for a column it passes on).
    fn lineage(&self, column: &str) -> Option<(Vec<ColumnInput>, String)>;
    /// Runs the step.
    fn apply(&self, df: DataFrame, refs: &RefReader) -> PolarsResult<StepResult>;
}
