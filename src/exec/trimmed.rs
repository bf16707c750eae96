//! The usual `clean` step, `trim`, `replace` of literal texts and `empty_as_null`, on text
//! columns without a Polars query: each value is looked at once, and a column none of whose
//! values change is kept as it is, the same arrays, so that the layer written next takes its
//! encoded pages (see `exec::parquet::Encoded`). A `replace` pattern is taken here when it is a
//! plain text (`,`: every occurrence) or a whole value from a short list (`^N/A$`,
//! `^N/[AD]$`), its replacement without `$` groups; any other goes to the query, whose regex
//! engine it needs. Reads as the step's expressions read (`tests` compares the two).

use crate::config::pipeline::Clean;
use polars::prelude::*;
use polars_arrow::array::{MutableBinaryViewArray, Utf8ViewArray};
use regex_syntax::hir::{Class, Hir, HirKind, Look};
use std::borrow::Cow;

/// Values a whole-value pattern may stand for at most.
const MOST_VALUES: usize = 64;

/// What a `clean` does to each value of a column: trimmed, then each replacement in order,
/// then an empty value null.
pub(super) struct Cleaning {
    trim: bool,
    replace: Vec<(Pattern, String)>,
    empty_as_null: bool,
}

/// A `replace` pattern told without a regex.
#[derive(Debug, PartialEq)]
enum Pattern {
    /// A whole value equal to one of these.
    Whole(Vec<String>),
    /// This text wherever it occurs.
    Anywhere(String),
}

impl Cleaning {
    /// Trimming alone.
    pub(super) fn trim() -> Cleaning {
        Cleaning { trim: true, replace: vec![], empty_as_null: false }
    }

    /// What `c` does, when it asks for nothing beyond trim, literal replacements and nulls.
    fn of(c: &Clean) -> Option<Cleaning> {
        if c.case.is_some() || c.extract.is_some() || c.pad.is_some() {
            return None;
        }
        let replace = c
            .replace
            .iter()
            .map(|(pattern, with)| Some((literal(pattern)?, with.clone())).filter(|_| !with.contains('$')))
            .collect::<Option<Vec<_>>>()?;
        Some(Cleaning { trim: c.trim, replace, empty_as_null: c.empty_as_null })
    }

    /// `v` cleaned; `None` for null.
    fn apply<'a>(&'a self, v: &'a str) -> Option<Cow<'a, str>> {
        let mut v = Cow::Borrowed(if self.trim { v.trim() } else { v });
        for (pattern, with) in &self.replace {
            match pattern {
                Pattern::Whole(values) => {
                    if values.iter().any(|x| x == v.as_ref()) {
                        v = Cow::Borrowed(with.as_str());
                    }
                }
                Pattern::Anywhere(text) => {
                    if v.contains(text.as_str()) {
                        v = Cow::Owned(v.replace(text.as_str(), with));
                    }
                }
            }
        }
        Some(v).filter(|v| !(self.empty_as_null && v.is_empty()))
    }
}

/// `pattern` (a regex) as a literal text or a list of whole values, where it is one.
fn literal(pattern: &str) -> Option<Pattern> {
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    match hir.kind() {
        HirKind::Literal(text) if !text.0.is_empty() => {
            Some(Pattern::Anywhere(String::from_utf8(text.0.to_vec()).ok()?))
        }
        HirKind::Concat(parts) => {
            let (first, rest) = parts.split_first()?;
            let (last, middle) = rest.split_last()?;
            let anchored = first.kind() == &HirKind::Look(Look::Start) && last.kind() == &HirKind::Look(Look::End);
            if !anchored {
                return None;
            }
            concatenated(middle).map(Pattern::Whole)
        }
        _ => None,
    }
}

/// Every text `hir` matches, where they are few: literals, small classes, groups,
/// concatenations and alternations of them.
fn texts(hir: &Hir) -> Option<Vec<String>> {
    match hir.kind() {
        HirKind::Empty => Some(vec![String::new()]),
        HirKind::Literal(text) => Some(vec![String::from_utf8(text.0.to_vec()).ok()?]),
        HirKind::Class(Class::Unicode(class)) => {
            let mut out = Vec::new();
            for range in class.iter() {
                for c in range.start()..=range.end() {
                    out.push(c.to_string());
                    if out.len() > MOST_VALUES {
                        return None;
                    }
                }
            }
            Some(out)
        }
        HirKind::Capture(capture) => texts(&capture.sub),
        HirKind::Concat(parts) => concatenated(parts),
        HirKind::Alternation(choices) => {
            let mut out = Vec::new();
            for choice in choices {
                out.extend(texts(choice)?);
                if out.len() > MOST_VALUES {
                    return None;
                }
            }
            Some(out)
        }
        _ => None,
    }
}

/// Every text `parts` one after the other match, where they are few.
fn concatenated(parts: &[Hir]) -> Option<Vec<String>> {
    parts.iter().try_fold(vec![String::new()], |values, part| {
        let next = texts(part)?;
        if values.len() * next.len() > MOST_VALUES {
            return None;
        }
        Some(values.iter().flat_map(|x| next.iter().map(move |y| format!("{x}{y}"))).collect())
    })
}

/// `df` with `columns` cleaned as `c` says, or `None` when `c` asks for more than this module
/// does or a column is not a text column held as values.
pub fn clean(c: &Clean, df: &DataFrame, columns: &[String]) -> Option<PolarsResult<DataFrame>> {
    let cleaning = Cleaning::of(c)?;
    if !columns.iter().all(|name| text_values(df, name)) {
        return None;
    }
    let mut out = df.clone();
    for name in columns {
        let Ok(column) = df.column(name).and_then(|c| c.str()) else { return None };
        if let Some(cleaned) = cleaned(column, &cleaning) {
            if let Err(e) = out.with_column(cleaned.into_column()) {
                return Some(Err(e));
            }
        }
    }
    Some(Ok(out))
}

/// Whether `name` is a text column of `df` held as values (not one constant): what the steps
/// that work on the columns themselves take.
pub(super) fn text_values(df: &DataFrame, name: &str) -> bool {
    df.column(name).is_ok_and(|c| matches!(c, Column::Series(_)) && c.dtype() == &DataType::String)
}

/// The column cleaned, or `None` when no value changes. Trimming and nulls alone are first
/// looked for without building anything; replacements are told as the column is built.
pub(super) fn cleaned(column: &StringChunked, cleaning: &Cleaning) -> Option<StringChunked> {
    if cleaning.replace.is_empty() && !column.downcast_iter().any(|a| changes(a, cleaning.trim, cleaning.empty_as_null))
    {
        return None;
    }
    let mut changed = false;
    let chunks: Vec<Utf8ViewArray> = column
        .downcast_iter()
        .map(|a| {
            let mut out = MutableBinaryViewArray::<str>::with_capacity(a.len());
            for v in a.iter() {
                let c = v.and_then(|v| cleaning.apply(v));
                changed |= c.as_deref() != v;
                out.push(c);
            }
            out.freeze()
        })
        .collect();
    changed.then(|| StringChunked::from_chunk_iter(column.name().clone(), chunks))
}

/// Whether a value of `a` changes by trimming (`trim`) or as an empty value made null.
fn changes(a: &Utf8ViewArray, trim: bool, empty_as_null: bool) -> bool {
    a.non_null_values_iter().any(|v| {
        let b = v.as_bytes();
        match (b.first(), b.last()) {
            (None, _) | (_, None) => empty_as_null,
            (Some(&first), Some(&last)) => trim && (spaced(first) || spaced(last)) && v.trim().len() != v.len(),
        }
    })
}

/// Whether a value starting or ending with this byte may have whitespace to trim there: an
/// ASCII space or control from tab to carriage return, or the byte of a character beyond
/// ASCII (a few of which are whitespace).
fn spaced(b: u8) -> bool {
    matches!(b, b' ' | b'\t'..=b'\r') || !b.is_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;

    fn step(trim: bool, empty_as_null: bool) -> Clean {
        Clean {
            columns: vec!["t".into()],
            trim,
            case: None,
            replace: IndexMap::new(),
            extract: None,
            pad: None,
            empty_as_null,
        }
    }

    #[test]
    fn cleans_as_the_step_expressions_do() {
        let values = [
            Some(" a "),
            Some("b"),
            Some(""),
            Some("   "),
            None,
            Some("\u{a0}x\u{3000}"),
            Some("\u{b}v\t"),
            Some("é "),
            Some(" long enough to be held apart "),
            Some("\r\n"),
            Some("in side"),
        ];
        for (trim, empty_as_null) in [(true, true), (true, false), (false, true)] {
            let df = df!("t" => values, "n" => [1; 11]).unwrap();
            let c = step(trim, empty_as_null);
            let ours = clean(&c, &df, &c.columns).unwrap().unwrap();
            let exprs = super::super::steps::clean_exprs(&c, &c.columns);
            let theirs = df.clone().lazy().with_columns(exprs).collect().unwrap();
            assert_eq!(
                ours.column("t").unwrap(),
                theirs.column("t").unwrap(),
                "trim {trim} empty_as_null {empty_as_null}"
            );
        }
    }

    #[test]
    fn literal_replacements_clean_as_the_query_does() {
        let values = [
            Some("N/A"),
            Some(" N/A "),
            Some("N/D"),
            Some("n/a"),
            Some("1,234,5"),
            Some(""),
            None,
            Some("x"),
            Some("é,é"),
            Some("N/AN/A"),
            Some("  "),
        ];
        let patterns: [&[(&str, &str)]; 7] = [
            &[("^N/A$", "")],
            &[("^N/[AD]$", ""), (",", "")],
            &[(",", ";"), ("^1;234;5$", "n")],
            &[("^(x|)$", "empty or x")],
            &[("é", "e"), ("^(?i)n/a$", "none")],
            &[("^(N/A)+$", "")],
            &[("\\s+", " ")],
        ];
        for replace in patterns {
            for (trim, empty_as_null) in [(true, true), (false, false)] {
                let df = df!("t" => values).unwrap();
                let c = Clean {
                    replace: replace.iter().map(|(p, w)| (p.to_string(), w.to_string())).collect(),
                    ..step(trim, empty_as_null)
                };
                let exprs = super::super::steps::clean_exprs(&c, &c.columns);
                let theirs = df.clone().lazy().with_columns(exprs).collect().unwrap();
                // Repetitions and classes of many characters are left to the query.
                let Some(ours) = clean(&c, &df, &c.columns) else {
                    assert!(replace.iter().any(|(p, _)| p.contains('+')), "{replace:?}");
                    continue;
                };
                assert_eq!(ours.unwrap().column("t").unwrap(), theirs.column("t").unwrap(), "{replace:?} {trim}");
            }
        }
        assert_eq!(literal("^N/[AD]$"), Some(Pattern::Whole(vec!["N/A".into(), "N/D".into()])));
        assert_eq!(literal(","), Some(Pattern::Anywhere(",".into())));
        for regex in ["^N/A", "N/A$", "(?m)^N/A$", "^\\w$", "^a*$", "\\bx", ""] {
            assert_eq!(literal(regex), None, "{regex}");
        }
        // A replacement naming a group is the regex engine's.
        let c =
            Clean { replace: [("^(N)/A$".to_string(), "$1".to_string())].into_iter().collect(), ..step(true, true) };
        assert!(clean(&c, &df!("t" => ["N/A"]).unwrap(), &c.columns).is_none());
    }

    #[test]
    fn a_column_nothing_changes_is_kept_as_it_is() {
        let df = df!("t" => [Some("a"), None, Some("b c"), Some("a longer value, past twelve bytes")]).unwrap();
        let c = step(true, true);
        let out = clean(&c, &df, &c.columns).unwrap().unwrap();
        let (before, after) = (df.column("t").unwrap().str().unwrap(), out.column("t").unwrap().str().unwrap());
        assert_eq!(
            before.downcast_iter().next().unwrap().views().as_ptr(),
            after.downcast_iter().next().unwrap().views().as_ptr()
        );
        // Asked for more than trim and nulls, or of a column that is not text: left to the query.
        assert!(
            clean(&Clean { case: Some(crate::config::pipeline::Case::Lower), ..c.clone() }, &df, &c.columns).is_none()
        );
        let numbers = df!("t" => [1, 2]).unwrap();
        assert!(clean(&c, &numbers, &c.columns).is_none());
    }
}
