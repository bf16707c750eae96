//! `jobforge export dagster`: the plan as a Dagster code location, so an orchestrator runs the
//! tables (one asset per table, its dependencies from the plan, grouped by domain; the table's
//! checks as asset checks; schedules from `schedules.yml`; a sensor per source). The Python is
//! fixed (`definitions.py`); what varies is the plan it reads, written beside it as JSON.

use crate::diag::{Diagnostics, SourceText};
use crate::plan::{Layer, Plan};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The schedules file's name in the project folder.
pub const SCHEDULES_FILE: &str = "schedules.yml";

/// The Python package the export writes.
pub const PACKAGE: &str = "jobforge_dagster";

/// `schedules.yml`: when an orchestrator runs the tables.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SchedulesFile {
    pub schedules: Vec<Schedule>,
}

/// One schedule: a cron expression for the whole project or one domain.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Unique name (letters, digits, `_`).
    pub name: String,
    /// Five-field cron expression, e.g. `0 3 * * *`.
    pub cron: String,
    /// Only the tables of this domain (the pipelines' `domain`); every table when absent.
    pub domain: Option<String>,
    /// Time zone of the cron expression (default `UTC`).
    pub timezone: Option<String>,
}

/// Reads and checks `schedules.yml` of `project` against the plan's domains.
pub fn schedules(project: &Path, plan: &Plan) -> Result<Vec<Schedule>, Diagnostics> {
    let path = project.join(SCHEDULES_FILE);
    if !path.exists() {
        return Ok(vec![]);
    }
    let mut diags = Diagnostics::default();
    let text = SourceText::read(&path).map_err(|d| Diagnostics(vec![d]))?;
    let Some(file) = crate::config::parse::<SchedulesFile>(&text, &mut diags) else { return Err(diags) };
    let domains: BTreeSet<&str> = plan.tables.iter().filter_map(|t| t.spec.domain.as_deref()).collect();
    let mut names = BTreeSet::new();
    for s in &file.schedules {
        let at = |token: &str, m: String| text.diag(Some("schedules"), token, m);
        if s.name.is_empty() || !s.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            diags.push(at(&s.name, format!("schedule name `{}`: use letters, digits and `_`", s.name)));
        }
        if !names.insert(&s.name) {
            diags.push(at(&s.name, format!("two schedules are named `{}`", s.name)));
        }
        if s.cron.split_whitespace().count() != 5 {
            diags.push(at(
                &s.cron,
                format!(
                    "schedule `{}`: `{}` is not a five-field cron expression (minute hour day month weekday)",
                    s.name, s.cron
                ),
            ));
        }
        if let Some(d) = &s.domain {
            if !domains.contains(d.as_str()) {
                let hint = crate::diag::did_you_mean(d, domains.iter().copied());
                diags.push(at(d, format!("schedule `{}`: no pipeline has domain `{d}`", s.name)).with_hint(hint));
            }
        }
    }
    if diags.is_empty() {
        Ok(file.schedules)
    } else {
        Err(diags)
    }
}

/// A check's label as a Dagster name (letters, digits, `_`): `null_rate(title)` ->
/// `null_rate_title`.
fn dagster_name(label: &str) -> String {
    let mapped: String = label.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    mapped.split('_').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("_")
}

/// The plan as the code location reads it.
pub fn plan_json(project: &Path, pipelines: &Path, plan: &Plan, schedules: &[Schedule]) -> serde_json::Value {
    let tables: Vec<serde_json::Value> = plan
        .tables
        .iter()
        .enumerate()
        .map(|(t, table)| {
            let deps: BTreeSet<String> = Layer::ALL
                .iter()
                .flat_map(|l| plan.cross_dependencies(plan.node(t, *l)))
                .map(|n| plan.tables[n.table].name.clone())
                .collect();
            let checks: Vec<serde_json::Value> = table
                .checks()
                .iter()
                .map(|c| {
                    json!({ "name": dagster_name(&c.label()), "label": c.label(), "kind": c.kind.key(), "severity": c.severity.name() })
                })
                .collect();
            json!({
                "name": table.name,
                "domain": table.spec.domain.clone().unwrap_or_else(|| "default".into()),
                "description": table.spec.description.clone().unwrap_or_default(),
                "source": table.source_id,
                "deps": deps,
                "checks": checks,
            })
        })
        .collect();
    let source_ids: BTreeSet<&str> = plan.tables.iter().map(|t| t.source_id.as_str()).collect();
    let sources: Vec<serde_json::Value> = source_ids
        .iter()
        .map(|id| {
            let readers: Vec<&str> =
                plan.tables.iter().filter(|t| t.source_id == *id).map(|t| t.name.as_str()).collect();
            json!({ "id": id, "tables": readers })
        })
        .collect();
    let schedules: Vec<serde_json::Value> = schedules
        .iter()
        .map(|s| {
            let tables: Vec<&str> = plan
                .tables
                .iter()
                .filter(|t| s.domain.is_none() || t.spec.domain == s.domain)
                .map(|t| t.name.as_str())
                .collect();
            json!({
                "name": s.name,
                "cron": s.cron,
                "timezone": s.timezone.clone().unwrap_or_else(|| "UTC".into()),
                "tables": tables,
            })
        })
        .collect();
    json!({
        "project": project.display().to_string(),
        "pipelines": pipelines.display().to_string(),
        "tables": tables,
        "sources": sources,
        "schedules": schedules,
    })
}

/// Writes the code location into `out`: `jobforge_dagster/__init__.py` and `plan.json`.
/// Returns the files written.
pub fn export(project: &Path, pipelines: &Path, plan: &Plan, out: &Path) -> Result<Vec<PathBuf>, Diagnostics> {
    let schedules = schedules(project, plan)?;
    let project = std::fs::canonicalize(project).unwrap_or_else(|_| project.to_path_buf());
    let plan_text = serde_json::to_string_pretty(&plan_json(&project, pipelines, plan, &schedules)).unwrap_or_default();
    let dir = out.join(PACKAGE);
    let files = [
        (dir.join("__init__.py"), include_str!("definitions.py").to_string()),
        (dir.join("plan.json"), plan_text + "\n"),
    ];
    let fail = |p: &Path, e: std::io::Error| {
        Diagnostics(vec![crate::diag::Diagnostic::new(p, (1, 1), format!("cannot write {}: {e}", p.display()))])
    };
    std::fs::create_dir_all(&dir).map_err(|e| fail(&dir, e))?;
    for (path, text) in &files {
        crate::atomic::write_bytes(path, text.as_bytes()).map_err(|e| fail(path, e))?;
    }
    Ok(files.into_iter().map(|(p, _)| p).collect())
}
