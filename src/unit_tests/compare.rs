//! Expected rows against actual rows, as multisets over the columns the expectation names (a
//! row that does not name a column accepts any value there); a failure is described as changed
//! cells (a missing row paired with the unexpected row that agrees with it most), then missing
//! and unexpected rows.

use polars::prelude::*;

/// A cell as compared: its text, or null. Numbers are compared by value (`2`, `2.0`).
pub type Cell = Option<String>;

/// Expected rows as a table of cells; `None` where a row does not name the column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<Cell>>>,
}

/// An expected row.
type Expected = Vec<Option<Cell>>;

/// What differs between the expected and the actual rows.
#[derive(Debug, Default)]
pub struct Diff {
    pub columns: Vec<String>,
    pub expected_rows: usize,
    pub actual_rows: usize,
    /// Expected columns the output does not have.
    pub absent: Vec<String>,
    /// (expected, actual) pairs that differ in some cells.
    pub changed: Vec<(Expected, Vec<Cell>)>,
    pub missing: Vec<Expected>,
    pub unexpected: Vec<Vec<Cell>>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.absent.is_empty() && self.changed.is_empty() && self.missing.is_empty() && self.unexpected.is_empty()
    }

    /// The failure, one finding per line, each starting with `what`.
    pub fn render(&self, what: &str) -> Vec<String> {
        let mut out = vec![format!("{what}: expected {} row(s), got {}", self.expected_rows, self.actual_rows)];
        for c in &self.absent {
            out.push(format!("{what}: no column `{c}`"));
        }
        for (e, a) in &self.changed {
            let named = || self.columns.iter().zip(e.iter().zip(a)).filter_map(|(c, (x, y))| Some((c, x.as_ref()?, y)));
            let same: Vec<String> =
                named().filter(|(_, x, y)| x == y).map(|(c, x, _)| format!("{c}: {}", shown(x))).collect();
            let cells: Vec<String> = named()
                .filter(|(_, x, y)| x != y)
                .map(|(c, x, y)| format!("{c} expected {}, got {}", shown(x), shown(y)))
                .collect();
            out.push(format!("{what}: changed   {{{}}}: {}", same.join(", "), cells.join("; ")));
        }
        for r in &self.missing {
            let cells = self.columns.iter().zip(r).filter_map(|(c, v)| Some(format!("{c}: {}", shown(v.as_ref()?))));
            out.push(format!("{what}: missing    {{{}}}", cells.collect::<Vec<_>>().join(", ")));
        }
        for r in &self.unexpected {
            let cells = self.columns.iter().zip(r).map(|(c, v)| format!("{c}: {}", shown(v)));
            out.push(format!("{what}: unexpected {{{}}}", cells.collect::<Vec<_>>().join(", ")));
        }
        out
    }
}

fn shown(c: &Cell) -> String {
    match c {
        Some(s) => format!("{s:?}"),
        None => "null".into(),
    }
}

/// Compares `expected` with the matching columns of `actual`.
pub fn compare(expected: &Table, actual: &DataFrame) -> Diff {
    // Provenance columns are never compared.
    let keep: Vec<usize> = (0..expected.columns.len())
        .filter(|&i| !crate::plan::check::PROVENANCE.contains(&expected.columns[i].as_str()))
        .collect();
    let expected = &Table {
        columns: keep.iter().map(|&i| expected.columns[i].clone()).collect(),
        rows: expected.rows.iter().map(|r| keep.iter().map(|&i| r[i].clone()).collect()).collect(),
    };
    let mut diff = Diff {
        columns: expected.columns.clone(),
        expected_rows: expected.rows.len(),
        actual_rows: actual.height(),
        ..Default::default()
    };
    let mut numeric = vec![false; expected.columns.len()];
    let mut actual_columns = Vec::new();
    for (i, c) in expected.columns.iter().enumerate() {
        match actual.column(c) {
            Ok(col) => {
                numeric[i] = col.dtype().is_primitive_numeric();
                actual_columns.push(Some(col.as_materialized_series().clone()));
            }
            Err(_) => {
                diff.absent.push(c.clone());
                actual_columns.push(None);
            }
        }
    }
    let normal = |i: usize, cell: &Cell| -> Cell {
        match cell {
            Some(s) if numeric[i] => Some(s.trim().parse::<f64>().map_or_else(|_| s.clone(), |x| format!("{x}"))),
            other => other.clone(),
        }
    };
    let actual_rows: Vec<Vec<Cell>> = (0..actual.height())
        .map(|r| {
            actual_columns
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    s.as_ref().and_then(|s| s.get(r).ok()).and_then(|v| cell(&v)).and_then(|c| normal(i, &Some(c)))
                })
                .collect()
        })
        .collect();
    let expected_rows: Vec<Expected> = expected
        .rows
        .iter()
        .map(|row| row.iter().enumerate().map(|(i, c)| c.as_ref().map(|c| normal(i, c))).collect())
        .collect();
    let fits = |e: &Expected, a: &Vec<Cell>| e.iter().zip(a).all(|(x, y)| x.as_ref().is_none_or(|x| x == y));
    // As many expected rows as possible matched to distinct actual rows they fit (a row that
    // names few columns may fit several): augmenting paths (Kuhn's algorithm).
    let fit: Vec<Vec<usize>> =
        expected_rows.iter().map(|e| (0..actual_rows.len()).filter(|&j| fits(e, &actual_rows[j])).collect()).collect();
    let mut owner: Vec<Option<usize>> = vec![None; actual_rows.len()];
    for i in 0..expected_rows.len() {
        augment(i, &fit, &mut owner, &mut vec![false; actual_rows.len()]);
    }
    let matched: std::collections::HashSet<usize> = owner.iter().flatten().copied().collect();
    let missing = expected_rows.into_iter().enumerate().filter(|(i, _)| !matched.contains(i)).map(|(_, e)| e);
    let mut unexpected: Vec<Vec<Cell>> =
        actual_rows.into_iter().zip(&owner).filter(|(_, o)| o.is_none()).map(|(a, _)| a).collect();
    for e in missing {
        // Paired only when they share a value (nulls alike say nothing).
        let agree =
            |a: &Vec<Cell>| e.iter().zip(a).filter(|(x, y)| x.as_ref().is_some_and(|x| x.is_some() && x == *y)).count();
        let best = (0..unexpected.len()).filter(|&i| agree(&unexpected[i]) > 0).max_by_key(|&i| agree(&unexpected[i]));
        match best {
            Some(i) => {
                let a = unexpected.remove(i);
                diff.changed.push((e, a));
            }
            None => diff.missing.push(e),
        }
    }
    diff.unexpected = unexpected;
    diff
}

/// Tries to match expected row `i`, moving earlier matches along if that frees a row for it.
fn augment(i: usize, fit: &[Vec<usize>], owner: &mut [Option<usize>], seen: &mut [bool]) -> bool {
    for &j in &fit[i] {
        if seen[j] {
            continue;
        }
        seen[j] = true;
        if owner[j].is_none_or(|k| augment(k, fit, owner, seen)) {
            owner[j] = Some(i);
            return true;
        }
    }
    false
}

/// The text of a value, or none for null.
fn cell(v: &AnyValue) -> Cell {
    match v {
        AnyValue::Null => None,
        AnyValue::String(s) => Some(s.to_string()),
        AnyValue::StringOwned(s) => Some(s.to_string()),
        v => Some(v.str_value().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(columns: &[&str], rows: &[&[Option<&str>]]) -> Table {
        Table {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: rows.iter().map(|r| r.iter().map(|c| Some(c.map(str::to_string))).collect()).collect(),
        }
    }

    #[test]
    fn a_row_that_does_not_name_a_column_accepts_any_value() {
        let actual = df!("code" => ["a", "b"], "n" => [1, 1]).unwrap();
        let columns = vec!["code".to_string(), "n".to_string()];
        let one = || Some(Some("1".to_string()));
        // {n: 1} fits both rows; {code: a, n: 1} only the first: both are matched.
        let expected =
            Table { columns: columns.clone(), rows: vec![vec![None, one()], vec![Some(Some("a".into())), one()]] };
        assert!(compare(&expected, &actual).is_empty());
        let expected = Table { columns, rows: vec![vec![Some(Some("c".into())), None], vec![None, one()]] };
        let text = compare(&expected, &actual).render("rows");
        assert_eq!(text[1..], ["rows: missing    {code: \"c\"}", "rows: unexpected {code: \"b\", n: \"1\"}"]);
    }

    #[test]
    fn rows_match_in_any_order_and_numbers_by_value() {
        let actual = df!("code" => ["00010", "00011"], "value" => [2.0, 2.5], "extra" => ["x", "y"]).unwrap();
        let expected = table(&["value", "code"], &[&[Some("2.5"), Some("00011")], &[Some("2"), Some("00010")]]);
        assert!(compare(&expected, &actual).is_empty());
    }

    #[test]
    fn differences_are_changed_missing_and_unexpected() {
        let actual = df!("code" => ["00010", "99999"], "title" => ["Legislators", "Other"]).unwrap();
        let expected = table(
            &["code", "title", "level"],
            &[&[Some("00010"), Some("Lawmakers"), None], &[Some("12345"), Some("New"), None]],
        );
        let diff = compare(&expected, &actual);
        assert_eq!(diff.absent, ["level"]);
        let text = diff.render("rows");
        assert_eq!(
            text,
            [
                "rows: expected 2 row(s), got 2",
                "rows: no column `level`",
                "rows: changed   {code: \"00010\", level: null}: title expected \"Lawmakers\", got \"Legislators\"",
                "rows: missing    {code: \"12345\", title: \"New\", level: null}",
                "rows: unexpected {code: \"99999\", title: \"Other\", level: null}",
            ]
        );
    }
}
