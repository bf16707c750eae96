//! Minijinja rendering of paths and SQL: `env('NAME', 'default')`, `var('name', 'default')`
//! and, for SQL steps, `ref('layer.table')`.

use minijinja::{Environment, Error, ErrorKind, State, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
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
    render_located(template, vars, refs).map_err(|e| e.message)
}

/// The names of the environment variables any template of this process has read.
static ENV_READ: std::sync::Mutex<std::collections::BTreeSet<String>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// The names of the environment variables templates have read so far in this process (a
/// superset of what one project's templates read, when a process loads several).
pub fn env_read() -> Vec<String> {
    ENV_READ.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
}

/// The renders of a template once per item, and whether any of them read the environment.
#[derive(Debug)]
pub struct Renders {
    pub items: Vec<Result<String, TemplateError>>,
    /// True when an `env()` call ran: the renders depend on more than the template, the items
    /// and the vars.
    pub read_env: bool,
}

/// Like [`render`] once per item of `items` with `{{ item }}` bound (pipeline `for_each`), the
/// errors located. The template is compiled once for all items.
pub fn render_each(template: &str, vars: &BTreeMap<String, String>, items: &[String], refs: RefNamer) -> Renders {
    let read_env = Arc::new(AtomicBool::new(false));
    let compiled = environment(template, vars, Some(refs), Some(read_env.clone())).and_then(|env| {
        let t = env.template_from_str(template).map_err(|e| located(template, e))?;
        Ok(items
            .iter()
            .map(|item| t.render(minijinja::context! { item => item }).map_err(|e| located(template, e)))
            .collect())
    });
    let items = compiled.unwrap_or_else(|e| items.iter().map(|_| Err(e.clone())).collect());
    Renders { items, read_env: read_env.load(Ordering::Relaxed) }
}

/// Renders like [`render`], keeping where in the template an error is.
pub fn render_located(
    template: &str,
    vars: &BTreeMap<String, String>,
    refs: Option<RefNamer>,
) -> Result<String, TemplateError> {
    environment(template, vars, refs, None)?.render_str(template, ()).map_err(|e| located(template, e))
}

/// The environment `template` renders in: `env()`, `var()` from `vars`, and `ref()` for the
/// arguments `refs` names (none without it). `read_env`, when given, is set by any `env()` call.
fn environment<'s>(
    template: &str,
    vars: &BTreeMap<String, String>,
    refs: Option<RefNamer>,
    read_env: Option<Arc<AtomicBool>>,
) -> Result<Environment<'s>, TemplateError> {
    let mut env = Environment::new();
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_function("env", move |name: String, default: Option<String>| -> Result<String, Error> {
        if let Some(flag) = &read_env {
            flag.store(true, Ordering::Relaxed);
        }
        ENV_READ.lock().unwrap_or_else(|p| p.into_inner()).insert(name.clone());
        std::env::var(&name).ok().filter(|v| !v.is_empty()).or(default).ok_or_else(|| {
            Error::new(
                ErrorKind::UndefinedError,
                format!("environment variable `{name}` is not set and has no default"),
            )
        })
    });
    let vars = Arc::new(vars.clone());
    // `var('item')` is the for_each item, as `{{ item }}` is.
    env.add_function("var", move |state: &State, name: String, default: Option<String>| -> Result<String, Error> {
        let item = || state.lookup("item").filter(|_| name == "item").map(|v| v.to_string());
        item().or_else(|| vars.get(&name).cloned()).or(default).ok_or_else(|| {
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
    Ok(env)
}

/// A template error as we report it: what failed, naming the undefined name, and its line.
fn located(template: &str, e: Error) -> TemplateError {
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
    fn renders_each_item_from_one_compile() {
        let vars = BTreeMap::from([("item".to_string(), "var".to_string()), ("y".to_string(), "2".to_string())]);
        let refs = |r: &str| Ok(format!("<{r}>"));
        let items = vec!["a".to_string(), "b".to_string()];
        let out = render_each("t_{{ item }}_{{ var('item') }}_{{ var('y') }}", &vars, &items, &refs);
        assert!(!out.read_env);
        let out: Vec<String> = out.items.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(out, ["t_a_a_2", "t_b_b_2"]);
        // A template that does not compile fails for every item, located.
        let bad = render_each("x\n{{ item }", &vars, &items, &refs).items;
        assert_eq!(bad.len(), 2);
        assert!(bad.iter().all(|r| r.as_ref().is_err_and(|e| e.line == Some(2))), "{bad:?}");
        let undefined = render_each("{{ nope }}", &vars, &items, &refs).items;
        assert!(undefined[1].as_ref().is_err_and(|e| e.message.starts_with("`nope` is not defined")));
        // Reading the environment is noted, a branch that does not call `env()` is not.
        assert!(render_each("{{ env('JOBFORGE_UNSET_XYZ', item) }}", &vars, &items, &refs).read_env);
        assert!(!render_each("{% if false %}{{ env('X', 'x') }}{% endif %}", &vars, &items, &refs).read_env);
    }

    #[test]
    fn renders_env_var_and_ref() {
        let vars = BTreeMap::from([("year".to_string(), "2024".to_string())]);
        let out = render("{{ env('JOBFORGE_UNSET_XYZ', 'd') }}/{{ var('year') }}", &vars, None).unwrap();
        assert_eq!(out, "d/2024");
        assert!(env_read().contains(&"JOBFORGE_UNSET_XYZ".to_string()), "the name read is noted");
        let refs = |a: &str| Ok(format!("t_{}", a.replace('.', "_")));
        let sql = render("select * from {{ ref('silver.x') }}", &vars, Some(&refs)).unwrap();
        assert_eq!(sql, "select * from t_silver_x");
        assert!(render("{{ var('nope') }}", &vars, None).is_err());
    }
}
