//! SQL text shared by DuckDB and PostgreSQL statements: quoted identifiers and string literals.

/// `s` as a quoted identifier.
pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `s` as a string literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Identifiers, comma-separated.
pub fn idents(names: &[String]) -> String {
    names.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ")
}
