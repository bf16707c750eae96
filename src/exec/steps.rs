//! The step vocabulary over Polars: each step takes a frame and returns the new frame with the
//! rows it filtered, quarantined or reshaped, so every transition balances.

use super::rules;
use super::text_ids::TextIds;
use crate::config::pipeline::{Case, Clean, JoinHow, Keep, Step};
use crate::config::template;
use crate::plan::check::{sort_key, PROVENANCE};
use crate::records::RowCounts;
use polars::prelude::*;
use polars::sql::SQLContext;
use std::collections::BTreeMap;

/// The result of one step: the new frame, the rows quarantined, and the causes of every row
/// change, each measured on its own (the caller checks the balance against rows in and out).
pub struct StepResult {
    pub df: DataFrame,
    pub quarantined: Option<DataFrame>,
    /// Causes only; `rows_in` and `rows_out` are set by the caller.
    pub counts: RowCounts,
}

impl StepResult {
    fn same_grain(df: DataFrame) -> Self {
        StepResult { df, quarantined: None, counts: RowCounts::default() }
    }
    /// A change of grain: every input row consumed, every output row produced.
    pub(crate) fn reshaped(rows_in: usize, df: DataFrame) -> Self {
        let counts =
            RowCounts { rows_reshaped_in: rows_in as u64, rows_reshaped_out: df.height() as u64, ..Default::default() };
        StepResult { df, quarantined: None, counts }
    }
    fn filtered(df: DataFrame, filtered: u64) -> Self {
        StepResult { df, quarantined: None, counts: RowCounts { rows_filtered: filtered, ..Default::default() } }
    }
    fn quarantined(df: DataFrame, failed: DataFrame) -> Self {
        let counts = RowCounts { rows_quarantined: failed.height() as u64, ..Default::default() };
        StepResult { df, quarantined: Some(failed), counts }
    }
}

/// Frames longer than this are sorted by Polars (in parallel) whatever their keys.
const SORT_BY_ROWS_UP_TO: usize = 256 * 1024;

/// `df` sorted by `keys`, stably, nulls first (as `sort` with its order kept), when every key is
/// text, a whole number, a date or a time: by one number per row, each key's value replaced by
/// its rank among the key's distinct values (a null before them all, reversed where the key
/// descends) and the ranks combined key after key. Sorting those numbers (by counting them where
/// they are not many more than the rows) takes a fraction of the instructions of Polars' sort by
/// several columns, which compares a value at a time. Rows already in order are the frame
/// itself. `Err(df)` for other key types (fractions, lists), for rows out of order by a single
/// key (Polars' own sort of one column is faster), for a frame of over `SORT_BY_ROWS_UP_TO` rows
/// and for keys with too many distinct values together to number.
fn sorted_by_ranks(df: DataFrame, keys: &[&str], descending: &[bool]) -> PolarsResult<Result<DataFrame, DataFrame>> {
    if df.height() > SORT_BY_ROWS_UP_TO {
        return Ok(Err(df));
    }
    let mut order = vec![0u64; df.height()];
    let mut span = 1u64;
    for (key, &descending) in keys.iter().zip(descending) {
        let Some((ranks, values)) = ranks(df.column(key)?, descending)? else { return Ok(Err(df)) };
        // Null is rank 0, the values 1 to `values`.
        let Some(wider) = span.checked_mul(values + 1) else { return Ok(Err(df)) };
        span = wider;
        for (o, r) in order.iter_mut().zip(ranks) {
            *o = *o * (values + 1) + r;
        }
    }
    if order.windows(2).all(|w| w[0] <= w[1]) {
        return Ok(Ok(df));
    }
    if keys.len() == 1 {
        return Ok(Err(df));
    }
    let order = if span <= (order.len() as u64).saturating_mul(4).max(1 << 16) {
        counted(&order, span as usize)
    } else {
        // A stable sort (equal keys keep their order), which finds the runs already in order
        // (an unpivoted frame is one run per column it unpivoted).
        let mut order: Vec<(u64, IdxSize)> = order.into_iter().zip(0..).collect();
        order.sort_by_key(|o| o.0);
        order.into_iter().map(|(_, i)| i).collect()
    };
    Ok(Ok(df.take(&IdxCa::from_vec("".into(), order))?))
}

/// The positions of `keys` (each below `span`) in a stable sort of them, by counting: a few
/// passes over the keys where `span` is not much more than their number.
fn counted(keys: &[u64], span: usize) -> Vec<IdxSize> {
    let mut next = vec![0 as IdxSize; span + 1];
    for &k in keys {
        next[k as usize + 1] += 1;
    }
    for i in 1..next.len() {
        next[i] += next[i - 1];
    }
    let mut order = vec![0 as IdxSize; keys.len()];
    for (i, &k) in keys.iter().enumerate() {
        order[next[k as usize] as usize] = i as IdxSize;
        next[k as usize] += 1;
    }
    order
}

/// Each row's rank in `column` as a sort orders it (text by its bytes, numbers, dates and times
/// by value): 0 for a null, 1 to the number of distinct values for the rest, the largest first
/// when `descending`; and that number. `None` for other types.
fn ranks(column: &Column, descending: bool) -> PolarsResult<Option<(Vec<u64>, u64)>> {
    use DataType::*;
    let dtype = column.dtype();
    let (ids, ordered) = if dtype == &String {
        texts_first_seen(column.str()?)
    } else if dtype == &UInt64 {
        first_seen(column.u64()?.iter())
    } else if dtype.is_signed_integer() || matches!(dtype, UInt8 | UInt16 | UInt32 | Date | Datetime(..)) {
        let values = column.to_physical_repr().cast(&Int64)?;
        first_seen(values.i64()?.iter())
    } else {
        return Ok(None);
    };
    let values = ordered.len() as u64;
    let mut rank = vec![0u64; ordered.len()];
    for (r, id) in ordered.into_iter().enumerate() {
        rank[id] = if descending { values - r as u64 } else { r as u64 + 1 };
    }
    Ok(Some((ids.into_iter().map(|id| id.map_or(0, |id| rank[id as usize])).collect(), values)))
}

/// `first_seen` of a text column.
fn texts_first_seen(texts: &StringChunked) -> (Vec<Option<u32>>, Vec<usize>) {
    let mut seen = TextIds::with_capacity(1024);
    let mut ids = Vec::with_capacity(texts.len());
    for chunk in texts.downcast_iter() {
        let validity = polars_arrow::array::Array::validity(chunk);
        ids.extend((0..chunk.len()).map(|i| validity.is_none_or(|v| v.get_bit(i)).then(|| seen.id(chunk, i))));
    }
    (ids, by_value(seen.distinct()))
}

/// Each value's id (its distinct values numbered in order of first appearance; `None` for a
/// null), and the ids in the order of their values.
fn first_seen<T: Ord + std::hash::Hash + Copy>(
    values: impl Iterator<Item = Option<T>>,
) -> (Vec<Option<u32>>, Vec<usize>) {
    let mut seen: PlHashMap<T, u32> = PlHashMap::default();
    let mut distinct: Vec<T> = Vec::new();
    let ids = values
        .map(|v| {
            v.map(|v| {
                *seen.entry(v).or_insert_with(|| {
                    distinct.push(v);
                    (distinct.len() - 1) as u32
                })
            })
        })
        .collect();
    (ids, by_value(&distinct))
}

/// The positions of `distinct` in the order of their values.
fn by_value<T: Ord>(distinct: &[T]) -> Vec<usize> {
    let mut ordered: Vec<usize> = (0..distinct.len()).collect();
    ordered.sort_unstable_by(|&a, &b| distinct[a].cmp(&distinct[b]));
    ordered
}

/// A temporary column holding a filter's mask.
const MASK: &str = "__jf_keep";

/// Reads another table's output for joins and `ref()`.
pub type RefReader<'a> = dyn Fn(&str) -> PolarsResult<DataFrame> + 'a;

/// `refs`, reading each table once: later reads of the same table take the first's frame.
fn read_once<'a>(refs: &'a RefReader) -> impl Fn(&str) -> PolarsResult<DataFrame> + 'a {
    let read = std::cell::RefCell::new(BTreeMap::<String, DataFrame>::new());
    move |reference: &str| {
        if let Some(df) = read.borrow().get(reference) {
            return Ok(df.clone());
        }
        let df = refs(reference)?;
        read.borrow_mut().insert(reference.to_string(), df.clone());
        Ok(df)
    }
}

/// Applies one step.
pub fn apply(
    step: &Step,
    df: DataFrame,
    refs: &RefReader,
    vars: &BTreeMap<String, String>,
) -> PolarsResult<StepResult> {
    if let Some(kind) = step.kind() {
        return kind.apply(df, refs);
    }
    let rows_in = df.height();
    Ok(match step {
        Step::Filter(sql) => {
            // The rows the predicate does not keep (false or null) are counted from the mask.
            let keep = polars::sql::sql_expr(sql)?.fill_null(false);
            let mask = rules::evaluate(&df, vec![keep.alias(MASK)])?.column(MASK)?.bool()?.clone();
            let filtered = (mask.len() - mask.sum().unwrap_or(0) as usize) as u64;
            StepResult::filtered(rules::keep_rows(df, &mask)?, filtered)
        }
        Step::Derive(map) => {
            let exprs = map
                .iter()
                .map(|(name, sql)| Ok(polars::sql::sql_expr(sql)?.alias(name.as_str())))
                .collect::<PolarsResult<Vec<_>>>()?;
            StepResult::same_grain(df.lazy().with_columns(exprs).collect()?)
        }
        Step::Cast(map) => {
            let casts: Vec<_> = map.iter().map(|(c, t)| (c.clone(), *t)).collect();
            cast(df, &casts)?
        }
        Step::Clean(c) => {
            // Row by row: a chunk at a time when the frame was built from batches.
            let columns = clean_columns(c, &df);
            if let Some(cleaned) = super::trimmed::clean(c, &df, &columns) {
                return Ok(StepResult::same_grain(cleaned?));
            }
            let exprs = clean_exprs(c, &columns);
            let height = df.height();
            let clean = |df: DataFrame, _| df.lazy().with_columns(exprs.clone()).collect();
            // `by_chunks` sets constant columns aside: a step that cleans one runs on the whole frame.
            let constant = |c: &String| df.column(c).is_ok_and(|c| matches!(c, Column::Scalar(_)));
            let cleaned =
                if columns.iter().any(constant) { clean(df, 0)? } else { rules::by_chunks(df, height, clean)? };
            StepResult::same_grain(cleaned)
        }
        Step::Dedupe(d) => {
            let keep = match d.keep {
                Keep::First => UniqueKeepStrategy::First,
                Keep::Last => UniqueKeepStrategy::Last,
            };
            let out = df.unique_stable(Some(d.keys.as_slice()), keep, None)?;
            let removed = (rows_in - out.height()) as u64;
            StepResult::filtered(out, removed)
        }
        Step::Unpivot(u) => {
            let mut index: Vec<String> = u.index.clone();
            index.extend(PROVENANCE.iter().filter(|p| df.get_column_index(p).is_some()).map(|p| p.to_string()));
            let on: Vec<String> = if u.on.is_empty() {
                df.get_column_names().iter().map(|s| s.to_string()).filter(|c| !index.contains(c)).collect()
            } else {
                u.on.clone()
            };
            // Values of mixed types are unpivoted as text.
            let mut df = df;
            let first = on.first().and_then(|c| df.column(c).ok()).map(|c| c.dtype().clone());
            if on.iter().any(|c| df.column(c).map(|c| Some(c.dtype()) != first.as_ref()).unwrap_or(false)) {
                df = df
                    .lazy()
                    .with_columns(on.iter().map(|c| col(c).cast(DataType::String)).collect::<Vec<_>>())
                    .collect()?;
            }
            // Polars repeats each index value row by row; a constant one (the provenance) stays one
            // value, so that the layers after neither hold nor encode it per row: it is left out
            // of Polars' unpivot (which would write it out row by row, then copy it whole) and
            // put back in its place after.
            let constant: Vec<(PlSmallStr, Scalar)> = index
                .iter()
                .filter_map(|c| match df.column(c) {
                    Ok(Column::Scalar(s)) => Some((PlSmallStr::from(c.as_str()), s.scalar().clone())),
                    _ => None,
                })
                .collect();
            let varying: Vec<&String> =
                index.iter().filter(|c| !constant.iter().any(|(n, _)| n == c.as_str())).collect();
            let mut long =
                if varying.is_empty() { df.unpivot(Some(on), &index)? } else { df.unpivot(Some(on), varying)? };
            let height = long.height();
            for (name, value) in constant {
                long.with_column(Column::new_scalar(name, value, height))?;
            }
            let long = long.select(index.iter().map(String::as_str).chain(["variable", "value"]))?;
            let long = renamed(long, |c| match c {
                "variable" => Some(u.variable.clone()),
                "value" => Some(u.value.clone()),
                _ => None,
            })?;
            StepResult::reshaped(rows_in, long)
        }
        Step::Drop(list) => StepResult::same_grain(df.drop_many(list)),
        Step::Rename(map) => StepResult::same_grain(renamed(df, |c| map.get(c).cloned())?),
        Step::Select(list) => {
            let mut cols = list.clone();
            cols.extend(
                PROVENANCE
                    .iter()
                    .filter(|p| df.get_column_index(p).is_some() && !list.iter().any(|c| c == *p))
                    .map(|p| p.to_string()),
            );
            StepResult::same_grain(df.select(cols)?)
        }
        Step::Sort(list) => {
            let keys: Vec<(&str, bool)> = list.iter().map(|s| sort_key(s)).collect();
            let names: Vec<&str> = keys.iter().map(|k| k.0).collect();
            let descending: Vec<bool> = keys.iter().map(|k| k.1).collect();
            match sorted_by_ranks(df, &names, &descending)? {
                Ok(sorted) => StepResult::same_grain(sorted),
                Err(df) => {
                    let options = SortMultipleOptions::default()
                        .with_order_descending_multi(descending)
                        .with_maintain_order(true);
                    StepResult::same_grain(df.sort(names, options)?)
                }
            }
        }
        Step::Join(j) => {
            let right = refs(&j.reference)?;
            let left_on: Vec<String> = j.on.iter().chain(j.on_columns.keys()).cloned().collect();
            let right_on: Vec<String> = j.on.iter().chain(j.on_columns.values()).cloned().collect();
            let taken: Vec<String> = if j.select.is_empty() {
                right
                    .get_column_names()
                    .iter()
                    .map(|s| s.to_string())
                    .filter(|c| !right_on.contains(c) && !PROVENANCE.contains(&c.as_str()))
                    .collect()
            } else {
                j.select.clone()
            };
            let prefix = j.prefix.clone().unwrap_or_default();
            let mut right_exprs: Vec<Expr> =
                right_on.iter().enumerate().map(|(i, c)| col(c).alias(format!("__key_{i}"))).collect();
            right_exprs.extend(taken.iter().map(|c| col(c).alias(format!("{prefix}{c}"))));
            let right = right.lazy().select(right_exprs);
            let right_keys: Vec<Expr> = (0..right_on.len()).map(|i| col(format!("__key_{i}"))).collect();
            let left_keys: Vec<Expr> = left_on.iter().map(col).collect();
            let how = match j.how {
                JoinHow::Left => JoinType::Left,
                JoinHow::Inner => JoinType::Inner,
            };
            // Counted on their own: left rows with no match, and the extra rows repeated right
            // keys add (a left row matching n right rows becomes n rows: n - 1 added).
            let matches = right.clone().group_by(right_keys.clone()).agg([len().alias("__matches")]).collect()?;
            let per_row = df
                .clone()
                .lazy()
                .select(left_keys.clone())
                .join(
                    matches.lazy(),
                    left_keys.clone(),
                    right_keys.clone(),
                    JoinArgs::new(JoinType::Left).with_coalesce(JoinCoalesce::CoalesceColumns),
                )
                .select([
                    col("__matches").is_null().sum().cast(DataType::UInt64).alias("unmatched"),
                    (col("__matches").cast(DataType::UInt64) - lit(1u64)).sum().alias("added"),
                ])
                .collect()?;
            let first = |c: &str| -> PolarsResult<u64> {
                Ok(per_row.column(c)?.cast(&DataType::UInt64)?.u64()?.get(0).unwrap_or(0))
            };
            let (unmatched, added) = (first("unmatched")?, first("added")?);
            // Left rows keep their order (Polars does not keep it by default).
            let mut args = JoinArgs::new(how).with_coalesce(JoinCoalesce::CoalesceColumns);
            args.maintain_order = MaintainOrderJoin::Left;
            let joined = df.lazy().join(right, left_keys, right_keys, args).collect()?;
            let joined = joined.drop_many((0..right_on.len()).map(|i| format!("__key_{i}")));
            let counts = RowCounts {
                rows_join_dropped: if j.how == JoinHow::Inner { unmatched } else { 0 },
                rows_fanout_added: added,
                ..Default::default()
            };
            StepResult { df: joined, quarantined: None, counts }
        }
        Step::Aggregate(a) => {
            let measures = a
                .measures
                .iter()
                .map(|(name, sql)| Ok(polars::sql::sql_expr(sql)?.alias(name.as_str())))
                .collect::<PolarsResult<Vec<_>>>()?;
            let keys: Vec<Expr> = a.group_by.iter().map(col).collect();
            // Only the columns the groups and measures read are held while aggregating.
            let df = only_columns(df, keys.iter().chain(&measures))?;
            let out = streamed(df.lazy().group_by_stable(keys).agg(measures))?;
            StepResult::reshaped(rows_in, out)
        }
        Step::Expect(e) => {
            // Row rules first; `unique` among the rows that pass them. A table an `exists_in`
            // names is read once, for the rules told from the columns and the query alike.
            let refs = &read_once(refs);
            let (passed, failed) = match rules::row_rules_hold(&df, e, refs)? {
                Some(split) => split,
                None => rules::split(df, rules::row_checks(e, refs)?)?,
            };
            let (passed, repeated) = rules::unique(passed, &e.unique)?;
            let failed = if repeated.height() == 0 {
                failed
            } else if failed.height() == 0 {
                repeated
            } else {
                failed.vstack(&repeated)?
            };
            StepResult::quarantined(passed, failed)
        }
        Step::Sql(sql) => {
            let mut ctx = SQLContext::new();
            ctx.register("input", df.lazy());
            let rendered = template::render(sql, vars, Some(&|r: &str| Ok(template::sql_table_name(r))))
                .map_err(|e| polars_err!(ComputeError: "sql step: {e}"))?;
            for reference in crate::config::template::ref_arguments(sql) {
                ctx.register(&template::sql_table_name(&reference), refs(&reference)?.lazy());
            }
            StepResult::reshaped(rows_in, ctx.execute(&rendered)?.collect()?)
        }
        Step::Explode(_) | Step::Match(_) => unreachable!("applied through StepKind above"),
    })
}

/// `df` with only the columns `exprs` read, in `df`'s order; the rest dropped. `df` whole when
/// they read none of its columns (a count), or one it does not have (the query then says so).
fn only_columns<'e>(df: DataFrame, exprs: impl Iterator<Item = &'e Expr>) -> PolarsResult<DataFrame> {
    let mut read = std::collections::HashSet::new();
    for e in exprs {
        let meta = e.clone().meta();
        if meta.has_multiple_outputs() {
            return Ok(df);
        }
        read.extend(meta.root_names());
    }
    if read.is_empty() || read.iter().any(|c| df.get_column_index(c).is_none()) {
        return Ok(df);
    }
    let height = df.height();
    let columns = df.into_columns().into_iter().filter(|c| read.contains(c.name())).collect();
    DataFrame::new(height, columns)
}

/// Collects `lf` on Polars' streaming engine: its morsels are processed as they come, so a
/// reduction (an aggregate) holds its groups, not copies of its whole input. Float sums can
/// differ in the last place from run to run (the order in which morsels meet varies).
fn streamed(lf: LazyFrame) -> PolarsResult<DataFrame> {
    match lf.collect_with_engine(Engine::Streaming)? {
        polars_core::query_result::QueryResult::Single(df) => Ok(df),
        polars_core::query_result::QueryResult::Multiple(frames) => polars::functions::concat_df_diagonal(&frames),
    }
}

/// Strict casts (see `rules::cast_columns`): rows that do not convert exactly are quarantined.
pub fn cast(df: DataFrame, casts: &[(String, crate::config::pipeline::DType)]) -> PolarsResult<StepResult> {
    let (passed, failed) = rules::cast_columns(df, casts)?;
    Ok(StepResult::quarantined(passed, failed))
}

/// `df` with columns renamed where `new_name` gives a name. (Builds a new frame: renaming in
/// place left Polars 0.46's cached schema stale.)
pub fn renamed(df: DataFrame, new_name: impl Fn(&str) -> Option<String>) -> PolarsResult<DataFrame> {
    let columns = df
        .into_columns()
        .into_iter()
        .map(|mut c| {
            if let Some(n) = new_name(c.name()) {
                c.rename(n.into());
            }
            c
        })
        .collect();
    DataFrame::new_infer_height(columns)
}

/// The columns a `clean` step works on: `"*"` stands for every text column but provenance.
fn clean_columns(c: &Clean, df: &DataFrame) -> Vec<String> {
    let mut out: Vec<String> = c.columns.iter().filter(|n| *n != "*").cloned().collect();
    if c.columns.iter().any(|n| n == "*") {
        for col in df.columns() {
            let name = col.name().to_string();
            if col.dtype() == &DataType::String && !PROVENANCE.contains(&name.as_str()) && !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

/// The cleaning expressions for each column of a `clean` step.
pub(super) fn clean_exprs(c: &Clean, columns: &[String]) -> Vec<Expr> {
    columns
        .iter()
        .map(|name| {
            let mut e = col(name).cast(DataType::String);
            if c.trim {
                e = e.str().strip_chars(lit(NULL));
            }
            match c.case {
                Some(Case::Lower) => e = e.str().to_lowercase(),
                Some(Case::Upper) => e = e.str().to_uppercase(),
                None => {}
            }
            for (pattern, with) in &c.replace {
                e = e.str().replace_all(lit(pattern.clone()), lit(with.clone()), false);
            }
            if let Some(re) = &c.extract {
                e = e.str().extract(lit(re.clone()), 1);
            }
            if let Some(pad) = &c.pad {
                e = e.str().pad_start(lit(pad.width as u64), pad.fill);
            }
            if c.empty_as_null {
                e = when(e.clone().eq(lit(""))).then(lit(NULL).cast(DataType::String)).otherwise(e);
            }
            e.alias(name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pipeline::Unpivot;

    /// The frame Polars' own stable sort gives.
    fn polars_sorted(df: &DataFrame, keys: &[&str], descending: &[bool]) -> DataFrame {
        let options =
            SortMultipleOptions::default().with_order_descending_multi(descending.to_vec()).with_maintain_order(true);
        df.sort(keys.to_vec(), options).unwrap()
    }

    #[test]
    fn sorting_by_ranks_orders_as_polars_does() {
        let df = df!(
            "t" => [Some("b"), None, Some("a"), Some("b"), Some("ab"), None, Some("a"), Some("")],
            "n" => [Some(2i64), Some(1), None, Some(-3), Some(2), Some(0), Some(7), None],
            "d" => [3u32, 1, 2, 3, 1, 2, 3, 1],
            "row" => [0, 1, 2, 3, 4, 5, 6, 7],
        )
        .unwrap();
        let cases: [(&[&str], &[bool]); 6] = [
            (&["t"], &[false]),
            (&["t"], &[true]),
            (&["t", "n"], &[false, true]),
            (&["n", "t"], &[true, false]),
            (&["d"], &[false]),
            (&["d", "t", "n"], &[true, false, false]),
        ];
        for (keys, descending) in cases {
            let ours = match sorted_by_ranks(df.clone(), keys, descending).unwrap() {
                Ok(sorted) => sorted,
                // Out of order by one key: left to Polars.
                Err(_) if keys.len() == 1 => continue,
                Err(_) => panic!("{keys:?} should be sorted by rows"),
            };
            // Ties keep their order (the `row` column tells).
            assert!(ours.equals_missing(&polars_sorted(&df, keys, descending)), "{keys:?} {descending:?}\n{ours}");
            // Sorted, the rows are in order: the frame itself comes back.
            assert!(matches!(sorted_by_ranks(ours.clone(), keys, descending), Ok(Ok(_))), "{keys:?}");
        }
    }

    #[test]
    fn sorting_generated_frames_orders_as_polars_does() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let words =
            ["", "a", "ab", "b", "é", "z", "a longer text beyond twelve bytes", "a longer text beyond twelve bytez"];
        for round in 0..300 {
            let rows = 1 + next(40) as usize;
            let text: Vec<Option<&str>> =
                (0..rows).map(|_| (next(6) > 0).then(|| words[next(words.len() as u64) as usize])).collect();
            let number: Vec<Option<i64>> = (0..rows).map(|_| (next(5) > 0).then(|| next(7) as i64 - 3)).collect();
            let count: Vec<u32> = (0..rows).map(|_| next(4) as u32).collect();
            let day: Vec<Option<i32>> = (0..rows).map(|_| (next(4) > 0).then(|| next(3) as i32 * 400 - 300)).collect();
            // Beyond the largest signed number, and times.
            let big: Vec<u64> = (0..rows).map(|_| u64::MAX - next(3) * (1 << 62)).collect();
            let micros: Vec<Option<i64>> = (0..rows).map(|_| (next(4) > 0).then(|| next(3) as i64 * 7 - 5)).collect();
            let mut df = df!("t" => text, "n" => number, "u" => count, "b" => big, "row" => (0..rows as i64).collect::<Vec<_>>())
                .unwrap();
            let days = Series::new("d".into(), day).cast(&DataType::Date).unwrap();
            let times =
                Series::new("s".into(), micros).cast(&DataType::Datetime(TimeUnit::Microseconds, None)).unwrap();
            df.with_column(days.into_column()).unwrap();
            df.with_column(times.into_column()).unwrap();
            let names = ["t", "n", "u", "d", "b", "s"];
            let width = 2 + next(3) as usize;
            let keys: Vec<&str> = (0..width).map(|_| names[next(names.len() as u64) as usize]).collect();
            let descending: Vec<bool> = (0..width).map(|_| next(2) == 1).collect();
            let Ok(ours) = sorted_by_ranks(df.clone(), &keys, &descending).unwrap() else {
                panic!("round {round}: {keys:?} should be sorted here")
            };
            let polars = polars_sorted(&df, &keys, &descending);
            assert!(ours.equals_missing(&polars), "round {round}: {keys:?} {descending:?}\n{ours}\n{polars}");
        }
    }

    #[test]
    fn keys_of_many_distinct_values_are_sorted_as_pairs_and_order_as_polars_does() {
        // 301 x 301 combined ranks: more than a count of them would take.
        let n = 300;
        let df = df!(
            "a" => (0..n).map(|i| format!("value {}", i * 7919 % n)).collect::<Vec<_>>(),
            "b" => (0..n).map(|i| (i * 31 % n) as i64).collect::<Vec<_>>(),
            "row" => (0..n as i64).collect::<Vec<_>>(),
        )
        .unwrap();
        for descending in [[false, false], [true, false]] {
            let Ok(ours) = sorted_by_ranks(df.clone(), &["a", "b"], &descending).unwrap() else { panic!("by rows") };
            assert!(ours.equals_missing(&polars_sorted(&df, &["a", "b"], &descending)), "{descending:?}");
        }
        // Counting keeps equal keys in their order, as a stable sort does.
        let keys: Vec<u64> = (0..1000u64).map(|i| i * 7 % 13).collect();
        let mut stable: Vec<IdxSize> = (0..1000).collect();
        stable.sort_by_key(|&i| keys[i as usize]);
        assert_eq!(counted(&keys, 13), stable);
    }

    #[test]
    fn rows_already_in_order_are_the_frame_itself() {
        let df = df!("k" => ["a", "a", "b", "c"], "v" => [4, 3, 2, 1]).unwrap();
        let Ok(same) = sorted_by_ranks(df.clone(), &["k"], &[false]).unwrap() else { panic!("sorted by rows") };
        let buffers = |df: &DataFrame| df.column("v").unwrap().as_materialized_series().chunks()[0].clone();
        assert_eq!(
            buffers(&same)
                .as_any()
                .downcast_ref::<polars_arrow::array::PrimitiveArray<i32>>()
                .unwrap()
                .values()
                .as_ptr(),
            buffers(&df).as_any().downcast_ref::<polars_arrow::array::PrimitiveArray<i32>>().unwrap().values().as_ptr()
        );
        // Out of order by one key, Polars sorts; by two, the rows are sorted here.
        assert!(sorted_by_ranks(df.clone(), &["v"], &[false]).unwrap().is_err());
        let Ok(sorted) = sorted_by_ranks(df.clone(), &["v", "k"], &[false, false]).unwrap() else { panic!("by rows") };
        assert_eq!(sorted.column("v").unwrap().i32().unwrap().to_vec(), [Some(1), Some(2), Some(3), Some(4)]);
    }

    #[test]
    fn fractions_are_left_to_polars() {
        let df = df!("f" => [2.0, f64::NAN, -0.0, 0.0, 1.0]).unwrap();
        assert!(sorted_by_ranks(df.clone(), &["f"], &[false]).unwrap().is_err());
        let step = Step::Sort(vec!["f".into()]);
        let out = apply(&step, df.clone(), &|_: &str| unreachable!(), &BTreeMap::new()).unwrap();
        assert!(out.df.equals_missing(&polars_sorted(&df, &["f"], &[false])));
    }

    #[test]
    fn a_constant_provenance_column_stays_one_value_through_an_unpivot() {
        let file = Scalar::new(DataType::String, AnyValue::StringOwned("/data/noc/workcontext_oasis.csv".into()));
        let at = Scalar::new(
            DataType::Datetime(TimeUnit::Microseconds, None),
            AnyValue::Datetime(1_764_000_000_000_000, TimeUnit::Microseconds, None),
        );
        let mut df = df!("code" => ["1", "2", "3"], "x" => ["4", "5", "6"], "y" => ["7", "8", "9"]).unwrap();
        df.with_column(Column::new_scalar("_source_file".into(), file.clone(), 3)).unwrap();
        df.with_column(Column::new_scalar("_ingested_at".into(), at.clone(), 3)).unwrap();
        let unpivot = Unpivot { index: vec!["code".into()], on: vec![], variable: "d".into(), value: "v".into() };
        let no_refs = |_: &str| -> PolarsResult<DataFrame> { unreachable!() };
        let long = apply(&Step::Unpivot(Box::new(unpivot)), df.clone(), &no_refs, &BTreeMap::new()).unwrap().df;
        for (name, value) in [("_source_file", &file), ("_ingested_at", &at)] {
            let Column::Scalar(kept) = long.column(name).unwrap() else { panic!("{name} row by row: {long}") };
            assert_eq!((kept.scalar(), kept.len()), (value, 6));
        }
        // The same rows as Polars' own unpivot, which repeats them row by row.
        let index = ["code", "_source_file", "_ingested_at"];
        let polars = df.unpivot(Some(["x", "y"]), index).unwrap();
        assert!(!matches!(polars.column("_source_file").unwrap(), Column::Scalar(_)));
        let polars = renamed(polars, |c| match c {
            "variable" => Some("d".to_string()),
            "value" => Some("v".to_string()),
            _ => None,
        })
        .unwrap();
        assert!(long.equals_missing(&polars), "{long}\n{polars}");
    }

    #[test]
    fn an_expect_step_reads_the_table_an_exists_in_names_once() {
        let df = df!("code" => ["a", "b", "x"]).unwrap();
        let reads = std::cell::Cell::new(0);
        let refs = |_: &str| -> PolarsResult<DataFrame> {
            reads.set(reads.get() + 1);
            Ok(df!("code" => ["a", "b"]).unwrap())
        };
        let mut e = crate::config::pipeline::Expect::default();
        e.exists_in.insert("code".into(), "silver.codes.code".into());
        // `x` is an orphan: the rules told from the columns do not hold, and the query runs.
        let out = apply(&Step::Expect(Box::new(e)), df, &refs, &BTreeMap::new()).unwrap();
        assert_eq!((out.df.height(), out.quarantined.map(|q| q.height())), (2, Some(1)));
        assert_eq!(reads.get(), 1);
    }

    #[test]
    fn only_columns_keeps_what_the_expressions_read() {
        let df = df!("a" => [1, 2], "b" => ["x", "y"], "c" => [1.0, 2.0]).unwrap();
        let exprs = [col("c"), polars::sql::sql_expr("sum(a)").unwrap()];
        let kept = only_columns(df.clone(), exprs.iter()).unwrap();
        assert_eq!(kept.get_column_names(), ["a", "c"]);
        assert_eq!(kept.height(), 2);
        // A count reads no column, and a missing column is left for the query to report.
        let count = [polars::sql::sql_expr("count(*)").unwrap()];
        assert_eq!(only_columns(df.clone(), count.iter()).unwrap().width(), 3);
        assert_eq!(only_columns(df, [col("missing")].iter()).unwrap().width(), 3);
    }
}
