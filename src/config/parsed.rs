//! Pipeline files parsed by an earlier run, kept as JSON and keyed by the SHA-256 of the exact
//! text parsed (with the `--var` settings and the identity of this build): a file unchanged
//! since is decoded from JSON instead of parsed from YAML again, which is most of a rerun's
//! config load. Only files that parsed without a problem are kept, and only when their JSON
//! decodes back to the very same spec; anything that cannot be read, from another build, or
//! torn is a miss and the file is parsed as if there were no cache. `run` writes the entries
//! (`Parsed::save`); every other command only reads them. The folder is the data folder's
//! (`store::Store::parsed_pipelines_dir`).

use super::{Pipeline, PipelineFile};
use crate::diag::SourceText;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The kept parses of one data folder, and what one load of the pipelines looked up and parsed.
#[derive(Debug)]
pub struct Parsed {
    dir: PathBuf,
    /// This build: entries another binary wrote are not read (its types may differ).
    build: String,
    /// Keys looked up by this load.
    used: Mutex<BTreeSet<String>>,
    /// Files this load parsed that had no entry: key, path and the text parsed (their
    /// pipelines are the loaded project's).
    fresh: Mutex<Vec<(String, PathBuf, String)>>,
    /// Whether the load read a whole folder of pipeline files (then entries it did not look up
    /// are of files since edited or removed) rather than one file of it.
    whole: bool,
}

/// One pipeline of an entry: its text when it differs from the file's (a `for_each` item).
#[derive(serde::Serialize, serde::Deserialize)]
struct Item {
    text: Option<String>,
    spec: Pipeline,
}

impl Parsed {
    /// The kept parses in `dir`; `None` when this build cannot name itself (then nothing is
    /// read or kept).
    pub fn at(dir: PathBuf) -> Option<Parsed> {
        let build = crate::build_identity()?.to_string();
        Some(Parsed { dir, build, used: Mutex::default(), fresh: Mutex::default(), whole: true })
    }

    /// Marks the load as reading one pipeline file, not a folder: saving it removes no entry.
    pub fn of_one_file(self) -> Parsed {
        Parsed { whole: false, ..self }
    }

    /// The key of `text` parsed with `vars`.
    pub fn key(&self, text: &str, vars: &BTreeMap<String, String>) -> String {
        let mut h = Sha256::new();
        h.update(format!("{}\n{}\n", self.build, vars.len()));
        for (k, v) in vars {
            h.update(format!("{}:{k}{}:{v}", k.len(), v.len()));
        }
        h.update(text);
        format!("{:x}", h.finalize())
    }

    /// The pipelines of `text` (the file as parsed, at its path) as kept under `key`.
    pub fn get(&self, key: &str, text: &SourceText) -> Option<Vec<PipelineFile>> {
        lock(&self.used).insert(key.to_string());
        let json = std::fs::read(self.entry(key)).ok()?;
        let items: Vec<Item> = serde_json::from_slice(&json).ok()?;
        let file = |item: Item| PipelineFile {
            text: SourceText { path: text.path.clone(), text: item.text.unwrap_or_else(|| text.text.clone()) },
            spec: item.spec,
        };
        Some(items.into_iter().map(file).collect())
    }

    /// Notes that `text`, the file at `path` as parsed, parsed without a problem: its
    /// pipelines are to be kept under `key`.
    pub fn remember(&self, key: String, path: &Path, text: String) {
        lock(&self.fresh).push((key, path.to_path_buf(), text));
    }

    /// Whether this load parsed a file it did not find.
    pub fn has_fresh(&self) -> bool {
        !lock(&self.fresh).is_empty()
    }

    /// Writes the entries of the files this load parsed (their pipelines among `pipelines`,
    /// the loaded project's) and, when it read a whole folder,
    /// removes those it did not look up (files since edited or removed). Writes nothing when
    /// every file was found. Each entry is written whole beside its place and renamed into it,
    /// so a reader sees all of it or nothing; no lock is needed, as an entry's content follows
    /// from its name (two runs at once write the same bytes).
    pub fn save(&self, pipelines: &[PipelineFile]) {
        let fresh = std::mem::take(&mut *lock(&self.fresh));
        if fresh.is_empty() {
            return;
        }
        if std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        for (key, path, text) in fresh {
            let files: Vec<&PipelineFile> = pipelines.iter().filter(|f| f.text.path == path).collect();
            let Some(json) = encode(&text, &files) else {
                tracing::debug!("a parse of {} does not round-trip through JSON; not kept", path.display());
                continue;
            };
            let to = self.entry(&key);
            let temporary = self.dir.join(format!("{key}.{}.tmp", std::process::id()));
            if std::fs::write(&temporary, json).and_then(|_| std::fs::rename(&temporary, &to)).is_err() {
                let _ = std::fs::remove_file(&temporary);
            }
        }
        if !self.whole {
            return;
        }
        let used = lock(&self.used);
        let entries = std::fs::read_dir(&self.dir).into_iter().flatten().filter_map(|e| e.ok());
        for e in entries {
            let name = e.file_name();
            let kept = name.to_str().and_then(|n| n.strip_suffix(".json")).is_some_and(|k| used.contains(k));
            if !kept {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    fn entry(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }
}

/// The entry of `files` parsed from `text`, when its JSON decodes back to the same pipelines.
fn encode(text: &str, files: &[&PipelineFile]) -> Option<String> {
    let items: Vec<Item> = files
        .iter()
        .map(|f| Item { text: (f.text.text != text).then(|| f.text.text.clone()), spec: f.spec.clone() })
        .collect();
    let json = serde_json::to_string(&items).ok()?;
    let back: Vec<Item> = serde_json::from_str(&json).ok()?;
    (serde_json::to_string(&back).ok()? == json).then_some(json)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Project, Read};

    fn load(dir: &std::path::Path, cache: &std::path::Path) -> Project {
        load_with(dir, Parsed::at(cache.to_path_buf()))
    }

    /// The pipelines parsed from their YAML, no kept parse looked up.
    fn uncached(dir: &std::path::Path) -> Project {
        load_with(dir, None)
    }

    fn load_with(dir: &std::path::Path, parsed: Option<Parsed>) -> Project {
        match Project::load_reading(dir, std::path::Path::new("pipelines"), BTreeMap::new(), Read::WithoutTests, parsed)
        {
            Ok(p) => p,
            Err(d) => panic!("{d}"),
        }
    }

    /// Every pipeline as text and spec, in load order.
    fn specs(p: &Project) -> Vec<(String, String)> {
        p.pipelines.iter().map(|f| (f.text.text.clone(), serde_json::to_string(&f.spec).unwrap_or_default())).collect()
    }

    fn entries(cache: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(cache)
            .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    fn fresh(p: &Project) -> bool {
        p.parsed.as_ref().is_some_and(|c| c.has_fresh())
    }

    /// The bundled project copied into a temporary folder, and the folder for its parses.
    fn bundled() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let copy = |from: &std::path::Path, to: &std::path::Path| std::fs::copy(from, to).map(|_| ());
        copy(&root.join("sources.yml"), &dir.path().join("sources.yml")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(dir.path().join("pipelines")).unwrap_or_else(|e| panic!("{e}"));
        for e in std::fs::read_dir(root.join("pipelines")).unwrap_or_else(|e| panic!("{e}")).flatten() {
            copy(&e.path(), &dir.path().join("pipelines").join(e.file_name())).unwrap_or_else(|e| panic!("{e}"));
        }
        let cache = dir.path().join("data/cache/pipelines");
        (dir, cache)
    }

    #[test]
    fn a_kept_parse_is_the_parse_and_an_edited_file_is_parsed_again() {
        let (dir, cache) = bundled();
        let files = std::fs::read_dir(dir.path().join("pipelines")).map(|d| d.count()).unwrap_or(0);
        let first = load(dir.path(), &cache);
        assert!(fresh(&first), "nothing kept yet: every file is parsed");
        assert!(entries(&cache).is_empty(), "loading writes nothing");
        first.keep_parsed();
        assert_eq!(entries(&cache).len(), files, "every bundled file round-trips through JSON and is kept");

        let second = load(dir.path(), &cache);
        assert!(!fresh(&second), "every file found");
        assert_eq!(specs(&second), specs(&first));
        assert!(second.pipelines.len() > files, "for_each items are kept with their rendered text");
        let before = entries(&cache);
        second.keep_parsed();
        assert_eq!(entries(&cache), before, "nothing parsed, nothing written");

        // An edit is a new key: that file alone is parsed, its old entry removed on save.
        let edited = dir.path().join("pipelines/oasis_interests.yml");
        let text = std::fs::read_to_string(&edited).unwrap_or_default();
        let changed = text.replacen("\ndescription: ", "\ndescription: edited, ", 1);
        assert_ne!(changed, text);
        std::fs::write(&edited, changed).unwrap_or_else(|e| panic!("{e}"));
        let third = load(dir.path(), &cache);
        assert_eq!(third.parsed.as_ref().map(|c| lock(&c.fresh).len()), Some(1));
        assert_eq!(specs(&third), specs(&uncached(dir.path())));
        third.keep_parsed();
        let after = entries(&cache);
        assert_eq!(after.len(), files);
        assert_eq!(after.iter().filter(|e| !before.contains(e)).count(), 1, "one new entry, the old one gone");
        let fourth = load(dir.path(), &cache);
        assert!(!fresh(&fourth));
        assert!(fourth.pipelines.iter().any(|f| f
            .spec
            .description
            .as_deref()
            .is_some_and(|d| d.starts_with("edited, "))));

        // A load of one file of the folder keeps the other files' entries.
        std::fs::write(&edited, text).unwrap_or_else(|e| panic!("{e}"));
        let one = Parsed::at(cache.clone());
        let p = Project::load_reading(dir.path(), &edited, BTreeMap::new(), Read::WithoutTests, one)
            .unwrap_or_else(|d| panic!("{d}"));
        assert!(fresh(&p));
        p.keep_parsed();
        assert_eq!(entries(&cache).len(), files + 1);
    }

    #[test]
    fn a_file_rendered_with_the_environment_is_not_kept() {
        let (dir, cache) = bundled();
        let edited = dir.path().join("pipelines/cops_labour_market.yml");
        let text = std::fs::read_to_string(&edited).unwrap_or_default();
        let changed =
            text.replacen("\ndescription: \"COPS ", "\ndescription: \"{{ env('JOBFORGE_UNSET_XYZ', 'x') }} ", 1);
        assert_ne!(changed, text);
        std::fs::write(&edited, changed).unwrap_or_else(|e| panic!("{e}"));
        let files = std::fs::read_dir(dir.path().join("pipelines")).map(|d| d.count()).unwrap_or(0);
        let first = load(dir.path(), &cache);
        assert!(first.pipelines.iter().any(|f| f.spec.description.as_deref().is_some_and(|d| d.starts_with("x "))));
        first.keep_parsed();
        assert_eq!(entries(&cache).len(), files - 1, "every file but the one reading the environment is kept");
        let second = load(dir.path(), &cache);
        assert_eq!(second.parsed.as_ref().map(|c| lock(&c.fresh).len()), Some(0), "parsed again, still not kept");
        assert_eq!(specs(&second), specs(&first));
    }

    #[test]
    fn an_entry_that_cannot_be_read_is_a_miss() {
        let (dir, cache) = bundled();
        load(dir.path(), &cache).keep_parsed();
        let names = entries(&cache);
        // One torn entry, one of another shape: both files are parsed again and kept anew.
        std::fs::write(cache.join(&names[0]), "[{\"text\": nu").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(cache.join(&names[1]), "[{\"text\": null, \"spec\": {\"table\": 1}}]")
            .unwrap_or_else(|e| panic!("{e}"));
        let p = load(dir.path(), &cache);
        assert_eq!(p.parsed.as_ref().map(|c| lock(&c.fresh).len()), Some(2));
        assert_eq!(specs(&p), specs(&uncached(dir.path())));
        p.keep_parsed();
        assert!(!fresh(&load(dir.path(), &cache)), "both kept anew");
    }

    #[test]
    fn the_key_covers_the_text_the_vars_and_the_build() {
        let of = |build: &str| Parsed {
            dir: PathBuf::new(),
            build: build.to_string(),
            used: Mutex::default(),
            fresh: Mutex::default(),
            whole: true,
        };
        let (a, b) = (of("a"), of("b"));
        let none = BTreeMap::new();
        let vars = BTreeMap::from([("year".to_string(), "2025".to_string())]);
        let split = BTreeMap::from([("year".to_string(), "20".to_string()), ("25".to_string(), String::new())]);
        assert_eq!(a.key("table: t", &none), a.key("table: t", &none));
        assert_ne!(a.key("table: t", &none), a.key("table: u", &none));
        assert_ne!(a.key("table: t", &none), a.key("table: t", &vars));
        assert_ne!(a.key("table: t", &vars), a.key("table: t", &split));
        assert_ne!(a.key("table: t", &none), b.key("table: t", &none));
    }
}
