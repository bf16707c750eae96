//! TMDL text rules and a small reader: names quoted by the TMDL rules, descriptions as `///`
//! lines, M string literals, deterministic lineage tags, and reading a generated (or
//! hand-edited) project back into tables, columns, partitions and relationships.

use std::collections::BTreeMap;

/// A TMDL object name, single-quoted (with `'` doubled) unless it is a plain identifier.
pub fn quote(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !RESERVED.contains(&name.to_ascii_lowercase().as_str());
    if plain {
        name.to_string()
    } else {
        format!("'{}'", name.replace('\'', "''"))
    }
}

/// Words that TMDL reads as keywords where a name is expected.
const RESERVED: [&str; 12] = [
    "table",
    "column",
    "measure",
    "partition",
    "relationship",
    "expression",
    "model",
    "database",
    "ref",
    "annotation",
    "true",
    "false",
];

/// A text property value (such as `sourceColumn`): bare when plain, else double-quoted.
pub fn text_value(text: &str) -> String {
    if quote(text) == text {
        text.to_string()
    } else {
        m_string(text)
    }
}

/// The inverse of [`quote`].
pub fn unquote(name: &str) -> String {
    let name = name.trim();
    match name.strip_prefix('\'').and_then(|n| n.strip_suffix('\'')) {
        Some(inner) => inner.replace("''", "'"),
        None => name.to_string(),
    }
}

/// `Table.Column` as TMDL writes a column reference.
pub fn column_ref(table: &str, column: &str) -> String {
    format!("{}.{}", quote(table), quote(column))
}

/// Description text as the lines of `///` comments (one per line, never empty).
pub fn description_lines(text: &str) -> Vec<String> {
    text.lines().map(|l| l.trim_end().to_string()).filter(|l| !l.is_empty()).collect()
}

/// An M text literal: double quotes doubled.
pub fn m_string(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// A stable lineage tag: UUID v5 of the object's path in the model.
pub fn lineage_tag(path: &str) -> String {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6a0b_5f0e_4c1d_4e5f_9a7b_1c2d_3e4f_5a6b);
    uuid::Uuid::new_v5(&NAMESPACE, path.as_bytes()).to_string()
}

/// What a TMDL project says, read back from its files.
#[derive(Debug, Default, PartialEq)]
pub struct ReadBack {
    /// Columns by table (source column names).
    pub columns: BTreeMap<String, Vec<String>>,
    /// The parquet file each table's partition reads.
    pub partitions: BTreeMap<String, String>,
    /// Measures by table.
    pub measures: BTreeMap<String, Vec<String>>,
    pub relationships: Vec<ReadRelationship>,
}

/// A relationship as written in relationships.tmdl.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRelationship {
    pub from: String,
    pub to: String,
    pub active: bool,
    pub both: bool,
}

/// Splits `'My Table'.'My Column'` (or `t.c`) into unquoted table and column.
fn split_ref(r: &str) -> (String, String) {
    let r = r.trim();
    let mut in_quote = false;
    let mut cut = None;
    let chars: Vec<char> = r.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\'' if in_quote && chars.get(i + 1) == Some(&'\'') => i += 1,
            '\'' => in_quote = !in_quote,
            '.' if !in_quote => {
                cut = Some(i);
                break;
            }
            _ => {}
        }
        i += 1;
    }
    match cut {
        Some(i) => {
            (unquote(&chars[..i].iter().collect::<String>()), unquote(&chars[i + 1..].iter().collect::<String>()))
        }
        None => (unquote(r), String::new()),
    }
}

/// The name after a keyword: `column 'A b'` -> `A b`; stops at ` = ` outside quotes.
fn declared_name(rest: &str) -> String {
    let mut in_quote = false;
    let mut end = rest.len();
    let bytes: Vec<char> = rest.chars().collect();
    let mut i = 0;
    let mut byte = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == '\'' {
            if in_quote && bytes.get(i + 1) == Some(&'\'') {
                byte += 2;
                i += 2;
                continue;
            }
            in_quote = !in_quote;
        } else if c == '=' && !in_quote {
            end = byte;
            break;
        }
        byte += c.len_utf8();
        i += 1;
    }
    unquote(rest[..end].trim())
}

/// Reads a table file's declarations.
pub fn read_table(text: &str, into: &mut ReadBack) {
    let mut table = String::new();
    let mut in_partition = false;
    for line in text.lines() {
        let trimmed = line.trim();
        let depth = line.chars().take_while(|c| *c == '\t').count();
        if depth == 0 {
            if let Some(rest) = trimmed.strip_prefix("table ") {
                table = declared_name(rest);
            }
            continue;
        }
        if depth == 1 {
            in_partition = trimmed.starts_with("partition ");
            if let Some(rest) = trimmed.strip_prefix("measure ") {
                into.measures.entry(table.clone()).or_default().push(declared_name(rest));
            }
        }
        if let Some(source) = trimmed.strip_prefix("sourceColumn:") {
            into.columns.entry(table.clone()).or_default().push(unquote_m(source.trim()));
        }
        if in_partition && trimmed.contains("Parquet.Document(") {
            if let Some(file) = trimmed.split('"').nth(1) {
                into.partitions.insert(table.clone(), file.trim_start_matches(['/', '\\']).to_string());
            }
        }
    }
}

fn unquote_m(s: &str) -> String {
    match s.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => s.to_string(),
    }
}

/// Reads relationships.tmdl.
pub fn read_relationships(text: &str, into: &mut ReadBack) {
    let mut current: Option<ReadRelationship> = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with("relationship ") {
            into.relationships.extend(current.take());
            current = Some(ReadRelationship { from: String::new(), to: String::new(), active: true, both: false });
        } else if let Some(r) = current.as_mut() {
            if let Some(v) = line.strip_prefix("fromColumn:") {
                let (t, c) = split_ref(v);
                r.from = format!("{t}.{c}");
            } else if let Some(v) = line.strip_prefix("toColumn:") {
                let (t, c) = split_ref(v);
                r.to = format!("{t}.{c}");
            } else if line == "isActive: false" {
                r.active = false;
            } else if line == "crossFilteringBehavior: bothDirections" {
                r.both = true;
            }
        }
    }
    into.relationships.extend(current);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_awkward_names_and_reads_them_back() {
        assert_eq!(quote("dim_noc"), "dim_noc");
        assert_eq!(quote("Unit Groups"), "'Unit Groups'");
        assert_eq!(quote("O'Neil.rate"), "'O''Neil.rate'");
        assert_eq!(quote("2023"), "'2023'");
        assert_eq!(quote("table"), "'table'");
        assert_eq!(quote("conditions_récentes"), "'conditions_récentes'");
        for name in ["dim_noc", "Unit Groups", "O'Neil.rate", "a = b"] {
            assert_eq!(unquote(&quote(name)), name);
            assert_eq!(declared_name(&format!("{} = 1", quote(name))), name);
        }
        assert_eq!(split_ref("'O''Neil.rate'.'a.b'"), ("O'Neil.rate".to_string(), "a.b".to_string()));
        assert_eq!(lineage_tag("table/dim_noc"), lineage_tag("table/dim_noc"));
        assert_ne!(lineage_tag("table/dim_noc"), lineage_tag("table/dim_noc2"));
    }
}
