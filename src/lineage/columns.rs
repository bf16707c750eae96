//! Column-level lineage: which columns of which layer (or which source header) a column is
//! made from, followed back through renames, derives, casts, cleaning, joins, unpivots,
//! aggregates and bronze's header normalisation. A `sql` step's columns are marked untraced,
//! never guessed.

use crate::config::pipeline::Step;
use crate::plan::check::{expression_columns, PROVENANCE};
use crate::plan::render::step_label;
use crate::plan::{parse_ref, Layer, Plan};
use crate::steps::ColumnInput;
use serde::Serialize;

/// Where one column comes from, one hop back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hop {
    /// The table and layer the column is in.
    pub table: String,
    pub layer: Layer,
    pub column: String,
    /// How it was made from its inputs, e.g. "derive `lpad(...)`", "rename from `x`".
    pub how: Vec<String>,
    /// The columns it was made from: (table, layer, column); for staged, the source header.
    pub inputs: Vec<(String, Layer, String)>,
    /// True when a `sql` step stands in the way and the inputs are unknown.
    pub untraced: bool,
}

/// The columns before a step that `column` after it is made from, and how (None: the step
/// hides its inputs, i.e. `sql`).
fn through_step(plan: &Plan, step: &Step, column: &str) -> Option<(Vec<ColumnInput>, Option<String>)> {
    let same = |c: &str| (vec![ColumnInput::Local(c.to_string())], None);
    if let Some(kind) = step.kind() {
        return Some(match kind.lineage(column) {
            Some((inputs, how)) => (inputs, Some(how)),
            None => same(column),
        });
    }
    Some(match step {
        Step::Derive(map) => match map.get(column) {
            Some(sql) => {
                let inputs = expression_columns(sql).unwrap_or_default();
                (inputs.into_iter().map(ColumnInput::Local).collect(), Some(format!("derive `{sql}`")))
            }
            None => same(column),
        },
        Step::Rename(map) => match map.iter().find(|(_, new)| *new == column) {
            Some((old, _)) => (vec![ColumnInput::Local(old.clone())], Some(format!("rename from `{old}`"))),
            None => same(column),
        },
        Step::Cast(map) => match map.get(column) {
            Some(t) => (vec![ColumnInput::Local(column.to_string())], Some(format!("cast to {t:?}").to_lowercase())),
            None => same(column),
        },
        Step::Clean(c) if c.columns.iter().any(|x| x == column || x == "*") => {
            (vec![ColumnInput::Local(column.to_string())], Some(step_label(step)))
        }
        Step::Join(j) => {
            let prefix = j.prefix.as_deref().unwrap_or("");
            let right_keys: Vec<&String> = j.on.iter().chain(j.on_columns.values()).collect();
            let right_columns = parse_ref(&j.reference)
                .ok()
                .and_then(|(l, name)| plan.table(name).and_then(|i| plan.tables[i].columns.get(&l).cloned()))
                .unwrap_or_default();
            let taken: Vec<String> = if j.select.is_empty() {
                right_columns
                    .into_iter()
                    .filter(|c| !right_keys.contains(&c) && !PROVENANCE.contains(&c.as_str()))
                    .collect()
            } else {
                j.select.clone()
            };
            match taken.iter().find(|c| format!("{prefix}{c}") == column) {
                Some(original) => (
                    vec![ColumnInput::Ref(j.reference.clone(), original.clone())],
                    Some(format!("join from `{}`", j.reference)),
                ),
                None => same(column),
            }
        }
        Step::Unpivot(u) if column == u.variable || column == u.value => {
            let what = if column == u.variable { "names" } else { "values" };
            (
                u.on.iter().cloned().map(ColumnInput::Local).collect(),
                Some(format!("unpivot: the {what} of columns [{}]", u.on.join(", "))),
            )
        }
        Step::Aggregate(a) => match a.measures.get(column) {
            Some(sql) => {
                let inputs = expression_columns(sql).unwrap_or_default();
                (
                    inputs.into_iter().map(ColumnInput::Local).collect(),
                    Some(format!("aggregate `{sql}` by [{}]", a.group_by.join(", "))),
                )
            }
            None => same(column),
        },
        Step::Sql(_) => return None,
        _ => same(column),
    })
}

/// One hop: what `column` of `table` at `layer` is made from.
pub fn hop(plan: &Plan, table: usize, layer: Layer, column: &str) -> Hop {
    let t = &plan.tables[table];
    let mut hop =
        Hop { table: t.name.clone(), layer, column: column.to_string(), how: vec![], inputs: vec![], untraced: false };
    if PROVENANCE.contains(&column) {
        hop.how.push("provenance written by JobForge".into());
        return hop;
    }
    match layer {
        Layer::Staged => {
            hop.how.push(format!("source `{}`, file {}", t.source_id, t.file.path.display()));
        }
        Layer::Bronze => match t.bronze_names.iter().position(|n| n == column) {
            Some(i) => {
                let raw = &t.header[i];
                if raw != column {
                    hop.how.push(format!("bronze name of source column `{raw}`"));
                }
                if let Some(ty) = t.spec.bronze.cast.get(column) {
                    hop.how.push(format!("cast to {ty:?}").to_lowercase());
                }
                hop.inputs.push((t.name.clone(), Layer::Staged, raw.clone()));
            }
            None => hop.untraced = true,
        },
        Layer::Silver | Layer::Gold => {
            let previous = if layer == Layer::Silver { Layer::Bronze } else { Layer::Silver };
            let mut wanted = vec![column.to_string()];
            for step in t.steps(layer).iter().rev() {
                let mut next = Vec::new();
                for c in &wanted {
                    match through_step(plan, step, c) {
                        None => {
                            hop.untraced = true;
                            hop.how.insert(0, "sql step (column lineage not traced)".into());
                            return hop;
                        }
                        Some((sources, how)) => {
                            hop.how.splice(0..0, how);
                            for s in sources {
                                match s {
                                    ColumnInput::Local(c) => next.push(c),
                                    ColumnInput::Ref(r, c) => {
                                        if let Ok((l, name)) = parse_ref(&r) {
                                            hop.inputs.push((name.to_string(), l, c));
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                next.dedup();
                wanted = next;
            }
            hop.inputs.splice(0..0, wanted.into_iter().map(|c| (t.name.clone(), previous, c)));
        }
    }
    hop.how.dedup();
    hop
}

/// The whole path back from `column` of `table` at `layer` to the source headers, depth first.
pub fn trace(plan: &Plan, table: usize, layer: Layer, column: &str) -> Vec<Hop> {
    let mut out = Vec::new();
    let mut stack = vec![(table, layer, column.to_string())];
    let mut seen = std::collections::HashSet::new();
    while let Some((t, l, c)) = stack.pop() {
        if !seen.insert((t, l, c.clone())) {
            continue;
        }
        let h = hop(plan, t, l, &c);
        for (name, layer, col) in h.inputs.iter().rev() {
            if let Some(i) = plan.table(name) {
                stack.push((i, *layer, col.clone()));
            }
        }
        out.push(h);
    }
    out
}

/// Every (table, layer, column) holding values of a column marked `pii` (given as gold
/// `(table, column)` pairs): the marked columns; what they are made from, back to the source
/// headers; the same headers read by other tables; and every column made from any of those.
pub fn sensitive(
    plan: &Plan,
    marked: &std::collections::BTreeSet<(String, String)>,
) -> std::collections::HashSet<(String, Layer, String)> {
    let mut out = std::collections::HashSet::new();
    if marked.is_empty() {
        return out;
    }
    let add_trace = |out: &mut std::collections::HashSet<(String, Layer, String)>, t: usize, l: Layer, c: &str| {
        for h in trace(plan, t, l, c) {
            out.insert((h.table.clone(), h.layer, h.column.clone()));
            out.extend(h.inputs.iter().cloned());
        }
    };
    for (table, column) in marked {
        if let Some(t) = plan.table(table) {
            add_trace(&mut out, t, Layer::Gold, column);
        }
    }
    // A source column is sensitive for every table that reads the source.
    let headers: Vec<(String, String)> = out
        .iter()
        .filter(|(_, l, _)| *l == Layer::Staged)
        .filter_map(|(t, _, c)| plan.table(t).map(|i| (plan.tables[i].source_id.clone(), c.clone())))
        .collect();
    for (t, table) in plan.tables.iter().enumerate() {
        for (source, header) in &headers {
            if &table.source_id == source && table.header.contains(header) {
                out.insert((plan.tables[t].name.clone(), Layer::Staged, header.clone()));
            }
        }
    }
    // Downstream: every column whose trace reaches a sensitive one.
    let upstream = out.clone();
    for (t, table) in plan.tables.iter().enumerate() {
        for layer in Layer::ALL {
            let columns = if layer == Layer::Staged { Some(&table.header) } else { table.columns.get(&layer) };
            for c in columns.into_iter().flatten() {
                let reaches = trace(plan, t, layer, c).iter().any(|h| {
                    upstream.contains(&(h.table.clone(), h.layer, h.column.clone()))
                        || h.inputs.iter().any(|i| upstream.contains(i))
                });
                if reaches {
                    out.insert((table.name.clone(), layer, c.clone()));
                }
            }
        }
    }
    out
}
