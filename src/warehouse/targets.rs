//! `warehouse.yml`: the warehouses of a project by name, for `jobforge load --target NAME` and
//! as sides of `jobforge diff`. A target is an embedded DuckDB file or a PostgreSQL URL (never
//! with a password: that comes from the environment). Without the file, or without `--target`
//! and a `default`, the target is `duckdb:data/warehouse.duckdb`.

use super::postgres::Pg;
use super::Target;
use crate::diag::{Diagnostics, SourceText};
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use std::path::Path;

/// The file's name in the project folder.
pub const FILE: &str = "warehouse.yml";

/// The default target when none is declared.
pub const DEFAULT_DUCKDB: &str = "data/warehouse.duckdb";

/// `warehouse.yml`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WarehouseFile {
    /// The target `load` uses without `--target` (default: the only target declared).
    pub default: Option<String>,
    /// Targets by name.
    pub targets: IndexMap<String, TargetConfig>,
}

/// One warehouse: exactly one of `duckdb` and `postgres`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// An embedded DuckDB database file, relative to the project.
    pub duckdb: Option<String>,
    /// A PostgreSQL URL, `postgres://USER@HOST:PORT/DATABASE` (or `host=... user=...`), without
    /// a password.
    pub postgres: Option<String>,
    /// The environment variable holding the PostgreSQL password; without it, `PGPASSWORD`, then
    /// the password file (`PGPASSFILE` or `~/.pgpass`).
    pub password_env: Option<String>,
    /// The schema holding the tables (default `main` in DuckDB, `public` in PostgreSQL).
    pub schema: Option<String>,
}

/// A target and the schema to use in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub target: Target,
    pub schema: String,
}

/// Reads `warehouse.yml` of `project`, if there is one, checking each target.
fn read(project: &Path) -> Result<Option<(SourceText, WarehouseFile)>, String> {
    let path = project.join(FILE);
    if !path.exists() {
        return Ok(None);
    }
    let mut diags = Diagnostics::default();
    let text = SourceText::read(&path).map_err(|d| d.to_string())?;
    let file: WarehouseFile = crate::config::parse(&text, &mut diags).ok_or_else(|| diags.to_string())?;
    for (name, t) in &file.targets {
        if t.duckdb.is_some() == t.postgres.is_some() {
            diags.push(text.diag(
                Some("targets"),
                name,
                format!("target `{name}` needs exactly one of `duckdb: PATH` and `postgres: URL`"),
            ));
        }
        if t.password_env.is_some() && t.postgres.is_none() {
            diags.push(text.diag(
                Some("targets"),
                name,
                format!("target `{name}`: `password_env` is for PostgreSQL targets"),
            ));
        }
        if let Some(url) = &t.postgres {
            if let Err(e) = Pg::parse(url, None) {
                diags.push(text.diag(Some("targets"), name, format!("target `{name}`: {e}")));
            }
        }
    }
    if let Some(d) = &file.default {
        if !file.targets.contains_key(d) {
            let hint = crate::diag::did_you_mean(d, file.targets.keys().map(String::as_str));
            diags.push(
                text.diag(None, "default", format!("default target `{d}` is not one of the targets")).with_hint(hint),
            );
        }
    }
    if diags.is_empty() {
        Ok(Some((text, file)))
    } else {
        Err(diags.to_string())
    }
}

fn from_config(project: &Path, t: &TargetConfig) -> Result<Resolved, String> {
    let target = match (&t.duckdb, &t.postgres) {
        (Some(path), _) => Target::DuckDb(project.join(path)),
        (None, Some(url)) => Target::Postgres(Pg::parse(url, t.password_env.clone())?),
        (None, None) => return Err("a target needs `duckdb` or `postgres`".into()),
    };
    let schema = t.schema.clone().unwrap_or_else(|| target.default_schema().to_string());
    Ok(Resolved { target, schema })
}

/// A target written out (`duckdb:PATH`, `postgres://URL` or `postgres:URL`, either with
/// `#schema`) or named in `warehouse.yml`; `None` when `text` is neither.
pub fn lookup(text: &str, project: &Path) -> Result<Option<Resolved>, String> {
    if let Some(r) = parse_inline(Some(text), project)? {
        return Ok(Some(r));
    }
    match read(project)? {
        Some((_, file)) => file.targets.get(text).map(|t| from_config(project, t)).transpose(),
        None => Ok(None),
    }
}

/// The target `text` names (see `lookup`); without one, the default of `warehouse.yml`, its only
/// target, or else `duckdb:data/warehouse.duckdb`.
pub fn resolve(text: Option<&str>, project: &Path) -> Result<Resolved, String> {
    if let Some(text) = text {
        return lookup(text, project)?.ok_or_else(|| {
            let names: Vec<String> =
                read(project).ok().flatten().map(|(_, f)| f.targets.keys().cloned().collect()).unwrap_or_default();
            let hint = crate::diag::did_you_mean(text, names.iter().map(String::as_str))
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            format!("`{text}` is not a target: write duckdb:PATH or postgres://USER@HOST:PORT/DB, or name a target of {FILE}{hint}")
        });
    }
    let default = || resolve(Some(&format!("duckdb:{DEFAULT_DUCKDB}")), project);
    let Some((_, file)) = read(project)? else { return default() };
    let name = match &file.default {
        Some(d) => d.clone(),
        None if file.targets.len() == 1 => file.targets.keys().next().cloned().unwrap_or_default(),
        None => return default(),
    };
    match file.targets.get(&name) {
        Some(t) => from_config(project, t),
        None => Err(format!("no target `{name}` in {FILE}")),
    }
}

/// A target written out on the command line, or `None` for a name (or nothing).
fn parse_inline(text: Option<&str>, project: &Path) -> Result<Option<Resolved>, String> {
    let Some(text) = text else { return Ok(None) };
    let (body, schema) = match text.rsplit_once('#') {
        Some((b, s)) if !s.is_empty() && !s.contains('/') => (b, Some(s.to_string())),
        _ => (text, None),
    };
    let target = if let Some(path) = body.strip_prefix("duckdb:") {
        Target::DuckDb(project.join(path))
    } else if body.starts_with("postgres://") || body.starts_with("postgresql://") {
        Target::Postgres(Pg::parse(body, None)?)
    } else if let Some(url) = body.strip_prefix("postgres:").or_else(|| body.strip_prefix("postgresql:")) {
        Target::Postgres(Pg::parse(url, None)?)
    } else {
        return Ok(None);
    };
    let schema = schema.unwrap_or_else(|| target.default_schema().to_string());
    Ok(Some(Resolved { target, schema }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_targets_and_schemas() {
        let p = Path::new("/p");
        let r = resolve(Some("duckdb:w.duckdb#gold"), p).unwrap();
        assert_eq!((r.target, r.schema.as_str()), (Target::DuckDb(p.join("w.duckdb")), "gold"));
        let r = resolve(Some("postgres://me@127.0.0.1:5433/wiq#wiq"), p).unwrap();
        assert_eq!(r.schema, "wiq");
        assert_eq!(r.target.describe(), "postgres://me@127.0.0.1:5433/wiq");
        let e = resolve(Some("postgres://me:secret@127.0.0.1/wiq"), p).unwrap_err();
        assert!(e.contains("PGPASSWORD") && !e.contains("secret"), "{e}");
        assert!(resolve(Some("nowhere"), p).unwrap_err().contains("not a target"));
        let r = resolve(None, p).unwrap();
        assert_eq!(r.target, Target::DuckDb(p.join(DEFAULT_DUCKDB)));
    }
}
