//! Data-quality checks (`checks:` in a pipeline file): declared per table, checked at compile
//! (`check`), evaluated on the table's gold layer by `run` after it builds the table and by
//! `jobforge check` on a committed run (`evaluate`). A failed `error` check fails its table: its
//! dependents are skipped and the published data of earlier runs stays. Results are records of
//! the run (`checks.json` in the run folder, `carried/checks/<table>.json` for a table it did not build).

pub mod compile;
pub mod evaluate;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One check: written as a one-key map naming its kind (`- row_count: { min: 1 }`), with an
/// optional `name` and `severity` beside it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(try_from = "CheckMap", into = "CheckMap")]
pub struct Check {
    pub name: Option<String>,
    pub severity: Severity,
    pub kind: CheckKind,
}

impl JsonSchema for Check {
    fn schema_name() -> String {
        "Check".into()
    }

    fn json_schema(gen: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
        CheckMap::json_schema(gen)
    }
}

/// How a failed check counts, as a finding of the model does: `warn` is reported (the table
/// still publishes); `error` fails the table (its dependents are skipped, it keeps its previous
/// version).
pub use crate::semantic::model::Severity;

/// What a check measures.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    RowCount(RowCount),
    NullRate(NullRate),
    DistinctCount(DistinctCount),
    Freshness(Freshness),
    Range(Range),
    MeanDrift(MeanDrift),
    Sql(String),
}

/// Rows in gold: bounds, and the change against the previous committed run.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RowCount {
    /// At least this many rows.
    pub min: Option<u64>,
    /// At most this many rows.
    pub max: Option<u64>,
    /// The count may change by at most this percentage from the previous committed run's.
    pub max_change_percent: Option<f64>,
}

/// The share of null values in a column, 0 to 1.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NullRate {
    pub column: String,
    /// The largest share of nulls allowed (0 allows none).
    pub max: f64,
}

/// The number of distinct non-null values in a column.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DistinctCount {
    pub column: String,
    pub min: Option<u64>,
    pub max: Option<u64>,
}

/// How old the data is: the source file's modification time (`source_max_age`), or the
/// newest value of a date or timestamp column (`column` with `max_age`). Ages are written as
/// a number and a unit: `90s`, `15m`, `36h`, `30d`, `2w`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Freshness {
    /// The source file must be younger than this.
    pub source_max_age: Option<String>,
    /// A date or timestamp column (e.g. `_ingested_at`) ...
    pub column: Option<String>,
    /// ... whose newest value must be younger than this.
    pub max_age: Option<String>,
}

/// Every non-null value of a numeric column within bounds.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Range {
    pub column: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// The mean of a numeric column against the previous committed run's.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MeanDrift {
    pub column: String,
    /// The largest change allowed, in percent of the previous mean.
    pub max_percent: f64,
}

/// The map a check is written as; exactly one kind is set.
#[derive(Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckMap {
    /// Name shown in results (default: the kind and its column).
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// `error` (default): a failure fails the table; `warn`: reported only.
    #[serde(default)]
    severity: Severity,
    /// Rows in gold: `min`, `max`, `max_change_percent` (against the previous run).
    #[serde(skip_serializing_if = "Option::is_none")]
    row_count: Option<RowCount>,
    /// Share of nulls in `column`, at most `max`.
    #[serde(skip_serializing_if = "Option::is_none")]
    null_rate: Option<NullRate>,
    /// Distinct values of `column`: `min`, `max`.
    #[serde(skip_serializing_if = "Option::is_none")]
    distinct_count: Option<DistinctCount>,
    /// Age of the source file (`source_max_age`) or of a column's newest value (`column`, `max_age`).
    #[serde(skip_serializing_if = "Option::is_none")]
    freshness: Option<Freshness>,
    /// Values of `column` within `min` and `max`.
    #[serde(skip_serializing_if = "Option::is_none")]
    range: Option<Range>,
    /// Mean of `column` within `max_percent` of the previous run's.
    #[serde(skip_serializing_if = "Option::is_none")]
    mean_drift: Option<MeanDrift>,
    /// A DuckDB query over the run's tables returning the offending rows; it passes when it
    /// returns none. Gold tables by name (`dim_noc`), other layers by schema (`silver.dim_noc`).
    #[serde(skip_serializing_if = "Option::is_none")]
    sql: Option<String>,
}

impl TryFrom<CheckMap> for Check {
    type Error = String;

    fn try_from(m: CheckMap) -> Result<Check, String> {
        let kinds: Vec<CheckKind> = [
            m.row_count.map(CheckKind::RowCount),
            m.null_rate.map(CheckKind::NullRate),
            m.distinct_count.map(CheckKind::DistinctCount),
            m.freshness.map(CheckKind::Freshness),
            m.range.map(CheckKind::Range),
            m.mean_drift.map(CheckKind::MeanDrift),
            m.sql.map(CheckKind::Sql),
        ]
        .into_iter()
        .flatten()
        .collect();
        match <[CheckKind; 1]>::try_from(kinds) {
            Ok([kind]) => Ok(Check { name: m.name, severity: m.severity, kind }),
            Err(v) if v.is_empty() => Err("a check needs one key naming its kind: row_count, null_rate, \
                 distinct_count, freshness, range, mean_drift or sql"
                .into()),
            Err(v) => Err(format!(
                "a check has exactly one kind, this one has {}; write them as separate list items",
                v.len()
            )),
        }
    }
}

impl From<Check> for CheckMap {
    fn from(c: Check) -> CheckMap {
        let mut m = CheckMap { name: c.name, severity: c.severity, ..Default::default() };
        match c.kind {
            CheckKind::RowCount(x) => m.row_count = Some(x),
            CheckKind::NullRate(x) => m.null_rate = Some(x),
            CheckKind::DistinctCount(x) => m.distinct_count = Some(x),
            CheckKind::Freshness(x) => m.freshness = Some(x),
            CheckKind::Range(x) => m.range = Some(x),
            CheckKind::MeanDrift(x) => m.mean_drift = Some(x),
            CheckKind::Sql(x) => m.sql = Some(x),
        }
        m
    }
}

impl CheckKind {
    /// The kind's key.
    pub fn key(&self) -> &'static str {
        match self {
            CheckKind::RowCount(_) => "row_count",
            CheckKind::NullRate(_) => "null_rate",
            CheckKind::DistinctCount(_) => "distinct_count",
            CheckKind::Freshness(_) => "freshness",
            CheckKind::Range(_) => "range",
            CheckKind::MeanDrift(_) => "mean_drift",
            CheckKind::Sql(_) => "sql",
        }
    }

    /// The column the check reads, if one.
    pub fn column(&self) -> Option<&str> {
        match self {
            CheckKind::NullRate(x) => Some(&x.column),
            CheckKind::DistinctCount(x) => Some(&x.column),
            CheckKind::Freshness(x) => x.column.as_deref(),
            CheckKind::Range(x) => Some(&x.column),
            CheckKind::MeanDrift(x) => Some(&x.column),
            CheckKind::RowCount(_) | CheckKind::Sql(_) => None,
        }
    }
}

impl Check {
    /// The name results carry: the given one, else the kind and its column (`null_rate(title)`).
    pub fn label(&self) -> String {
        match (&self.name, self.kind.column()) {
            (Some(n), _) => n.clone(),
            (None, Some(c)) => format!("{}({c})", self.kind.key()),
            (None, None) => self.kind.key().to_string(),
        }
    }
}

/// Results for people: one line per check, then the totals.
pub fn render(m: &crate::store::Manifest, results: &[crate::records::CheckResult]) -> String {
    let mut out = format!("checks of run #{} {}\n", m.seq, m.run_id);
    for r in results {
        let verdict = match (r.passed, r.severity.as_str()) {
            (true, _) => "pass",
            (false, "warn") => "WARN",
            (false, _) => "FAIL",
        };
        out.push_str(&format!("  {verdict:<5} {}.{}: {}\n", r.table, r.check, r.message));
    }
    let count = |f: &dyn Fn(&crate::records::CheckResult) -> bool| results.iter().filter(|r| f(r)).count();
    out.push_str(&format!(
        "{} checks: {} passed, {} warned, {} failed\n",
        results.len(),
        count(&|r| r.passed),
        count(&|r| !r.passed && !r.fails_table()),
        count(&|r| r.fails_table())
    ));
    out
}

/// Parses an age: a whole number and a unit (`s`, `m`, `h`, `d`, `w`).
pub fn parse_age(text: &str) -> Result<chrono::Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: i64 =
        number.parse().map_err(|_| format!("`{text}` is not an age: write a number and a unit, e.g. 36h or 30d"))?;
    match unit.trim() {
        "s" => Ok(chrono::Duration::seconds(n)),
        "m" => Ok(chrono::Duration::minutes(n)),
        "h" => Ok(chrono::Duration::hours(n)),
        "d" => Ok(chrono::Duration::days(n)),
        "w" => Ok(chrono::Duration::weeks(n)),
        _ => Err(format!("`{text}` is not an age: the unit is one of s, m, h, d, w (e.g. 36h or 30d)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_read_as_one_key_maps() {
        let checks: Vec<Check> = serde_yaml::from_str(
            "- row_count: { min: 10, max_change_percent: 5 }\n- null_rate: { column: title, max: 0 }\n  severity: warn\n\
             - sql: select 1 where false\n  name: nothing\n",
        )
        .unwrap();
        assert_eq!(
            checks[0].kind,
            CheckKind::RowCount(RowCount { min: Some(10), max: None, max_change_percent: Some(5.0) })
        );
        assert_eq!((checks[1].severity, checks[1].label().as_str()), (Severity::Warn, "null_rate(title)"));
        assert_eq!(checks[2].label(), "nothing");
        let two = serde_yaml::from_str::<Vec<Check>>("- row_count: {}\n  range: { column: x }\n").unwrap_err();
        assert!(two.to_string().contains("exactly one kind"), "{two}");
    }

    #[test]
    fn ages() {
        assert_eq!(parse_age("36h").unwrap(), chrono::Duration::hours(36));
        assert_eq!(parse_age("2w").unwrap(), chrono::Duration::days(14));
        assert!(parse_age("soon").unwrap_err().contains("not an age"));
        assert!(parse_age("3y").unwrap_err().contains("unit"));
    }
}
