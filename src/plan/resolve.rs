//! Resolving a source's `path` or glob `pattern`s to the one file it reads, by its version rule.

use crate::config::sources::{Source, VersionRule};
use crate::config::template;
use crate::config::Project;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
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

    /// The file (or folder) at `path` as it is now.
    pub fn stat(path: PathBuf) -> std::io::Result<Self> {
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

/// The folders patterns look in, each listed once however many sources look there (a project
/// has dozens of sources under one folder), and what resolving looked at on disk.
#[derive(Debug, Default)]
pub struct Listings {
    listed: Mutex<HashMap<PathBuf, Vec<PathBuf>>>,
    /// Every file and listed folder, as seen (size and modification time).
    seen: Mutex<Vec<ResolvedFile>>,
    /// Set when resolving looked where it cannot say what it saw (a pattern with wildcards in
    /// its folders, matched by `glob`).
    unseen: AtomicBool,
}

impl Listings {
    /// The files matching `full` (a pattern whose wildcards are all in its last component) in
    /// name order; other patterns go to `glob`.
    fn matches(&self, full: &Path) -> Result<Vec<PathBuf>, glob::PatternError> {
        let wild = |s: &str| s.contains(['*', '?', '[']);
        let (Some(dir), Some(name)) = (full.parent(), full.file_name().map(|n| n.to_string_lossy())) else {
            return Ok(vec![]);
        };
        if wild(&dir.to_string_lossy()) {
            self.unseen.store(true, Ordering::Relaxed);
            let paths = glob::glob(&full.to_string_lossy())?;
            return Ok(paths.flatten().filter(|p| p.is_file()).collect());
        }
        let pattern = glob::Pattern::new(&name)?;
        let mut listings = self.listed.lock().unwrap_or_else(|p| p.into_inner());
        let files = listings.entry(dir.to_path_buf()).or_insert_with(|| {
            // A folder's time changes when a file is added to it, removed or renamed.
            match ResolvedFile::stat(dir.to_path_buf()) {
                Ok(folder) => self.saw(folder),
                Err(_) => self.unseen.store(true, Ordering::Relaxed),
            }
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file() || (t.is_symlink() && e.path().is_file())))
                .map(|e| e.path())
                .collect();
            files.sort();
            files
        });
        let options = glob::MatchOptions::new();
        Ok(files
            .iter()
            .filter(|p| p.file_name().is_some_and(|n| pattern.matches_with(&n.to_string_lossy(), options)))
            .cloned()
            .collect())
    }

    fn saw(&self, file: ResolvedFile) {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).push(file);
    }

    /// Every file and folder resolving looked at, as it saw them, by path; `None` when it also
    /// looked where it cannot say (see `unseen`).
    pub fn looked_at(self) -> Option<Vec<ResolvedFile>> {
        if self.unseen.load(Ordering::Relaxed) {
            return None;
        }
        let mut seen = self.seen.into_inner().unwrap_or_else(|p| p.into_inner());
        seen.sort_by(|a, b| a.path.cmp(&b.path));
        seen.dedup_by(|a, b| a.path == b.path);
        Some(seen)
    }
}

/// The single file `source` reads, or a message saying why there is none.
pub fn resolve(
    project: &Project,
    root: &Path,
    id: &str,
    source: &Source,
    listings: &Listings,
) -> Result<ResolvedFile, String> {
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
        let file = ResolvedFile::stat(path.clone())
            .map_err(|e| format!("source `{id}`: file not found: {} ({e})", path.display()))?;
        listings.saw(file.clone());
        return Ok(file);
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
        let paths = listings.matches(&full).map_err(|e| format!("source `{id}`: bad pattern `{pattern}`: {e}"))?;
        for path in paths {
            let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            if !excludes.iter().any(|x| x.matches(&name)) && !matches.contains(&path) {
                matches.push(path);
            }
        }
    }
    let files = matches
        .into_iter()
        .map(ResolvedFile::stat)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("source `{id}`: {e}"))?;
    files.iter().for_each(|f| listings.saw(f.clone()));
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
    fn a_folder_is_listed_once_and_matched_like_glob() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b_2.csv", "a_1.csv", "a_1.txt", ".a_3.csv"] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        std::fs::create_dir(dir.path().join("a_dir.csv")).unwrap();
        let listings = Listings::default();
        for pattern in ["*.csv", "a_*", "[ab]_?.csv", "nothing*"] {
            let full = dir.path().join(pattern);
            let by_glob: Vec<PathBuf> =
                glob::glob(&full.to_string_lossy()).unwrap().flatten().filter(|p| p.is_file()).collect();
            assert_eq!(listings.matches(&full).unwrap(), by_glob, "{pattern}");
        }
        assert_eq!(listings.listed.lock().unwrap().len(), 1);
        let seen: Vec<PathBuf> = listings.seen.lock().unwrap().iter().map(|f| f.path.clone()).collect();
        assert_eq!(seen, vec![dir.path().to_path_buf()], "the folder listed is seen");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/c_1.csv"), "x").unwrap();
        assert_eq!(listings.matches(&dir.path().join("s*/c_*.csv")).unwrap(), vec![dir.path().join("sub/c_1.csv")]);
        assert!(listings.looked_at().is_none(), "folders matched by wildcards are not seen");
    }

    #[test]
    fn resolving_sees_the_folder_and_every_candidate() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["t_2024.csv", "t_2025.csv", "u.csv"] {
            std::fs::write(dir.path().join(name), "a\n1\n").unwrap();
        }
        std::fs::write(dir.path().join("sources.yml"), "version: 1\nsources: {}\n").unwrap();
        let project = crate::config::Project::load_sources(dir.path(), Default::default()).unwrap();
        let source = |yaml: &str| serde_yaml::from_str::<Source>(yaml).unwrap();
        let listings = Listings::default();
        let newest = resolve(&project, dir.path(), "t", &source("pattern: [\"t_*.csv\"]\nversion: highest"), &listings);
        assert_eq!(newest.unwrap().path, dir.path().join("t_2025.csv"));
        resolve(&project, dir.path(), "u", &source("path: u.csv"), &listings).unwrap();
        let seen: Vec<PathBuf> = listings.looked_at().unwrap().into_iter().map(|f| f.path).collect();
        let expected: Vec<PathBuf> =
            ["", "t_2024.csv", "t_2025.csv", "u.csv"].iter().map(|n| dir.path().join(n)).collect();
        assert_eq!(seen.len(), expected.len());
        for path in &expected {
            assert!(
                seen.iter().any(|s| s.components().eq(path.components())),
                "{} not seen in {seen:?}",
                path.display()
            );
        }
    }

    #[test]
    fn highest_version_compares_numbers_not_text() {
        let f = |p: &str| ResolvedFile { path: p.into(), size: 0, modified: SystemTime::UNIX_EPOCH };
        let got = choose(vec![f("a_v1.9.csv"), f("a_v1.10.csv"), f("a_v1.2.csv")], VersionRule::Highest).unwrap();
        assert_eq!(got.path, PathBuf::from("a_v1.10.csv"));
        assert!(choose(vec![f("a"), f("b")], VersionRule::ErrorIfMany).unwrap_err().contains("2 files match"));
    }
}
