//! Row checks that send failing rows to quarantine: casts that cannot convert a value exactly,
//! and the `expect` rules. A failing row carries `_rule` and `_reason`; the first failed check
//! in declaration order names it. Row rules run first; `unique` then looks at the rows that
//! passed them, keeps the first of each key and fails a key with a null in it.

use crate::config::pipeline::{DType, Expect};
use polars::prelude::*;

/// One check: an expression true for failing rows, the rule's name and the reason (a text
/// expression evaluated on the failing row).
pub struct Check {
    pub fails: Expr,
    pub rule: String,
    pub reason: Expr,
}

pub const RULE: &str = "_rule";
pub const REASON: &str = "_reason";

/// Splits `df` into (passing rows, failing rows with `_rule` and `_reason`). Each check is
/// evaluated once over all rows (a rule such as `unique` looks at every row); rules and reasons
/// are written for the failing rows only.
pub fn split(df: DataFrame, checks: Vec<Check>) -> PolarsResult<(DataFrame, DataFrame)> {
    split_setting(df, checks, vec![])
}

/// The name under which checks read the value `split_setting` sets at position `i`.
fn set_name(i: usize) -> String {
    format!("__jf_set_{i}")
}

/// `split`, and on the passing rows the columns `set` ((name, expression over `df`)) replaced
/// by their new values, computed in the same query as the checks, which read the value at
/// position `i` as `col(set_name(i))`. Failing rows keep the values they had.
fn split_setting(df: DataFrame, checks: Vec<Check>, set: Vec<(String, Expr)>) -> PolarsResult<(DataFrame, DataFrame)> {
    if checks.is_empty() && set.is_empty() {
        let empty = df.clear();
        return Ok((df, empty));
    }
    let flags: Vec<String> = (0..checks.len()).map(|i| format!("__jf_fails_{i}")).collect();
    let marks: Vec<Expr> =
        checks.iter().zip(&flags).map(|(c, f)| c.fails.clone().fill_null(true).alias(f.as_str())).collect();
    let values: Vec<Expr> = set.iter().enumerate().map(|(i, (_, e))| e.clone().alias(set_name(i))).collect();
    let selected: Vec<Expr> = (0..set.len()).map(set_name).chain(flags.iter().cloned()).map(col).collect();
    let computed = df.clone().lazy().with_columns(values).with_columns(marks).select(selected).collect()?;
    let mut failing = BooleanChunked::full("failing".into(), false, df.height());
    for f in &flags {
        failing = &failing | computed.column(f)?.bool()?;
    }
    let failed =
        df.filter(&failing)?.hstack(computed.select(flags.iter().map(String::as_str))?.filter(&failing)?.columns())?;
    let mut df = df;
    for (i, (name, _)) in set.iter().enumerate() {
        df.with_column(computed.column(&set_name(i))?.clone().with_name(name.into()))?;
    }
    drop(computed);
    if failed.height() == 0 {
        // Nothing failed: no rule or reason to write (a query saved per check step).
        let mut failed = failed.drop_many(&flags);
        for name in [RULE, REASON] {
            failed.with_column(Column::new_empty(name.into(), &DataType::String))?;
        }
        return Ok((df, failed));
    }
    let passed = keep_rows(df, &!&failing)?;
    let first_failing = |value: &dyn Fn(&Check) -> Expr| {
        let cases: Vec<Expr> = checks
            .iter()
            .zip(&flags)
            .map(|(c, f)| when(col(f.as_str())).then(value(c)).otherwise(lit(NULL).cast(DataType::String)))
            .collect();
        coalesce(&cases)
    };
    let rule = first_failing(&|c| lit(c.rule.clone()));
    let reason = first_failing(&|c| c.reason.clone());
    let failed = failed.lazy().with_columns([rule.alias(RULE), reason.alias(REASON)]).drop(cols(&flags)).collect()?;
    Ok((passed, failed))
}

/// The columns `exprs` compute over `df`, one value per row (a constant is repeated), without
/// `df`'s own columns.
pub fn evaluate(df: &DataFrame, exprs: Vec<Expr>) -> PolarsResult<DataFrame> {
    let names: Vec<PlSmallStr> = exprs.iter().map(|e| e.clone().meta().output_name()).collect::<PolarsResult<_>>()?;
    df.clone().lazy().with_columns(exprs).select(names.into_iter().map(col).collect::<Vec<_>>()).collect()
}

/// The rows of `df` where `mask` (without nulls) is true. Constant columns (provenance) stay
/// constants. A frame built from batches (aligned chunks) is filtered a chunk at a time, each
/// chunk dropped once filtered, so its rows are never all held twice.
pub fn keep_rows(df: DataFrame, mask: &BooleanChunked) -> PolarsResult<DataFrame> {
    let height = mask.sum().unwrap_or(0) as usize;
    by_chunks(df, height, |chunk, offset| chunk.filter(&mask.slice(offset as i64, chunk.height())))
}

/// `f` applied to `df` a chunk at a time when `df` is built from batches (aligned chunks), each
/// chunk dropped once done, else to `df` whole; `f` takes the chunk and the offset of its first
/// row, and the result has `height` rows. Constant columns (provenance) are set aside and put
/// back as constants: `f` sees the other columns only.
pub fn by_chunks(
    mut df: DataFrame,
    height: usize,
    mut f: impl FnMut(DataFrame, usize) -> PolarsResult<DataFrame>,
) -> PolarsResult<DataFrame> {
    let constant = |c: &Column| matches!(c, Column::Scalar(_));
    let order = df.get_column_names_owned();
    let constants: Vec<Column> = df.columns().iter().filter(|c| constant(c)).cloned().collect();
    if !constants.is_empty() {
        df = df.drop_many(constants.iter().map(|c| c.name().clone()));
    }
    let done = if df.first_col_n_chunks() < 2 || df.should_rechunk() {
        f(df, 0)?
    } else {
        let chunks: Vec<DataFrame> = df.split_chunks().collect();
        drop(df);
        let mut done = DataFrame::empty();
        let mut offset = 0;
        for chunk in chunks {
            let rows = chunk.height();
            let part = f(chunk, offset)?;
            offset += rows;
            if done.width() == 0 {
                done = part;
            } else {
                done.vstack_mut_owned(part)?;
            }
        }
        done
    };
    if constants.is_empty() {
        return Ok(done);
    }
    let columns = order
        .iter()
        .map(|name| match constants.iter().find(|c| c.name() == name) {
            Some(Column::Scalar(c)) => Ok(Column::Scalar(c.resize(height))),
            _ => done.column(name).cloned(),
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    DataFrame::new(height, columns)
}

fn quoted_value(column: &str) -> Expr {
    concat_str([lit("'"), col(column).cast(DataType::String), lit("'")], "", false)
}

/// The polars type of a cast target.
pub fn polars_type(t: DType) -> DataType {
    match t {
        DType::Text => DataType::String,
        DType::Int32 => DataType::Int32,
        DType::Int64 => DataType::Int64,
        DType::Float64 => DataType::Float64,
        DType::Boolean => DataType::Boolean,
        DType::Date => DataType::Date,
    }
}

/// The expression casting `column` to `t`: text is trimmed first; booleans accept
/// true/false/yes/no/1/0 in any case; dates are ISO `YYYY-MM-DD`. Unconvertible values are null
/// (and `cast_columns` quarantines them; it also refuses casts that would change a value).
pub fn cast_expr(column: &str, t: DType, current: &DataType) -> Expr {
    let c = col(column);
    if current != &DataType::String {
        return c.cast(polars_type(t));
    }
    let trimmed = c.str().strip_chars(lit(NULL));
    match t {
        DType::Text => col(column),
        DType::Boolean => {
            let lower = trimmed.str().to_lowercase();
            when(lower.clone().is_in(lit(Series::new("t".into(), ["true", "yes", "y", "1"])).implode(false), false))
                .then(lit(true))
                .when(lower.is_in(lit(Series::new("f".into(), ["false", "no", "n", "0"])).implode(false), false))
                .then(lit(false))
                .otherwise(lit(NULL).cast(DataType::Boolean))
        }
        DType::Date => trimmed.str().to_date(StrptimeOptions {
            format: Some("%Y-%m-%d".into()),
            strict: false,
            ..Default::default()
        }),
        other => trimmed.cast(polars_type(other)),
    }
}

/// Casts `casts` columns strictly: a row goes to quarantine when a non-null value does not
/// convert, or would convert to something else (a truncated fraction, an overflow, a lost time
/// of day, a rounded large integer). Rounding is an explicit step (`derive`).
pub fn cast_columns(df: DataFrame, casts: &[(String, DType)]) -> PolarsResult<(DataFrame, DataFrame)> {
    match cast_text_to_numbers(&df, casts)? {
        Some(done) => Ok(done),
        None => cast_by_query(df, casts),
    }
}

/// A cast target as the rules and reasons name it (`int64`).
fn type_name(t: DType) -> String {
    format!("{t:?}").to_lowercase()
}

/// The rule a row failing the cast of `name` to `type_name` is quarantined under.
fn cast_rule(name: &str, type_name: &str) -> String {
    format!("cast({name}: {type_name})")
}

/// `cast_columns` in one query that casts, checks and names the failing rows' rule and reason.
fn cast_by_query(df: DataFrame, casts: &[(String, DType)]) -> PolarsResult<(DataFrame, DataFrame)> {
    let mut set = Vec::new();
    let mut checks = Vec::new();
    for (i, (name, t)) in casts.iter().enumerate() {
        let current = df.column(name)?.dtype().clone();
        // The cast value, computed once (see `split_setting`), as the checks read it.
        let cast = col(set_name(i));
        let type_name = type_name(*t);
        let changed = if current == DataType::String || *t == DType::Text || current == polars_type(*t) {
            lit(false)
        } else {
            // Typed to typed: the value must come back unchanged.
            cast.clone().cast(current.clone()).neq(col(name.as_str()))
        };
        checks.push(Check {
            fails: col(name).is_not_null().and(cast.is_null().or(changed)),
            rule: cast_rule(name, &type_name),
            reason: concat_str(
                [lit(format!("{name}: cannot cast ")), quoted_value(name), lit(format!(" to {type_name}"))],
                "",
                false,
            ),
        });
        set.push((name.clone(), cast_expr(name, *t, &current)));
    }
    split_setting(df, checks, set)
}

/// The usual casts, of text columns to numbers, made on the columns themselves rather than by a
/// query: each value trimmed (only where it has spaces) and cast as the query casts it, a row
/// whose value does not convert failing with the rule and reason the query gives it (the first
/// failing cast names it). `None` when a cast is of another kind.
fn cast_text_to_numbers(df: &DataFrame, casts: &[(String, DType)]) -> PolarsResult<Option<(DataFrame, DataFrame)>> {
    let numbers = [DType::Int32, DType::Int64, DType::Float64, DType::Text];
    if !casts.iter().all(|(name, t)| numbers.contains(t) && super::trimmed::text_values(df, name)) {
        return Ok(None);
    }
    let mut out = df.clone();
    // Per cast with a value that does not convert: the cast and its failing rows.
    let mut failures: Vec<(&String, DType, BooleanChunked)> = Vec::new();
    for (name, t) in casts.iter().filter(|(_, t)| *t != DType::Text) {
        let values = df.column(name)?.str()?;
        let trimmed = super::trimmed::cleaned(values, &super::trimmed::Cleaning::trim());
        let cast = trimmed.as_ref().unwrap_or(values).cast(&polars_type(*t))?;
        if cast.null_count() != values.null_count() {
            failures.push((name, *t, &values.is_not_null() & &cast.is_null()));
        }
        out.with_column(cast.with_name(name.into()).into_column())?;
    }
    let Some(failing) = failures.iter().map(|(_, _, f)| f.clone()).reduce(|a, b| &a | &b) else {
        return Ok(Some((out, none_failed(df)?)));
    };
    let (mut rules, mut reasons) = (Vec::new(), Vec::new());
    for row in failing.iter().enumerate().filter(|(_, f)| *f == Some(true)).map(|(row, _)| row) {
        let first = failures.iter().find(|(_, _, f)| f.get(row) == Some(true));
        if let Some((name, t, _)) = first {
            let type_name = type_name(*t);
            let value = df.column(name.as_str())?.str()?.get(row).unwrap_or_default();
            rules.push(cast_rule(name, &type_name));
            reasons.push(format!("{name}: cannot cast '{value}' to {type_name}"));
        }
    }
    let mut failed = df.filter(&failing)?;
    failed.with_column(Column::new(RULE.into(), rules))?;
    failed.with_column(Column::new(REASON.into(), reasons))?;
    Ok(Some((keep_rows(out, &!&failing)?, failed)))
}

/// The failing rows of `df` when none fails, as `split` gives them: no rows, `df`'s columns and
/// the rule and reason.
fn none_failed(df: &DataFrame) -> PolarsResult<DataFrame> {
    let mut failed = df.clear();
    for name in [RULE, REASON] {
        failed.with_column(Column::new_empty(name.into(), &DataType::String))?;
    }
    Ok(failed)
}

/// `split` by `row_checks` for an `expect` step whose row rules all hold, told from the columns
/// without a query: `not_null` on columns without nulls; `range` on columns of numbers;
/// `accepted_values`, `exists_in` and `regex` on text (and, for `exists_in`, a text column of the
/// other table; for `regex`, the pattern compiled as the query's `str.contains` compiles it, by
/// the same `regex` crate). `None` for any other rule (`predicate`), any other type, a missing
/// column, no row rule at all, or a rule that fails a row: then the query finds the rows and
/// reasons (and gives the error of a pattern that does not compile).
pub fn row_rules_hold(
    df: &DataFrame,
    e: &Expect,
    refs: &super::steps::RefReader,
) -> PolarsResult<Option<(DataFrame, DataFrame)>> {
    let any_rule = !e.not_null.is_empty()
        || !e.accepted_values.is_empty()
        || !e.range.is_empty()
        || !e.exists_in.is_empty()
        || !e.regex.is_empty();
    if !any_rule || !e.predicate.is_empty() {
        return Ok(None);
    }
    let text = |c: &str| df.column(c).ok().and_then(|c| c.as_materialized_series().str().ok().cloned());
    let not_null = e.not_null.iter().all(|c| df.column(c).is_ok_and(|c| c.null_count() == 0));
    let accepted = || {
        e.accepted_values.iter().all(|(c, values)| {
            let allowed: PlHashSet<&str> = values.iter().map(String::as_str).collect();
            text(c).is_some_and(|t| t.iter().flatten().all(|v| allowed.contains(v)))
        })
    };
    let in_range = || -> PolarsResult<bool> {
        for (c, range) in &e.range {
            let Ok(column) = df.column(c) else { return Ok(false) };
            if !column.dtype().is_primitive_numeric() {
                return Ok(false);
            }
            // As the query: the value as a fraction, outside when below `min` or above `max`.
            let numbers = column.as_materialized_series().cast(&DataType::Float64)?;
            let outside = |v: f64| range.min.is_some_and(|min| v < min) || range.max.is_some_and(|max| v > max);
            if numbers.f64()?.iter().flatten().any(outside) {
                return Ok(false);
            }
        }
        Ok(true)
    };
    let exist = || -> PolarsResult<bool> {
        for (c, target) in &e.exists_in {
            let (Some((reference, column)), Some(values)) =
                (crate::config::pipeline::split_column_ref(target), text(c))
            else {
                return Ok(false);
            };
            let other = refs(reference)?;
            let Ok(keys) = other.column(column).map(|k| k.as_materialized_series().clone()) else { return Ok(false) };
            let Ok(keys) = keys.str() else { return Ok(false) };
            let keys: PlHashSet<&str> = keys.iter().flatten().collect();
            if !values.iter().flatten().all(|v| keys.contains(v)) {
                return Ok(false);
            }
        }
        Ok(true)
    };
    // Each value (a run of equal values once) against the pattern; Polars compiles it under a
    // size limit when POLARS_REGEX_SIZE_LIMIT is set, which the query then applies.
    let matching = || {
        std::env::var_os("POLARS_REGEX_SIZE_LIMIT").is_none()
            && e.regex.iter().all(|(c, pattern)| {
                let (Ok(re), Some(values)) = (regex::Regex::new(&format!("^(?:{pattern})$")), text(c)) else {
                    return false;
                };
                let mut last = None;
                let all = values.iter().flatten().all(|v| {
                    let same = last == Some(v);
                    last = Some(v);
                    same || re.is_match(v)
                });
                all
            })
    };
    if !(not_null && accepted() && in_range()? && exist()? && matching()) {
        return Ok(None);
    }
    Ok(Some((df.clone(), none_failed(df)?)))
}

/// Whether `key` of `df`, of text, whole numbers or dates, has no null and no repeated value:
/// then `unique` fails no row. Told by the keys' encoded rows, without a query.
fn key_holds(df: &DataFrame, key: &[String]) -> PolarsResult<bool> {
    let Ok(columns) = key.iter().map(|k| df.column(k).cloned()).collect::<PolarsResult<Vec<_>>>() else {
        return Ok(false);
    };
    let exact = |d: &DataType| d.is_integer() || matches!(d, DataType::String | DataType::Date);
    if !columns.iter().all(|c| exact(c.dtype()) && c.null_count() == 0) {
        return Ok(false);
    }
    let flags = vec![false; columns.len()];
    let rows =
        polars_core::chunked_array::ops::row_encode::_get_rows_encoded_ca("".into(), &columns, &flags, &flags, false)?;
    let mut seen = PlHashSet::with_capacity(rows.len());
    let distinct = rows.downcast_iter().flat_map(|a| a.values_iter()).all(|row| seen.insert(row));
    Ok(distinct)
}

/// Splits `df` by the `unique` key: a row whose key has a null fails, and so does every row
/// but the first of each key.
pub fn unique(df: DataFrame, key: &[String]) -> PolarsResult<(DataFrame, DataFrame)> {
    if key.is_empty() {
        let empty = df.clear();
        return Ok((df, empty));
    }
    if key_holds(&df, key)? {
        let failed = none_failed(&df)?;
        return Ok((df, failed));
    }
    unique_by_query(df, key)
}

/// `unique` in one query that finds the failing rows and names their rule and reason.
fn unique_by_query(df: DataFrame, key: &[String]) -> PolarsResult<(DataFrame, DataFrame)> {
    let names = key.join(", ");
    let shown = concat_str(
        key.iter().map(|c| col(c).cast(DataType::String).fill_null(lit("null"))).collect::<Vec<_>>(),
        ", ",
        false,
    );
    let any_null = key.iter().map(|c| col(c).is_null()).reduce(|a, b| a.or(b)).unwrap_or(lit(false));
    let first_of_key = match key {
        [one] => col(one.as_str()).is_first_distinct(),
        _ => as_struct(key.iter().map(col).collect()).is_first_distinct(),
    };
    let checks = vec![
        Check {
            fails: any_null,
            rule: format!("unique({names})"),
            reason: concat_str(
                [lit(format!("({names}) = (")), shown.clone(), lit(") has a null; a key must be whole")],
                "",
                false,
            ),
        },
        Check {
            fails: first_of_key.not(),
            rule: format!("unique({names})"),
            reason: concat_str([lit(format!("duplicate ({names}) = (")), shown, lit(")")], "", false),
        },
    ];
    split(df, checks)
}

/// The row rules of an `expect` step (all but `unique`), in declaration order; `refs` reads
/// other tables.
pub fn row_checks(e: &Expect, refs: &super::steps::RefReader) -> PolarsResult<Vec<Check>> {
    let mut checks = Vec::new();
    for c in &e.not_null {
        checks.push(Check {
            fails: col(c).is_null(),
            rule: format!("not_null({c})"),
            reason: lit(format!("{c} is null")),
        });
    }
    for (c, values) in &e.accepted_values {
        let allowed = Series::new("allowed".into(), values.clone());
        checks.push(Check {
            fails: not_in(c, allowed),
            rule: format!("accepted_values({c})"),
            reason: value_reason(c, format!(" is not one of {values:?}")),
        });
    }
    for (c, pattern) in &e.regex {
        checks.push(Check {
            fails: col(c)
                .is_not_null()
                .and(col(c).cast(DataType::String).str().contains(lit(format!("^(?:{pattern})$")), true).not()),
            rule: format!("regex({c})"),
            reason: value_reason(c, format!(" does not match {pattern}")),
        });
    }
    for (c, range) in &e.range {
        let v = col(c).cast(DataType::Float64);
        let mut outside = lit(false);
        if let Some(min) = range.min {
            outside = outside.or(v.clone().lt(lit(min)));
        }
        if let Some(max) = range.max {
            outside = outside.or(v.clone().gt(lit(max)));
        }
        checks.push(Check {
            fails: col(c).is_not_null().and(v.is_null().or(outside)),
            rule: format!("range({c})"),
            reason: value_reason(c, format!(" is outside [{}, {}]", fmt_bound(range.min), fmt_bound(range.max))),
        });
    }
    for (c, target) in &e.exists_in {
        let Some((reference, column)) = crate::config::pipeline::split_column_ref(target) else {
            polars_bail!(ComputeError: "exists_in `{target}` must be layer.table.column");
        };
        let keys =
            refs(reference)?.column(column)?.as_materialized_series().drop_nulls().unique()?.cast(&DataType::String)?;
        checks.push(Check {
            fails: not_in(c, keys),
            rule: format!("exists_in({c})"),
            reason: value_reason(c, format!(" is not in {target}")),
        });
    }
    for (name, sql) in &e.predicate {
        let pred = polars::sql::sql_expr(sql)?;
        checks.push(Check {
            fails: pred.not(),
            rule: format!("predicate({name})"),
            reason: lit(format!("fails `{sql}`")),
        });
    }
    Ok(checks)
}

/// "`column` = 'value'" followed by `what`, evaluated on the failing row.
fn value_reason(column: &str, what: String) -> Expr {
    concat_str([lit(format!("{column} = ")), quoted_value(column), lit(what)], "", false)
}

/// True where a non-null value of `column` (as text) is not among `allowed`.
fn not_in(column: &str, allowed: Series) -> Expr {
    col(column).is_not_null().and(col(column).cast(DataType::String).is_in(lit(allowed).implode(false), false).not())
}

fn fmt_bound(b: Option<f64>) -> String {
    b.map_or("-".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pipeline::Range;

    /// A frame of three batches (chunks) with a constant column, as a batched layer is.
    fn batched() -> DataFrame {
        let batch = |from: i64| {
            let ids: Vec<i64> = (from..from + 4).collect();
            DataFrame::new(4, vec![Column::new("id".into(), ids)]).unwrap()
        };
        let mut df = batch(0);
        df.vstack_mut_owned(batch(4)).unwrap();
        df.vstack_mut_owned(batch(8)).unwrap();
        let layer = Column::new_scalar("_layer".into(), Scalar::new(DataType::String, "silver".into()), 12);
        df.with_column(layer).unwrap();
        df
    }

    #[test]
    fn keep_rows_filters_chunk_by_chunk_and_keeps_constants_constant() {
        let df = batched();
        assert_eq!(df.first_col_n_chunks(), 3);
        let mask = BooleanChunked::from_iter_values("m".into(), (0..12).map(|i| i % 3 != 0));
        let expected = df.filter(&mask).unwrap();
        let kept = keep_rows(df, &mask).unwrap();
        assert!(kept.equals(&expected));
        assert_eq!(kept.get_column_names(), expected.get_column_names());
        assert!(matches!(kept.column("_layer").unwrap(), Column::Scalar(_)));
        assert_eq!(kept.height(), 8);
    }

    #[test]
    fn keep_rows_of_no_rows_and_all_rows() {
        let none = BooleanChunked::from_iter_values("m".into(), std::iter::repeat_n(false, 12));
        assert_eq!(keep_rows(batched(), &none).unwrap().height(), 0);
        let all = BooleanChunked::from_iter_values("m".into(), std::iter::repeat_n(true, 12));
        assert!(keep_rows(batched(), &all).unwrap().equals(&batched()));
    }

    #[test]
    fn by_chunks_maps_each_chunk_at_its_offset_and_keeps_constants_constant() {
        let mut seen = vec![];
        let doubled = by_chunks(batched(), 12, |chunk, offset| {
            seen.push((offset, chunk.height(), chunk.width()));
            chunk.lazy().with_column(col("id") * lit(2)).collect()
        })
        .unwrap();
        assert_eq!(seen, [(0, 4, 1), (4, 4, 1), (8, 4, 1)]);
        let expected: Vec<i64> = (0..12).map(|i| i * 2).collect();
        let ids: Vec<Option<i64>> = doubled.column("id").unwrap().i64().unwrap().iter().collect();
        assert_eq!(ids, expected.into_iter().map(Some).collect::<Vec<_>>());
        assert_eq!(doubled.get_column_names(), batched().get_column_names());
        assert!(matches!(doubled.column("_layer").unwrap(), Column::Scalar(_)));
        assert_eq!(doubled.column("_layer").unwrap().len(), 12);
    }

    #[test]
    fn split_setting_sets_passing_rows_and_keeps_failing_rows_as_they_were() {
        let df = df!("v" => ["1", "x", "3"], "k" => [1, 2, 3]).unwrap();
        let set = vec![("v".to_string(), col("v").cast(DataType::Int64))];
        let fails = Check { fails: col(set_name(0)).is_null(), rule: "r".into(), reason: lit("bad") };
        let (passed, failed) = split_setting(df.clone(), vec![fails], set.clone()).unwrap();
        let ints: Vec<Option<i64>> = passed.column("v").unwrap().i64().unwrap().iter().collect();
        assert_eq!(ints, [Some(1), Some(3)]);
        assert_eq!(strings_of(&failed, "v"), [Some("x".to_string())]);
        assert_eq!(strings_of(&failed, RULE), [Some("r".to_string())]);
        // Without checks the columns are still set, and nothing fails.
        let (passed, failed) = split_setting(df, vec![], set).unwrap();
        assert_eq!(passed.column("v").unwrap().dtype(), &DataType::Int64);
        assert_eq!((passed.height(), failed.height()), (3, 0));
    }

    fn strings_of(df: &DataFrame, name: &str) -> Vec<Option<String>> {
        df.column(name).unwrap().str().unwrap().iter().map(|v| v.map(str::to_string)).collect()
    }

    #[test]
    fn text_cast_to_numbers_on_the_columns_is_the_query_cast() {
        let df = df!(
            "i" => [Some(" 12"), Some("-3 "), None, Some("0042"), Some("\u{a0}7")],
            "f" => [Some("1.5"), Some(" 2e3"), Some("-0.0"), None, Some("7")],
            "s" => ["a", "b", "c", "d", "e"],
            "j" => [Some("2147483647"), None, Some(" 1"), Some("2"), Some("3")],
        )
        .unwrap();
        let casts = [
            ("i".to_string(), DType::Int64),
            ("f".to_string(), DType::Float64),
            ("s".to_string(), DType::Text),
            ("j".to_string(), DType::Int32),
        ];
        let (fast, failed) = cast_text_to_numbers(&df, &casts).unwrap().expect("all convert");
        let (query, query_failed) = cast_by_query(df.clone(), &casts).unwrap();
        assert!(fast.equals_missing(&query), "{fast}\n{query}");
        assert_eq!(failed.schema(), query_failed.schema());
        assert_eq!(failed.height(), 0);
        // Values that do not convert: the failing rows, rules and reasons are the query's.
        let bad = df!(
            "i" => [Some("1"), Some("x"), None, Some(" 2 "), Some("y")],
            "f" => [Some("1e2"), Some("2"), Some("z"), Some("w"), None],
        )
        .unwrap();
        let (fast, fast_failed) = cast_text_to_numbers(&bad, &casts[..2]).unwrap().expect("text to numbers");
        let (query, query_failed) = cast_by_query(bad, &casts[..2]).unwrap();
        assert!(fast.equals_missing(&query), "{fast}\n{query}");
        assert!(fast_failed.equals_missing(&query_failed), "{fast_failed}\n{query_failed}");
        assert_eq!(fast_failed.height(), 4);
    }

    #[test]
    fn expectations_that_hold_are_told_without_a_query_as_the_query_tells_them() {
        let df = df!(
            "code" => ["a", "b", "c", "d"],
            "n" => [1, 2, 1, 2],
            "maybe" => [Some("x"), None, Some("y"), Some("z")],
        )
        .unwrap();
        let expect = |not_null: &[&str]| Expect {
            not_null: not_null.iter().map(|c| c.to_string()).collect(),
            ..Default::default()
        };
        let codes = df!("code" => ["a", "b", "c", "d", "e"]).unwrap();
        let refs = |r: &str| -> PolarsResult<DataFrame> {
            if r == "silver.codes" {
                Ok(codes.clone())
            } else {
                polars_bail!(ComputeError: "no table {r}")
            }
        };
        let with = |e: Expect, rule: &str, column: &str, value: &str| {
            let mut e = e;
            match rule {
                "range" => {
                    let (min, max) = value.split_once(',').unwrap();
                    e.range.insert(column.into(), Range { min: min.parse().ok(), max: max.parse().ok() });
                }
                "accepted" => {
                    e.accepted_values.insert(column.into(), value.split(',').map(String::from).collect());
                }
                "exists" => {
                    e.exists_in.insert(column.into(), value.into());
                }
                "regex" => {
                    e.regex.insert(column.into(), value.into());
                }
                _ => unreachable!(),
            }
            e
        };
        let holding = [
            expect(&["code", "n"]),
            with(expect(&[]), "range", "n", "1,2"),
            with(expect(&["code"]), "range", "n", "0,-"),
            with(expect(&[]), "accepted", "maybe", "x,y,z"),
            with(expect(&[]), "exists", "code", "silver.codes.code"),
            with(with(expect(&["n"]), "accepted", "maybe", "x,y,z"), "accepted", "code", "a,b,c,d"),
            with(expect(&["code"]), "regex", "code", "[a-d]"),
            with(expect(&[]), "regex", "code", "a|b|c|d"),
            with(with(expect(&[]), "regex", "maybe", "[x-z]"), "regex", "code", "\\w"),
        ];
        for e in &holding {
            let (passed, failed) = row_rules_hold(&df, e, &refs).unwrap().unwrap_or_else(|| panic!("holds: {e:?}"));
            let (q_passed, q_failed) = split(df.clone(), row_checks(e, &refs).unwrap()).unwrap();
            assert!(passed.equals_missing(&q_passed), "{e:?}");
            assert_eq!((failed.schema(), failed.height()), (q_failed.schema(), q_failed.height()), "{e:?}");
        }
        // A rule that fails a row, a type told only by the query, a rule the query alone
        // checks, a missing column: the query.
        let not_holding = [
            expect(&["code", "maybe"]),
            expect(&["absent"]),
            with(expect(&[]), "range", "n", "2,-"),
            with(expect(&[]), "range", "code", "0,5"),
            with(expect(&[]), "accepted", "maybe", "x,y"),
            with(expect(&[]), "accepted", "n", "1,2"),
            with(expect(&[]), "exists", "maybe", "silver.codes.code"),
            with(expect(&[]), "regex", "code", "[a-c]"),
            with(expect(&[]), "regex", "code", "b"),
            with(expect(&[]), "regex", "code", "a|"),
            with(expect(&[]), "regex", "maybe", "x"),
            with(expect(&[]), "regex", "n", "[12]"),
            with(expect(&[]), "regex", "code", "("),
            Expect::default(),
        ];
        for e in &not_holding {
            assert!(row_rules_hold(&df, e, &refs).unwrap().is_none(), "{e:?}");
        }
        // The query finds the rows that fail, as before.
        let (_, failed) = split(df.clone(), row_checks(&not_holding[2], &refs).unwrap()).unwrap();
        assert_eq!(failed.height(), 2);
        // A key with no null and no repeat, of one column or two.
        for key in [vec!["code".to_string()], vec!["n".to_string(), "code".to_string()]] {
            assert!(key_holds(&df, &key).unwrap());
            let (passed, failed) = unique(df.clone(), &key).unwrap();
            let (q_passed, q_failed) = unique_by_query(df.clone(), &key).unwrap();
            assert!(passed.equals_missing(&q_passed));
            assert_eq!((failed.schema(), failed.height()), (q_failed.schema(), q_failed.height()));
        }
        // Repeated, or with a null: the query.
        assert!(!key_holds(&df, &["n".to_string()]).unwrap());
        assert!(!key_holds(&df, &["maybe".to_string()]).unwrap());
        let (_, failed) = unique(df, &["n".to_string()]).unwrap();
        assert_eq!(failed.height(), 2);
    }
}
