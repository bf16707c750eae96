//! The inputs stamp: a committed run records what it decided its tables from (the config files
//! as read, the vars, the selection, the values of the environment variables its templates read,
//! the build, hashed together; the size and modification time of every source file and folder
//! its plan looked at, and the files it looked for and did not find). A rerun whose inputs all
//! match the stamp of the current snapshot, when that is a successful run's, has nothing to
//! build, as `incremental::decide` would find table by table; it can say so without loading the
//! config (make's check of file times, the config compared by content).

use crate::config::Project;
use crate::plan::Plan;
use crate::store::{RunInputs, SeenFile};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// The stamp of a run of `plan`, compiled from `project`, selecting `selectors`; `None` when
/// the plan cannot say what it looked at or this build cannot name itself.
pub fn of(project: &Project, plan: &Plan, selectors: &[String]) -> Option<RunInputs> {
    let files = plan
        .looked_at
        .as_ref()?
        .iter()
        .map(|f| SeenFile { path: f.path.display().to_string(), size: f.size, modified: f.modified.into() })
        .collect();
    let missing = plan.missing.iter().map(|p| p.display().to_string()).collect();
    let env = crate::config::template::env_read();
    let key = key(&project.config_digest(), &project.vars, selectors, &env)?;
    Some(RunInputs { key, env, files, missing })
}

/// Whether a run loading `pipelines` of the project in `dir` with `vars`, selecting
/// `selectors`, has the inputs `stamp` records.
pub fn matches(
    stamp: &RunInputs,
    dir: &Path,
    pipelines: &Path,
    vars: &BTreeMap<String, String>,
    selectors: &[String],
) -> bool {
    let unchanged = |f: &SeenFile| {
        std::fs::metadata(&f.path)
            .is_ok_and(|m| m.len() == f.size && m.modified().is_ok_and(|t| DateTime::<Utc>::from(t) == f.modified))
    };
    stamp.files.iter().all(unchanged)
        && stamp.missing.iter().all(|p| std::fs::metadata(p).is_err())
        && crate::config::config_digest(dir, pipelines)
            .and_then(|config| key(&config, vars, selectors, &stamp.env))
            .is_some_and(|k| k == stamp.key)
}

/// SHA-256 of the config digest, vars, selectors, the current values of the `env` variables,
/// the build and the working folder (relative paths start there), each field length-prefixed.
fn key(config: &str, vars: &BTreeMap<String, String>, selectors: &[String], env: &[String]) -> Option<String> {
    let cwd = std::env::current_dir().ok()?;
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(crate::build_identity()?.as_bytes());
    field(cwd.as_os_str().as_encoded_bytes());
    field(config.as_bytes());
    field(&(vars.len() as u64).to_le_bytes());
    for (k, v) in vars {
        field(k.as_bytes());
        field(v.as_bytes());
    }
    field(&(selectors.len() as u64).to_le_bytes());
    for s in selectors {
        field(s.as_bytes());
    }
    field(&(env.len() as u64).to_le_bytes());
    for name in env {
        field(name.as_bytes());
        match std::env::var_os(name) {
            Some(value) => {
                field(b"set");
                field(value.as_encoded_bytes());
            }
            None => field(b"unset"),
        }
    }
    Some(format!("{:x}", h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_covers_each_input_and_keeps_fields_apart() {
        let none = BTreeMap::new();
        let vars = BTreeMap::from([("a".to_string(), "bc".to_string())]);
        let split = BTreeMap::from([("ab".to_string(), "c".to_string())]);
        let k = |config: &str, vars: &BTreeMap<String, String>, sel: &[&str], env: &[&str]| {
            let sel: Vec<String> = sel.iter().map(|s| s.to_string()).collect();
            let env: Vec<String> = env.iter().map(|s| s.to_string()).collect();
            key(config, vars, &sel, &env)
        };
        let base = k("c", &none, &[], &[]);
        assert!(base.is_some());
        assert_eq!(base, k("c", &none, &[], &[]));
        assert_ne!(base, k("d", &none, &[], &[]));
        assert_ne!(k("c", &vars, &[], &[]), k("c", &split, &[], &[]));
        assert_ne!(base, k("c", &none, &["t"], &[]));
        assert_ne!(k("c", &none, &["ab"], &[]), k("c", &none, &["a", "b"], &[]));
        // An unset variable and one set to nothing are told apart; the value counts.
        assert_ne!(base, k("c", &none, &[], &["JOBFORGE_UNSET_XYZ"]));
        assert_ne!(k("c", &none, &[], &["JOBFORGE_UNSET_XYZ"]), k("c", &none, &[], &["PATH"]));
    }
}
