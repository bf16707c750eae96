//! `jobforge catalogue`: the data catalogue, built from `wiq_schema.yml`, the source registry,
//! the plan and the catalog records (never from hand-written prose): an index, one page per
//! table (description, purpose, kind, ownership, classification, source, publisher, licence,
//! rows, columns, keys, relationships, upstream and downstream, last refresh, lineage diagram)
//! and the glossary; as Markdown, a self-contained static HTML site, or JSON.

use crate::lineage::Lineage;
use crate::plan::Layer;
use crate::semantic::Model;
use petgraph::Direction;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One column of a catalogue entry.
#[derive(Debug, Serialize)]
pub struct ColumnEntry {
    pub name: String,
    pub data_type: String,
    pub nullable: bool,
    pub description: Option<String>,
    pub examples: Vec<String>,
    pub pii: bool,
}

/// One table of the catalogue.
#[derive(Debug, Serialize)]
pub struct TableEntry {
    pub name: String,
    pub description: Option<String>,
    pub business_purpose: Option<String>,
    pub kind: Option<String>,
    pub owner: Option<String>,
    pub steward: Option<String>,
    pub classification: Option<String>,
    pub source_system: String,
    pub source_file: String,
    pub publisher: Option<String>,
    pub licence: Option<String>,
    pub row_count: Option<u64>,
    pub primary_key: Vec<String>,
    pub relationships: Vec<String>,
    pub reads: Vec<String>,
    pub upstream: Vec<String>,
    pub downstream: Vec<String>,
    pub last_refresh: Option<String>,
    pub last_batch: Option<String>,
    pub columns: Vec<ColumnEntry>,
    /// The quality scorecard over the kept runs (`jobforge quality`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<crate::quality::Scorecard>,
}

/// The whole catalogue.
#[derive(Debug, Serialize)]
pub struct Catalogue {
    pub model: Option<String>,
    pub tables: Vec<TableEntry>,
    pub glossary: BTreeMap<String, String>,
}

/// Builds the catalogue of every table of the plan.
pub fn build(lineage: &Lineage, model: Option<&Model>) -> Catalogue {
    let metadata = lineage.snapshot.map(|m| lineage.store.table_metadata(m)).unwrap_or_default();
    let mut scorecards = crate::quality::scorecards(lineage.store);
    let plan = lineage.plan;
    let mut tables = Vec::new();
    for (t, table) in plan.tables.iter().enumerate() {
        let spec = model.and_then(|m| m.tables.get(&table.name));
        let meta = metadata.iter().find(|m| m.layer == Layer::Gold.name() && m.name == table.name);
        let source = lineage.source(t);
        let names = |set: std::collections::BTreeSet<usize>| {
            set.into_iter().map(|i| plan.tables[i].name.clone()).collect::<Vec<_>>()
        };
        let columns = meta
            .as_ref()
            .map(|m| {
                m.columns
                    .iter()
                    .map(|c| {
                        let declared = spec.and_then(|s| s.columns.get(&c.name));
                        ColumnEntry {
                            name: c.name.clone(),
                            data_type: c.data_type.clone(),
                            nullable: c.nullable,
                            description: declared.and_then(|d| d.description.clone()).or_else(|| c.description.clone()),
                            examples: c.examples.clone(),
                            pii: declared.is_some_and(|d| d.pii) || plan.is_pii(&table.name, Layer::Gold, &c.name),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let relationships = model
            .map(|m| {
                m.relationships
                    .iter()
                    .filter(|r| {
                        r.from.split('.').next() == Some(&table.name) || r.to.split('.').next() == Some(&table.name)
                    })
                    .map(|r| {
                        format!(
                            "{} -> {} ({:?}{})",
                            r.from,
                            r.to,
                            r.cardinality,
                            if r.active { "" } else { ", inactive" }
                        )
                        .to_lowercase()
                    })
                    .collect()
            })
            .unwrap_or_default();
        tables.push(TableEntry {
            name: table.name.clone(),
            description: spec.and_then(|s| s.description.clone()).or_else(|| table.spec.description.clone()),
            business_purpose: spec.and_then(|s| s.business_purpose.clone()),
            kind: spec.map(|s| format!("{:?}", s.kind).to_lowercase()),
            owner: spec.and_then(|s| s.owner.clone()).or_else(|| table.spec.owner.clone()),
            steward: spec.and_then(|s| s.steward.clone()).or_else(|| table.spec.steward.clone()),
            classification: spec.and_then(|s| s.classification.clone()).or_else(|| table.spec.classification.clone()),
            source_system: source.id.clone(),
            source_file: source.file.clone(),
            publisher: source.publisher.clone(),
            licence: source.licence.clone(),
            row_count: meta.as_ref().map(|m| m.row_count),
            primary_key: spec.map(|s| s.primary_key.columns()).unwrap_or_default(),
            relationships,
            reads: lineage.feeds_of(t).iter().map(|n| format!("{}.{}", n.layer, plan.tables[n.table].name)).collect(),
            upstream: names(lineage.closure(t, Direction::Incoming)),
            downstream: names(lineage.closure(t, Direction::Outgoing)),
            last_refresh: meta.as_ref().map(|m| m.updated_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
            last_batch: meta.as_ref().map(|m| m.batch_id.clone()),
            columns,
            quality: scorecards.iter().position(|c| c.table == table.name).map(|i| scorecards.swap_remove(i)),
        });
    }
    let glossary =
        model.map(|m| m.glossary.iter().map(|(k, v)| (k.clone(), v.definition.clone())).collect()).unwrap_or_default();
    Catalogue { model: model.map(|m| m.model.clone()), tables, glossary }
}

fn or_dash(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

fn list(items: &[String], separator: &str) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(separator)
    }
}

/// The facts shown for a table, in display order, by every output format.
fn facts(t: &TableEntry) -> Vec<(&'static str, String)> {
    vec![
        ("Business purpose", or_dash(&t.business_purpose)),
        ("Kind", or_dash(&t.kind)),
        ("Owner", or_dash(&t.owner)),
        ("Steward", or_dash(&t.steward)),
        ("Classification", or_dash(&t.classification)),
        ("Source system", format!("{} ({})", t.source_system, t.source_file)),
        ("Publisher", or_dash(&t.publisher)),
        ("Licence", or_dash(&t.licence)),
        ("Rows", t.row_count.map_or("-".into(), |r| r.to_string())),
        ("Primary key", list(&t.primary_key, ", ")),
        ("Relationships", list(&t.relationships, "; ")),
        ("Reads", list(&t.reads, ", ")),
        ("Upstream", list(&t.upstream, ", ")),
        ("Downstream", list(&t.downstream, ", ")),
        ("Last refresh", format!("{} (batch {})", or_dash(&t.last_refresh), or_dash(&t.last_batch))),
    ]
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown pages: index.md, glossary.md and tables/<name>.md.
pub fn markdown(c: &Catalogue) -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    let mut index = format!(
        "# Data catalogue{}\n\n| table | kind | rows | description |\n|---|---|---|---|\n",
        c.model.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
    );
    for t in &c.tables {
        index.push_str(&format!(
            "| [{}](tables/{}.md) | {} | {} | {} |\n",
            t.name,
            t.name,
            or_dash(&t.kind),
            t.row_count.map_or("-".into(), |r| r.to_string()),
            md_cell(&or_dash(&t.description))
        ));
    }
    index.push_str("\nSee also the [glossary](glossary.md).\n");
    files.insert(PathBuf::from("index.md"), index);
    let mut glossary = String::from("# Glossary\n\n");
    for (term, def) in &c.glossary {
        glossary.push_str(&format!("- **{term}**: {def}\n"));
    }
    files.insert(PathBuf::from("glossary.md"), glossary);
    for t in &c.tables {
        let mut page = format!("# {}\n\n{}\n\n", t.name, or_dash(&t.description));
        for (k, v) in facts(t) {
            page.push_str(&format!("- **{k}**: {}\n", md_cell(&v)));
        }
        page.push_str(
            "\n## Columns\n\n| column | type | nullable | PII | description | examples |\n|---|---|---|---|---|---|\n",
        );
        for col in &t.columns {
            page.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                md_cell(&col.name),
                col.data_type,
                if col.nullable { "yes" } else { "no" },
                if col.pii { "yes" } else { "no" },
                md_cell(&or_dash(&col.description)),
                md_cell(&col.examples.join(", "))
            ));
        }
        if let Some(q) = &t.quality {
            page.push_str(&format!(
                "\n## Quality\n\nOver {} kept run(s); the latest:\n\n| dimension | score |\n|---|---|\n",
                q.history.len()
            ));
            for d in crate::quality::DIMENSIONS {
                let score = q.latest.get(d).map_or("-".to_string(), |v| format!("{v:.3}"));
                page.push_str(&format!("| {d} | {score} |\n"));
            }
        }
        files.insert(PathBuf::from(format!("tables/{}.md", t.name)), page);
    }
    files
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}th{background:#f3f3f3}dt{font-weight:600}code{background:#f6f6f6}";

fn page(title: &str, body: &str) -> String {
    format!("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n{body}\n</body></html>\n", esc(title))
}

/// An inline SVG of a table's lineage: its source and four layers, the tables it reads above,
/// the tables it feeds below.
pub fn lineage_svg(t: &TableEntry) -> String {
    let (w, h, gap) = (150, 36, 30);
    let row = |y: i32, labels: &[String], fill: &str| -> String {
        labels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let x = 10 + i as i32 * (w + gap);
                let text: String = l.chars().take(22).collect();
                format!("<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"6\" fill=\"{fill}\" stroke=\"#555\"/><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>", x + w / 2, y + 22, esc(&text))
            })
            .collect()
    };
    let chain: Vec<String> = std::iter::once(format!("source {}", t.source_system))
        .chain(["staged", "bronze", "silver", "gold"].iter().map(|l| format!("{l} {}", t.name)))
        .collect();
    let mut body = String::new();
    let mut y = 10;
    if !t.reads.is_empty() {
        body.push_str(&row(y, &t.reads.iter().map(|r| format!("reads {r}")).collect::<Vec<_>>(), "#eef"));
        y += h + gap;
    }
    let chain_y = y;
    body.push_str(&row(chain_y, &chain, "#efe"));
    for i in 0..chain.len() - 1 {
        let x1 = 10 + i as i32 * (w + gap) + w;
        body.push_str(&format!(
            "<line x1=\"{x1}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#555\" marker-end=\"url(#a)\"/>",
            chain_y + h / 2,
            x1 + gap
        ));
    }
    y += h + gap;
    if !t.downstream.is_empty() {
        body.push_str(&row(y, &t.downstream.iter().map(|d| format!("feeds {d}")).collect::<Vec<_>>(), "#fee"));
        y += h + gap;
    }
    let width = 10 + (chain.len().max(t.reads.len()).max(t.downstream.len()) as i32) * (w + gap);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{y}\" role=\"img\" aria-label=\"lineage of {}\"><defs><marker id=\"a\" markerWidth=\"8\" markerHeight=\"8\" refX=\"8\" refY=\"4\" orient=\"auto\"><path d=\"M0,0 L8,4 L0,8 z\" fill=\"#555\"/></marker></defs>{body}</svg>",
        esc(&t.name)
    )
}

/// The HTML site: index.html, glossary.html and tables/<name>.html, with no external request.
pub fn html(c: &Catalogue) -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    let mut rows = String::new();
    for t in &c.tables {
        rows.push_str(&format!(
            "<tr><td><a href=\"tables/{0}.html\">{0}</a></td><td>{1}</td><td>{2}</td><td>{3}</td></tr>\n",
            esc(&t.name),
            esc(&or_dash(&t.kind)),
            t.row_count.map_or("-".into(), |r| r.to_string()),
            esc(&or_dash(&t.description))
        ));
    }
    let title = format!("Data catalogue{}", c.model.as_ref().map(|m| format!(": {m}")).unwrap_or_default());
    files.insert(
        PathBuf::from("index.html"),
        page(&title, &format!("<h1>{}</h1>\n<table><tr><th>table</th><th>kind</th><th>rows</th><th>description</th></tr>\n{rows}</table>\n<p><a href=\"glossary.html\">Glossary</a></p>", esc(&title))),
    );
    let terms: String = c.glossary.iter().map(|(k, v)| format!("<dt>{}</dt><dd>{}</dd>", esc(k), esc(v))).collect();
    files.insert(
        PathBuf::from("glossary.html"),
        page("Glossary", &format!("<h1>Glossary</h1><dl>{terms}</dl><p><a href=\"index.html\">Index</a></p>")),
    );
    for t in &c.tables {
        let facts: String = facts(t).iter().map(|(k, v)| format!("<dt>{k}</dt><dd>{}</dd>", esc(v))).collect();
        let cols: String = t
            .columns
            .iter()
            .map(|c| {
                format!(
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    esc(&c.name),
                    esc(&c.data_type),
                    if c.nullable { "yes" } else { "no" },
                    if c.pii { "yes" } else { "no" },
                    esc(&or_dash(&c.description)),
                    esc(&c.examples.join(", "))
                )
            })
            .collect();
        let quality = t.quality.as_ref().map_or(String::new(), |q| {
            let rows: String = crate::quality::DIMENSIONS
                .iter()
                .map(|d| {
                    let score = q.latest.get(*d).map_or("-".to_string(), |v| format!("{v:.3}"));
                    format!("<tr><td>{d}</td><td>{score}</td><td>{}</td></tr>\n", crate::quality::sparkline(&q.history, d))
                })
                .collect();
            format!(
                "<h2>Quality</h2><p>Over {} kept run(s).</p><table><tr><th>dimension</th><th>latest</th><th>over runs</th></tr>\n{rows}</table>",
                q.history.len()
            )
        });
        let body = format!(
            "<p><a href=\"../index.html\">Index</a></p><h1>{}</h1><p>{}</p><dl>{facts}</dl><h2>Lineage</h2>{}<h2>Columns</h2><table><tr><th>column</th><th>type</th><th>nullable</th><th>PII</th><th>description</th><th>examples</th></tr>\n{cols}</table>{quality}",
            esc(&t.name),
            esc(&or_dash(&t.description)),
            lineage_svg(t)
        );
        files.insert(PathBuf::from(format!("tables/{}.html", t.name)), page(&t.name, &body));
    }
    files
}

/// Writes the catalogue files under `out`.
pub fn write(out: &Path, files: &BTreeMap<PathBuf, String>) -> std::io::Result<()> {
    for (path, text) in files {
        crate::atomic::write_bytes(&out.join(path), text.as_bytes())?;
    }
    Ok(())
}
