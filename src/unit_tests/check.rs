//! Compile checks of unit tests: layers that parse, names unique in a file, `given` naming
//! `input` and exactly the tables the layers read, and every column named in rows or
//! expectations known at that point of the pipeline. Each problem is located in the test.

use super::{layer_range, Rows, UnitTest};
use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::plan::check::PROVENANCE;
use crate::plan::{parse_ref, step_references, Layer, Plan, TablePlan};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// The key of `given` for the rows entering the first layer.
pub const INPUT: &str = "input";

/// Checks the tests of every table of the plan.
pub fn check_plan(plan: &Plan, diags: &mut Diagnostics) {
    for table in &plan.tables {
        let mut names = BTreeSet::new();
        for test in &table.spec.tests {
            if !names.insert(test.name.as_str()) {
                let at = table.text.locate(Some(&test.section()), &test.name);
                let m = format!("two tests of `{}` are named `{}`; give each its own name", table.name, test.name);
                diags.push(Diagnostic::new(&table.text.path, at, m));
            }
            check_test(plan, table, test, diags);
        }
    }
}

/// The columns of the frame entering `layer` of `table`, where known at compile time.
pub fn input_columns(table: &TablePlan, layer: Layer) -> Option<Vec<String>> {
    match layer {
        Layer::Staged | Layer::Bronze => Some(table.header.clone()),
        Layer::Silver => table.columns.get(&Layer::Bronze).cloned(),
        Layer::Gold => table.columns.get(&Layer::Silver).cloned(),
    }
}

/// The references the test's layers read, as `layer.table`.
pub fn references(table: &TablePlan, test: &UnitTest) -> BTreeSet<String> {
    test.layer_list()
        .into_iter()
        .flat_map(|l| step_references(table.steps(l)))
        .filter_map(|r| parse_ref(&r).ok().map(|(l, t)| format!("{l}.{t}")))
        .collect()
}

/// A CSV file of `rows`, relative to the pipeline file.
pub fn csv_path(table: &TablePlan, file: &str) -> PathBuf {
    table.text.path.parent().unwrap_or(std::path::Path::new(".")).join(file)
}

/// The column names rows use (a CSV file's header), or the problem reading it.
pub fn row_columns(table: &TablePlan, rows: &Rows) -> Result<Vec<String>, String> {
    match rows {
        Rows::Inline(rows) => {
            // A JSON source's nested maps are columns with dotted names, as a read makes them.
            let json =
                matches!(table.format, crate::config::sources::Format::Json | crate::config::sources::Format::Ndjson);
            let mut out: Vec<String> = vec![];
            for r in rows {
                let names = if json { crate::reader::json::field_names(r) } else { r.keys().cloned().collect() };
                for name in names {
                    if !out.contains(&name) {
                        out.push(name);
                    }
                }
            }
            Ok(out)
        }
        Rows::File { csv } => {
            let path = csv_path(table, csv);
            crate::reader::read_header(&path, crate::config::sources::Format::Csv, &Default::default())
                .map_err(|e| e.to_string())
        }
    }
}

fn check_test(plan: &Plan, table: &TablePlan, test: &UnitTest, diags: &mut Diagnostics) {
    let section = test.section();
    let diag = |token: &str, message: String| table.text.diag(Some(&section), token, message);
    let (first, last) = match layer_range(&test.layers) {
        Ok(r) => r,
        Err(m) => {
            let m = format!("test `{}`: layers: {m}; write one layer or a range such as `silver..gold`", test.name);
            diags.push(diag(&test.layers, m));
            return;
        }
    };
    let reads = references(table, test);
    for key in test.given.keys() {
        if key != INPUT && !reads.contains(key) {
            let known: Vec<&str> = std::iter::once(INPUT).chain(reads.iter().map(String::as_str)).collect();
            let m = format!(
                "test `{}`: `given` has `{key}`, which layers {} do not read (they read: {})",
                test.name,
                test.layers,
                known.join(", ")
            );
            diags.push(diag(key, m).with_hint(did_you_mean(key, known.iter().copied())));
        }
    }
    if !test.given.contains_key(INPUT) {
        diags.push(diag(&test.name, format!("test `{}`: `given` needs `input`, the rows entering {first}", test.name)));
    }
    for read in &reads {
        if !test.given.contains_key(read) {
            let m = format!("test `{}`: layers {} read `{read}`; give its rows under `given`", test.name, test.layers);
            diags.push(diag(&test.name, m));
        }
    }
    if test.expect.rows.is_none() && test.expect.quarantine.is_none() {
        let m = format!("test `{}`: `expect` needs `rows`, `quarantine` or both", test.name);
        diags.push(diag(&test.name, m));
    }
    // Columns: of the input, of each table read, of the output and of quarantined rows.
    let check_columns = |rows: &Rows, known: Option<Vec<String>>, what: &str, diags: &mut Diagnostics| {
        let named = match row_columns(table, rows) {
            Ok(n) => n,
            Err(m) => {
                let token = if let Rows::File { csv } = rows { csv.as_str() } else { test.name.as_str() };
                diags.push(diag(token, format!("test `{}`: {m}", test.name)));
                return;
            }
        };
        let Some(known) = known else { return };
        for c in named {
            // Provenance columns are set by the test and never compared.
            if !PROVENANCE.contains(&c.as_str()) && !known.contains(&c) {
                let shown: Vec<&str> =
                    known.iter().map(String::as_str).filter(|k| !PROVENANCE.contains(k)).take(12).collect();
                let m = format!(
                    "test `{}`: unknown column `{c}` in {what} (its columns: {}{})",
                    test.name,
                    shown.join(", "),
                    if known.len() > shown.len() + PROVENANCE.len() { ", ..." } else { "" }
                );
                diags.push(diag(&c, m).with_hint(did_you_mean(&c, known.iter().map(String::as_str))));
            }
        }
    };
    if let Some(rows) = test.given.get(INPUT) {
        check_columns(rows, input_columns(table, first), &format!("the input of {first}"), diags);
    }
    for read in &reads {
        let (Some(rows), Ok((layer, name))) = (test.given.get(read), parse_ref(read)) else { continue };
        let other = plan.table(name).map(|t| &plan.tables[t]);
        let known = other.and_then(|o| o.columns.get(&layer).cloned());
        check_columns(rows, known, &format!("`{read}`"), diags);
    }
    if let Some(rows) = &test.expect.rows {
        let known = table.columns.get(&last).cloned();
        check_columns(rows, known, &format!("the output of {last}"), diags);
    }
    if let Some(rows) = &test.expect.quarantine {
        // A quarantined row carries the columns of the layer that sent it, and why.
        let mut known: Vec<String> = vec!["_rule".into(), "_reason".into()];
        for l in test.layer_list() {
            for c in input_columns(table, l).into_iter().chain(table.columns.get(&l).cloned()).flatten() {
                if !known.contains(&c) {
                    known.push(c);
                }
            }
        }
        check_columns(rows, Some(known), "the quarantined rows", diags);
    }
}
