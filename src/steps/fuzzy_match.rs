//! `match`: fuzzy matching of text columns of this table against text columns of another
//! (`ref`), for bridges between taxonomies that share no code. Each row gets its best `top_k`
//! candidates scoring at least `min_score` (one row per candidate, like a join that fans out),
//! with the candidate's key columns, the score as a confidence in [0, 1], the rank from 1 and the
//! method (scorer and the pair of columns that scored best). A candidate's score is its best
//! over every pair of (this column, candidate column). Ties rank by the candidate's key, so the
//! output is the same on every run. Rows without a candidate are dropped and counted, or kept
//! with nulls (`keep_unmatched`).

use super::similarity::{self, Normalize, Prepared, WordWeights};
use super::{ColumnInput, StepKind};
use crate::exec::steps::{RefReader, StepResult};
use crate::plan::check::{require, Problem};
use crate::records::RowCounts;
use indexmap::IndexMap;
use polars::prelude::*;
use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Settings of a `match` step.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// Text columns of this table to match.
    pub columns: Vec<String>,
    /// The table of candidates, `layer.table` (silver or gold; an edge in the plan).
    #[serde(rename = "ref")]
    pub reference: String,
    /// The candidates' key columns, added to each matched row (after `prefix`).
    pub key: Vec<String>,
    /// The candidates' text columns.
    pub against: Vec<String>,
    /// `token_set` (default), `token_sort`, `jaro_winkler`, `levenshtein`, `tfidf`, or a weighted mix
    /// such as `{ token_set: 0.7, jaro_winkler: 0.3 }`.
    #[serde(default)]
    pub scorer: Scorer,
    /// Normalisation of both sides before scoring.
    #[serde(default)]
    pub normalize: Normalize,
    /// Candidates kept per row, best first; default 1.
    #[serde(default = "one")]
    pub top_k: usize,
    /// Lowest score kept, 0 to 1; default 0.
    #[serde(default)]
    pub min_score: f64,
    /// Prefix of the added key columns.
    pub prefix: Option<String>,
    /// Keep a row with no candidate, with null key, score, rank and method; default false.
    #[serde(default)]
    pub keep_unmatched: bool,
    /// Name of the score column; default `match_score`.
    #[serde(default = "score_column")]
    pub score_column: String,
    /// Name of the rank column (1 = best); default `match_rank`.
    #[serde(default = "rank_column")]
    pub rank_column: String,
    /// Name of the method column; default `match_method`.
    #[serde(default = "method_column")]
    pub method_column: String,
}

fn one() -> usize {
    1
}
fn score_column() -> String {
    "match_score".into()
}
fn rank_column() -> String {
    "match_rank".into()
}
fn method_column() -> String {
    "match_method".into()
}

/// A scorer, or several weighted.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Scorer {
    One(ScorerKind),
    Mix(IndexMap<ScorerKind, f64>),
}

impl Default for Scorer {
    fn default() -> Self {
        Scorer::One(ScorerKind::TokenSet)
    }
}

/// The text similarity measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScorerKind {
    /// Shared words against each side's own words (rapidfuzz's token_set_ratio).
    TokenSet,
    /// The sorted words compared as one text.
    TokenSort,
    /// Jaro-Winkler on the whole normalised text (short texts such as names).
    JaroWinkler,
    /// 1 - Levenshtein distance / the longer length.
    Levenshtein,
    /// Cosine of the word sets weighted by how rare each word is among the candidates
    /// (TF-IDF): shared distinctive words count, shared common ones barely.
    Tfidf,
}

impl ScorerKind {
    fn name(self) -> &'static str {
        match self {
            ScorerKind::TokenSet => "token_set",
            ScorerKind::TokenSort => "token_sort",
            ScorerKind::JaroWinkler => "jaro_winkler",
            ScorerKind::Levenshtein => "levenshtein",
            ScorerKind::Tfidf => "tfidf",
        }
    }

    fn score(self, a: &Prepared, b: &Prepared, weights: &WordWeights) -> f64 {
        match self {
            ScorerKind::TokenSet => similarity::token_set(a, b),
            ScorerKind::TokenSort => similarity::token_sort(a, b),
            ScorerKind::JaroWinkler => similarity::jaro_winkler(&a.chars, &b.chars),
            ScorerKind::Levenshtein => similarity::levenshtein(&a.chars, &b.chars),
            ScorerKind::Tfidf => similarity::tfidf(a, b, weights),
        }
    }
}

impl Scorer {
    /// `token_set`, or `0.7*token_set+0.3*jaro_winkler`.
    fn name(&self) -> String {
        match self {
            Scorer::One(k) => k.name().to_string(),
            Scorer::Mix(m) => m.iter().map(|(k, w)| format!("{w}*{}", k.name())).collect::<Vec<_>>().join("+"),
        }
    }

    /// The score of one pair (called for every pair: allocates nothing).
    fn score(&self, a: &Prepared, b: &Prepared, weights: &WordWeights) -> f64 {
        match self {
            Scorer::One(k) => k.score(a, b, weights),
            Scorer::Mix(m) => m.iter().map(|(k, w)| w * k.score(a, b, weights)).sum::<f64>() / m.values().sum::<f64>(),
        }
    }
}

impl Match {
    fn outputs(&self) -> Vec<String> {
        let prefix = self.prefix.as_deref().unwrap_or("");
        let mut out: Vec<String> = self.key.iter().map(|k| format!("{prefix}{k}")).collect();
        out.extend([self.score_column.clone(), self.rank_column.clone(), self.method_column.clone()]);
        out
    }

    /// Whether a candidate sharing no word with a row's texts scores below `min_score` whatever
    /// its texts: such a pair scores 0 by TF-IDF and at most 1 by any other scorer, so the best
    /// it can reach is the weight of the scorers other than TF-IDF.
    fn only_shared_words_can_score(&self) -> bool {
        let without_shared_words = match &self.scorer {
            Scorer::One(ScorerKind::Tfidf) => 0.0,
            Scorer::One(_) => 1.0,
            Scorer::Mix(m) if m.values().any(|w| *w <= 0.0 || !w.is_finite()) => 1.0,
            Scorer::Mix(m) => {
                let other: f64 = m.iter().filter(|(k, _)| **k != ScorerKind::Tfidf).map(|(_, w)| w).sum();
                other / m.values().sum::<f64>()
            }
        };
        // Scores are rounded to 4 decimals before they are compared.
        (without_shared_words * 10_000.0).round() / 10_000.0 < self.min_score
    }

    /// Each row's texts prepared, one per column (None for null).
    fn prepare(&self, df: &DataFrame, columns: &[String]) -> PolarsResult<Vec<Vec<Option<Prepared>>>> {
        let stop = self.normalize.stop_set();
        let texts = columns.iter().map(|c| df.column(c)?.cast(&DataType::String)).collect::<PolarsResult<Vec<_>>>()?;
        let texts = texts.iter().map(|c| c.str().cloned()).collect::<PolarsResult<Vec<_>>>()?;
        Ok((0..df.height())
            .map(|row| {
                texts
                    .iter()
                    .map(|t| t.get(row).map(|s| Prepared::new(&self.normalize.apply(s), &stop, self.normalize.stem)))
                    .collect()
            })
            .collect())
    }
}

/// The candidates that have each word, to score only those sharing a word with a row's texts
/// (when no other can reach `min_score`; see `only_shared_words_can_score`).
struct SharedWords<'a> {
    having: std::collections::HashMap<&'a str, Vec<usize>>,
}

impl<'a> SharedWords<'a> {
    fn new(candidates: &'a [Vec<Option<Prepared>>]) -> Self {
        let mut having: std::collections::HashMap<&str, Vec<usize>> = std::collections::HashMap::new();
        for (c, texts) in candidates.iter().enumerate() {
            for word in texts.iter().flatten().flat_map(|t| &t.tokens) {
                let list = having.entry(word.as_str()).or_default();
                if list.last() != Some(&c) {
                    list.push(c);
                }
            }
        }
        SharedWords { having }
    }

    /// The candidates sharing a word with `texts`, in candidate order.
    fn candidates(&self, texts: &[Option<Prepared>]) -> Vec<usize> {
        let mut found: Vec<usize> = texts
            .iter()
            .flatten()
            .flat_map(|t| &t.tokens)
            .filter_map(|w| self.having.get(w.as_str()))
            .flatten()
            .copied()
            .collect();
        found.sort_unstable();
        found.dedup();
        found
    }
}

/// One candidate kept for a row.
#[derive(Debug, Clone)]
struct Scored {
    candidate: usize,
    score: f64,
    /// Which (this column, candidate column) scored best.
    pair: (usize, usize),
}

impl StepKind for Match {
    fn label(&self) -> String {
        format!("match({} ~ {})", self.columns.join(", "), self.reference)
    }

    fn references(&self) -> Vec<String> {
        vec![self.reference.clone()]
    }

    fn check_static(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut problem = |token: &str, message: String| {
            problems.push(Problem { token: token.to_string(), message, hint: None });
        };
        for (name, list) in [("columns", &self.columns), ("key", &self.key), ("against", &self.against)] {
            if list.is_empty() {
                problem("match", format!("`match` needs at least one column in `{name}`"));
            }
        }
        if self.top_k == 0 {
            problem("top_k", "`top_k` must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.min_score) {
            problem("min_score", format!("`min_score` is {}; scores run from 0 to 1", self.min_score));
        }
        if let Scorer::Mix(m) = &self.scorer {
            if m.is_empty() || m.values().any(|w| !w.is_finite() || *w <= 0.0) {
                problem("scorer", "a weighted `scorer` needs at least one scorer, every weight above 0".into());
            }
        }
        problems
    }

    fn columns(
        &self,
        mut cols: Vec<String>,
        ref_columns: &dyn Fn(&str) -> Option<Vec<String>>,
        problems: &mut Vec<Problem>,
    ) -> Option<Vec<String>> {
        require(&self.columns, "match columns", &cols, problems);
        if let Some(other) = ref_columns(&self.reference) {
            let context = format!("match of `{}`", self.reference);
            require(&self.key, &format!("{context} (key)"), &other, problems);
            require(&self.against, &format!("{context} (against)"), &other, problems);
        }
        for name in self.outputs() {
            if cols.contains(&name) {
                problems.push(Problem {
                    token: name.clone(),
                    message: format!("match output `{name}` is already a column"),
                    hint: Some("set `prefix` or the `*_column` names so the outputs are new".into()),
                });
            } else {
                cols.push(name);
            }
        }
        Some(cols)
    }

    fn lineage(&self, column: &str) -> Option<(Vec<ColumnInput>, String)> {
        let prefix = self.prefix.as_deref().unwrap_or("");
        if let Some(key) = self.key.iter().find(|k| format!("{prefix}{k}") == column) {
            return Some((
                vec![ColumnInput::Ref(self.reference.clone(), key.clone())],
                format!("match key from `{}` ({})", self.reference, self.scorer.name()),
            ));
        }
        if [&self.score_column, &self.rank_column, &self.method_column].contains(&&column.to_string()) {
            let mut inputs: Vec<ColumnInput> = self.columns.iter().cloned().map(ColumnInput::Local).collect();
            inputs.extend(self.against.iter().map(|c| ColumnInput::Ref(self.reference.clone(), c.clone())));
            return Some((
                inputs,
                format!("match {} of [{}] against `{}`", self.scorer.name(), self.columns.join(", "), self.reference),
            ));
        }
        None
    }

    fn apply(&self, df: DataFrame, refs: &RefReader) -> PolarsResult<StepResult> {
        let right = refs(&self.reference)?;
        let candidates = self.prepare(&right, &self.against)?;
        let rows = self.prepare(&df, &self.columns)?;
        let weights = WordWeights::new(candidates.iter().flatten().flatten());
        // Ties rank by the candidate's key as text.
        let keys = right.select(self.key.iter().map(String::as_str))?;
        let key_text: Vec<String> = (0..keys.height())
            .map(|i| {
                keys.columns()
                    .iter()
                    .map(|c| c.get(i).map(|v| v.to_string()).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("\u{1f}")
            })
            .collect();
        let sharing = self.only_shared_words_can_score().then(|| SharedWords::new(&candidates));
        let best = |texts: &Vec<Option<Prepared>>| -> Vec<Scored> {
            let mut kept: Vec<Scored> = Vec::new();
            let scored = match &sharing {
                Some(s) => s.candidates(texts),
                None => (0..candidates.len()).collect(),
            };
            for candidate in scored {
                let their = &candidates[candidate];
                let mut top: Option<Scored> = None;
                for (i, mine) in texts.iter().enumerate() {
                    let Some(mine) = mine else { continue };
                    for (j, theirs) in their.iter().enumerate() {
                        let Some(theirs) = theirs else { continue };
                        let score = (self.scorer.score(mine, theirs, &weights) * 10_000.0).round() / 10_000.0;
                        if top.as_ref().is_none_or(|t| score > t.score) {
                            top = Some(Scored { candidate, score, pair: (i, j) });
                        }
                    }
                }
                if let Some(t) = top.filter(|t| t.score >= self.min_score) {
                    kept.push(t);
                }
            }
            kept.sort_by(|a, b| {
                b.score.total_cmp(&a.score).then_with(|| key_text[a.candidate].cmp(&key_text[b.candidate]))
            });
            kept.truncate(self.top_k);
            kept
        };
        let matches: Vec<Vec<Scored>> =
            polars_core::runtime::THREAD_POOL.install(|| rows.par_iter().map(best).collect());

        let mut left_rows: Vec<IdxSize> = Vec::new();
        let mut right_rows: Vec<Option<IdxSize>> = Vec::new();
        let (mut scores, mut ranks, mut methods) = (Vec::new(), Vec::new(), Vec::new());
        let mut counts = RowCounts::default();
        let scorer = self.scorer.name();
        for (row, found) in matches.iter().enumerate() {
            if found.is_empty() {
                if self.keep_unmatched {
                    left_rows.push(row as IdxSize);
                    right_rows.push(None);
                    scores.push(None);
                    ranks.push(None);
                    methods.push(None);
                } else {
                    counts.rows_join_dropped += 1;
                }
                continue;
            }
            counts.rows_fanout_added += found.len() as u64 - 1;
            for (rank, s) in found.iter().enumerate() {
                left_rows.push(row as IdxSize);
                right_rows.push(Some(s.candidate as IdxSize));
                scores.push(Some(s.score));
                ranks.push(Some(rank as i32 + 1));
                methods.push(Some(format!("{scorer}({} ~ {})", self.columns[s.pair.0], self.against[s.pair.1])));
            }
        }
        let mut out = df.take(&IdxCa::from_vec("".into(), left_rows))?;
        let taken = keys.take(&IdxCa::from_iter_options("".into(), right_rows.into_iter()))?;
        let prefix = self.prefix.as_deref().unwrap_or("");
        for c in taken.columns() {
            let mut c = c.clone();
            c.rename(format!("{prefix}{}", c.name()).into());
            out.with_column(c)?;
        }
        out.with_column(Column::new(self.score_column.as_str().into(), scores))?;
        out.with_column(Column::new(self.rank_column.as_str().into(), ranks))?;
        out.with_column(Column::new(self.method_column.as_str().into(), methods))?;
        Ok(StepResult { df: out, quarantined: None, counts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str, values: &[&str]) -> DataFrame {
        DataFrame::new_infer_height(vec![Column::new(name.into(), values)]).unwrap()
    }

    #[test]
    fn best_candidates_rank_first_with_deterministic_ties() {
        let groups = DataFrame::new_infer_height(vec![
            Column::new("code".into(), ["FI", "PE", "ZZ", "AA"]),
            Column::new(
                "name".into(),
                ["Financial Management", "Human Resources Management", "Financial Management", "Air Traffic Control"],
            ),
        ])
        .unwrap();
        let step: Match = serde_yaml::from_str(
            "{columns: [title], ref: silver.groups, key: [code], against: [name], top_k: 2, min_score: 0.5, prefix: og_}",
        )
        .unwrap();
        let refs = move |_: &str| Ok(groups.clone());
        let df = frame("title", &["Financial managers", "Human resources managers", "Legislators"]);
        let out = step.apply(df, &refs).unwrap();
        let codes: Vec<Option<&str>> = out.df.column("og_code").unwrap().str().unwrap().iter().collect();
        // FI and ZZ tie on the score: the key decides. Only PE reaches 0.5 for human resources;
        // Legislators has no candidate.
        assert_eq!(codes, [Some("FI"), Some("ZZ"), Some("PE")]);
        let ranks: Vec<Option<i32>> = out.df.column("match_rank").unwrap().i32().unwrap().iter().collect();
        assert_eq!(ranks, [Some(1), Some(2), Some(1)]);
        assert_eq!(out.counts.rows_join_dropped, 1);
        assert_eq!(out.counts.rows_fanout_added, 1);
        let method = out.df.column("match_method").unwrap().str().unwrap().get(0).unwrap().to_string();
        assert_eq!(method, "token_set(title ~ name)");
    }

    /// Scoring only the candidates that share a word gives what scoring all of them gives,
    /// whenever no other candidate could reach the minimum.
    #[test]
    fn candidates_sharing_no_word_are_skipped_only_when_they_cannot_score() {
        let names = [
            "Financial Management",
            "Financial Services",
            "Human Resources Management",
            "Engineering",
            "Engineers",
            "Air Traffic Control",
            "Finance",
            "Management Services",
            "Managerial",
            "Clerks",
        ];
        let codes: Vec<String> = (0..names.len()).map(|i| format!("C{i}")).collect();
        let groups =
            DataFrame::new_infer_height(vec![Column::new("code".into(), codes), Column::new("name".into(), names)])
                .unwrap();
        let titles = ["Financial managers", "Engineering managers", "Traffic clerks", "Finance", "Manager", "Xyz"];
        let run = |scorer: &str, min_score: f64| {
            let yaml = format!(
                "{{columns: [title], ref: silver.groups, key: [code], against: [name], scorer: {scorer}, top_k: 100, min_score: {min_score}}}"
            );
            let step: Match = serde_yaml::from_str(&yaml).unwrap();
            let refs = |_: &str| Ok(groups.clone());
            let pruned = step.only_shared_words_can_score();
            let out = step.apply(frame("title", &titles), &refs).unwrap().df;
            (pruned, out)
        };
        let cases = [("{tfidf: 0.5, token_set: 0.5}", 0.6), ("tfidf", 0.3), ("{tfidf: 1, jaro_winkler: 3}", 0.7)];
        for (scorer, min_score) in cases {
            let (pruned, kept) = run(scorer, min_score);
            let (all_scored, everything) = run(scorer, 0.0);
            assert!(!all_scored);
            assert_eq!(pruned, scorer != "{tfidf: 1, jaro_winkler: 3}", "{scorer}");
            let score = everything.column("match_score").unwrap().f64().unwrap().clone();
            let expected = everything.filter(&score.gt_eq(min_score)).unwrap();
            assert!(kept.height() > 0, "{scorer}");
            assert!(kept.equals_missing(&expected), "{scorer}: {kept} vs {expected}");
        }
    }
}
