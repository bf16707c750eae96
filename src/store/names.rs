//! Table names: identifiers, so that a name is always one file name inside the data folder and
//! one SQL identifier in DuckDB, PostgreSQL and Power BI.

/// Longest name accepted, in bytes (PostgreSQL's identifier limit).
pub const MAX_LEN: usize = 63;

/// Why `name` is not a table name, or `Ok`. A name starts with a letter or `_` and goes on with
/// letters, digits and `_` (Unicode letters allowed; they are quoted wherever SQL names them).
pub fn check_table_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err("a table name cannot be empty".into());
    };
    if name.len() > MAX_LEN {
        return Err(format!("table name `{}…` is {} bytes long; the limit is {MAX_LEN}", short(name), name.len()));
    }
    if !(first.is_alphabetic() || first == '_') {
        return Err(format!("table name `{name}` must start with a letter or `_`"));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_alphanumeric() || *c == '_')) {
        return Err(format!(
            "table name `{name}` contains `{}`; use letters, digits and `_` (e.g. `{}`)",
            bad.escape_default(),
            suggestion(name)
        ));
    }
    Ok(())
}

fn short(name: &str) -> String {
    name.chars().take(24).collect()
}

/// `name` with every run of other characters turned into one `_`.
fn suggestion(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_alphanumeric() || c == '_' {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches('_').to_string();
    match out.chars().next() {
        Some(c) if c.is_alphabetic() => out,
        _ => format!("t_{out}"),
    }
}

#[cfg(test)]
mod tests {
    use super::check_table_name;

    #[test]
    fn identifiers_pass_and_paths_do_not() {
        for ok in ["dim_noc", "_x", "t2", "données_é"] {
            assert!(check_table_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "../../x", "/tmp/x", "a.b", "2021", "a b", "x\0", "a/b", "é-x"] {
            assert!(check_table_name(bad).is_err(), "{bad:?}");
        }
        let long = "a".repeat(5000);
        assert!(check_table_name(&long).unwrap_err().contains("5000 bytes"));
        assert!(check_table_name("a/../x").unwrap_err().contains("e.g. `a_x`"));
    }
}
