//! Typed `pipelines/*.yml`: one table, its source and the transforms of each layer.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One pipeline file: a table built from one source through bronze, silver and gold.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Table name; also the parquet file name at every layer.
    pub table: String,
    /// One table per item: the file is a minijinja template rendered with `{{ item }}`.
    #[serde(default)]
    pub for_each: Vec<String>,
    /// Source id from `sources.yml`.
    pub source: String,
    /// Business domain the table belongs to.
    pub domain: Option<String>,
    /// What one row of the table is.
    pub description: Option<String>,
    /// Accountable owner.
    pub owner: Option<String>,
    /// Data steward.
    pub steward: Option<String>,
    /// Security classification, e.g. `unclassified`, `protected_a`.
    pub classification: Option<String>,
    /// Column descriptions by column name, recorded in the table metadata.
    #[serde(default)]
    pub columns: IndexMap<String, String>,
    /// Name and type enforcement; drops nothing.
    #[serde(default)]
    pub bronze: Bronze,
    /// Cleaning and validation steps, in order.
    #[serde(default)]
    pub silver: Vec<Step>,
    /// Business-ready shaping steps, in order.
    #[serde(default)]
    pub gold: Vec<Step>,
    /// Data-quality checks of the table's gold layer, evaluated by `run` and `jobforge check`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<crate::checks::Check>,
    /// Unit tests of this table's transforms (`jobforge test`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<crate::unit_tests::UnitTest>,
}

/// Bronze: header normalisation, renames and casts.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bronze {
    /// Header normalisation: `snake_case` (default: trim, drop the BOM, lower snake case) or
    /// `trim` (trim and drop the BOM only).
    #[serde(default)]
    pub columns: HeaderStyle,
    /// Renames applied after normalisation, `old: new`.
    #[serde(default)]
    pub rename: IndexMap<String, String>,
    /// Casts applied after renames, `column: type`. A value that cannot be cast sends its row
    /// to quarantine with the column and value.
    #[serde(default)]
    pub cast: IndexMap<String, DType>,
    /// Columns (after renames) that must be present; renamed and cast columns are required too.
    #[serde(default)]
    pub required: Vec<String>,
}

/// How bronze normalises header names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HeaderStyle {
    #[default]
    SnakeCase,
    Trim,
}

/// Column types that casts accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    #[serde(alias = "string")]
    Text,
    Int32,
    Int64,
    Float64,
    #[serde(alias = "bool")]
    Boolean,
    Date,
}

/// One transform step. Every step works in silver and in gold. Written as a one-key map
/// (`- filter: "level = 5"`), read through [`StepMap`] because serde_yaml reads enums only
/// from YAML tags.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields, try_from = "StepMap")]
pub enum Step {
    /// Keep rows where the SQL predicate is true; the others are counted as filtered.
    Filter(String),
    /// Add or replace columns, `name: SQL expression`.
    Derive(IndexMap<String, String>),
    /// Cast columns, `column: type`; failures go to quarantine.
    Cast(IndexMap<String, DType>),
    /// String cleaning on text columns.
    Clean(Box<Clean>),
    /// Drop rows whose keys repeat, keeping the first or the last; counted as filtered.
    Dedupe(Box<Dedupe>),
    /// Wide to long: one row per (index, column) pair.
    Unpivot(Box<Unpivot>),
    /// Remove columns.
    Drop(Vec<String>),
    /// Rename columns, `old: new`.
    Rename(IndexMap<String, String>),
    /// Keep these columns in this order (provenance columns are always kept).
    Select(Vec<String>),
    /// Order rows: `column` or `column desc`.
    Sort(Vec<String>),
    /// Join another table's output (an edge in the plan).
    Join(Box<Join>),
    /// Group and aggregate with SQL aggregate expressions.
    Aggregate(Box<Aggregate>),
    /// Row rules; failing rows go to quarantine with the rule and the reason.
    Expect(Box<Expect>),
    /// A Polars SQL query over `input` (this table so far) and `{{ ref('layer.table') }}`.
    Sql(String),
    /// One row per item of list columns.
    Explode(Box<crate::steps::explode::Explode>),
    /// Fuzzy matching of text columns against another table's (an edge in the plan).
    Match(Box<crate::steps::fuzzy_match::Match>),
}

impl Step {
    /// The step's faces when it is one of the kinds in `crate::steps`, which keep them in one
    /// file; None for the kinds matched on in the compiler, runner, lineage and plan view.
    pub fn kind(&self) -> Option<&dyn crate::steps::StepKind> {
        match self {
            Step::Explode(x) => Some(x.as_ref()),
            Step::Match(x) => Some(x.as_ref()),
            _ => None,
        }
    }
}

/// The one-key map a step is written as; exactly one field is set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepMap {
    filter: Option<String>,
    derive: Option<IndexMap<String, String>>,
    cast: Option<IndexMap<String, DType>>,
    clean: Option<Clean>,
    dedupe: Option<Dedupe>,
    unpivot: Option<Unpivot>,
    drop: Option<Vec<String>>,
    rename: Option<IndexMap<String, String>>,
    select: Option<Vec<String>>,
    sort: Option<Vec<String>>,
    join: Option<Join>,
    aggregate: Option<Aggregate>,
    expect: Option<Expect>,
    sql: Option<String>,
    explode: Option<crate::steps::explode::Explode>,
    r#match: Option<crate::steps::fuzzy_match::Match>,
}

impl TryFrom<StepMap> for Step {
    type Error = String;

    fn try_from(m: StepMap) -> Result<Step, String> {
        let steps: Vec<Step> = [
            m.filter.map(Step::Filter),
            m.derive.map(Step::Derive),
            m.cast.map(Step::Cast),
            m.clean.map(|x| Step::Clean(Box::new(x))),
            m.dedupe.map(|x| Step::Dedupe(Box::new(x))),
            m.unpivot.map(|x| Step::Unpivot(Box::new(x))),
            m.drop.map(Step::Drop),
            m.rename.map(Step::Rename),
            m.select.map(Step::Select),
            m.sort.map(Step::Sort),
            m.join.map(|x| Step::Join(Box::new(x))),
            m.aggregate.map(|x| Step::Aggregate(Box::new(x))),
            m.expect.map(|x| Step::Expect(Box::new(x))),
            m.sql.map(Step::Sql),
            m.explode.map(|x| Step::Explode(Box::new(x))),
            m.r#match.map(|x| Step::Match(Box::new(x))),
        ]
        .into_iter()
        .flatten()
        .collect();
        match <[Step; 1]>::try_from(steps) {
            Ok([step]) => Ok(step),
            Err(v) if v.is_empty() => Err("a step needs one key naming its kind (filter, derive, ...)".into()),
            Err(v) => {
                Err(format!("a step has exactly one kind, this one has {}; write them as separate list items", v.len()))
            }
        }
    }
}

/// String cleaning of some columns; the operations run in the order listed here.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Clean {
    /// Columns to clean.
    pub columns: Vec<String>,
    /// Strip leading and trailing whitespace.
    #[serde(default)]
    pub trim: bool,
    /// Change case.
    pub case: Option<Case>,
    /// Regex replacements, `pattern: replacement` (all matches).
    #[serde(default)]
    pub replace: IndexMap<String, String>,
    /// Keep only the first capture group of this regex (null when it does not match).
    pub extract: Option<String>,
    /// Pad on the left to this width.
    pub pad: Option<Pad>,
    /// Empty strings become null.
    #[serde(default)]
    pub empty_as_null: bool,
}

/// Letter case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Case {
    Lower,
    Upper,
}

/// Left padding, e.g. codes written without their leading zeros.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pad {
    /// Target width in characters.
    pub width: usize,
    /// Fill character; default `0`.
    #[serde(default = "zero")]
    pub fill: char,
}

fn zero() -> char {
    '0'
}

/// Dedupe settings.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dedupe {
    /// Columns that identify a row.
    pub keys: Vec<String>,
    /// Which row of a repeated key to keep.
    #[serde(default)]
    pub keep: Keep,
}

/// Which duplicate survives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Keep {
    #[default]
    First,
    Last,
}

/// Unpivot settings.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Unpivot {
    /// Columns repeated on every long row.
    pub index: Vec<String>,
    /// Columns to turn into rows; default every other non-provenance column.
    #[serde(default)]
    pub on: Vec<String>,
    /// Name of the column holding the former column names.
    #[serde(default = "variable")]
    pub variable: String,
    /// Name of the column holding the values.
    #[serde(default = "value")]
    pub value: String,
}

fn variable() -> String {
    "variable".into()
}
fn value() -> String {
    "value".into()
}

/// Join settings.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Join {
    /// The other table, `layer.table` (layer silver or gold; `table` alone means gold).
    #[serde(rename = "ref")]
    pub reference: String,
    /// Key columns with the same name on both sides.
    #[serde(default)]
    pub on: Vec<String>,
    /// Key columns with different names, `left_column: right_column`.
    #[serde(default)]
    pub on_columns: IndexMap<String, String>,
    /// Join type; default left.
    #[serde(default)]
    pub how: JoinHow,
    /// Columns to take from the other table (default all but its keys and provenance).
    #[serde(default)]
    pub select: Vec<String>,
    /// Prefix for the other table's columns.
    pub prefix: Option<String>,
}

/// Join types.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JoinHow {
    #[default]
    Left,
    Inner,
}

/// Aggregate settings.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Aggregate {
    /// Grouping columns.
    pub group_by: Vec<String>,
    /// Output columns, `name: SQL aggregate expression` such as `sum(value)`.
    pub measures: IndexMap<String, String>,
}

/// Row rules. A row failing any rule is quarantined with the first rule it failed.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Columns that must not be null.
    #[serde(default)]
    pub not_null: Vec<String>,
    /// Columns whose combined value must be unique; later repeats are quarantined.
    #[serde(default)]
    pub unique: Vec<String>,
    /// Allowed values per column.
    #[serde(default)]
    pub accepted_values: IndexMap<String, Vec<String>>,
    /// A regex each non-null value must match in full.
    #[serde(default)]
    pub regex: IndexMap<String, String>,
    /// Inclusive numeric bounds per column.
    #[serde(default)]
    pub range: IndexMap<String, Range>,
    /// Named SQL predicates every row must satisfy.
    #[serde(default)]
    pub predicate: IndexMap<String, String>,
    /// Referential integrity: `column: layer.table.column`; a non-null value missing from the
    /// other table's column is an orphan (an edge in the plan).
    #[serde(default)]
    pub exists_in: IndexMap<String, String>,
}

/// Splits `layer.table.column` into the table reference and the column.
pub fn split_column_ref(target: &str) -> Option<(&str, &str)> {
    target.rsplit_once('.')
}

/// Inclusive bounds.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Range {
    pub min: Option<f64>,
    pub max: Option<f64>,
}
