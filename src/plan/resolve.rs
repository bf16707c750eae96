//! Resolving a source's `path` or glob `pattern`s to the one file it reads, by its version rule.

use crate::config::sources::{Source, VersionRule};
use crate::config::template;
use crate::config::Project;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A file a source resolved to.
#[derive(Debug, Clone, Serialize)]
pub struct ResolvedFile {
    pub path: PathBuf,
    pub size: u64,
    #[serde(skip)]
    pub modified: SystemTime,
}

impl ResolvedFile {
    /// A file as a run recorded it (not looked at on disk).
    pub fn recorded(path: PathBuf, size: u64) -> Self {
        ResolvedFile { path, size, modified: SystemTime::UNIX_EPOCH }
    }

    fn stat(path: PathBuf) -> std::io::Result<Self> {
        let meta = std::fs::metadata(&path)?;
        Ok(ResolvedFile { size: meta.len(), modified: meta.modified()?, path })
    }
}

/// The folder relative source paths start from: `defaults.root`, rendered, relative to the
/// project; by default `$JOBFORGE_SOURCE_DIR` or the bundled `data/source`.
pub fn source_root(project: &Project) -> Result<PathBuf, String> {
    let template =
        project.sources.defaults.root.as_deref().unwrap_or("{{ env('JOBFORGE_SOURCE_DIR', 'data/source') }}");
    let root = template::render(template, &project.vars, None).map_err(|e| format!("defaults.root: {e}"))?;
    Ok(project.dir.join(root))
}

/// The single file `source` reads, or a message saying why there is none.
pub fn resolve(project: &Project, root: &Path, id: &str, source: &Source) -> Result<ResolvedFile, String> {
    let render = |t: &str| {
        let text = template::render(t, &project.vars, None).map_err(|e| format!("source `{id}`: {e}"))?;
        stays_under_root(&text).map_err(|m| format!("source `{id}`: `{text}` {m} {}; put the file under the root, or set `defaults.root` (or JOBFORGE_SOURCE_DIR) to a folder that holds it", root.display()))?;
        Ok::<String, String>(text)
    };
    if let Some(path) = &source.path {
        if !source.pattern.is_empty() {
            return Err(format!("source `{id}`: give either `path` or `pattern`, not both"));
        }
        let path = root.join(render(path)?);
        return ResolvedFile::stat(path.clone())
            .map_err(|e| format!("source `{id}`: file not found: {} ({e})", path.display()));
    }
    if source.pattern.is_empty() {
        return Err(format!("source `{id}`: needs a `path` or a `pattern`"));
    }
    let excludes = source
        .exclude
        .iter()
        .map(|p| glob::Pattern::new(&render(p)?).map_err(|e| format!("source `{id}`: bad exclude pattern `{p}`: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut matches = Vec::new();
    for pattern in &source.pattern {
        let full = root.join(render(pattern)?);
        let paths =
            glob::glob(&full.to_string_lossy()).map_err(|e| format!("source `{id}`: bad pattern `{pattern}`: {e}"))?;
        for path in paths.flatten() {
            let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            if path.is_file() && !excludes.iter().any(|x| x.matches(&name)) && !matches.contains(&path) {
                matches.push(path);
            }
        }
    }
    let files = matches
        .into_iter()
        .map(ResolvedFile::stat)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("source `{id}`: {e}"))?;
    let rule = source.version.or(project.sources.defaults.version).unwrap_or(VersionRule::ErrorIfMany);
    choose(files, rule)
        .map_err(|m| format!("source `{id}`: {m} (pattern {:?} under {})", source.pattern, root.display()))
}

/// Whether a relative path or pattern stays inside the folder it is relative to.
pub fn stays_under_root(path: &str) -> Result<(), &'static str> {
    let p = Path::new(path);
    if p.is_absolute() || p.has_root() {
        return Err("is absolute; source paths are relative to the source root");
    }
    let mut depth: i64 = 0;
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => depth -= 1,
            std::path::Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return Err("climbs out of the source root");
        }
    }
    Ok(())
}

/// Picks one file by the version rule.
fn choose(mut files: Vec<ResolvedFile>, rule: VersionRule) -> Result<ResolvedFile, String> {
    match (files.len(), rule) {
        (0, _) => Err("no file matches".into()),
        (1, _) => Ok(files.remove(0)),
        (_, VersionRule::ErrorIfMany) => Err(format!(
            "{} files match ({}); set `version: highest` or `latest_modified`, or narrow the pattern",
            files.len(),
            files.iter().map(|f| f.path.display().to_string()).collect::<Vec<_>>().join(", ")
        )),
        (_, VersionRule::Highest) => {
            files.sort_by_key(|f| (version_numbers(&f.path), f.path.clone()));
            Ok(files.remove(files.len() - 1))
        }
        (_, VersionRule::LatestModified) => {
            files.sort_by_key(|f| (f.modified, f.path.clone()));
            Ok(files.remove(files.len() - 1))
        }
    }
}

/// The runs of digits in a file name, as numbers: `cops_2024_v1.10.csv` gives [2024, 1, 10].
fn version_numbers(path: &Path) -> Vec<u64> {
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    name.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).filter_map(|s| s.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_leave_the_root_are_refused() {
        assert!(stays_under_root("a/b.csv").is_ok());
        assert!(stays_under_root("a/../b.csv").is_ok());
        assert!(stays_under_root("../b.csv").is_err());
        assert!(stays_under_root("a/../../b.csv").is_err());
        assert!(stays_under_root("/etc/passwd").is_err());
    }

    #[test]
    fn highest_version_compares_numbers_not_text() {
        let f = |p: &str| ResolvedFile { path: p.into(), size: 0, modified: SystemTime::UNIX_EPOCH };
        let got = choose(vec![f("a_v1.9.csv"), f("a_v1.10.csv"), f("a_v1.2.csv")], VersionRule::Highest).unwrap();
        assert_eq!(got.path, PathBuf::from("a_v1.10.csv"));
        assert!(choose(vec![f("a"), f("b")], VersionRule::ErrorIfMany).unwrap_err().contains("2 files match"));
    }
}
