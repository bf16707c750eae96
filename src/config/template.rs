//! Minijinja rendering of paths and SQL: `env('NAME', 'default')`, `var('name', 'default')`
//! and, for SQL steps, `ref('layer.table')`.

use minijinja::{Environment, Error, ErrorKind, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Maps a `ref('layer.table')` argument to the name it renders as.
pub type RefNamer<'a> = &'a dyn Fn(&str) -> Result<String, String>;

/// A template that did not render: what failed, naming the undefined name, and the line of the
/// template it is on.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    pub message: String,
    pub line: Option<usize>,
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Renders `template` with `env()` and `var()`; `refs` maps `ref()` arguments to names.
pub fn render(template: &str, vars: &BTreeMap<String, String>, refs: Option<RefNamer>) -> Result<String, String> {
    render_inner(template, vars, refs, None).map_err(|e| e.message)
}

/// Like [`render`], with `{{ item }}` bound (pipeline `for_each`), and the error located.
pub fn render_with_item(
    template: &str,
    vars: &BTreeMap<String, String>,
    item: &str,
    refs: RefNamer,
) -> Result<String, TemplateError> {
    render_inner(template, vars, Some(refs), Some(item))
}

/// Renders like [`render`], keeping where in the template an error is.
pub fn render_located(
    template: &str,
    vars: &BTreeMap<String, String>,
    refs: Option<RefNamer>,
) -> Result<String, TemplateError> {
    render_inner(template, vars, refs, None)
}

fn render_inner(
    template: &str,
    vars: &BTreeMap<String, String>,
    refs: Option<RefNamer>,
    item: Option<&str>,
) -> Result<String, TemplateError> {
    let mut env = Environment::new();
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_function("env", |name: String, default: Option<String>| -> Result<String, Error> {
        std::env::var(&name).ok().filter(|v| !v.is_empty()).or(default).ok_or_else(|| {
            Error::new(
                ErrorKind::UndefinedError,
                format!("environment variable `{name}` is not set and has no default"),
            )
        })
    });
    let vars = Arc::new(vars.clone());
    env.add_function("var", move |name: String, default: Option<String>| -> Result<String, Error> {
        vars.get(&name).cloned().or(default).ok_or_else(|| {
            Error::new(ErrorKind::UndefinedError, format!("variable `{name}` is not set (use --var {name}=VALUE)"))
        })
    });
    let mut table = BTreeMap::new();
    if let Some(refs) = refs {
        for arg in ref_arguments(template) {
            let name = refs(&arg).map_err(|message| TemplateError { message, line: None })?;
            table.insert(arg, name);
        }
    }
    env.add_function("ref", move |arg: String| -> Result<Value, Error> {
        table
            .get(&arg)
            .map(|s| Value::from(s.clone()))
            .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("ref('{arg}') is not allowed here")))
    });
    let rendered = match item {
        Some(item) => env.render_str(template, minijinja::context! { item => item }),
        None => env.render_str(template, ()),
    };
    rendered.map_err(|e| {
        let span = e.range().and_then(|r| template.get(r)).map(str::trim).filter(|s| !s.is_empty());
        let message = match (e.kind(), span) {
            (ErrorKind::UndefinedError, Some(span)) if e.detail().is_none() => format!(
                "`{span}` is not defined; a template knows `item` (in for_each files), `env('NAME', 'default')`, \
                 `var('name', 'default')` and `ref('layer.table')`"
            ),
            (_, Some(span)) => format!("{} in `{span}`", e.detail().unwrap_or(&e.kind().to_string())),
            _ => e.detail().map_or_else(|| e.to_string(), str::to_string),
        };
        TemplateError { message, line: e.line() }
    })
}

/// The string arguments of every `ref('...')` call in a template, in order of appearance.
pub fn ref_arguments(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find("ref(") {
        rest = &rest[i + 4..];
        let trimmed = rest.trim_start();
        if let Some(q) = trimmed.chars().next().filter(|c| *c == '\'' || *c == '"') {
            if let Some(end) = trimmed[1..].find(q) {
                out.push(trimmed[1..1 + end].to_string());
            }
        }
    }
    out
}

/// The name a `ref('layer.table')` takes inside a `sql:` step.
pub fn sql_table_name(reference: &str) -> String {
    reference.replace('.', "__")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_env_var_and_ref() {
        let vars = BTreeMap::from([("year".to_string(), "2024".to_string())]);
        let out = render("{{ env('JOBFORGE_UNSET_XYZ', 'd') }}/{{ var('year') }}", &vars, None).unwrap();
        assert_eq!(out, "d/2024");
        let refs = |a: &str| Ok(format!("t_{}", a.replace('.', "_")));
        let sql = render("select * from {{ ref('silver.x') }}", &vars, Some(&refs)).unwrap();
        assert_eq!(sql, "select * from t_silver_x");
        assert!(render("{{ var('nope') }}", &vars, None).is_err());
    }
}
