//! Typed `wiq_schema.yml`: the semantic model (tables, keys, columns, relationships, measures,
//! glossary) that Power BI, the catalogue and lineage answers are built from.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The whole model file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Model name, e.g. `WiQ`.
    pub model: String,
    /// What the model is for.
    pub description: Option<String>,
    /// Tables by name; each must exist in the gold layer.
    pub tables: IndexMap<String, ModelTable>,
    /// Relationships from the many side to the one side.
    #[serde(default)]
    pub relationships: Vec<Relationship>,
    /// DAX measures for Power BI.
    #[serde(default)]
    pub measures: Vec<Measure>,
    /// Business glossary terms by name.
    #[serde(default)]
    pub glossary: IndexMap<String, GlossaryTerm>,
    /// Gold tables deliberately left out of the model.
    #[serde(default)]
    pub excluded: Vec<String>,
}

/// One table of the model.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelTable {
    /// dimension, fact or bridge.
    pub kind: TableKind,
    /// Column or columns that identify a row.
    #[serde(default)]
    pub primary_key: Keys,
    pub description: Option<String>,
    pub business_purpose: Option<String>,
    pub owner: Option<String>,
    pub steward: Option<String>,
    pub classification: Option<String>,
    /// Where the data comes from (publisher, file).
    pub source: Option<String>,
    /// Declared columns; every one must exist in gold.
    #[serde(default)]
    pub columns: IndexMap<String, ModelColumn>,
    /// How `jobforge load` writes the table: default `upsert` when it has a primary key, else
    /// `replace`.
    pub load: Option<LoadStrategy>,
}

/// How a table is loaded into a warehouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LoadStrategy {
    /// Every row replaced by gold's.
    Replace,
    /// By the primary key: new keys inserted, changed rows updated, keys gone from gold deleted.
    Upsert,
    /// The rows of batches (`_batch_id`) not loaded yet are added; none is changed or removed.
    Append,
}

impl LoadStrategy {
    pub fn name(self) -> &'static str {
        match self {
            LoadStrategy::Replace => "replace",
            LoadStrategy::Upsert => "upsert",
            LoadStrategy::Append => "append",
        }
    }
}

/// A key of one or several columns (`unit_group_id` or `[oasis_code, descriptor]`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Keys {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Keys {
    pub fn columns(&self) -> Vec<String> {
        match self {
            Keys::None => vec![],
            Keys::One(c) => vec![c.clone()],
            Keys::Many(v) => v.clone(),
        }
    }
}

/// Table kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    Dimension,
    Fact,
    Bridge,
}

/// One column of a model table.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelColumn {
    pub description: Option<String>,
    /// Glossary term this column carries.
    pub glossary_term: Option<String>,
    /// Whether the column holds personal information.
    #[serde(default)]
    pub pii: bool,
    /// Display format for reports, e.g. `#,0` or `0.0`.
    pub format: Option<String>,
    /// Expected type; checked against the gold data when given.
    #[serde(rename = "type")]
    pub data_type: Option<ColumnType>,
}

/// Column types as the model sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    Text,
    Integer,
    Decimal,
    Boolean,
    Date,
    Datetime,
}

/// A relationship from a many-side column to a one-side column.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Relationship {
    /// The many side, `table.column`.
    pub from: String,
    /// The one side, `table.column`.
    pub to: String,
    #[serde(default)]
    pub cardinality: Cardinality,
    #[serde(default)]
    pub cross_filter: CrossFilter,
    /// Whether the relationship is active in Power BI.
    #[serde(default = "yes")]
    pub active: bool,
    pub description: Option<String>,
    /// How orphans on the many side are reported: `error` (default) or `warn`.
    #[serde(default)]
    pub severity: Severity,
}

fn yes() -> bool {
    true
}

/// Relationship cardinality.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Cardinality {
    #[default]
    ManyToOne,
    OneToOne,
    ManyToMany,
}

/// Cross-filter direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CrossFilter {
    #[default]
    Single,
    Both,
}

/// Severity of a finding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warn,
    #[default]
    Error,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Warn => "warn",
            Severity::Error => "error",
        }
    }
}

/// A DAX measure.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    pub name: String,
    /// Table the measure lives on.
    pub table: String,
    /// DAX expression.
    pub expression: String,
    pub format: Option<String>,
    pub description: Option<String>,
}

/// A glossary term.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GlossaryTerm {
    pub definition: String,
    /// Where the definition comes from.
    pub source: Option<String>,
}

/// Splits `table.column`.
pub fn split_column(reference: &str) -> Option<(&str, &str)> {
    reference.split_once('.')
}
