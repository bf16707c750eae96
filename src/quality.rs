//! `jobforge quality`: a data-quality scorecard per table on named dimensions, computed from
//! each kept run's own records (table metadata, transition logs, quarantine, check results),
//! with its history over the kept runs. Scores run from 0 to 1; a dimension the table does not
//! measure (no rule or check of that kind) has no score.
//!
//! - completeness: non-null cells of gold (provenance columns aside);
//! - validity: rows not quarantined by casts and value rules (not_null, regex, accepted values,
//!   ranges, predicates), of the rows read;
//! - uniqueness: rows not quarantined by `unique` rules, of the rows read;
//! - referential consistency: rows not quarantined by `exists_in` rules, of the rows read;
//! - timeliness: `freshness` checks passed;
//! - checks: all checks passed.

use crate::plan::check::PROVENANCE;
use crate::store::{Manifest, Store};
use polars::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

/// The dimensions, in the order they are shown.
pub const DIMENSIONS: [&str; 6] = ["completeness", "validity", "uniqueness", "referential", "timeliness", "checks"];

/// One table's scores in one run.
#[derive(Debug, Clone, Serialize)]
pub struct Scores {
    pub seq: u64,
    pub run_id: String,
    pub committed_at: chrono::DateTime<chrono::Utc>,
    /// Dimension -> score (absent when not measured).
    pub scores: BTreeMap<String, f64>,
}

/// One table's scorecard: the latest run's scores and every kept run's, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct Scorecard {
    pub table: String,
    pub latest: BTreeMap<String, f64>,
    pub history: Vec<Scores>,
}

/// The scorecards of every table over the kept runs.
pub fn scorecards(store: &Store) -> Vec<Scorecard> {
    let mut runs: Vec<Manifest> = store.manifests().into_iter().filter(|m| m.kind == "run").collect();
    runs.sort_by_key(|m| m.seq);
    let mut cards: BTreeMap<String, Vec<Scores>> = BTreeMap::new();
    for m in &runs {
        for (table, scores) in run_scores(store, m) {
            cards.entry(table).or_default().push(Scores {
                seq: m.seq,
                run_id: m.run_id.clone(),
                committed_at: m.committed_at,
                scores,
            });
        }
    }
    cards
        .into_iter()
        .map(|(table, history)| Scorecard {
            table,
            latest: history.last().map(|s| s.scores.clone()).unwrap_or_default(),
            history,
        })
        .collect()
}

/// The scores of every table of snapshot `m`.
fn run_scores(store: &Store, m: &Manifest) -> BTreeMap<String, BTreeMap<String, f64>> {
    let metadata = store.table_metadata(m);
    let transitions = store.transitions(m);
    let checks = store.checks(m);
    let quarantine = store.layer_files(m, "quarantine");
    let mut out = BTreeMap::new();
    for (table, entry) in &m.tables {
        if !entry.files.contains_key("gold") {
            continue;
        }
        let mut scores = BTreeMap::new();
        if let Some(gold) = metadata.iter().find(|t| &t.name == table && t.layer == "gold") {
            let columns: Vec<_> = gold.columns.iter().filter(|c| !PROVENANCE.contains(&c.name.as_str())).collect();
            let cells = gold.row_count as f64 * columns.len() as f64;
            if cells > 0.0 {
                let nulls: u64 = columns.iter().map(|c| c.null_count).sum();
                scores.insert("completeness".to_string(), 1.0 - nulls as f64 / cells);
            }
        }
        let read: u64 = transitions
            .iter()
            .filter(|t| &t.table == table && t.target_layer == "bronze")
            .map(|t| t.counts.rows_in)
            .sum();
        let rules = quarantine.get(table).map(|f| rule_counts(f)).unwrap_or_default();
        let declared = |prefix: &str| {
            transitions
                .iter()
                .filter(|t| &t.table == table)
                .flat_map(|t| &t.steps_applied)
                .any(|s| s.step.contains(prefix))
        };
        if read > 0 {
            let share = |n: u64| 1.0 - n as f64 / read as f64;
            let of = |prefix: &str| rules.iter().filter(|(r, _)| r.starts_with(prefix)).map(|(_, n)| n).sum::<u64>();
            let (unique, exists) = (of("unique("), of("exists_in("));
            let total: u64 = rules.values().sum();
            scores.insert("validity".into(), share(total - unique - exists));
            if unique > 0 || declared("unique") {
                scores.insert("uniqueness".into(), share(unique));
            }
            if exists > 0 || declared("exists_in") {
                scores.insert("referential".into(), share(exists));
            }
        }
        let mine: Vec<_> = checks.iter().filter(|c| &c.table == table).collect();
        let passed = |kind: Option<&str>| {
            let of: Vec<_> = mine.iter().filter(|c| kind.is_none_or(|k| c.kind == k)).collect();
            (!of.is_empty()).then(|| of.iter().filter(|c| c.passed).count() as f64 / of.len() as f64)
        };
        if let Some(s) = passed(Some("freshness")) {
            scores.insert("timeliness".into(), s);
        }
        if let Some(s) = passed(None) {
            scores.insert("checks".into(), s);
        }
        out.insert(table.clone(), scores);
    }
    out
}

/// Quarantined rows by rule name in a quarantine file.
fn rule_counts(file: &std::path::Path) -> BTreeMap<String, u64> {
    let Ok(f) = std::fs::File::open(file) else { return BTreeMap::new() };
    let Ok(df) = ParquetReader::new(f).with_columns(Some(vec!["_rule".into()])).finish() else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    if let Ok(rules) = df.column("_rule").and_then(|c| c.str().cloned()) {
        for r in rules.iter().flatten() {
            *out.entry(r.to_string()).or_insert(0) += 1;
        }
    }
    out
}

/// The scorecards for people: one line per table with the latest scores and, per dimension,
/// the change since the previous kept run.
pub fn render(cards: &[Scorecard]) -> String {
    let mut out = format!("{:<34}", "table");
    for d in DIMENSIONS {
        out.push_str(&format!(" {d:>13}"));
    }
    out.push_str("  runs\n");
    for c in cards {
        out.push_str(&format!("{:<34}", c.table));
        let before = c.history.len().checked_sub(2).map(|i| &c.history[i].scores);
        for d in DIMENSIONS {
            let cell = match (c.latest.get(d), before.and_then(|b| b.get(d))) {
                (Some(now), Some(then)) if (now - then).abs() >= 0.0005 => {
                    format!("{:.3}{}", now, if now > then { "+" } else { "-" })
                }
                (Some(now), _) => format!("{now:.3} "),
                (None, _) => "- ".to_string(),
            };
            out.push_str(&format!(" {cell:>13}"));
        }
        out.push_str(&format!("  {}\n", c.history.len()));
    }
    out.push_str("scores 0 to 1 on the latest run; + or - : changed since the run before; - : not measured\n");
    out
}

/// A small inline SVG of one dimension's scores over the kept runs (0 at the bottom, 1 at the
/// top), for the catalogue.
pub fn sparkline(history: &[Scores], dimension: &str) -> String {
    let points: Vec<(usize, f64)> =
        history.iter().enumerate().filter_map(|(i, s)| s.scores.get(dimension).map(|v| (i, *v))).collect();
    let (w, h) = (120.0, 24.0);
    let n = history.len().max(2) - 1;
    let xy =
        |(i, v): (usize, f64)| (2.0 + i as f64 * (w - 4.0) / n as f64, 2.0 + (1.0 - v.clamp(0.0, 1.0)) * (h - 4.0));
    let line: Vec<String> = points.iter().map(|p| xy(*p)).map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    let last = points.last().map(|p| xy(*p));
    let dot = last.map_or(String::new(), |(x, y)| format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2\"/>"));
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{dimension} over {} runs\">\
         <polyline fill=\"none\" stroke=\"currentColor\" points=\"{}\"/>{dot}</svg>",
        history.len(),
        line.join(" ")
    )
}
