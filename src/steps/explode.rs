//! `explode`: one row per item of a list column (a JSON list such as `environment` or
//! `related_civilian_occupations`), the other columns repeated. Rows whose list is empty or
//! null give no row unless `keep_empty`; `position` numbers the items from 1. A change of grain:
//! every input row is consumed and every output row produced, so the transition balances.

use super::{ColumnInput, StepKind};
use crate::exec::steps::{RefReader, StepResult};
use crate::plan::check::{require, Problem};
use polars::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings of an `explode` step.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Explode {
    /// The list columns to spread into rows; several are spread together, item by item, and
    /// must hold lists of the same length on each row.
    pub columns: Vec<String>,
    /// Keep a row whose list is empty or null, with a null item; default false (no row).
    #[serde(default)]
    pub keep_empty: bool,
    /// A new column holding the item's position in its list, from 1.
    pub position: Option<String>,
}

const ROW: &str = "__jf_row";
const LEN: &str = "__jf_len";

impl StepKind for Explode {
    fn label(&self) -> String {
        format!("explode({})", self.columns.join(", "))
    }

    fn check_static(&self) -> Vec<Problem> {
        if self.columns.is_empty() {
            return vec![Problem {
                token: "explode".into(),
                message: "`explode` needs at least one list column in `columns`".into(),
                hint: None,
            }];
        }
        vec![]
    }

    fn columns(
        &self,
        mut cols: Vec<String>,
        _: &dyn Fn(&str) -> Option<Vec<String>>,
        problems: &mut Vec<Problem>,
    ) -> Option<Vec<String>> {
        require(&self.columns, "explode", &cols, problems);
        if let Some(p) = &self.position {
            if cols.contains(p) {
                problems.push(Problem {
                    token: p.clone(),
                    message: format!("explode position `{p}` is already a column"),
                    hint: Some("name the position column something new".into()),
                });
            }
            cols.push(p.clone());
        }
        Some(cols)
    }

    fn lineage(&self, column: &str) -> Option<(Vec<ColumnInput>, String)> {
        if self.columns.iter().any(|c| c == column) {
            return Some((vec![ColumnInput::Local(column.into())], format!("explode: one row per item of `{column}`")));
        }
        if self.position.as_deref() == Some(column) {
            let inputs = self.columns.iter().cloned().map(ColumnInput::Local).collect();
            return Some((inputs, format!("explode: the item's position in [{}]", self.columns.join(", "))));
        }
        None
    }

    fn apply(&self, df: DataFrame, _: &RefReader) -> PolarsResult<StepResult> {
        let rows_in = df.height();
        for c in &self.columns {
            let dtype = df.column(c)?.dtype();
            if !matches!(dtype, DataType::List(_)) {
                polars_bail!(ComputeError: "explode: column `{c}` is {dtype}, not a list");
            }
        }
        let first = col(self.columns[0].as_str());
        let options = ExplodeOptions { empty_as_null: self.keep_empty, keep_nulls: self.keep_empty };
        let exploded = df
            .lazy()
            .with_row_index(ROW, None)
            .with_column(first.list().len().fill_null(lit(0)).alias(LEN))
            .explode(cols(self.columns.iter().map(String::as_str)), options);
        // The row kept for an empty list has no position.
        let position = |p: &str| {
            Ok::<_, PolarsError>(
                when(col(LEN).gt(lit(0)))
                    .then(int_range(lit(1), len() + lit(1), 1, DataType::Int64).over([col(ROW)])?)
                    .otherwise(lit(NULL).cast(DataType::Int64))
                    .alias(p),
            )
        };
        let out = match &self.position {
            Some(p) => exploded.with_column(position(p)?),
            None => exploded,
        };
        let out = out.drop(cols([ROW, LEN])).collect()?;
        Ok(StepResult::reshaped(rows_in, out))
    }
}
