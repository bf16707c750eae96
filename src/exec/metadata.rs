//! Table metadata from a written layer: counts, size, column types, nulls and examples, plus
//! the governance fields of the pipeline and the table's neighbours in the plan.

use super::layers::RunContext;
use crate::plan::Layer;
use crate::records::{ColumnMetadata, TableMetadata};
use crate::store::FileEntry;
use polars::prelude::*;
use polars_arrow::array::View;
use std::collections::BTreeSet;

/// Metadata of table `t` at `layer`, whose frame `df` was written as `file`.
pub fn table_metadata(ctx: &RunContext, t: usize, layer: Layer, df: &DataFrame, file: &FileEntry) -> TableMetadata {
    let plan = ctx.plan;
    let table = &plan.tables[t];
    let (upstream, downstream) = neighbours(ctx, t);
    let columns = df
        .columns()
        .iter()
        .map(|c| {
            // Personal information is never shown outside the data itself.
            let examples = if plan.is_pii(&table.name, layer, c.name()) {
                vec![]
            } else if let Column::Scalar(constant) = c {
                // Provenance: one value on every row.
                let value = constant.scalar().value();
                if value.is_null() {
                    vec![]
                } else {
                    vec![shortened(&value.str_value())]
                }
            } else {
                examples(c.slice(0, 1_000).as_materialized_series(), 3)
            };
            ColumnMetadata {
                name: c.name().to_string(),
                data_type: c.dtype().to_string(),
                nullable: c.null_count() > 0,
                null_count: c.null_count() as u64,
                description: table.spec.columns.get(c.name().as_str()).cloned(),
                examples,
            }
        })
        .collect();
    let previous = ctx.writer.previous_metadata(layer.name(), &table.name);
    TableMetadata {
        name: table.name.clone(),
        layer: layer.name().into(),
        domain: table.spec.domain.clone(),
        path: ctx.stable_file(layer, &table.name),
        row_count: df.height() as u64,
        column_count: df.width() as u64,
        file_size: std::fs::metadata(ctx.writer.store().path(&file.path)).map(|m| m.len()).unwrap_or(0),
        schema_version: schema_version(df),
        created_at: previous.map_or_else(chrono::Utc::now, |p| p.created_at),
        updated_at: chrono::Utc::now(),
        batch_id: ctx.batch_id().to_string(),
        description: table.spec.description.clone(),
        owner: table.spec.owner.clone(),
        steward: table.spec.steward.clone(),
        classification: table.spec.classification.clone(),
        source: table.source_id.clone(),
        upstream,
        downstream,
        columns,
    }
}

/// Metadata of a layer written in batches: from its first batch `first`, with the row and null
/// counts of the whole layer.
pub fn batched_metadata(
    ctx: &RunContext,
    t: usize,
    layer: Layer,
    first: &DataFrame,
    rows: u64,
    nulls: &[u64],
    file: &FileEntry,
) -> TableMetadata {
    let mut meta = table_metadata(ctx, t, layer, first, file);
    meta.row_count = rows;
    for (column, &n) in meta.columns.iter_mut().zip(nulls) {
        column.null_count = n;
        column.nullable = n > 0;
    }
    meta
}

/// Examples longer than this many characters are cut, ending in `…`: a catalogue shows a glimpse
/// of a value, and whole documents in every layer's records made them megabytes.
const EXAMPLE_CHARS: usize = 80;

/// The first `n` distinct non-null values of a column, as text (cut at `EXAMPLE_CHARS`),
/// looking at no more rows than it takes to find them.
fn examples(column: &Series, n: usize) -> Vec<String> {
    if let Ok(text) = column.str() {
        // Text, read as text: a value at a time costs no conversion. A value is told from those
        // seen by its view (length and first bytes; the whole value up to 12 bytes) before its
        // text.
        let mut seen: Vec<(View, &str)> = Vec::with_capacity(n);
        let mut out: Vec<String> = Vec::with_capacity(n);
        for chunk in text.downcast_iter() {
            let validity = polars_arrow::array::Array::validity(chunk);
            for (i, &view) in chunk.views().iter().enumerate() {
                if validity.is_some_and(|v| !v.get_bit(i)) {
                    continue;
                }
                let value = chunk.value(i);
                let same = |(v, s): &(View, &str)| match view.is_inline() {
                    true => v.as_u128() == view.as_u128(),
                    false => v.length == view.length && v.prefix == view.prefix && *s == value,
                };
                if seen.iter().any(same) {
                    continue;
                }
                seen.push((view, value));
                let text = shortened(value);
                if !out.contains(&text) {
                    out.push(text);
                    if out.len() == n {
                        return out;
                    }
                }
            }
        }
        return out;
    }
    let mut seen: Vec<AnyValue> = Vec::with_capacity(n);
    let mut out: Vec<String> = Vec::with_capacity(n);
    for i in 0..column.len() {
        let Ok(value) = column.get(i) else { break };
        // A value seen before is not written out again (formatting dominates, dates above all).
        if value.is_null() || seen.contains(&value) {
            continue;
        }
        let text = shortened(&value.str_value());
        seen.push(value);
        if !out.contains(&text) {
            out.push(text);
            if out.len() == n {
                break;
            }
        }
    }
    out
}

/// `text` cut to `EXAMPLE_CHARS` characters, with `…` when it was longer.
fn shortened(text: &str) -> String {
    // No more bytes than the characters kept: nothing to cut, no character to count.
    if text.len() <= EXAMPLE_CHARS {
        return text.to_string();
    }
    // Characters of one byte up to the cut (checked a block at a time): the cut is there.
    let end = if text.as_bytes()[..EXAMPLE_CHARS].is_ascii() {
        EXAMPLE_CHARS
    } else {
        match text.char_indices().nth(EXAMPLE_CHARS) {
            Some((end, _)) => end,
            None => return text.to_string(),
        }
    };
    let mut cut = String::with_capacity(end + '…'.len_utf8());
    cut.push_str(&text[..end]);
    cut.push('…');
    cut
}

/// Tables this one reads and tables that read it.
fn neighbours(ctx: &RunContext, t: usize) -> (Vec<String>, Vec<String>) {
    let plan = ctx.plan;
    let mut up = BTreeSet::new();
    let mut down = BTreeSet::new();
    for layer in Layer::ALL {
        let node = plan.node(t, layer);
        for n in plan.graph.neighbors_directed(node, petgraph::Direction::Incoming) {
            up.insert(plan.graph[n].table);
        }
        for n in plan.graph.neighbors_directed(node, petgraph::Direction::Outgoing) {
            down.insert(plan.graph[n].table);
        }
    }
    let names = |s: BTreeSet<usize>| s.into_iter().filter(|x| *x != t).map(|x| plan.tables[x].name.clone()).collect();
    (names(up), names(down))
}

/// A short fingerprint of the column names and types: changes when the schema changes.
fn schema_version(df: &DataFrame) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for c in df.columns() {
        h.update(c.name().as_bytes());
        h.update(b":");
        h.update(c.dtype().to_string().as_bytes());
        h.update(b";");
    }
    h.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_examples_are_cut_after_as_many_characters_whatever_their_bytes() {
        let ascii = "a".repeat(EXAMPLE_CHARS + 1);
        assert_eq!(shortened(&ascii), format!("{}…", &ascii[..EXAMPLE_CHARS]));
        assert_eq!(shortened(&ascii[..EXAMPLE_CHARS]), ascii[..EXAMPLE_CHARS]);
        // Two-byte characters after the first half: still 80 characters kept, not 80 bytes.
        let mixed = format!("{}{}", "a".repeat(EXAMPLE_CHARS / 2), "é".repeat(EXAMPLE_CHARS));
        let cut = shortened(&mixed);
        assert_eq!(cut.chars().count(), EXAMPLE_CHARS + 1);
        assert!(mixed.starts_with(cut.trim_end_matches('…')));
        // Fewer characters than bytes, no more than 80 characters: not cut.
        let short = "é".repeat(EXAMPLE_CHARS);
        assert_eq!(shortened(&short), short);
    }

    #[test]
    fn long_examples_are_cut_at_a_character_boundary() {
        let long: String = "é".repeat(EXAMPLE_CHARS + 5);
        let column = Series::new("x".into(), [long.as_str(), "short"]);
        let found = examples(&column, 3);
        assert_eq!(found[0].chars().count(), EXAMPLE_CHARS + 1);
        assert!(found[0].ends_with('…'));
        assert!(long.starts_with(found[0].trim_end_matches('…')));
        assert_eq!(found[1], "short");
    }

    #[test]
    fn examples_are_the_first_distinct_values_as_shown() {
        // Two values alike in their first `EXAMPLE_CHARS` characters show as one example.
        let a = format!("{}a", "x".repeat(EXAMPLE_CHARS));
        let b = format!("{}b", "x".repeat(EXAMPLE_CHARS));
        let text = Series::new(
            "t".into(),
            [None, Some(a.as_str()), Some("p"), Some(b.as_str()), Some("p"), Some("q"), Some("r")],
        );
        let cut = shortened(&a);
        assert_eq!(examples(&text, 3), [cut.as_str(), "p", "q"]);
        let numbers = Series::new("n".into(), [None, Some(3i64), Some(3), Some(1), Some(2), Some(9)]);
        assert_eq!(examples(&numbers, 3), ["3", "1", "2"]);
        assert!(examples(&Series::new_null("z".into(), 4), 3).is_empty());
        // Long values alike in length and first bytes, repeated by a gather and across chunks.
        let (one, two) = ("a long value that ends in 1", "a long value that ends in 2");
        let long = Series::new("l".into(), [one, two, "q"]);
        let gathered = long.take(&IdxCa::from_vec("".into(), vec![0, 0, 1, 0, 1, 2])).unwrap();
        assert_eq!(examples(&gathered, 3), [one, two, "q"]);
        let mut chunked = Series::new("l".into(), [one]);
        chunked.append(&Series::new("l".into(), [two, one])).unwrap();
        assert_eq!(chunked.n_chunks(), 2);
        assert_eq!(examples(&chunked, 3), [one, two]);
    }
}
