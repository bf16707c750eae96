//! The usual `clean` step, `trim` and `empty_as_null` alone, on text columns without a Polars
//! query: each value is looked at once, and a column none of whose values change is kept as
//! it is, the same arrays, so that the layer written next takes its encoded pages (see
//! `exec::parquet::Encoded`). Reads as the step's expressions read (`tests` compares the two).

use crate::config::pipeline::Clean;
use polars::prelude::*;
use polars_arrow::array::{MutableBinaryViewArray, Utf8ViewArray};

/// `df` with `columns` trimmed and their empty values null as `c` says, or `None` when `c`
/// asks for more than that or a column is not a text column held as values.
pub fn clean(c: &Clean, df: &DataFrame, columns: &[String]) -> Option<PolarsResult<DataFrame>> {
    let only_these = c.case.is_none() && c.replace.is_empty() && c.extract.is_none() && c.pad.is_none();
    if !only_these || !columns.iter().all(|name| text_values(df, name)) {
        return None;
    }
    let mut out = df.clone();
    for name in columns {
        let Ok(column) = df.column(name).and_then(|c| c.str()) else { return None };
        if let Some(cleaned) = cleaned(column, c.trim, c.empty_as_null) {
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

/// The column cleaned, or `None` when no value changes.
pub(super) fn cleaned(column: &StringChunked, trim: bool, empty_as_null: bool) -> Option<StringChunked> {
    if !column.downcast_iter().any(|a| changes(a, trim, empty_as_null)) {
        return None;
    }
    let chunks: Vec<Utf8ViewArray> = column
        .downcast_iter()
        .map(|a| {
            let mut out = MutableBinaryViewArray::<str>::with_capacity(a.len());
            for v in a.iter() {
                let v = v.map(|v| if trim { v.trim() } else { v });
                out.push(v.filter(|v| !(empty_as_null && v.is_empty())));
            }
            out.freeze()
        })
        .collect();
    Some(StringChunked::from_chunk_iter(column.name().clone(), chunks))
}

/// Whether a value of `a` changes.
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
