//! Compile checks of `checks:`: every column named is a gold column of the table (with the
//! closest name when not), ages parse, bounds are in order, names are unique per table.
//! Each problem is located in the pipeline file, or in sources.yml for the project's defaults.

use super::{parse_age, Check, CheckKind};
use crate::diag::{did_you_mean, Diagnostics, SourceText};
use crate::plan::{Layer, Plan};
use std::collections::BTreeSet;

/// Checks the `checks:` of every table of the plan (located in its pipeline file) and the
/// project's default checks (located in sources.yml) against every table that gets them.
pub fn check_plan(plan: &Plan, sources_text: &SourceText, diags: &mut Diagnostics) {
    for table in &plan.tables {
        let mut names = BTreeSet::new();
        for check in &table.spec.checks {
            let label = check.label();
            if !names.insert(label.clone()) {
                diags.push(table.text.diag(
                    Some("checks"),
                    check.name.as_deref().unwrap_or(check.kind.key()),
                    format!("two checks of `{}` are named `{label}`; give one a `name`", table.name),
                ));
            }
            check_one(check, &table.name, table.columns.get(&Layer::Gold), &table.text, diags);
        }
        for check in &table.default_checks {
            check_one(check, &table.name, table.columns.get(&Layer::Gold), sources_text, diags);
        }
    }
}

/// One check of `table`: its column among gold's, its bounds and ages.
fn check_one(check: &Check, table: &str, gold: Option<&Vec<String>>, text: &SourceText, diags: &mut Diagnostics) {
    let label = check.label();
    let at = |token: &str, m: String| text.diag(Some("checks"), token, m);
    if let (Some(c), Some(gold)) = (check.kind.column(), gold) {
        // Provenance columns are in every layer, whatever the steps.
        if !gold.iter().any(|g| g == c) && !crate::plan::check::PROVENANCE.contains(&c) {
            let m = format!("check `{label}`: `{c}` is not a column of gold.{table}");
            diags.push(at(c, m).with_hint(did_you_mean(c, gold.iter().map(String::as_str))));
        }
    }
    let mut problem = |token: &str, m: String| diags.push(at(token, format!("check `{label}`: {m}")));
    match &check.kind {
        CheckKind::RowCount(r) => {
            if let (Some(lo), Some(hi)) = (r.min, r.max) {
                if lo > hi {
                    problem("row_count", format!("min {lo} is above max {hi}"));
                }
            }
            if r.min.is_none() && r.max.is_none() && r.max_change_percent.is_none() {
                problem("row_count", "give `min`, `max` or `max_change_percent`".into());
            }
        }
        CheckKind::NullRate(n) if !(0.0..=1.0).contains(&n.max) => {
            problem("null_rate", format!("max {} is a share of rows, between 0 and 1", n.max));
        }
        CheckKind::DistinctCount(d) => match (d.min, d.max) {
            (Some(lo), Some(hi)) if lo > hi => problem("distinct_count", format!("min {lo} is above max {hi}")),
            (None, None) => problem("distinct_count", "give `min` or `max`".into()),
            _ => {}
        },
        CheckKind::Range(r) => match (r.min, r.max) {
            (Some(lo), Some(hi)) if lo > hi => problem("range", format!("min {lo} is above max {hi}")),
            (None, None) => problem("range", "give `min` or `max`".into()),
            _ => {}
        },
        CheckKind::Freshness(f) => {
            for age in [&f.source_max_age, &f.max_age].into_iter().flatten() {
                if let Err(m) = parse_age(age) {
                    problem(age, m);
                }
            }
            match (&f.source_max_age, &f.column, &f.max_age) {
                (Some(_), None, None) | (None, Some(_), Some(_)) => {}
                _ => problem(
                    "freshness",
                    "give `source_max_age`, or `column` with `max_age` (e.g. column: _ingested_at, max_age: 1d)".into(),
                ),
            }
        }
        CheckKind::MeanDrift(m) if m.max_percent < 0.0 => {
            problem("mean_drift", format!("max_percent {} is negative", m.max_percent));
        }
        CheckKind::Sql(q) if q.trim().is_empty() => problem("sql", "the query is empty".into()),
        _ => {}
    }
}
