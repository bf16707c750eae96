//! Compile-time column checks: the column names each layer will have, traced from the source
//! header through bronze and every step, so an unknown column is reported before any data is
//! read. A `sql:` step's output is not traced (its columns are unknown until it runs).

use crate::config::pipeline::{Bronze, HeaderStyle, Step};
use crate::diag::did_you_mean;
use polars::prelude::Expr;

/// Provenance columns every layer carries.
pub const PROVENANCE: [&str; 4] = ["_source_file", "_ingested_at", "_batch_id", "_layer"];

/// A problem found while tracing columns: the token to locate and the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub token: String,
    pub message: String,
    pub hint: Option<String>,
}

fn unknown(column: &str, context: &str, known: &[String]) -> Problem {
    Problem {
        token: column.to_string(),
        message: format!("unknown column `{column}` in {context}"),
        hint: did_you_mean(column, known.iter().map(String::as_str)),
    }
}

/// `snake_case` of a published header: trimmed, BOM removed, lower case, runs of anything but
/// letters and digits become one `_`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.trim_start_matches('\u{feff}').trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

/// Every source column's name as bronze normalises it, before `rename`: snake case or trimmed,
/// a blank one `column_N`, repeats suffixed `_2`, `_3`.
fn normalised_names(header: &[String], bronze: &Bronze) -> Vec<String> {
    let mut seen = std::collections::HashMap::<String, usize>::new();
    header
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let mut name = match bronze.columns {
                HeaderStyle::SnakeCase => snake_case(raw),
                HeaderStyle::Trim => raw.trim_start_matches('\u{feff}').trim().to_string(),
            };
            if name.is_empty() {
                name = format!("column_{}", i + 1);
            }
            let count = seen.entry(name.clone()).or_insert(0);
            *count += 1;
            if *count == 1 {
                name
            } else {
                format!("{name}_{count}")
            }
        })
        .collect()
}

/// `names` with bronze's `rename` applied.
fn renamed(mut names: Vec<String>, bronze: &Bronze) -> Vec<String> {
    for name in &mut names {
        if let Some(new) = bronze.rename.get(name.as_str()) {
            name.clone_from(new);
        }
    }
    names
}

/// Checks bronze against the header: every rename names a column of the normalised header,
/// every cast and required column exists. Returns the bronze names, and the problems.
pub fn check_bronze(header: &[String], bronze: &Bronze) -> (Vec<String>, Vec<Problem>) {
    let normalised = normalised_names(header, bronze);
    let names = renamed(normalised.clone(), bronze);
    let mut problems = Vec::new();
    for old in bronze.rename.keys() {
        if !normalised.contains(old) {
            let mut p = unknown(old, "bronze.rename (not in the source header)", &normalised);
            p.message = format!("{}; the normalised header is [{}]", p.message, normalised.join(", "));
            problems.push(p);
        }
    }
    for col in bronze.cast.keys().chain(&bronze.required) {
        if !names.contains(col) && !bronze.rename.contains_key(col) {
            problems.push(Problem {
                token: col.clone(),
                message: format!("required column `{col}` is missing from the source"),
                hint: did_you_mean(col, names.iter().map(String::as_str)),
            });
        }
    }
    (names, problems)
}

/// The columns a SQL expression reads. Each distinct expression is parsed once per thread: a
/// compile checks it once on its own and again against its input's columns.
pub fn expression_columns(sql: &str) -> Result<Vec<String>, String> {
    type Parsed = std::collections::HashMap<String, Result<Vec<String>, String>>;
    thread_local! {
        static PARSED: std::cell::RefCell<Parsed> = Default::default();
    }
    if let Some(found) = PARSED.with_borrow(|parsed| parsed.get(sql).cloned()) {
        return found;
    }
    let columns = parse_expression_columns(sql);
    PARSED.with_borrow_mut(|parsed| parsed.insert(sql.to_string(), columns.clone()));
    columns
}

fn parse_expression_columns(sql: &str) -> Result<Vec<String>, String> {
    let expr = polars::sql::sql_expr(sql).map_err(|e| format!("invalid SQL expression `{sql}`: {e}"))?;
    let mut out = Vec::new();
    for e in &expr {
        if let Expr::Column(name) = e {
            if name.as_str() != "*" && !out.iter().any(|o: &String| o == name.as_str()) {
                out.push(name.to_string());
            }
        }
    }
    Ok(out)
}

fn check_expression(sql: &str, context: &str, known: &[String], problems: &mut Vec<Problem>) {
    match expression_columns(sql) {
        Ok(cols) => {
            for c in cols.iter().filter(|c| !known.contains(c)) {
                problems.push(unknown(c, context, known));
            }
        }
        Err(message) => problems.push(Problem {
            token: sql.split_whitespace().next().unwrap_or(sql).to_string(),
            message,
            hint: None,
        }),
    }
}

/// A problem for each of `cols` not in `known`, with a did-you-mean.
pub fn require<'a>(
    cols: impl IntoIterator<Item = &'a String>,
    context: &str,
    known: &[String],
    problems: &mut Vec<Problem>,
) {
    for c in cols {
        if !known.contains(c) {
            problems.push(unknown(c, context, known));
        }
    }
}

/// The columns after `step`, given the columns before it (`None` once unknown) and a lookup of
/// another table's output columns for joins. Problems are pushed; the trace goes on.
pub fn step_columns(
    step: &Step,
    before: Option<Vec<String>>,
    ref_columns: &dyn Fn(&str) -> Option<Vec<String>>,
    problems: &mut Vec<Problem>,
) -> Option<Vec<String>> {
    let mut cols = before?;
    if let Some(kind) = step.kind() {
        return kind.columns(cols, ref_columns, problems);
    }
    match step {
        Step::Filter(sql) => check_expression(sql, "filter", &cols, problems),
        Step::Derive(map) => {
            for (name, sql) in map {
                check_expression(sql, &format!("derive `{name}`"), &cols, problems);
            }
            for name in map.keys() {
                if !cols.contains(name) {
                    cols.push(name.clone());
                }
            }
        }
        Step::Cast(map) => require(map.keys(), "cast", &cols, problems),
        Step::Clean(c) => require(c.columns.iter().filter(|n| *n != "*"), "clean", &cols, problems),
        Step::Dedupe(d) => require(&d.keys, "dedupe", &cols, problems),
        Step::Expect(e) => {
            let keys = e
                .not_null
                .iter()
                .chain(&e.unique)
                .chain(e.accepted_values.keys())
                .chain(e.regex.keys())
                .chain(e.range.keys());
            require(keys, "expect", &cols, problems);
            for (name, sql) in &e.predicate {
                check_expression(sql, &format!("expect predicate `{name}`"), &cols, problems);
            }
            require(e.exists_in.keys(), "expect exists_in", &cols, problems);
            for target in e.exists_in.values() {
                match crate::config::pipeline::split_column_ref(target) {
                    Some((reference, column)) => {
                        if let Some(other) = ref_columns(reference) {
                            require([&column.to_string()], &format!("exists_in `{target}`"), &other, problems);
                        }
                    }
                    None => problems.push(Problem {
                        token: target.clone(),
                        message: format!("exists_in `{target}` must be layer.table.column"),
                        hint: None,
                    }),
                }
            }
        }
        Step::Drop(list) => {
            require(list, "drop", &cols, problems);
            cols.retain(|c| !list.contains(c));
        }
        Step::Rename(map) => {
            require(map.keys(), "rename", &cols, problems);
            for c in cols.iter_mut() {
                if let Some(new) = map.get(c) {
                    *c = new.clone();
                }
            }
        }
        Step::Select(list) => {
            require(list, "select", &cols, problems);
            let mut out = list.clone();
            out.extend(PROVENANCE.iter().filter(|p| cols.iter().any(|c| c == *p)).map(|p| p.to_string()));
            cols = out;
        }
        Step::Sort(list) => {
            let names: Vec<String> = list.iter().map(|s| sort_key(s).0.to_string()).collect();
            require(&names, "sort", &cols, problems);
        }
        Step::Unpivot(u) => {
            require(u.index.iter().chain(&u.on), "unpivot", &cols, problems);
            let mut out = u.index.clone();
            out.extend(PROVENANCE.iter().filter(|p| cols.iter().any(|c| c == *p)).map(|p| p.to_string()));
            out.push(u.variable.clone());
            out.push(u.value.clone());
            cols = out;
        }
        Step::Join(j) => {
            let left: Vec<String> = j.on.iter().chain(j.on_columns.keys()).cloned().collect();
            require(&left, "join keys", &cols, problems);
            let right = ref_columns(&j.reference)?;
            let right_keys: Vec<String> = j.on.iter().chain(j.on_columns.values()).cloned().collect();
            require(&right_keys, &format!("join keys of `{}`", j.reference), &right, problems);
            require(&j.select, &format!("join select of `{}`", j.reference), &right, problems);
            let taken: Vec<String> = if j.select.is_empty() {
                right.into_iter().filter(|c| !right_keys.contains(c) && !PROVENANCE.contains(&c.as_str())).collect()
            } else {
                j.select.clone()
            };
            for c in taken {
                let name = format!("{}{c}", j.prefix.as_deref().unwrap_or(""));
                if !cols.contains(&name) {
                    cols.push(name);
                }
            }
        }
        Step::Aggregate(a) => {
            require(&a.group_by, "aggregate group_by", &cols, problems);
            for (name, sql) in &a.measures {
                check_expression(sql, &format!("aggregate measure `{name}`"), &cols, problems);
            }
            cols = a.group_by.iter().chain(a.measures.keys()).cloned().collect();
        }
        Step::Sql(_) => return None,
        Step::Explode(_) | Step::Match(_) => unreachable!("traced through StepKind above"),
    }
    Some(cols)
}

/// A sort entry's column and whether it is descending: `year desc`.
pub fn sort_key(entry: &str) -> (&str, bool) {
    let entry = entry.trim();
    match entry.rsplit_once(char::is_whitespace) {
        Some((col, dir)) if dir.eq_ignore_ascii_case("desc") => (col.trim(), true),
        Some((col, dir)) if dir.eq_ignore_ascii_case("asc") => (col.trim(), false),
        _ => (entry, false),
    }
}

/// What can be decided about a step without its columns: expressions parse, regexes compile,
/// an aggregate has a group.
pub fn step_static(step: &Step) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut expression = |sql: &str| {
        if let Err(message) = expression_columns(sql) {
            problems.push(Problem {
                token: sql.split_whitespace().next().unwrap_or(sql).to_string(),
                message,
                hint: None,
            });
        }
    };
    if let Some(kind) = step.kind() {
        return kind.check_static();
    }
    let mut patterns: Vec<&String> = Vec::new();
    match step {
        Step::Filter(sql) => expression(sql),
        Step::Derive(map) => map.values().for_each(|s| expression(s)),
        Step::Aggregate(a) => {
            a.measures.values().for_each(|s| expression(s));
            if a.group_by.is_empty() {
                problems.push(Problem {
                    token: "aggregate".into(),
                    message: "`aggregate` needs at least one `group_by` column".into(),
                    hint: Some("to aggregate the whole table, use `sql: \"select sum(x) as x from input\"`".into()),
                });
            }
        }
        Step::Expect(e) => {
            e.predicate.values().for_each(|s| expression(s));
            patterns.extend(e.regex.values());
        }
        Step::Clean(c) => {
            patterns.extend(c.replace.keys());
            patterns.extend(&c.extract);
        }
        _ => {}
    }
    for pattern in patterns {
        if let Some(message) = regex_error(pattern) {
            problems.push(Problem { token: pattern.clone(), message, hint: None });
        }
    }
    problems
}

/// Why `pattern` does not compile as a regex, by the syntax of the engine the run uses (Polars'
/// string functions use the `regex` crate, whose parser is `regex_syntax`, with the same
/// messages). Parsing alone: building the matcher costs a hundred times more, and only a
/// pattern too big to compile (over 10 MB of program) passes here and fails at run.
fn regex_error(pattern: &str) -> Option<String> {
    let e = regex_syntax::Parser::new().parse(pattern).err()?.to_string();
    // The regex engine's message spans lines (the pattern with a caret); its last line says why.
    let why = e.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or("invalid").to_string();
    Some(format!("regex `{pattern}` does not compile: {}", why.trim_start_matches("error: ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_cases_published_headers() {
        assert_eq!(snake_case("\u{feff}Code - NOC 2021 V1.0"), "code_noc_2021_v1_0");
        assert_eq!(snake_case(" Digital Literacy "), "digital_literacy");
        assert_eq!(snake_case("Conditions_récentes"), "conditions_récentes");
    }

    #[test]
    fn finds_expression_columns_and_unknown_ones() {
        assert_eq!(expression_columns("level = 5 and upper(title) <> 'X'").unwrap(), ["level", "title"]);
        let mut problems = Vec::new();
        let step = Step::Filter("noc_cod = '1'".into());
        let out = step_columns(&step, Some(vec!["noc_code".into()]), &|_| None, &mut problems);
        assert_eq!(out, Some(vec!["noc_code".to_string()]));
        assert_eq!(problems[0].message, "unknown column `noc_cod` in filter");
        assert_eq!(problems[0].hint.as_deref(), Some("did you mean `noc_code`?"));
    }
}
