//! Plain questions about lineage, answered by rules (no network, deterministic): the forms in
//! [`FORMS`]; names match loosely and an unknown name gets the closest ones.

use super::{columns, Lineage};
use crate::plan::{Layer, Node};
use petgraph::Direction;
use serde_json::json;

/// The question forms understood.
pub const FORMS: [&str; 7] = [
    "Where does TABLE come from?",
    "What feeds TABLE?",
    "What does TABLE feed?  (or: What depends on TABLE?)",
    "Lineage of TABLE",
    "How does TABLE become OTHER?  (or: Path from TABLE to OTHER)",
    "Where does column TABLE.COLUMN come from?",
    "(names match loosely: \"DIM NOC\", \"Dim-Noc\" and dim_noc are the same table)",
];

/// A parsed question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    Origin(String),
    Feeds(String),
    Downstream(String),
    Lineage(String),
    Path(String, String),
    Column(String, String),
}

/// `text` without `prefix`, compared case-insensitively.
fn after<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

fn before<'a>(text: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = text.len().checked_sub(suffix.len())?;
    let tail = text.get(cut..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| &text[..cut])
}

fn split_pair<'a>(text: &'a str, word: &str) -> Option<(&'a str, &'a str)> {
    let lower = text.to_lowercase();
    let i = lower.find(word)?;
    Some((&text[..i], &text[i + word.len()..]))
}

/// Parses a question; None when it is not one of the forms.
pub fn parse(question: &str) -> Option<Question> {
    let q = question.trim().trim_end_matches(['?', '.', '!']).trim();
    let owned = |s: &str| s.trim().to_string();
    for p in ["where does column ", "where did column ", "where is column "] {
        if let Some(rest) = after(q, p) {
            let rest = before(rest, " come from").or_else(|| before(rest, " from")).unwrap_or(rest);
            let (t, c) = rest.trim().rsplit_once('.')?;
            return Some(Question::Column(owned(t), owned(c)));
        }
    }
    for p in ["where does ", "where do ", "where did "] {
        if let Some(rest) = after(q, p).and_then(|r| before(r, " come from")) {
            return Some(Question::Origin(owned(rest)));
        }
    }
    if let Some(rest) = after(q, "where is ").and_then(|r| before(r, " from")) {
        return Some(Question::Origin(owned(rest)));
    }
    if let Some(rest) = after(q, "what does ").and_then(|r| before(r, " feed into").or_else(|| before(r, " feed"))) {
        return Some(Question::Downstream(owned(rest)));
    }
    for p in ["what feeds into ", "what feeds "] {
        if let Some(rest) = after(q, p) {
            return Some(Question::Feeds(owned(rest)));
        }
    }
    for p in ["what depends on ", "what uses ", "downstream of "] {
        if let Some(rest) = after(q, p) {
            return Some(Question::Downstream(owned(rest)));
        }
    }
    for p in ["lineage of ", "lineage for ", "show lineage of ", "show the lineage of "] {
        if let Some(rest) = after(q, p) {
            return Some(Question::Lineage(owned(rest)));
        }
    }
    if let Some(rest) = after(q, "how does ") {
        let (a, b) = split_pair(rest, " become ").or_else(|| split_pair(rest, " get to "))?;
        return Some(Question::Path(owned(a), owned(b)));
    }
    if let Some(rest) = after(q, "path from ") {
        let (a, b) = split_pair(rest, " to ")?;
        return Some(Question::Path(owned(a), owned(b)));
    }
    None
}

/// An answer: text for people, JSON for machines.
pub struct Answer {
    pub text: String,
    pub json: serde_json::Value,
}

fn node_name(l: &Lineage, n: &Node) -> String {
    format!("{}.{}", n.layer, l.plan.tables[n.table].name)
}

fn rows(from: Option<u64>, to: Option<u64>, layer: Layer) -> String {
    match (from, to, layer) {
        (_, Some(o), Layer::Staged) => format!("{o} rows"),
        (Some(i), Some(o), _) => format!("{i} -> {o} rows"),
        _ => "not built yet".into(),
    }
}

/// Answers a parsed question.
pub fn answer(l: &Lineage, q: &Question) -> Result<Answer, String> {
    let find = |name: &str| {
        l.resolve(name).map_err(|closest| format!("no table `{name}`; the closest are: {}", closest.join(", ")))
    };
    Ok(match q {
        Question::Origin(name) => origin(l, find(name)?),
        Question::Feeds(name) => {
            let t = find(name)?;
            let s = l.source(t);
            let feeds: Vec<String> = l.feeds_of(t).iter().map(|n| node_name(l, n)).collect();
            let mut text = format!("{} is fed by source `{}` ({})", l.plan.tables[t].name, s.id, s.file);
            if feeds.is_empty() {
                text.push_str(" only.\n");
            } else {
                text.push_str(&format!(" and by {}.\n", feeds.join(", ")));
            }
            Answer {
                text,
                json: json!({ "question": "feeds", "table": l.plan.tables[t].name, "source": s, "tables": feeds }),
            }
        }
        Question::Downstream(name) => downstream(l, find(name)?),
        Question::Lineage(name) => {
            let t = find(name)?;
            let (o, d) = (origin(l, t), downstream(l, t));
            Answer {
                text: format!("{}{}", o.text, d.text),
                json: json!({ "question": "lineage", "upstream": o.json, "downstream": d.json }),
            }
        }
        Question::Path(a, b) => {
            let (ta, tb) = (find(a)?, find(b)?);
            let (na, nb) = (&l.plan.tables[ta].name, &l.plan.tables[tb].name);
            match l.path(ta, tb) {
                Some(path) => {
                    let nodes: Vec<String> = path.iter().map(|n| node_name(l, n)).collect();
                    Answer {
                        text: format!("{na} becomes {nb} through {}.\n", nodes.join(" -> ")),
                        json: json!({ "question": "path", "from": na, "to": nb, "path": nodes }),
                    }
                }
                None => Answer {
                    text: format!("No data flows from {na} to {nb}.\n"),
                    json: json!({ "question": "path", "from": na, "to": nb, "path": null }),
                },
            }
        }
        Question::Column(table, column) => {
            let t = find(table)?;
            let name = &l.plan.tables[t].name;
            let known = l.plan.tables[t].columns.get(&Layer::Gold).cloned().unwrap_or_default();
            if !known.is_empty() && !known.iter().any(|c| c == column) {
                let hint = crate::diag::did_you_mean(column, known.iter().map(String::as_str))
                    .map(|h| format!("; {h}"))
                    .unwrap_or_default();
                return Err(format!("no column `{column}` in gold.{name}{hint}"));
            }
            let hops = columns::trace(l.plan, t, Layer::Gold, column);
            let mut text = format!("{name}.{column} comes from:\n");
            for h in &hops {
                let inputs: Vec<String> = h.inputs.iter().map(|(t, l, c)| format!("{l}.{t}.{c}")).collect();
                text.push_str(&format!("  {}.{}.{}", h.layer, h.table, h.column));
                if !h.how.is_empty() {
                    text.push_str(&format!(": {}", h.how.join("; ")));
                }
                if h.untraced {
                    text.push_str(" (untraced)");
                }
                if !inputs.is_empty() {
                    text.push_str(&format!(" <- {}", inputs.join(", ")));
                }
                text.push('\n');
            }
            Answer { text, json: json!({ "question": "column", "table": name, "column": column, "hops": hops }) }
        }
    })
}

fn origin(l: &Lineage, t: usize) -> super::question::Answer {
    let table = &l.plan.tables[t];
    let s = l.source(t);
    let layers = l.layers(t);
    let mut text = format!("{} comes from source `{}` ({}", table.name, s.id, s.file);
    if let Some(p) = &s.publisher {
        text.push_str(&format!("; publisher {p}"));
    }
    if let Some(lic) = &s.licence {
        text.push_str(&format!("; licence {lic}"));
    }
    text.push_str(") through four layers:\n");
    for f in &layers {
        text.push_str(&format!(
            "  {:<7} {}  {}  [{}]\n",
            f.layer.name(),
            f.file,
            rows(f.rows_in, f.rows_out, f.layer),
            f.steps.join(" | ")
        ));
    }
    if let Some(last) = layers.iter().rev().find(|f| f.batch_id.is_some()) {
        text.push_str(&format!(
            "  last batch {} at {}\n",
            last.batch_id.as_deref().unwrap_or(""),
            last.ended_at.as_deref().unwrap_or("")
        ));
    }
    let upstream: Vec<usize> = l.closure(t, Direction::Incoming).into_iter().collect();
    let upstream_json: Vec<serde_json::Value> =
        upstream.iter().map(|&u| json!({ "table": l.plan.tables[u].name, "source": l.source(u) })).collect();
    if !upstream.is_empty() {
        let reads: Vec<String> = l.feeds_of(t).iter().map(|n| node_name(l, n)).collect();
        text.push_str(&format!("It also reads {}", reads.join(", ")));
        let others: Vec<String> = upstream
            .iter()
            .map(|&u| format!("{} (source `{}`, {})", l.plan.tables[u].name, l.source(u).id, l.source(u).file))
            .collect();
        text.push_str(&format!("; upstream tables: {}.\n", others.join(", ")));
    }
    Answer {
        text,
        json: json!({ "question": "origin", "table": table.name, "source": s, "layers": layers, "upstream": upstream_json }),
    }
}

fn downstream(l: &Lineage, t: usize) -> Answer {
    let name = &l.plan.tables[t].name;
    let direct: Vec<String> = l.fed_by(t).iter().map(|n| node_name(l, n)).collect();
    let all: Vec<String> =
        l.closure(t, Direction::Outgoing).into_iter().map(|d| l.plan.tables[d].name.clone()).collect();
    let text = if all.is_empty() {
        format!("Nothing depends on {name}.\n")
    } else {
        format!("{name} feeds {} table(s): {}.\nRead directly by {}.\n", all.len(), all.join(", "), direct.join(", "))
    };
    Answer { text, json: json!({ "question": "downstream", "table": name, "tables": all, "direct": direct }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(parse("Where does DIM NOC come from?"), Some(Question::Origin("DIM NOC".into())));
        assert_eq!(parse("what feeds dim_noc"), Some(Question::Feeds("dim_noc".into())));
        assert_eq!(parse("What does dim_noc feed?"), Some(Question::Downstream("dim_noc".into())));
        assert_eq!(parse("What depends on Dim_Noc?"), Some(Question::Downstream("Dim_Noc".into())));
        assert_eq!(parse("Lineage of cops_employment"), Some(Question::Lineage("cops_employment".into())));
        assert_eq!(
            parse("How does noc_hierarchy become dim_noc?"),
            Some(Question::Path("noc_hierarchy".into(), "dim_noc".into()))
        );
        assert_eq!(
            parse("Path from noc_hierarchy to cops_employment"),
            Some(Question::Path("noc_hierarchy".into(), "cops_employment".into()))
        );
        assert_eq!(
            parse("Where does column dim_noc.unit_group_id come from?"),
            Some(Question::Column("dim_noc".into(), "unit_group_id".into()))
        );
        assert_eq!(parse("Tell me a joke"), None);
        assert_eq!(super::super::normalise("The Dim-Noc table"), "dim_noc");
    }
}
