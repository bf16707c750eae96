//! The dry-run view of a plan: nodes in execution order with inputs, outputs, steps,
//! dependencies and the files each source resolved to, as text or JSON. Writes nothing.

use super::{Layer, Node, Plan};
use crate::config::pipeline::Step;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;

/// One node of the dry-run plan.
#[derive(Debug, Serialize)]
pub struct PlannedNode {
    pub table: String,
    pub layer: Layer,
    pub inputs: Vec<String>,
    pub output: String,
    pub steps: Vec<String>,
    pub depends_on: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<super::ResolvedFile>,
}

/// A one-word name for a step, with its main argument.
pub fn step_label(step: &Step) -> String {
    if let Some(kind) = step.kind() {
        return kind.label();
    }
    match step {
        Step::Filter(sql) => format!("filter({sql})"),
        Step::Derive(m) => format!("derive({})", m.keys().cloned().collect::<Vec<_>>().join(", ")),
        Step::Cast(m) => format!("cast({})", m.keys().cloned().collect::<Vec<_>>().join(", ")),
        Step::Clean(c) => format!("clean({})", c.columns.join(", ")),
        Step::Dedupe(d) => format!("dedupe({})", d.keys.join(", ")),
        Step::Unpivot(u) => format!("unpivot(index: {})", u.index.join(", ")),
        Step::Drop(l) => format!("drop({})", l.join(", ")),
        Step::Rename(m) => {
            format!("rename({})", m.iter().map(|(a, b)| format!("{a}->{b}")).collect::<Vec<_>>().join(", "))
        }
        Step::Select(l) => format!("select({})", l.join(", ")),
        Step::Sort(l) => format!("sort({})", l.join(", ")),
        Step::Join(j) => format!("join({})", j.reference),
        Step::Aggregate(a) => format!("aggregate(by {})", a.group_by.join(", ")),
        Step::Expect(e) => {
            let kinds: Vec<&str> = [
                ("not_null", !e.not_null.is_empty()),
                ("unique", !e.unique.is_empty()),
                ("accepted_values", !e.accepted_values.is_empty()),
                ("regex", !e.regex.is_empty()),
                ("range", !e.range.is_empty()),
                ("predicate", !e.predicate.is_empty()),
                ("exists_in", !e.exists_in.is_empty()),
            ]
            .into_iter()
            .filter_map(|(k, set)| set.then_some(k))
            .collect();
            format!("expect({})", kinds.join(", "))
        }
        Step::Sql(_) => "sql".to_string(),
        Step::Explode(_) | Step::Match(_) => unreachable!("labelled through StepKind above"),
    }
}

/// The parquet file of a table at a layer, relative to the data folder.
pub fn layer_file(data: &Path, layer: Layer, table: &str) -> std::path::PathBuf {
    data.join(layer.name()).join(format!("{table}.parquet"))
}

/// The selected part of the plan, in execution order.
pub fn planned_nodes(plan: &Plan, data: &Path, selected: &BTreeSet<usize>) -> Vec<PlannedNode> {
    let show = |n: Node| layer_file(data, n.layer, &plan.tables[n.table].name).display().to_string();
    plan.order
        .iter()
        .filter(|i| selected.contains(&plan.graph[**i].table))
        .map(|&i| {
            let node = plan.graph[i];
            let t = &plan.tables[node.table];
            let mut inputs = Vec::new();
            let mut files = Vec::new();
            let steps: Vec<String> = match node.layer {
                Layer::Staged => {
                    inputs.push(format!("source {}: {}", t.source_id, t.file.path.display()));
                    files.push(t.file.clone());
                    vec![format!("read {:?}", t.format).to_lowercase()]
                }
                Layer::Bronze => {
                    let b = &t.spec.bronze;
                    let style = match b.columns {
                        crate::config::pipeline::HeaderStyle::SnakeCase => "snake_case",
                        crate::config::pipeline::HeaderStyle::Trim => "trim",
                    };
                    let mut s = vec![format!("columns: {style}")];
                    if !b.rename.is_empty() {
                        s.push(format!(
                            "rename({})",
                            b.rename.iter().map(|(a, b)| format!("{a}->{b}")).collect::<Vec<_>>().join(", ")
                        ));
                    }
                    if !b.cast.is_empty() {
                        s.push(format!(
                            "cast({})",
                            b.cast
                                .iter()
                                .map(|(c, d)| format!("{c}: {d:?}").to_lowercase())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                    s
                }
                layer => t.steps(layer).iter().map(step_label).collect(),
            };
            if node.layer != Layer::Staged {
                let previous = Layer::ALL[Layer::ALL.iter().position(|l| *l == node.layer).unwrap_or(1) - 1];
                inputs.push(show(Node { table: node.table, layer: previous }));
            }
            let depends_on: Vec<String> = plan
                .cross_dependencies(i)
                .into_iter()
                .map(|d| format!("{}.{}", d.layer, plan.tables[d.table].name))
                .collect();
            inputs.extend(plan.cross_dependencies(i).into_iter().map(show));
            PlannedNode {
                table: t.name.clone(),
                layer: node.layer,
                inputs,
                output: show(node),
                steps,
                depends_on,
                files,
            }
        })
        .collect()
}

/// Human-readable rendering of the planned nodes.
pub fn render_text(nodes: &[PlannedNode]) -> String {
    let mut out = format!("Plan: {} node(s) in execution order (dry run, nothing written)\n", nodes.len());
    for (i, n) in nodes.iter().enumerate() {
        out.push_str(&format!("{:>3}. {} [{}]\n", i + 1, n.table, n.layer));
        for input in &n.inputs {
            out.push_str(&format!("       in:    {input}\n"));
        }
        for f in &n.files {
            out.push_str(&format!("       file:  {} ({} bytes)\n", f.path.display(), f.size));
        }
        out.push_str(&format!("       out:   {}\n", n.output));
        if !n.steps.is_empty() {
            out.push_str(&format!("       steps: {}\n", n.steps.join(" | ")));
        }
        if !n.depends_on.is_empty() {
            out.push_str(&format!("       needs: {}\n", n.depends_on.join(", ")));
        }
    }
    out
}
